/**
 * Output-column lineage and predicate columns, for masking (issue 4). Over-approximates:
 * a column reference that could name a column of several relations depends on all of them;
 * an expression this code does not model depends on every column reference inside it; a
 * user function makes the result `unknown`.
 */
import type { OutputLineage, RelationRef } from '../types.js';
import { isObject, list, names, nodeOf, str, unwrap } from './node.js';
import { relationOf } from './effects.js';
import { classifyFunction } from './routines.js';
import { VALUE_EXPOSING_FUNCTIONS } from './catalog-functions.js';

type Source = { relation: RelationRef; column: string };

interface Deps { sources: Source[]; unknown: boolean }

interface RangeEntry {
  alias: string;
  /** A table: any column name is `relation.column`. */
  relation: RelationRef | null;
  /** A derived table (subquery, CTE, function): its columns by name, when known. */
  columns: Map<string, Deps> | null;
  whole: Deps;
}

interface LScope {
  entries: RangeEntry[];
  parent: LScope | null;
  ctes: ReadonlyMap<string, OutputLineage[]>;
}

export interface StatementLineage {
  outputs: OutputLineage[] | null;
  predicateColumns: Source[];
  /** What the values written by INSERT/UPDATE (at any depth) are computed from; null when nothing is written. */
  written: { sources: Source[]; unknown: boolean } | null;
}

interface Ctx { predicates: Map<string, Source>; written: Deps | null }

function wrote(ctx: Ctx, d: Deps): void {
  ctx.written = merge(ctx.written ?? none(), d);
}

const sourceKey = (s: Source): string => `${s.relation.schema ?? ''}\u0000${s.relation.name}\u0000${s.column}`;
const none = (): Deps => ({ sources: [], unknown: false });

function merge(into: Deps, from: Deps): Deps {
  const seen = new Set(into.sources.map(sourceKey));
  for (const s of from.sources) if (!seen.has(sourceKey(s))) { seen.add(sourceKey(s)); into.sources.push(s); }
  into.unknown = into.unknown || from.unknown;
  return into;
}

function lineageDeps(outputs: readonly OutputLineage[]): Deps {
  const d = none();
  for (const o of outputs) merge(d, { sources: [...o.sources], unknown: o.unknown });
  return d;
}

function predicate(ctx: Ctx, deps: Deps): void {
  for (const s of deps.sources) ctx.predicates.set(sourceKey(s), s);
}

function findEntry(scope: LScope | null, alias: string, schema: string | null): RangeEntry | null {
  for (let s = scope; s !== null; s = s.parent) {
    for (const e of s.entries) {
      if (schema !== null ? e.relation?.schema === schema && e.relation.name === alias : e.alias === alias) return e;
    }
  }
  return null;
}

function entryColumn(e: RangeEntry, column: string): Deps {
  if (e.relation !== null) return { sources: [{ relation: e.relation, column }], unknown: false };
  const known = e.columns?.get(column);
  return known !== undefined ? merge(none(), known) : merge(none(), e.whole);
}

function resolveColumn(fields: readonly string[], scope: LScope | null): Deps {
  const last = fields[fields.length - 1];
  if (last === undefined) return { sources: [], unknown: true };
  if (fields.length === 1) {
    if (last === '*') {
      const d = none();
      for (const e of scope?.entries ?? []) merge(d, e.whole);
      return d;
    }
    for (let s = scope; s !== null; s = s.parent) {
      const d = none();
      let found = false;
      for (const e of s.entries) {
        if (e.relation !== null || e.columns === null || e.columns.has(last)) { merge(d, entryColumn(e, last)); found = true; }
        // `SELECT c FROM customers c` is the whole row when no column is named c.
        if (e.alias === last) { merge(d, e.whole); found = true; }
      }
      if (found) return d;
    }
    return { sources: [], unknown: true };
  }
  const alias = fields[fields.length - 2] ?? '';
  const schema = fields.length > 2 ? (fields[fields.length - 3] ?? null) : null;
  const e = findEntry(scope, alias, schema);
  if (e === null) return { sources: [], unknown: true };
  return last === '*' ? merge(none(), e.whole) : entryColumn(e, last);
}

