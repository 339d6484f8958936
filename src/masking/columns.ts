/**
 * Which column rules apply to an output column: by provenance (a resolved source column)
 * and by lineage (what a computed column depends on).
 *
 * Precedence when several rules match (rules accumulate, the most destructive wins):
 *   null > redact > hash > fixed > partial > email
 * and among rules with the same method, the first in config order.
 */
import type { OutputLineage, RelationRef } from '../../parsers/sql/types.js';
import { GlobSet } from '../policy/glob.js';
import type { ColumnMaskRule, MaskPlan } from '../core/types.js';
import { strongest } from './methods.js';
import { CATALOG_VALUES_RULE } from './catalog-values.js';

interface CompiledColumnRule {
  rule: ColumnMaskRule;
  columns: GlobSet;
  /** Globs over "schema.table": the tables this rule could mask a column of. */
  tables: GlobSet;
  /** A glob that starts with "**" may match a column of any table. */
  anyTable: boolean;
}

/** Splits a glob at the '.' separators that are not escaped and not inside a character class. */
function segments(glob: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inClass = false;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] ?? '';
    if (c === '\\') {
      cur += c + (glob[i + 1] ?? '');
      i++;
    } else if (inClass) {
      cur += c;
      if (c === ']') inClass = false;
    } else if (c === '[') {
      inClass = true;
      cur += c;
      if (glob[i + 1] === '!' || glob[i + 1] === '^') cur += glob[++i] ?? '';
      if (glob[i + 1] === ']') cur += glob[++i] ?? '';
    } else if (c === '.') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function compile(rule: ColumnMaskRule): CompiledColumnRule {
  const tableGlobs: string[] = [];
  let anyTable = false;
  for (const g of rule.columns) {
    const parts = segments(g);
    const wild = parts.findIndex((p) => p.includes('**'));
    if (wild === -1) {
      if (parts.length === 3) tableGlobs.push(`${parts[0] ?? ''}.${parts[1] ?? ''}`);
    } else if (wild === 0) {
      anyTable = true;
    } else {
      // "hr.**" or "hr.**.ssn": any table of schema hr; "public.users.**": that table.
      const fixed = parts.slice(0, Math.min(wild, 2));
      tableGlobs.push(fixed.length === 2 ? fixed.join('.') : `${fixed[0] ?? ''}.**`);
    }
  }
  return { rule, columns: new GlobSet(rule.columns), tables: new GlobSet(tableGlobs), anyTable };
}

export class ColumnMasker {
  private readonly compiled: CompiledColumnRule[];
  private readonly cache = new Map<string, ColumnMaskRule | null>();
  private readonly tableCache = new Map<string, ColumnMaskRule | null>();

  /** Catalog columns that copy stored values or statement text: masked once any column rule applies (matched lower-cased). */
  private readonly catalog: CompiledColumnRule | null;

  constructor(readonly plan: MaskPlan) {
    this.compiled = plan.columns.map(compile);
    this.catalog = plan.columns.length > 0 ? compile(CATALOG_VALUES_RULE) : null;
  }

  get empty(): boolean {
    return this.compiled.length === 0;
  }

  /** The strongest rule that names "schema.table.column", or null. */
  methodFor(qualifiedColumn: string): ColumnMaskRule | null {
    const hit = this.cache.get(qualifiedColumn);
    if (hit !== undefined) return hit;
    const hits = this.compiled.filter((c) => c.columns.test(qualifiedColumn)).map((c) => c.rule);
    if (this.catalog !== null && this.catalog.columns.test(qualifiedColumn.toLowerCase())) hits.push(this.catalog.rule);
    const rule = strongest(hits);
    if (this.cache.size < 10_000) this.cache.set(qualifiedColumn, rule);
    return rule;
  }

  /** The strongest rule that could mask some column of "schema.table" (a leading "**" glob counts for every table). */
  strongestForTable(schemaTable: string): ColumnMaskRule | null {
    const hit = this.tableCache.get(schemaTable);
    if (hit !== undefined) return hit;
    const hits = this.compiled.filter((c) => c.anyTable || c.tables.test(schemaTable)).map((c) => c.rule);
    if (this.catalog !== null && this.catalog.tables.test(schemaTable.toLowerCase())) hits.push(this.catalog.rule);
    const rule = strongest(hits);
    if (this.tableCache.size < 10_000) this.tableCache.set(schemaTable, rule);
    return rule;
  }

  tableHasMaskedColumns(schemaTable: string): boolean {
    return this.strongestForTable(schemaTable) !== null;
  }

  /** The strongest rule of the whole plan: for output whose sources cannot be named at all. */
  strongestOverall(): ColumnMaskRule | null {
    return strongest(this.compiled.map((c) => c.rule));
  }
}

/**
 * The rule that masks the whole row of a table: the strongest rule on any of its columns
 * when the columns are known, otherwise the strongest rule that could name one of them.
 */
function wholeRowRule(table: string, masker: ColumnMasker, columnsOf: (schemaTable: string) => string[] | null): ColumnMaskRule | null {
  const columns = columnsOf(table);
  if (columns === null) return masker.strongestForTable(table);
  return strongest(columns.flatMap((c) => masker.methodFor(`${table}.${c}`) ?? []));
}

/**
 * Decides the mask of one output column from its lineage.
 *
 * - a dependency on a masked column masks the output with that column's rule;
 * - a whole-row dependency ("*": `row_to_json(u)`, `SELECT u FROM users u`) masks it when
 *   the table has any masked column;
 * - a relation that resolves to no name cannot be judged: the strongest rule of the plan;
 * - unknown lineage masks the output with the strongest rule of every table it (or, given
 *   `reads`, the statement) touches; with no table named at all (an opaque function call),
 *   the strongest rule of the plan. Fail closed: the analysis not knowing is never a reason to pass a value.
 *
 * For a statement whose `outputs` is null, call this per column with
 * `{ name: null, sources: [], unknown: true }` and the statement's `reads`.
 */
export function judgeOutput(
  lineage: OutputLineage,
  masker: ColumnMasker,
  resolve: (ref: RelationRef) => string[],
  columnsOf: (schemaTable: string) => string[] | null,
  reads?: readonly RelationRef[],
): ColumnMaskRule | null {
  if (masker.empty) return null;
  const found: ColumnMaskRule[] = [];
  const add = (r: ColumnMaskRule | null): void => {
    if (r !== null) found.push(r);
  };
  for (const source of lineage.sources) {
    const tables = resolve(source.relation);
    if (tables.length === 0) add(masker.strongestOverall());
    for (const table of tables) {
      if (lineage.unknown || source.column === '*') add(wholeRowRule(table, masker, columnsOf));
      else add(masker.methodFor(`${table}.${source.column}`));
    }
  }
  if (lineage.unknown) {
    const touched = reads ?? [];
    for (const ref of touched) {
      const tables = resolve(ref);
      if (tables.length === 0) add(masker.strongestOverall());
      for (const table of tables) add(wholeRowRule(table, masker, columnsOf));
    }
    // Nothing named at all (`SELECT some_function()`): the function may read anything.
    if (lineage.sources.length === 0 && touched.length === 0) add(masker.strongestOverall());
  }
  return strongest(found);
}
