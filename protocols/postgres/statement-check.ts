/**
 * Policy for what a Postgres client sends: the statements of a Query, Parse or FunctionCall
 * checked in order (an effect-free simple Query runs while its records sync), and an
 * Execute under a per_execution rule asked again. Effect-free is judged from the text and
 * the upstream's catalog (src/audit/effect-free.ts); EffectTracker keeps that catalog
 * judgement honest about what this session itself may have changed.
 */
import type { Session } from '../../src/core/session-types.js';
import type { Action, FinalDecision } from '../../src/core/types.js';
import { AirlockError } from '../../src/util/errors.js';
import type { SqlAnalysis, StatementAnalysis } from '../../parsers/sql/types.js';
import { mayChangeCatalog, type EffectVerdict } from '../../src/audit/effect-free.js';
import type { PgCatalog } from './catalog.js';

/**
 * One session's side of the effect catalog. A statement not proven effect-free that may
 * change the catalog (DDL, user code) marks it changed when it is forwarded and again when
 * its transaction ends (ReadyForQuery 'I': committed or rolled back, now visible to a fresh
 * look-up); until then this session pipelines nothing — its own uncommitted DDL is invisible
 * to the catalog's separate connection, and a look-up made before it ran would not show it.
 */
export class EffectTracker {
  /** Response units (Query, FunctionCall, or a batch up to Sync) that may change the catalog, not yet answered. */
  private unanswered = 0;
  /** One of them was answered inside a transaction block that has not ended yet. */
  private uncommitted = false;

  constructor(private readonly catalog: PgCatalog, private readonly session: Session) {}

  /** The worst verdict over the statements. */
  verdict(statements: StatementAnalysis[]): EffectVerdict {
    if (this.unanswered > 0 || this.uncommitted) return 'may-have-effect';
    let out: EffectVerdict = 'effect-free';
    for (const st of statements) {
      const v = this.catalog.judgeEffects(st);
      if (v === 'may-have-effect') return v;
      if (v === 'unknown') out = v;
    }
    return out;
  }

  /**
   * Looks up what the verdict lacked. Never looked up before: returned to be waited for
   * (alongside the statement's own sync); known but stale (changed since): refreshed in the
   * background, so a stream of changes costs no statement a wait. A failure leaves it unknown
   * (not pipelined), and is logged.
   */
  load(statements: StatementAnalysis[]): Promise<void> | null {
    const failed = (e: unknown): void => {
      this.session.logger.warn({ code: (e as { code?: unknown } | null)?.code }, 'catalog look-up for pipelined audit failed; statements are synced before forwarding');
    };
    const analyze = (sql: string): SqlAnalysis => this.session.analyzeSql(sql, 'postgres');
    if (!this.catalog.knows(statements)) return this.catalog.loadEffects(statements, this.session.lease, analyze).catch(failed);
    this.catalog.refreshEffects(statements, this.session.lease, analyze, failed);
    return null;
  }

  /**
   * A statement is being forwarded (`proven`: judged effect-free; null statements: a
   * FunctionCall). True when it may change the catalog: the catalog is marked changed now,
   * and the caller calls started() once for the response unit it belongs to.
   */
  forwarded(statements: StatementAnalysis[] | null, proven: boolean): boolean {
    if (proven) return false;
    let change: 'ddl' | 'code' | null = statements === null ? 'ddl' : null;
    if (statements !== null) {
      const noUserCode = this.catalog.noUserCode();
      for (const st of statements) {
        const c = mayChangeCatalog(st, noUserCode);
        if (c !== null) change = c;
        if (c === 'ddl') break;
      }
    }
    if (change === null) return false;
    this.catalog.catalogChanged(change === 'ddl');
    return true;
  }

  /**
   * Whether running `statements` again later (a prepared statement's Bind/Execute, which is
   * not checked again) may change the catalog, whatever user code exists by then.
   */
  mayChangeWhenRun(statements: StatementAnalysis[]): boolean {
    return statements.some((st) => mayChangeCatalog(st, false) !== null);
  }

  started(): void {
    this.unanswered++;
  }