/** Dependencies of an expression; collects the predicates of any subquery inside it. */
function exprDeps(value: unknown, scope: LScope | null, ctx: Ctx): Deps {
  if (Array.isArray(value)) { const d = none(); for (const v of value) merge(d, exprDeps(v, scope, ctx)); return d; }
  if (!isObject(value)) return none();
  const node = unwrap(value);
  if (node === null) {
    const d = none();
    for (const k of Object.keys(value)) merge(d, exprDeps(value[k], scope, ctx));
    return d;
  }
  const f = node.fields;
  switch (node.type) {
    case 'ColumnRef': return resolveColumn(names(f.fields), scope);
    case 'A_Const': case 'ParamRef': return none();
    case 'A_Indirection': {
      const col = nodeOf(f.arg, 'ColumnRef');
      const first = names(list(f.indirection).slice(0, 1))[0];
      if (col !== null && first !== undefined && first !== '*') {
        const whole = resolveColumn(names(col.fields), scope);
        // (c).ssn: a field of a whole-row reference is that column.
        const narrowed = whole.sources.map((s) => (s.column === '*' ? { relation: s.relation, column: first } : s));
        return merge({ sources: narrowed, unknown: whole.unknown }, exprDeps(list(f.indirection).slice(1), scope, ctx));
      }
      return merge(exprDeps(f.arg, scope, ctx), exprDeps(f.indirection, scope, ctx));
    }
    case 'FuncCall': {
      const d = none();
      for (const k of ['args', 'agg_order', 'agg_filter', 'over']) merge(d, exprDeps(f[k], scope, ctx));
      const fname = names(f.funcname);
      if (classifyFunction(fname).opaque) d.unknown = true;
      const last = fname[fname.length - 1]?.toLowerCase();
      if (last !== undefined && VALUE_EXPOSING_FUNCTIONS.has(last)) merge(d, { sources: [{ relation: { schema: 'pg_catalog', name: last }, column: '*' }], unknown: false });
      return d;
    }
    case 'SubLink': {
      const inner = selectOutputs(f.subselect, scope, ctx);
      return merge(exprDeps(f.testexpr, scope, ctx), lineageDeps(inner));
    }
    case 'SelectStmt': return lineageDeps(selectOutputs(value, scope, ctx));
    default: {
      const d = none();
      for (const k of Object.keys(f)) merge(d, exprDeps(f[k], scope, ctx));
      return d;
    }
  }
}

function outputName(val: unknown): string | null {
  const node = unwrap(val);
  if (node === null) return null;
  if (node.type === 'ColumnRef') { const n = names(node.fields.fields); const l = n[n.length - 1]; return l === '*' ? null : (l ?? null); }
  if (node.type === 'FuncCall') { const n = names(node.fields.funcname); return n[n.length - 1] ?? null; }
  if (node.type === 'TypeCast') return outputName(node.fields.arg);
  if (node.type === 'A_Indirection') { const n = names(node.fields.indirection); return n[n.length - 1] ?? null; }
  return null;
}

function derivedEntry(alias: string, outputs: readonly OutputLineage[], colnames: string[]): RangeEntry {
  const columns = new Map<string, Deps>();
  let complete = true;
  outputs.forEach((o, i) => {
    if (o.expansion === true) complete = false;
    const name = complete ? (colnames[i] ?? o.name) : null;
    if (name !== null) columns.set(name, { sources: [...o.sources], unknown: o.unknown });
  });
  return { alias, relation: null, columns: complete ? columns : null, whole: lineageDeps(outputs) };
}

/**
 * A table in FROM. With column aliases (`customers AS t(a, b, c)`) a name no longer says which
 * column it is: every column of it is judged as the whole row (fail closed).
 */
function relationEntry(alias: string, ref: RelationRef, colnames: string[]): RangeEntry {
  const whole: Deps = { sources: [{ relation: ref, column: '*' }], unknown: false };
  return colnames.length > 0 ? { alias, relation: null, columns: null, whole } : { alias, relation: ref, columns: null, whole };
}

function aliasOf(value: unknown): { name: string | null; colnames: string[] } {
  const a = isObject(value) ? value : null;
  return { name: a === null ? null : str(a.aliasname), colnames: a === null ? [] : names(a.colnames) };
}

