/**
 * One error base class with stable string codes. Each protocol adapter maps a code to
 * its own error form exactly once (protocols/<name>/errors.ts).
 */
import { ParserError } from '../../parsers/errors.js';

export const ErrorCodes = {
  AIRLOCK_CONFIG_INVALID: 'configuration is invalid',
  AIRLOCK_SECRET_UNRESOLVED: 'a secret reference could not be resolved',
  AIRLOCK_AUTH_MISSING: 'no token was presented',
  AIRLOCK_AUTH_INVALID: 'the token is not valid',
  AIRLOCK_AUTH_EXPIRED: 'the token has expired',
  AIRLOCK_AUTH_NOT_YET_VALID: 'the token is not yet valid',
  AIRLOCK_AUTH_AUDIENCE: 'the token has the wrong audience',
  AIRLOCK_AUTH_ISSUER: 'the token comes from an untrusted issuer',
  AIRLOCK_AUTH_SIGNATURE: 'the token has a bad signature',
  AIRLOCK_AUTH_INSECURE: 'tokens are not accepted over an unencrypted non-loopback connection',
  AIRLOCK_AUTH_TIMEOUT: 'authentication did not finish in time',
  AIRLOCK_FORBIDDEN: 'the caller may not use this connection',
  AIRLOCK_DENIED: 'denied by policy',
  AIRLOCK_APPROVAL_DENIED: 'the approver denied the request',
  AIRLOCK_APPROVAL_TIMEOUT: 'no approver decided in time',
  AIRLOCK_PROTOCOL: 'protocol violation',
  AIRLOCK_TOO_LARGE: 'a message exceeds the configured limit',
  AIRLOCK_TOO_COMPLEX: 'the statement is nested too deeply for airlock to read',
  AIRLOCK_UNSUPPORTED: 'not supported',
  AIRLOCK_UPSTREAM_UNAVAILABLE: 'the upstream could not be reached',
  AIRLOCK_UPSTREAM_LOST: 'the upstream connection was lost',
  AIRLOCK_UPSTREAM_AUTH: 'airlock could not authenticate upstream',
  AIRLOCK_AUDIT_UNAVAILABLE: 'the audit log cannot be written',
  AIRLOCK_STATE_UNAVAILABLE: 'airlock state store unavailable',
  AIRLOCK_SHUTTING_DOWN: 'airlock is shutting down',
  AIRLOCK_SESSION_KILLED: 'an administrator ended the session',
  AIRLOCK_NODE_UNREACHABLE: 'the airlock node that holds the session did not answer',
  AIRLOCK_CAPACITY: 'airlock holds as many sessions of this kind as it is configured to',
  AIRLOCK_INTERNAL: 'internal error',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export interface AirlockErrorOptions {
  /** The session cannot continue after this error. */
  fatal?: boolean;
  /** Rule name, for policy errors. */
  rule?: string;
  cause?: unknown;
}

export class AirlockError extends Error {
  readonly code: ErrorCode;
  readonly fatal: boolean;
  readonly rule: string | undefined;

  constructor(code: ErrorCode, message?: string, options: AirlockErrorOptions = {}) {
    super(message ?? ErrorCodes[code], options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AirlockError';
    this.code = code;
    this.fatal = options.fatal ?? false;
    this.rule = options.rule;
  }

  toJSON(): { code: ErrorCode; message: string; rule?: string } {
    return this.rule === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, rule: this.rule };
  }
}

export function isAirlockError(e: unknown): e is AirlockError {
  return e instanceof AirlockError;
}

/** Any thrown value as an AirlockError; a parser's error keeps its code and text; unknown errors become AIRLOCK_INTERNAL without their text. */
export function asAirlockError(e: unknown): AirlockError {
  if (e instanceof AirlockError) return e;
  if (e instanceof ParserError) return new AirlockError(e.code, e.message, { cause: e });
  return new AirlockError('AIRLOCK_INTERNAL', undefined, { cause: e });
}