  /**
   * ReadyForQuery from upstream, ending a response unit (`changed`: one started() counted),
   * with the transaction status after it ('I' idle, 'T' in a block, 'E' failed block).
   */
  readyForQuery(changed: boolean, status: number): void {
    if (changed) {
      this.unanswered--;
      this.uncommitted = true;
    }
    if (status !== 0x49 || !this.uncommitted) return;
    this.uncommitted = false;
    this.catalog.catalogChanged(true);
  }
}

export interface StatementsDecision {
  decision: FinalDecision;
  statements: StatementAnalysis[];
  /** Set when the Query was pipelined: its records are durable once this settles. */
  durable: Promise<void> | null;
  /** The statement a refusal fell on. */
  denied?: StatementAnalysis;
  /** Every statement was judged effect-free with the catalog (pipelined, or could have been). */
  proven: boolean;
}

/** Every statement in the text must be allowed; the first refusal wins. */
export async function decideStatements(s: Session, effects: EffectTracker, text: string | null, extended: boolean, notice: (text: string) => void): Promise<StatementsDecision> {
  if (text === null) {
    // FunctionCall invokes a function by OID: nothing about its effect is known.
    const action: Action = {
      kind: 'sql',
      dialect: 'postgres',
      text: '<function call>',
      statement: { text: '<function call>', kinds: ['call'], reads: [], writes: [], functions: [], withoutWhere: false, opaque: true, unparsed: false, outputs: null, predicateColumns: [] },
    };
    return { decision: await s.check(action, (h) => notice(h.howToApprove)), statements: [], durable: null, proven: false };
  }
  const analysis = s.analyzeSql(text, 'postgres');
  // The effect judgement serves pipelining alone: with the audit disabled nothing waits for a
  // sync, so it is skipped (and nothing is looked up). What is forwarded unproven still marks
  // the shared catalog changed (relay: mayChangeCatalog), for sessions whose audit is on.
  // verdict() judges the text first (judgeEffects: empty or isEffectFree), the catalog after.
  const verdict = s.audited && analysis.statements.length > 0 ? effects.verdict(analysis.statements) : 'may-have-effect';
  // Simple-query mode only: a Query whose every statement is effect-free runs while its records sync.
  const pipelined = !extended && verdict === 'effect-free';
  // What the catalog has never known is looked up while the records sync (this statement
  // waits for both), so that it and the next ones can be judged.
  const loading = verdict === 'unknown' ? effects.load(analysis.statements) : null;
  const syncing: Array<Promise<void>> = [];
  let last: FinalDecision | null = null;
  for (const statement of analysis.statements) {
    const action: Action = { kind: 'sql', dialect: 'postgres', text: statement.text, statement };
    let d: FinalDecision;
    if (pipelined) {
      const checked = await s.checkEffectFree(action, (h) => notice(h.howToApprove));
      d = checked.decision;
      syncing.push(checked.durable);
    } else {
      d = await s.check(action, (h) => notice(h.howToApprove), extended);
    }
    if (d.effect === 'deny') {
      // Nothing is forwarded; the records before it still settle on their own.
      return { decision: d, statements: analysis.statements, durable: null, denied: statement, proven: false };
    }
    last = d;
  }
  let proven = verdict === 'effect-free';
  if (loading !== null) {
    await loading;
    proven = effects.verdict(analysis.statements) === 'effect-free';
  }
  const durable = syncing.length === 0 ? null : syncing.length === 1 ? (syncing[0] ?? null) : Promise.all(syncing).then(() => undefined);
  // Statements that return nothing (empty) still answer with a completion of their own.
  return { decision: last ?? { effect: 'allow', rules: [], mask: s.maskPlan }, statements: analysis.statements.filter((st) => !st.kinds.includes('empty')), durable, proven };
}

/** An Execute under a per_execution rule: each statement asked again; the first refusal, or null. */
export async function checkExecution(session: Session, statements: StatementAnalysis[], notice: (text: string) => void): Promise<AirlockError | null> {
  for (const statement of statements) {
    const d = await session.check({ kind: 'sql', dialect: 'postgres', text: statement.text, statement }, (h) => notice(h.howToApprove), false);
    if (d.effect === 'deny') return new AirlockError('AIRLOCK_DENIED', `denied by rule ${d.rule}: ${d.reason}`, { rule: d.rule });
  }
  return null;
}
