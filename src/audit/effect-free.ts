/**
 * Which statements may be forwarded while their audit record is still syncing (the result
 * is then held until it is durable). Only what the analysis proves has no effect: plain
 * SELECTs of relations, with no function call at all (a function may be volatile, write,
 * or be a caller's own shadowing a built-in), no row locks, no SELECT INTO, nothing opaque
 * or unparsed. Everything else — and any doubt — is synced before it is forwarded.
 *
 * Judged from the text: a side effect hidden in an object the statement names without
 * calling (a view over a writing function, a user-defined operator or cast, a function in
 * attribute notation `t.f`) is not seen.
 * Creating such an object is itself a statement, synced before it was forwarded.
 */
import type { StatementAnalysis } from '../../parsers/sql/types.js';

/** FOR UPDATE / FOR NO KEY UPDATE / FOR SHARE / FOR KEY SHARE, and SELECT … INTO (creates a table). Matched anywhere, literals included: a false match only costs the pipelining. */
const EFFECT_WORDS = /\bfor\s+(?:no\s+key\s+)?update\b|\bfor\s+(?:key\s+)?share\b|\binto\b/i;

export function isEffectFree(statement: StatementAnalysis): boolean {
  if (statement.unparsed || statement.opaque) return false;
  if (statement.kinds.length !== 1 || statement.kinds[0] !== 'select') return false;
  if (statement.writes.length > 0 || statement.functions.length > 0) return false;
  return !EFFECT_WORDS.test(statement.text);
}