/** FROM items → range entries of `scope` (entries are pushed as they come, for LATERAL). */
function addFromItem(item: unknown, scope: LScope, ctx: Ctx): void {
  const node = unwrap(item);
  if (node === null) return;
  const f = node.fields;
  switch (node.type) {
    case 'RangeVar': {
      const ref = relationOf(f);
      if (ref === null) return;
      const alias = aliasOf(f.alias);
      const cte = str(f.schemaname) === null ? findCte(scope, ref.name) : undefined;
      if (cte !== undefined) { scope.entries.push(derivedEntry(alias.name ?? ref.name, cte, alias.colnames)); return; }
      scope.entries.push(relationEntry(alias.name ?? ref.name, ref, alias.colnames));
      return;
    }
    case 'RangeSubselect': {
      const alias = aliasOf(f.alias);
      // Without LATERAL a subquery sees the outer queries and the CTEs, not its FROM siblings.
      const outer: LScope = f.lateral === true ? scope : { entries: [], parent: scope.parent, ctes: scope.ctes };
      scope.entries.push(derivedEntry(alias.name ?? '', selectOutputs(f.subquery, outer, ctx), alias.colnames));
      return;
    }
    case 'JoinExpr': {
      addFromItem(f.larg, scope, ctx);
      addFromItem(f.rarg, scope, ctx);
      predicate(ctx, exprDeps(f.quals, scope, ctx));
      for (const u of names(f.usingClause)) predicate(ctx, resolveColumn([u], { ...scope, parent: null }));
      const alias = aliasOf(f.alias).name ?? aliasOf(f.join_using_alias).name;
      if (alias !== null) {
        const whole = none();
        for (const e of scope.entries) merge(whole, e.whole);
        scope.entries.push({ alias, relation: null, columns: null, whole });
      }
      return;
    }
    case 'RangeTableSample': addFromItem(f.relation, scope, ctx); return;
    default: {
      // Set-returning functions, XMLTABLE, JSON_TABLE: every column depends on every argument.
      const alias = aliasOf(f.alias);
      // Functions in FROM are implicitly LATERAL.
      const whole = exprDeps(f, scope, ctx);
      // A catalog function that returns stored values or statement text reads like the relation
      // `pg_catalog.<name>`: its columns by name (`query`), masked by the catalog rule.
      const calls = node.type === 'RangeFunction' ? list(f.functions).map((l) => nodeOf(list(nodeOf(l, 'List')?.items)[0], 'FuncCall')) : [];
      const fname = calls.length === 1 && calls[0] !== null && calls[0] !== undefined ? names(calls[0].funcname) : [];
      const last = fname[fname.length - 1]?.toLowerCase();
      if (last !== undefined && VALUE_EXPOSING_FUNCTIONS.has(last)) {
        const entry = relationEntry(alias.name ?? last, { schema: 'pg_catalog', name: last }, alias.colnames);
        scope.entries.push({ ...entry, whole: merge(merge(none(), entry.whole), whole) });
        return;
      }
      scope.entries.push({ alias: alias.name ?? '', relation: null, columns: null, whole });
    }
  }
}

function findCte(scope: LScope | null, name: string): OutputLineage[] | undefined {
  for (let s = scope; s !== null; s = s.parent) { const c = s.ctes.get(name); if (c !== undefined) return c; }
  return undefined;
}

function withCtes(withClause: unknown, scope: LScope, ctx: Ctx): Map<string, OutputLineage[]> {
  const ctes = new Map<string, OutputLineage[]>();
  const w = isObject(withClause) ? withClause : null;
  if (w === null) return ctes;
  for (const c of list(w.ctes)) {
    const cte = nodeOf(c, 'CommonTableExpr');
    const name = cte === null ? null : str(cte.ctename);
    if (cte === null || name === null) continue;
    const colnames = names(cte.aliascolnames);
    // A recursive CTE reads itself: iterate from "depends on nothing" until the lineage stops growing.
    // Round 0 sees the CTE itself as rows that depend on nothing yet.
    let outputs: OutputLineage[] = [{ name: null, sources: [], unknown: false, expansion: true }];
    for (let round = 0; round < (w.recursive === true ? 8 : 1); round++) {
      ctes.set(name, outputs);
      const next = statementOutputs(cte.ctequery, { entries: [], parent: scope, ctes }, ctx) ?? [];
      const renamed = next.map((o, i) => ({ ...o, name: colnames[i] ?? o.name }));
      const same = JSON.stringify(renamed) === JSON.stringify(outputs);
      outputs = renamed;
      if (same) break;
      if (round === 7) outputs = outputs.map((o) => ({ ...o, unknown: true }));
    }
    ctes.set(name, outputs);
  }
  return ctes;
}

