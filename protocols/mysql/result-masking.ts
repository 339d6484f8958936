/**
 * Masking of what a MySQL session returns, for identities under a mask rule. Every output
 * column of a result set is judged once, when its column definitions arrive: provenance
 * from the definition (schema, org_table, org_name) and lineage from the statement's
 * analysis (computed columns); unknown provenance in a statement that touches a masked
 * table is masked (judgeOutput fails closed). Rows whose columns need nothing pass as the
 * bytes that arrived; others are rewritten cell by cell, in the text or binary protocol.
 * ERR text is scrubbed of quoted values and of values masked earlier in the session; the
 * ERR of a statement that reads masked columns, and the SHOW WARNINGS / SHOW ERRORS messages
 * after one, are withheld (src/masking/errors.ts).
 */
import type { Session } from '../../src/core/session-types.js';
import type { ColumnMaskRule } from '../../src/core/types.js';
import type { OutputLineage, RelationRef, StatementAnalysis } from '../../parsers/sql/types.js';
import { ColumnMasker, DETAILS_WITHHELD, DetectorRules, MYSQL_SAFE_TEMPLATES, judgeOutput, keyFromSecret, maskText, maskValue, maskValueByDetectors, readsMaskedData, safeMessage, strongest, withheldMessage } from '../../src/masking/index.js';
import type { ColumnDefinition } from './codec/messages/resultset.js';
import { decodeBinaryRow, decodeTextRow, encodeBinaryRow, encodeTextRow } from './codec/messages/resultset.js';
import type { ErrPacket } from './codec/messages/generic.js';
import type { MysqlCatalog } from './catalog.js';
import type { UpstreamOptions } from './upstream.js';

export interface ColumnPlan {
  /** schema.table.column, or the output name for computed columns (audit). */
  name: string;
  rule: ColumnMaskRule | null;
  mysqlType: number;
}

/** null: no column needs anything (rows pass as they arrived). */
export type RowPlan = ColumnPlan[] | null;

const MAX_SEEN_VALUES = 5_000;

const UNKNOWN: OutputLineage = { name: null, sources: [], unknown: true };

/** SHOW WARNINGS / SHOW ERRORS (and SHOW COUNT(*) …): they read the diagnostics of the statements before. */
const DIAGNOSTICS = /^\s*show\s+(?:count\s*\(\s*\*\s*\)\s+)?(?:warnings|errors)\b/i;

/** The Message column of SHOW WARNINGS after a statement that read masked columns. */
const WITHHELD_DIAGNOSTIC: ColumnMaskRule = Object.freeze({ rule: 'airlock-withheld-diagnostics', columns: [], method: 'fixed', fixed: DETAILS_WITHHELD }) as ColumnMaskRule;

/**
 * Lineage per result column. The analysis lists one entry per select item; a `*` (or `t.*`)
 * is one `expansion` entry standing for the columns it expands to, which the column count
 * tells. An expanded column is a whole-row dependency on the relation unless its definition
 * names that relation and column itself and the text defines no derived table or CTE of
 * that name (then: that column). Anything that does not line up is unknown.
 */
function lineageByColumn(columns: readonly ColumnDefinition[], statement: StatementAnalysis | null): OutputLineage[] {
  const outputs = statement?.outputs ?? null;
  if (statement === null || outputs === null) return columns.map(() => UNKNOWN);
  const expansions = outputs.filter((o) => o.expansion === true).length;
  if (expansions === 0) return outputs.length === columns.length ? outputs : columns.map(() => UNKNOWN);
  if (expansions > 1 || columns.length < outputs.length - 1) return columns.map(() => UNKNOWN);
  const at = outputs.findIndex((o) => o.expansion === true);
  const width = columns.length - (outputs.length - 1);
  const entry = outputs[at] as OutputLineage;
  return columns.map((c, i) => {
    if (i < at) return outputs[i] as OutputLineage;
    if (i >= at + width) return outputs[i - width + 1] as OutputLineage;
    if (entry.unknown) return entry;
    // A base-table column of `*` comes from exactly one of the expanded relations.
    const own = entry.sources.find((src) => src.column === '*' && c.orgName !== '' && c.orgTable.toLowerCase() === src.relation.name.toLowerCase()
      && (src.relation.schema === null || src.relation.schema === c.schema) && !definesAlias(statement.text, src.relation.name));
    return { name: c.name, unknown: false, sources: own === undefined ? entry.sources : [{ relation: own.relation, column: c.orgName }] };
  });
}

