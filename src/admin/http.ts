/** Small helpers for the admin API: JSON bodies, problem+json errors, bearer tokens. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AirlockError, type ErrorCode } from '../util/errors.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  AIRLOCK_AUTH_MISSING: 401,
  AIRLOCK_AUTH_INVALID: 401,
  AIRLOCK_AUTH_EXPIRED: 401,
  AIRLOCK_AUTH_NOT_YET_VALID: 401,
  AIRLOCK_AUTH_AUDIENCE: 401,
  AIRLOCK_AUTH_ISSUER: 401,
  AIRLOCK_AUTH_SIGNATURE: 401,
  AIRLOCK_FORBIDDEN: 403,
  AIRLOCK_DENIED: 403,
  AIRLOCK_PROTOCOL: 400,
  AIRLOCK_TOO_LARGE: 413,
  AIRLOCK_UNSUPPORTED: 404,
  AIRLOCK_CONFIG_INVALID: 400,
  AIRLOCK_AUDIT_UNAVAILABLE: 503,
  AIRLOCK_STATE_UNAVAILABLE: 503,
  AIRLOCK_SHUTTING_DOWN: 503,
  AIRLOCK_NODE_UNREACHABLE: 504,
  AIRLOCK_CAPACITY: 503,
};

export function httpStatusFor(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** RFC 9457 problem details; never echoes request content. */
export function sendProblem(res: ServerResponse, e: AirlockError): void {
  const status = httpStatusFor(e.code);
  const text = JSON.stringify({ type: `urn:airlock:error:${e.code}`, title: e.message, status, code: e.code, ...(e.rule ? { rule: e.rule } : {}) });
  res.writeHead(status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(text),
    ...(status === 401 ? { 'www-authenticate': 'Bearer realm="airlock"' } : {}),
  });
  res.end(text);
}

export function bearerToken(req: IncomingMessage): string {
  const h = req.headers.authorization;
  if (h === undefined) throw new AirlockError('AIRLOCK_AUTH_MISSING');
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  if (m === null || m[1] === undefined) throw new AirlockError('AIRLOCK_AUTH_INVALID', 'expected Authorization: Bearer <token>');
  return m[1];
}

export async function readJsonBody(req: IncomingMessage, maxBytes = 64 * 1024): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new AirlockError('AIRLOCK_TOO_LARGE', 'request body too large');
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new AirlockError('AIRLOCK_PROTOCOL', 'request body is not JSON');
  }
}
