/**
 * Statements that would let a masked value escape masking, refused for identities under a
 * column mask rule. Masking rewrites what comes back; these statements move or reveal the
 * data some other way (copying it somewhere unmasked, side-channel functions, inference).
 */
import type { RelationRef, StatementAnalysis } from '../../parsers/sql/types.js';
import type { ColumnMaskRule, MaskPlan } from '../core/types.js';
import { ColumnMasker } from './index.js';

export interface MaskGuardVerdict {
  rule: string;
  reason: string;
}

/** Functions whose effect carries values out of the result set. */
const SIDE_CHANNEL_FUNCTIONS = /(^|\.)(pg_notify|set_config|lo_from_bytea|lo_import|lo_export|lo_put|pg_file_write|dblink\w*|query_to_xml\w*|table_to_xml\w*|cursor_to_xml\w*)$/;

const MOVES_DATA = new Set(['insert', 'update', 'merge', 'create', 'alter', 'copy', 'replace', 'into_outfile']);

/** Statement kinds whose written values the lineage analysis follows. */
const WRITES_FOLLOWED = new Set(['insert', 'update', 'delete', 'select']);

/**
 * COPY … TO STDOUT in the default text format (tab-separated, \N for NULL) is masked by
 * column position on the wire. Any option (CSV, BINARY, DELIMITER, NULL …), a file or
 * PROGRAM target, or COPY FROM is refused: its output cannot be rewritten safely.
 */
function copyMaskable(statement: StatementAnalysis): boolean {
  if (statement.writes.length > 0) return false;
  const text = statement.text;
  if (!/\bto\s+stdout\b/i.test(text)) return false;
  if (/\b(with|csv|binary|delimiter|null|header|quote|escape|force_quote|force_not_null|force_null|format|encoding|freeze|program)\b/i.test(text.replace(/^[\s\S]*?\bto\s+stdout\b/i, ''))) return false;
  const outputs = statement.outputs;
  return outputs !== null && outputs.length > 0;
}

export class MaskGuard {
  readonly masker: ColumnMasker;

  constructor(readonly plan: MaskPlan) {
    this.masker = new ColumnMasker(plan);
  }

  get active(): boolean {
    return !this.masker.empty;
  }

  /** The mask rule that protects any of these relations, or null. */
  private protecting(refs: readonly RelationRef[], resolve: (ref: RelationRef) => string[]): ColumnMaskRule | null {
    for (const ref of refs) {
      for (const name of resolve(ref)) {
        const rule = this.masker.strongestForTable(name);
        if (rule !== null) return rule;
      }
    }
    return null;
  }

  /**
   * An INSERT/UPDATE/DELETE whose written values are known to come from no masked column
   * (`UPDATE customers SET name = 'x' WHERE id = 1`) moves nothing masked: allowed.
   * Anything not followed (unknown lineage, ON CONFLICT DO UPDATE, MERGE, DDL) is not.
   */
  private writesOnlyUnmasked(statement: StatementAnalysis, resolve: (ref: RelationRef) => string[]): boolean {
    const ws = statement.writeSources;
    if (ws === undefined || ws.unknown) return false;
    if (!statement.kinds.every((x) => WRITES_FOLLOWED.has(x))) return false;
    for (const src of ws.sources) {
      const tables = resolve(src.relation);
      if (tables.length === 0) return false;
      for (const table of tables) {
        const hit = src.column === '*' ? this.masker.strongestForTable(table) : this.masker.methodFor(`${table}.${src.column}`);
        if (hit !== null) return false;
      }
    }
    return true;
  }

  check(statement: StatementAnalysis, resolve: (ref: RelationRef) => string[]): MaskGuardVerdict | null {
    if (!this.active) return null;
    const k = statement.kinds;
    const anyRule = this.masker.strongestOverall();
    if (anyRule === null) return null;
    // A DO block or CALL can read anything and say it in a notice: its shape is unknown.
    if (k.includes('do') || k.includes('call')) {
      return { rule: anyRule.rule, reason: 'DO and CALL cannot run under a mask rule: what they reveal cannot be known' };
    }
    const rule = this.protecting(statement.reads, resolve) ?? this.protecting(statement.writes, resolve);
    if (rule === null) return null;
    if (k.includes('copy') && !copyMaskable(statement)) {
      return { rule: rule.rule, reason: 'COPY of a table with masked columns is masked only in the default text format TO STDOUT; this COPY is refused' };
    }
    if (statement.writes.length > 0 && k.some((x) => MOVES_DATA.has(x)) && !this.writesOnlyUnmasked(statement, resolve)) {
      return { rule: rule.rule, reason: 'copying data from masked columns into another place is refused under a mask rule' };
    }
    if (k.includes('select') && statement.writes.length > 0) {
      return { rule: rule.rule, reason: 'SELECT … INTO from a table with masked columns is refused under a mask rule' };
    }
    if (statement.functions.some((f) => SIDE_CHANNEL_FUNCTIONS.test(f))) {
      return { rule: rule.rule, reason: 'this function would carry masked values outside the result' };
    }
    if (this.plan.denyPredicates) {
      if (k.includes('explain')) return { rule: rule.rule, reason: 'EXPLAIN over masked columns is refused (deny_predicates)' };
      for (const p of statement.predicateColumns) {
        for (const table of resolve(p.relation)) {
          const hit = p.column === '*' ? this.masker.strongestForTable(table) : this.masker.methodFor(`${table}.${p.column}`);
          if (hit !== null && hit.rule !== undefined) {
            return { rule: hit.rule, reason: `a masked column (${p.column}) may not be used in WHERE, JOIN, GROUP BY, ORDER BY or HAVING (deny_predicates)` };
          }
        }
      }
    }
    return null;
  }
}
