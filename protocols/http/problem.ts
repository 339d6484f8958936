/**
 * Errors on the HTTP gateway as RFC 9457 problem+json: a stable `code`, the rule that
 * decided when there is one, a `detail` a person or an agent can act on — never the
 * token, a credential or request content.
 */
import type { ServerResponse } from 'node:http';
import type { AirlockError, ErrorCode } from '../../src/util/errors.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  AIRLOCK_AUTH_MISSING: 401,
  AIRLOCK_AUTH_INVALID: 401,
  AIRLOCK_AUTH_EXPIRED: 401,
  AIRLOCK_AUTH_NOT_YET_VALID: 401,
  AIRLOCK_AUTH_AUDIENCE: 401,
  AIRLOCK_AUTH_ISSUER: 401,
  AIRLOCK_AUTH_SIGNATURE: 401,
  AIRLOCK_AUTH_INSECURE: 403,
  AIRLOCK_AUTH_TIMEOUT: 408,
  AIRLOCK_FORBIDDEN: 403,
  AIRLOCK_DENIED: 403,
  AIRLOCK_APPROVAL_DENIED: 403,
  AIRLOCK_APPROVAL_TIMEOUT: 403,
  AIRLOCK_PROTOCOL: 400,
  AIRLOCK_TOO_LARGE: 413,
  AIRLOCK_UNSUPPORTED: 502,
  AIRLOCK_UPSTREAM_UNAVAILABLE: 502,
  AIRLOCK_UPSTREAM_LOST: 502,
  AIRLOCK_UPSTREAM_AUTH: 502,
  AIRLOCK_AUDIT_UNAVAILABLE: 503,
  AIRLOCK_STATE_UNAVAILABLE: 503,
  AIRLOCK_SHUTTING_DOWN: 503,
  AIRLOCK_SESSION_KILLED: 503,
};

export function statusFor(e: AirlockError): number {
  return STATUS[e.code] ?? 500;
}

/** The problem answer, with the request's id (x-request-id) among its fields. */
export function sendProblem(res: ServerResponse, e: AirlockError, requestId: string): void {
  const status = statusFor(e);
  const body = JSON.stringify({
    type: `urn:airlock:error:${e.code}`,
    title: status === 401 ? 'authentication failed' : status === 403 ? 'forbidden' : status === 400 ? 'bad request' : 'gateway error',
    status,
    code: e.code,
    detail: e.message,
    ...(e.rule === undefined ? {} : { rule: e.rule }),
  });
  res.writeHead(status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
    ...(status === 401 ? { 'www-authenticate': 'Bearer realm="airlock"' } : {}),
  });
  res.end(body);
}