/** Whether the text may define a derived table or a CTE named `name` (then org_table does not name the base table). */
function definesAlias(text: string, name: string): boolean {
  const n = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`\\)\\s*(?:as\\s+)?[\`"]?${n}[\`"]?(?![\\w$])`, 'i').test(text) || new RegExp(`[\`"]?${n}[\`"]?\\s*(?:\\([^)]*\\))?\\s+as\\s*\\(`, 'i').test(text);
}

export class ResultMasker {
  private readonly masker: ColumnMasker;
  private readonly detectors: DetectorRules;
  private readonly key: Buffer;
  /** Raw values masked in this session, scrubbed from error text. */
  private readonly seen = new Set<string>();
  /**
   * The server's diagnostics area (SHOW WARNINGS) may hold messages of a statement that read
   * masked columns. Cleared only by a statement that reads tables none of which is masked
   * (the server resets the list for a statement that uses a table).
   */
  private diagnosticsMasked = false;

  constructor(
    private readonly session: Session,
    hashKey: string,
    /** Which relations are views (null: every relation counts as one). */
    private readonly catalog: { views: MysqlCatalog; upstream: UpstreamOptions } | null = null,
  ) {
    this.masker = new ColumnMasker(session.maskPlan);
    this.detectors = new DetectorRules(session.maskPlan.detectors);
    this.key = keyFromSecret(hashKey);
  }

  static needed(session: Session): boolean {
    return session.maskPlan.columns.length > 0 || session.maskPlan.detectors.length > 0;
  }

  /** Real schema.table candidates of a relation (the resolver also lists Postgres pseudo-schemas). */
  private candidates(ref: RelationRef): string[] {
    return this.session.resolveRelation(ref).filter((n) => !n.startsWith('pg_temp.') && !n.startsWith('pg_catalog.'));
  }

  private isView(schemaTable: string): boolean {
    return this.catalog === null || this.catalog.views.isView(schemaTable) !== false;
  }

  /** Learns which relations the statements read are views, before their results arrive. */
  async prepare(statements: StatementAnalysis[]): Promise<void> {
    if (this.masker.empty || this.catalog === null) return;
    const names = statements.flatMap((st) => st.reads.flatMap((ref) => this.candidates(ref)));
    if (names.length === 0) return;
    try {
      await this.catalog.views.load(names, this.catalog.upstream);
    } catch (e) {
      // Fail closed: what could not be looked up counts as a view.
      this.session.logger.warn({ err: e }, 'view look-up for masking failed');
    }
  }

  /**
   * The plan for one result set: its column definitions and the statement that produced it.
   *
   * Lineage from the analysis decides; a column definition's (schema, org_table, org_name)
   * only adds to it. MariaDB names a derived table, a CTE or a view as the org_table of its
   * columns (`SELECT * FROM (SELECT ssn AS x FROM users) t` reports `t.x`), so the server's
   * word alone is never a reason to pass a value. Without usable lineage a column is judged
   * as unknown: masked when the statement touches a table with masked columns.
   */
  plan(columns: readonly ColumnDefinition[], statement: StatementAnalysis | null): RowPlan {
    if (!this.masker.empty && statement !== null && DIAGNOSTICS.test(statement.text)) return this.diagnosticsPlan(columns);
    const resolve = (ref: RelationRef): string[] => this.session.resolveRelation(ref);
    const columnsOf = (): string[] | null => null;
    const reads = statement?.reads ?? [];
    const lineages = lineageByColumn(columns, statement);
    let any = !this.detectors.empty;
    const plan = columns.map((c, i): ColumnPlan => {
      let rule: ColumnMaskRule | null = null;
      const direct = c.orgTable !== '' && c.orgName !== '';
      const name = direct ? `${c.schema}.${c.orgTable}.${c.orgName}` : c.name;
      if (!this.masker.empty) {
        const lineage = lineages[i] ?? UNKNOWN;
        const found: Array<ColumnMaskRule | null> = [judgeOutput(lineage, this.masker, resolve, columnsOf, reads)];
        if (direct) found.push(c.schema === '' ? this.masker.strongestOverall() : this.masker.methodFor(name));
        // A view hides its base columns: what depends on one (or on what could not be looked up) is withheld.
        const from = lineage.unknown ? reads : lineage.sources.map((src) => src.relation);
        const namedView = direct && this.catalog !== null && this.catalog.views.isView(`${c.schema}.${c.orgTable}`) === true;
        if (namedView || from.some((ref) => this.candidates(ref).some((n) => this.isView(n)))) {
          found.push(this.masker.strongestOverall());
        }
        rule = strongest(found.filter((r): r is ColumnMaskRule => r !== null));
      }
      if (rule !== null) any = true;
      return { name, rule, mysqlType: c.columnType };
    });
    return any ? plan : null;
  }

