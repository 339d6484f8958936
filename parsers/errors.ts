/**
 * The parsers' own error. The parsers sit below the core and do not import it; the core
 * turns a ParserError into the AirlockError with the same code and message
 * (src/util/errors.ts, asAirlockError), so a client sees exactly what it saw before.
 */
export type ParserErrorCode = 'AIRLOCK_TOO_COMPLEX' | 'AIRLOCK_INTERNAL';

export class ParserError extends Error {
  readonly code: ParserErrorCode;

  constructor(code: ParserErrorCode, message: string) {
    super(message);
    this.name = 'ParserError';
    this.code = code;
  }
}
