/** The one place an AirlockError becomes a Postgres ErrorResponse (SQLSTATE, severity). */
import type { ErrorCode } from '../../src/util/errors.js';
import { AirlockError } from '../../src/util/errors.js';

const SQLSTATE: Record<ErrorCode, string> = {
  AIRLOCK_CONFIG_INVALID: 'XX000',
  AIRLOCK_SECRET_UNRESOLVED: '08004',
  AIRLOCK_AUTH_MISSING: '28P01',
  AIRLOCK_AUTH_INVALID: '28P01',
  AIRLOCK_AUTH_EXPIRED: '28P01',
  AIRLOCK_AUTH_NOT_YET_VALID: '28P01',
  AIRLOCK_AUTH_AUDIENCE: '28P01',
  AIRLOCK_AUTH_ISSUER: '28P01',
  AIRLOCK_AUTH_SIGNATURE: '28P01',
  AIRLOCK_AUTH_INSECURE: '28000',
  AIRLOCK_AUTH_TIMEOUT: '08P01',
  AIRLOCK_FORBIDDEN: '28000',
  AIRLOCK_DENIED: '42501',
  AIRLOCK_APPROVAL_DENIED: '42501',
  AIRLOCK_APPROVAL_TIMEOUT: '42501',
  AIRLOCK_PROTOCOL: '08P01',
  AIRLOCK_TOO_LARGE: '08P01',
  AIRLOCK_TOO_COMPLEX: '54001',
  AIRLOCK_UNSUPPORTED: '0A000',
  AIRLOCK_UPSTREAM_UNAVAILABLE: '08001',
  AIRLOCK_UPSTREAM_LOST: '08006',
  AIRLOCK_UPSTREAM_AUTH: '08004',
  AIRLOCK_AUDIT_UNAVAILABLE: '58030',
  AIRLOCK_STATE_UNAVAILABLE: '57P03',
  AIRLOCK_SHUTTING_DOWN: '57P01',
  // admin_shutdown: what pg_terminate_backend() gives the client.
  AIRLOCK_SESSION_KILLED: '57P01',
  AIRLOCK_NODE_UNREACHABLE: '08006',
  AIRLOCK_CAPACITY: '53300',
  AIRLOCK_INTERNAL: 'XX000',
};

export interface PgErrorFields {
  severity: 'ERROR' | 'FATAL' | 'NOTICE' | 'WARNING';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

export function pgErrorFor(e: AirlockError, fatal = e.fatal): PgErrorFields {
  const fields: PgErrorFields = { severity: fatal ? 'FATAL' : 'ERROR', code: SQLSTATE[e.code], message: `airlock: ${e.message}` };
  if (e.code === 'AIRLOCK_DENIED' || e.code === 'AIRLOCK_APPROVAL_DENIED' || e.code === 'AIRLOCK_APPROVAL_TIMEOUT') {
    fields.hint = 'airlock policy refused this statement; ask an administrator if you need it';
  }
  return fields;
}

/** A statement refused because it does not parse (PostgreSQL's own SQLSTATE for that, 42601). */
export function pgSyntaxError(reason: string): PgErrorFields {
  const words = reason.startsWith('syntax error') ? reason : `syntax error (${reason})`;
  return { severity: 'ERROR', code: '42601', message: `airlock: ${words}; the statement was not sent to the server` };
}
