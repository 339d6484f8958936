/**
 * Policy for what a Postgres client sends: the statements of a Query, Parse or FunctionCall
 * checked in order (an effect-free simple Query runs while its records sync), and an
 * Execute under a per_execution rule asked again.
 */
import type { Session } from '../../src/core/session-types.js';
import type { Action, FinalDecision } from '../../src/core/types.js';
import { AirlockError } from '../../src/util/errors.js';
import type { StatementAnalysis } from '../../parsers/sql/types.js';
import { isEffectFree } from '../../src/audit/effect-free.js';

export interface StatementsDecision {
  decision: FinalDecision;
  statements: StatementAnalysis[];
  /** Set when the Query was pipelined: its records are durable once this settles. */
  durable: Promise<void> | null;
  /** The statement a refusal fell on. */
  denied?: StatementAnalysis;
}

/** Every statement in the text must be allowed; the first refusal wins. */
export async function decideStatements(s: Session, text: string | null, extended: boolean, notice: (text: string) => void): Promise<StatementsDecision> {
  if (text === null) {
    // FunctionCall invokes a function by OID: nothing about its effect is known.
    const action: Action = {
      kind: 'sql',
      dialect: 'postgres',
      text: '<function call>',
      statement: { text: '<function call>', kinds: ['call'], reads: [], writes: [], functions: [], withoutWhere: false, opaque: true, unparsed: false, outputs: null, predicateColumns: [] },
    };
    return { decision: await s.check(action, (h) => notice(h.howToApprove)), statements: [], durable: null };
  }
  const analysis = s.analyzeSql(text, 'postgres');
  // Simple-query mode only: a Query whose every statement is effect-free runs while its records sync.
  const pipelined = !extended && analysis.statements.length > 0 && analysis.statements.every((st) => st.kinds.includes('empty') || isEffectFree(st));
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
      return { decision: d, statements: analysis.statements, durable: null, denied: statement };
    }
    last = d;
  }
  const durable = syncing.length === 0 ? null : syncing.length === 1 ? (syncing[0] ?? null) : Promise.all(syncing).then(() => undefined);
  // Statements that return nothing (empty) still answer with a completion of their own.
  return { decision: last ?? { effect: 'allow', rules: [], mask: s.maskPlan }, statements: analysis.statements.filter((st) => !st.kinds.includes('empty')), durable };
}

/** An Execute under a per_execution rule: each statement asked again; the first refusal, or null. */
export async function checkExecution(session: Session, statements: StatementAnalysis[], notice: (text: string) => void): Promise<AirlockError | null> {
  for (const statement of statements) {
    const d = await session.check({ kind: 'sql', dialect: 'postgres', text: statement.text, statement }, (h) => notice(h.howToApprove), false);
    if (d.effect === 'deny') return new AirlockError('AIRLOCK_DENIED', `denied by rule ${d.rule}: ${d.reason}`, { rule: d.rule });
  }
  return null;
}
