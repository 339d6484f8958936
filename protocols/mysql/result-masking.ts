/**
 * Masking of what a MySQL session returns, for identities under a mask rule. Every output
 * column of a result set is judged once, when its column definitions arrive: provenance
 * from the definition (schema, org_table, org_name) and lineage from the statement's
 * analysis (computed columns); unknown provenance in a statement that touches a masked
 * table is masked (judgeOutput fails closed). Rows whose columns need nothing pass as the
 * bytes that arrived; others are rewritten cell by cell, in the text or binary protocol.
 * ERR text is scrubbed of quoted values and of values masked earlier in the session.
 */
import type { Session } from '../../src/session-types.js';
import type { ColumnMaskRule } from '../../src/types.js';
import type { RelationRef, StatementAnalysis } from '../../parsers/sql/types.js';
import { ColumnMasker, DetectorRules, judgeOutput, keyFromSecret, maskText, maskValue, maskValueByDetectors, strongest } from '../../src/masking/index.js';
import type { ColumnDefinition } from './codec/messages/resultset.js';
import { decodeBinaryRow, decodeTextRow, encodeBinaryRow, encodeTextRow } from './codec/messages/resultset.js';
import type { ErrPacket } from './codec/messages/generic.js';

export interface ColumnPlan {
  /** schema.table.column, or the output name for computed columns (audit). */
  name: string;
  rule: ColumnMaskRule | null;
  mysqlType: number;
}

/** null: no column needs anything (rows pass as they arrived). */
export type RowPlan = ColumnPlan[] | null;

const MAX_SEEN_VALUES = 5_000;

export class ResultMasker {
  private readonly masker: ColumnMasker;
  private readonly detectors: DetectorRules;
  private readonly key: Buffer;
  /** Raw values masked in this session, scrubbed from error text. */
  private readonly seen = new Set<string>();

  constructor(private readonly session: Session, hashKey: string) {
    this.masker = new ColumnMasker(session.maskPlan);
    this.detectors = new DetectorRules(session.maskPlan.detectors);
    this.key = keyFromSecret(hashKey);
  }

  static needed(session: Session): boolean {
    return session.maskPlan.columns.length > 0 || session.maskPlan.detectors.length > 0;
  }

  /** The plan for one result set: its column definitions and the statement that produced it. */
  plan(columns: readonly ColumnDefinition[], statement: StatementAnalysis | null): RowPlan {
    const resolve = (ref: RelationRef): string[] => this.session.resolveRelation(ref);
    const columnsOf = (): string[] | null => null;
    const outputs = statement?.outputs ?? null;
    const lineageUsable = outputs !== null && outputs.length === columns.length;
    let any = !this.detectors.empty;
    const plan = columns.map((c, i): ColumnPlan => {
      let rule: ColumnMaskRule | null = null;
      const direct = c.orgTable !== '' && c.orgName !== '';
      const name = direct ? `${c.schema}.${c.orgTable}.${c.orgName}` : c.name;
      if (!this.masker.empty) {
        const found: Array<ColumnMaskRule | null> = [];
        // A column straight from a table: the server names it, whatever the alias.
        if (direct) found.push(c.schema === '' ? this.masker.strongestOverall() : this.masker.methodFor(name));
        const lineage = lineageUsable ? outputs[i] : undefined;
        if (lineage !== undefined) found.push(judgeOutput(lineage, this.masker, resolve, columnsOf, statement?.reads ?? []));
        else if (!direct) found.push(judgeOutput({ name: null, sources: [], unknown: true }, this.masker, resolve, columnsOf, statement?.reads ?? []));
        rule = strongest(found.filter((r): r is ColumnMaskRule => r !== null));
      }
      if (rule !== null) any = true;
      return { name, rule, mysqlType: c.columnType };
    });
    return any ? plan : null;
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

  /** Server error text: under a column rule every quoted value is withheld, and values masked before. */
  scrubError(err: ErrPacket): ErrPacket | null {
    if (this.masker.empty && this.detectors.empty) return null;
    let s = err.message;
    if (!this.masker.empty) s = s.replace(/'(?:[^'\\]|\\.|'')*'/g, "'[redacted]'").replace(/"(?:[^"\\]|\\.)*"/g, '"[redacted]"');
    for (const v of this.seen) if (s.includes(v)) s = s.split(v).join('[redacted]');
    if (!this.detectors.empty) s = maskText(s, this.detectors, this.key).text;
    return s === err.message ? null : { ...err, message: s };
  }
}