function targetOutputs(targets: unknown, scope: LScope, ctx: Ctx): OutputLineage[] {
  const out: OutputLineage[] = [];
  for (const t of list(targets)) {
    const rt = nodeOf(t, 'ResTarget');
    if (rt === null) continue;
    const col = nodeOf(rt.val, 'ColumnRef');
    const fields = col === null ? [] : names(col.fields);
    if (fields[fields.length - 1] === '*') {
      const entries = fields.length === 1 ? scope.entries : [findEntry(scope, fields[fields.length - 2] ?? '', null)];
      for (const e of entries) {
        if (e === null) { out.push({ name: null, sources: [], unknown: true, expansion: true }); continue; }
        if (e.columns !== null) {
          for (const [name, d] of e.columns) out.push({ name, sources: [...d.sources], unknown: d.unknown });
        } else {
          out.push({ name: null, sources: [...e.whole.sources], unknown: e.whole.unknown, expansion: true });
        }
      }
      continue;
    }
    const d = exprDeps(rt.val, scope, ctx);
    out.push({ name: str(rt.name) ?? outputName(rt.val), sources: d.sources, unknown: d.unknown });
  }
  return out;
}

function sortPredicates(clauses: unknown, scope: LScope, outputs: readonly OutputLineage[], ctx: Ctx): void {
  for (const c of list(clauses)) {
    const sort = nodeOf(c, 'SortBy');
    const expr = sort === null ? c : sort.node;
    const kind = unwrap(expr)?.type;
    // ORDER BY 2 / GROUP BY $1: an output position; count every output, whatever the value.
    if (kind === 'A_Const' || kind === 'ParamRef') { predicate(ctx, lineageDeps(outputs)); continue; }
    const col = nodeOf(expr, 'ColumnRef');
    const fields = col === null ? [] : names(col.fields);
    const byName = fields.length === 1 ? outputs.filter((o) => o.name === fields[0]) : [];
    predicate(ctx, merge(exprDeps(expr, scope, ctx), lineageDeps(byName)));
  }
}

function selectOutputs(value: unknown, parent: LScope | null, ctx: Ctx): OutputLineage[] {
  const f = nodeOf(value, 'SelectStmt');
  if (f === null) return statementOutputs(value, parent ?? { entries: [], parent: null, ctes: new Map() }, ctx) ?? [];
  const scope: LScope = { entries: [], parent, ctes: new Map() };
  scope.ctes = withCtes(f.withClause, scope, ctx);
  if (f.op !== undefined && f.op !== 'SETOP_NONE') {
    const l = selectOutputs(f.larg, scope, ctx);
    const r = selectOutputs(f.rarg, scope, ctx);
    if (l.some((o) => o.expansion === true) || r.some((o) => o.expansion === true) || l.length !== r.length) {
      const d = merge(lineageDeps(l), lineageDeps(r));
      return [{ name: null, sources: d.sources, unknown: d.unknown, expansion: true }];
    }
    const outputs = l.map((o, i) => {
      const d = merge({ sources: [...o.sources], unknown: o.unknown }, { sources: r[i]?.sources ?? [], unknown: r[i]?.unknown ?? true });
      return { name: o.name, sources: d.sources, unknown: d.unknown };
    });
    sortPredicates(f.sortClause, scope, outputs, ctx);
    return outputs;
  }
  if (f.valuesLists !== undefined) {
    const columns: Deps[] = [];
    for (const row of list(f.valuesLists)) {
      list(nodeOf(row, 'List')?.items).forEach((v, i) => { columns[i] = merge(columns[i] ?? none(), exprDeps(v, scope, ctx)); });
    }
    return columns.map((d, i) => ({ name: `column${i + 1}`, sources: d.sources, unknown: d.unknown }));
  }
  for (const item of list(f.fromClause)) addFromItem(item, scope, ctx);
  const outputs = targetOutputs(f.targetList, scope, ctx);
  predicate(ctx, exprDeps(f.whereClause, scope, ctx));
  predicate(ctx, exprDeps(f.havingClause, scope, ctx));
  predicate(ctx, exprDeps(f.windowClause, scope, ctx));
  sortPredicates(f.groupClause, scope, outputs, ctx);
  sortPredicates(f.sortClause, scope, outputs, ctx);
  sortPredicates(f.distinctClause, scope, outputs, ctx);
  return outputs;
}

