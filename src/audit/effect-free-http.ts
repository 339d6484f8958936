/**
 * Which HTTP requests may be forwarded while their audit record is still syncing (the answer
 * — status, headers and body — is then held until the record is durable): the HTTP
 * counterpart of effect-free.ts. A request whose method the connection lists in
 * `audit.pipeline_methods` (safe methods only, RFC 9110 §9.2.1: GET and HEAD by default,
 * OPTIONS if listed), that carries no method override (an upstream may read
 * `X-HTTP-Method-Override: DELETE` on a GET as a DELETE) and is not a WebSocket upgrade (what
 * follows a 101 is a conversation, not an answer), and carries no body. Everything else is synced first.
 */
import { methodOverride } from '../policy/http-method.js';

export function isEffectFreeHttp(request: { method: string; headers: Readonly<Record<string, string>>; query: string; websocket: boolean }, pipelineMethods: readonly string[]): boolean {
  if (request.websocket || !pipelineMethods.includes(request.method)) return false;
  // A body on a safe method has no meaning the standard gives it (RFC 9110 §9.3.1), so an upstream may act
  // on it: a GET or HEAD that carries one (any Transfer-Encoding, or a Content-Length other than 0) is synced first.
  if (request.headers['transfer-encoding'] !== undefined) return false;
  const length = request.headers['content-length'];
  if (length !== undefined && length.trim() !== '0') return false;
  return methodOverride(request.headers, request.query) === null;
}
