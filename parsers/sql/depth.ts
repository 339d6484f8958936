/**
 * Statements nested deeper than a parser (or airlock's walk over its tree) can follow:
 * libpg-query's own "stack depth limit exceeded" and bison's "memory exhausted", or a JS
 * stack overflow in node-sql-parser or in the analysis. airlock cannot read such a
 * statement, so it is refused with a reason of its own — not "internal error", and not
 * an "unparsed" statement that a rule admitting unparsed SQL would let through.
 */
import { ParserError } from '../errors.js';

const DEPTH_MESSAGE = /maximum call stack size exceeded|stack depth limit exceeded|memory exhausted|too much recursion/i;

export function isDepthError(e: unknown): boolean {
  return (e instanceof RangeError || e instanceof Error) && DEPTH_MESSAGE.test(e.message);
}

export function tooDeep(): ParserError {
  return new ParserError('AIRLOCK_TOO_COMPLEX', 'the statement is nested too deeply for airlock to read');
}

/** Runs an analysis; a depth error anywhere in it becomes AIRLOCK_TOO_COMPLEX. */
export function withinDepth<T>(analyse: () => T): T {
  try {
    return analyse();
  } catch (e) {
    if (isDepthError(e)) throw tooDeep();
    throw e;
  }
}