/** Rows a statement returns (SELECT, RETURNING, COPY … TO), or null when it returns none. */
function statementOutputs(stmt: unknown, parent: LScope, ctx: Ctx): OutputLineage[] | null {
  const node = unwrap(stmt);
  if (node === null) return null;
  const f = node.fields;
  switch (node.type) {
    case 'SelectStmt': return f.intoClause !== undefined ? null : selectOutputs(stmt, parent, ctx);
    case 'InsertStmt': case 'UpdateStmt': case 'DeleteStmt': case 'MergeStmt': {
      const scope: LScope = { entries: [], parent, ctes: new Map() };
      scope.ctes = withCtes(f.withClause, scope, ctx);
      const target = isObject(f.relation) ? f.relation : null;
      if (target !== null) addFromItem({ RangeVar: target }, { ...scope, ctes: new Map() }, ctx);
      for (const k of ['fromClause', 'usingClause']) for (const item of list(f[k])) addFromItem(item, scope, ctx);
      if (f.sourceRelation !== undefined) addFromItem(f.sourceRelation, scope, ctx);
      predicate(ctx, exprDeps(f.whereClause, scope, ctx));
      predicate(ctx, exprDeps(f.joinCondition, scope, ctx));
      if (node.type === 'DeleteStmt') wrote(ctx, none());
      // INSERT … SELECT / VALUES: the rows written are that query's outputs.
      if (f.selectStmt !== undefined) wrote(ctx, lineageDeps(selectOutputs(f.selectStmt, scope, ctx)));
      else if (node.type === 'InsertStmt') wrote(ctx, none());
      // UPDATE … SET col = expr: every expression assigned.
      if (node.type === 'UpdateStmt') {
        for (const t of list(f.targetList)) wrote(ctx, exprDeps(nodeOf(t, 'ResTarget')?.val ?? t, scope, ctx));
      }
      // ON CONFLICT DO UPDATE and MERGE actions are not followed: what they write is unknown.
      if (f.onConflictClause !== undefined || node.type === 'MergeStmt') wrote(ctx, { sources: [], unknown: true });
      const ret = isObject(f.returningClause) ? f.returningClause.exprs : f.returningList;
      return ret === undefined ? null : targetOutputs(ret, scope, ctx);
    }
    case 'CopyStmt': {
      if (f.query !== undefined) return statementOutputs(f.query, parent, ctx);
      const ref = isObject(f.relation) ? relationOf(f.relation) : null;
      if (ref === null || f.is_from === true) return null;
      const cols = names(f.attlist);
      if (cols.length > 0) return cols.map((c) => ({ name: c, sources: [{ relation: ref, column: c }], unknown: false }));
      return [{ name: null, sources: [{ relation: ref, column: '*' }], unknown: false, expansion: true }];
    }
    default: return null;
  }
}

export function statementLineage(stmt: unknown): StatementLineage {
  const ctx: Ctx = { predicates: new Map(), written: null };
  let outputs: OutputLineage[] | null;
  try {
    outputs = statementOutputs(stmt, { entries: [], parent: null, ctes: new Map() }, ctx);
  } catch {
    outputs = [{ name: null, sources: [], unknown: true, expansion: true }];
    ctx.written = { sources: [], unknown: true };
  }
  return { outputs, predicateColumns: [...ctx.predicates.values()], written: ctx.written };
}