  /** SHOW WARNINGS / ERRORS: Level and Code pass; Message is withheld after a statement that read masked columns. */
  private diagnosticsPlan(columns: readonly ColumnDefinition[]): RowPlan {
    const plan = columns.map((c): ColumnPlan => ({
      name: c.name,
      rule: c.name.toLowerCase() === 'message' ? (this.diagnosticsMasked ? WITHHELD_DIAGNOSTIC : null) : c.name.toLowerCase() === 'level' || c.name.toLowerCase() === 'code' ? null : this.masker.strongestOverall(),
      mysqlType: c.columnType,
    }));
    return plan.some((c) => c.rule !== null) || !this.detectors.empty ? plan : null;
  }

  /** A view counts as reading masked columns: what it reads is not known here (as for its columns). */
  private readsMasked(st: StatementAnalysis | null): boolean {
    return readsMaskedData(st, this.masker, (ref) => this.session.resolveRelation(ref), () => null)
      || (st !== null && st.reads.some((ref) => this.candidates(ref).some((n) => this.isView(n))));
  }

  /**
   * A statement's answer ended (OK, EOF or ERR): what SHOW WARNINGS will show next. null: a
   * statement airlock could not tell; undefined: a command that is not a statement (ping, …).
   */
  statementEnded(st: StatementAnalysis | null | undefined): void {
    if (this.masker.empty || st === undefined) return;
    if (st !== null && DIAGNOSTICS.test(st.text)) return;
    if (this.readsMasked(st)) this.diagnosticsMasked = true;
    else if (st !== null && st.reads.length > 0) this.diagnosticsMasked = false;
  }

  /** A row under a plan: null when it passes unchanged, else the new payload. */
  row(payload: Buffer, plan: ColumnPlan[], binary: boolean): Buffer | null {
    const types = plan.map((c) => c.mysqlType);
    const cells = binary ? decodeBinaryRow(payload, types) : decodeTextRow(payload, plan.length);
    const format = binary ? 'binary' : 'text';
    let changed = false;
    const out = cells.map((cell, i) => {
      const c = plan[i] as ColumnPlan;
      if (cell === null) return cell;
      const type = { mysqlType: c.mysqlType, format } as const;
      if (c.rule !== null) {
        changed = true;
        if (!binary && cell.length >= 4 && this.seen.size < MAX_SEEN_VALUES) this.seen.add(cell.toString('utf8'));
        const r = c.rule;
        return maskValue(cell, type, r.method, { ...(r.keep === undefined ? {} : { keep: r.keep }), ...(r.fixed === undefined ? {} : { fixed: r.fixed }), key: this.key });
      }
      if (!this.detectors.empty) {
        const r = maskValueByDetectors(cell, type, this.detectors, this.key);
        if (r.findings > 0) {
          changed = true;
          return r.value;
        }
      }
      return cell;
    });
    if (!changed) return null;
    return binary ? encodeBinaryRow(out, types) : encodeTextRow(out);
  }

  /** Output columns masked under a plan (audit). */
  maskedColumns(plan: RowPlan): string[] {
    return plan === null ? [] : plan.filter((c) => c.rule !== null).map((c) => c.name);
  }

  /**
   * Server error text: of a statement that reads masked columns, withheld but for a safe
   * template (its variable parts redacted); otherwise, under a column rule every quoted value is withheld, and values masked
   * before. `statement` undefined: the ERR of a command that is not a statement.
   */
  scrubError(err: ErrPacket, statement?: StatementAnalysis | null): ErrPacket | null {
    if (this.masker.empty && this.detectors.empty) return null;
    if (statement !== undefined && this.readsMasked(statement)) {
      const code = String(err.code);
      const message = safeMessage(MYSQL_SAFE_TEMPLATES, code, err.message) ?? withheldMessage(err.sqlState, err.code);
      return message === err.message ? null : { ...err, message };
    }
    let s = err.message;
    if (!this.masker.empty) s = s.replace(/'(?:[^'\\]|\\.|'')*'/g, "'[redacted]'").replace(/"(?:[^"\\]|\\.)*"/g, '"[redacted]"');
    for (const v of this.seen) if (s.includes(v)) s = s.split(v).join('[redacted]');
    if (!this.detectors.empty) s = maskText(s, this.detectors, this.key).text;
    return s === err.message ? null : { ...err, message: s };
  }
}
