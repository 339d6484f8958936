/**
 * The HTTP gateway's forwarding side: the upstream (its pooled agent), the request as it goes
 * up (end-to-end fields, forwarding claims, the injected credential), the answer relayed back
 * through respond.ts, and the record of each exchange.
 */
import { request as httpRequest, Agent as HttpAgent, type ClientRequest, type IncomingMessage, type ServerResponse, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { readFileSync } from 'node:fs';
import { Transform, pipeline } from 'node:stream';
import type { GatewayCore, Session } from '../../src/core/session-types.js';
import type { HttpConnectionConfig } from './config.js';
import { AirlockError, asAirlockError } from '../../src/util/errors.js';
import type { BodyPlan } from './body.js';
import { SecretForms, injectedSecrets } from '../../src/masking/secret-forms.js';
import { endToEnd, forwardedFields, redactedRequestHeaders } from './headers.js';
import { sendResponse, type Sent } from './respond.js';
import type { WebSocketRelay } from './websocket.js';
import { sendProblem, statusFor } from './problem.js';

const TEXTUAL = /^(text\/|application\/([\w.+-]+\+)?(json|xml)|application\/x-www-form-urlencoded)/i;

/** What forwarding reads of its listener, as it is now (a reload replaces config and upstream). */
export interface Hop {
  readonly core: GatewayCore;
  readonly config: HttpConnectionConfig;
  readonly upstream: Upstream;
  readonly websockets: Set<WebSocketRelay>;
}

export interface Upstream {
  url: URL;
  https: boolean;
  /** base_url's path without a trailing slash: the prefix of every forwarded path. */
  base: string;
  ca: Buffer | undefined;
  agent: HttpAgent | HttpsAgent;
  /** The host to connect to (an IPv6 literal without its brackets) and port: fixed for the upstream. */
  hostname: string;
  port: number;
}


export interface Exchange {
  session: Session;
  method: string;
  path: string;
  query: string;
  requestId: string;
  started: number;
  req: IncomingMessage;
}

export function upstreamOf(config: HttpConnectionConfig): Upstream {
  const url = new URL(config.upstream.base_url);
  const https = url.protocol === 'https:';
  const options = { keepAlive: true, maxSockets: 256 };
  return {
    url,
    https,
    base: url.pathname.replace(/\/+$/, ''),
    ca: config.upstream.ca === undefined ? undefined : readFileSync(config.upstream.ca),
    agent: https ? new HttpsAgent(options) : new HttpAgent(options),
    hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? (https ? 443 : 80) : Number(url.port),
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

// ---- upstream ------------------------------------------------------------

/** The request fields that stop at airlock, per auth header name (a reload may change it). */
const dropped = new Map<string, ReadonlySet<string>>();

export function upstreamHeaders(hop: Hop, x: Exchange, plan: BodyPlan): OutgoingHttpHeaders {
  // The caller's token, the client's own forwarding claims and request id, and Expect
  // (airlock answered it) stop here.
  const authHeader = hop.config.auth_header.toLowerCase();
  let drop = dropped.get(authHeader);
  if (drop === undefined) {
    drop = new Set([authHeader, 'host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-request-id', 'expect']);
    if (dropped.size >= 16) dropped.clear();
    dropped.set(authHeader, drop);
  }
  // endToEnd() returns a fresh object: it is the request's own.
  const out: OutgoingHttpHeaders = endToEnd(x.req.headers, drop);
  Object.assign(out, forwardedFields({ client: x.req.socket.remoteAddress ?? '', proto: hop.config.tls === undefined ? 'http' : 'https', host: x.req.headers.host ?? '', prior: x.req.headers['x-forwarded-for'] }));
  out.host = hop.upstream.url.host;
  out['x-request-id'] = x.requestId;
  // Bodies airlock must read come back uncompressed (airlock still decodes gzip/deflate/br if sent anyway).
  if (!plan.detectors.empty || plan.jsonPaths !== null || plan.secrets.length > 0) out['accept-encoding'] = 'identity';
  const cred = hop.config.credentials;
  if ((cred.type === 'header' && cred.in === 'header') || cred.type === 'jwt') out[x.session.lease.username.toLowerCase()] = x.session.lease.secret.reveal();
  return out;
}

export function upstreamPath(hop: Hop, x: Exchange): string {
  let q = x.query;
  const cred = hop.config.credentials;
  if (cred.type === 'header' && cred.in === 'query') {
    const name = x.session.lease.username;
    // A parameter of the same name from the caller would sit before the injected one: it goes.
    const own = q.split('&').filter((p) => p !== '' && safeDecode(p.split('=')[0] ?? '') !== name);
    own.push(`${encodeURIComponent(name)}=${encodeURIComponent(x.session.lease.secret.reveal())}`);
    q = own.join('&');
  }
  return `${hop.upstream.base}${x.path}${q === '' ? '' : `?${q}`}`;
}

/** The request to the upstream, its TLS verified as configured. A WebSocket gets a connection of its own (no agent). */
export function upstreamRequest(hop: Hop, x: Exchange, headers: OutgoingHttpHeaders, pooled: boolean): ClientRequest {
  const up = hop.upstream;
  return (up.https ? httpsRequest : httpRequest)({
    protocol: up.url.protocol,
    hostname: up.hostname,
    port: up.port,
    method: x.method,
    path: upstreamPath(hop, x),
    headers,
    agent: pooled ? up.agent : false,
    ...(up.https ? { rejectUnauthorized: hop.config.upstream.tls === 'verify-full', ...(up.ca === undefined ? {} : { ca: up.ca }), servername: up.url.hostname } : {}),
  });
}

/**
 * Forwards the request and relays the answer. `durable` (a pipelined request, policy.ts): the
 * request goes up now, but nothing reaches the client — neither the answer nor airlock's own
 * 502 — before it settles; meanwhile the upstream's answer is not read (the socket's buffer
 * fills, then TCP holds the upstream back). If it rejects, the answer is dropped and the
 * client gets the audit error (503) in its place.
 */
export async function forward(hop: Hop, x: Exchange, res: ServerResponse, plan: BodyPlan, durable: Promise<void> | null = null): Promise<void> {
  const upReq = upstreamRequest(hop, x, upstreamHeaders(hop, x, plan), true);
  upReq.setTimeout(hop.config.upstream.timeout, () => upReq.destroy(new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `the upstream of connection "${hop.config.name}" did not answer in time`)));
  const limit = hop.config.max_request_bytes;
  // Bodies are kept only for the exchange's record: none without an audit (see record()).
  const cap = x.session.audited ? hop.config.record.body_bytes : 0;
  const requestBody: Buffer[] = [];
  let requestBytes = 0;
  let kept = 0;
  const counter = (): Transform => new Transform({
    transform(chunk: Buffer, _enc, cb) {
      requestBytes += chunk.length;
      if (requestBytes > limit) return cb((tooLarge = new AirlockError('AIRLOCK_TOO_LARGE', `the request body exceeds ${limit} bytes`)));
      if (kept < cap) {
        const part = chunk.subarray(0, cap - kept);
        requestBody.push(part);
        kept += part.length;
      }
      cb(null, chunk);
    },
  });
  const request = (): { body?: Buffer; bytes: number } => ({ ...(requestBody.length === 0 ? {} : { body: Buffer.concat(requestBody) }), bytes: requestBytes });
  let tooLarge: AirlockError | null = null;
  await new Promise<void>((resolve) => {
    let settled = false;
    const settle = (outcome: { status: number; error?: AirlockError; sent?: Sent; upstreamMs?: number }): void => {
      if (settled) return;
      settled = true;
      record(hop, x, { ...outcome, request: request() });
      resolve();
    };
    /** Runs `then` once the record is durable (at once when not pipelined). */
    const whenDurable = (then: () => void): void => {
      if (durable === null) then();
      else durable.then(() => (settled ? undefined : then()), () => undefined);
    };
    // The record could not be made durable: nothing of the answer, the audit error in its place.
    durable?.catch((e: unknown) => {
      if (settled) return;
      upReq.destroy();
      const err = asAirlockError(e);
      if (!res.headersSent) {
        if (!x.req.complete) res.setHeader('connection', 'close');
        sendProblem(res, err, x.requestId);
      } else res.destroy();
      settle({ status: statusFor(err), error: err });
    });
    // Any failure on the way up (refused, reset, timed out, the body over the cap): 502 or 413
    // while nothing was answered yet, else the client's connection is cut.
    const fail = (err: unknown): void => {
      if (settled) return;
      upReq.destroy();
      whenDurable(() => failed(err));
    };
    const failed = (err: unknown): void => {
      const e = tooLarge ?? asAirlockError(err);
      const shown = e.code === 'AIRLOCK_INTERNAL' ? new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `the upstream of connection "${hop.config.name}" could not be reached`) : e;
      const status = res.headersSent ? res.statusCode : statusFor(shown);
      if (!res.headersSent) {
        if (!x.req.complete) res.setHeader('connection', 'close');
        sendProblem(res, shown, x.requestId);
      } else res.destroy();
      settle({ status, error: shown });
    };
    upReq.on('error', fail);
    // RFC 9112 §6.3: no Content-Length and no Transfer-Encoding is no body (most GETs) — no stream to pump.
    const length = x.req.headers['content-length'];
    if (x.req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) {
      x.req.resume();
      upReq.end();
    } else {
      pipeline(x.req, counter(), upReq, (err) => {
        if (err !== undefined && err !== null) fail(err);
      });
    }
    upReq.on('response', (upRes) => {
      const upstreamMs = Date.now() - x.started;
      whenDurable(() => relay(upRes, upstreamMs));
    });
    const relay = (upRes: IncomingMessage, upstreamMs: number): void => {
      sendResponse(upRes, res, plan, { method: x.method, recordBytes: cap, requestId: x.requestId })
        .then((sent) => settle({ status: sent.status, sent, upstreamMs }))
        .catch((e: unknown) => {
          const err = asAirlockError(e);
          const status = res.headersSent ? res.statusCode : statusFor(err);
          if (!res.headersSent) sendProblem(res, err, x.requestId);
          else res.destroy();
          settle({ status, error: err, upstreamMs });
        });
    };
  });
}


// ---- records ---------------------------------------------------------------

/** The forms of each session's injected secret cut from its records, with the value they were compiled for. */
const recordForms = new WeakMap<Session, { secret: string; forms: SecretForms }>();

/** Every form of the session's injected secret (none without a credential), compiled once per session and value. */
function recordScrubber(hop: Hop, session: Session): SecretForms {
  const secret = hop.config.credentials.type === 'none' ? '' : session.lease.secret.reveal();
  const hit = recordForms.get(session);
  if (hit !== undefined && hit.secret === secret) return hit.forms;
  const forms = SecretForms.of(secret === '' ? [] : injectedSecrets(secret, 1));
  recordForms.set(session, { secret, forms });
  return forms;
}

export function record(hop: Hop, x: Exchange, outcome: { status: number; error?: AirlockError; sent?: Sent; upstreamMs?: number; request?: { body?: Buffer; bytes: number } }): void {
  const durationMs = Date.now() - x.started;
  // With the audit disabled the event would go nowhere (the metrics count actions, not
  // exchanges): it is not built, its bodies not decoded and scrubbed. The log lines stay.
  if (x.session.audited) recordExchange(hop, x, outcome, durationMs);
  if (outcome.error === undefined) {
    if (x.session.logger.isLevelEnabled('debug')) x.session.logger.debug({ connection: hop.config.name, session: x.session.id, requestId: x.requestId, method: x.method, path: x.path, status: outcome.status, durationMs }, 'http exchange');
    return;
  }
  x.session.logger.info({ connection: hop.config.name, session: x.session.id, requestId: x.requestId, method: x.method, path: x.path, status: outcome.status, durationMs, code: outcome.error.code }, 'http exchange refused or failed');
}

function recordExchange(hop: Hop, x: Exchange, outcome: Parameters<typeof record>[2], durationMs: number): void {
  const literals = recordScrubber(hop, x.session);
  const ct = String(x.req.headers['content-type'] ?? '');
  const requestBody = outcome.request?.body;
  const responseBody = outcome.sent?.body;
  // Built field by field (same fields, same order) rather than from spreads of temporary objects.
  const event: { type: 'http.exchange'; requestId: string; method: string; path: string; status: number; durationMs: number; [key: string]: unknown } = {
    type: 'http.exchange',
    requestId: x.requestId,
    method: x.method,
    path: x.path,
    query: literals.scrub(x.query),
    status: outcome.status,
    durationMs,
  };
  if (outcome.upstreamMs !== undefined) event.upstreamMs = outcome.upstreamMs;
  event.requestHeaders = redactedRequestHeaders(x.req.headers, hop.config.auth_header.toLowerCase());
  if (outcome.request !== undefined && outcome.request.bytes !== 0) event.requestBytes = outcome.request.bytes;
  if (requestBody !== undefined && TEXTUAL.test(ct)) event.requestBody = literals.scrub(requestBody.toString('utf8'));
  if (outcome.sent !== undefined) {
    event.responseHeaders = outcome.sent.headers;
    event.responseBytes = outcome.sent.bytes;
  }
  if (responseBody !== undefined && responseBody !== null && responseBody.length !== 0) event.responseBody = literals.scrub(responseBody.toString('utf8'));
  if (outcome.error !== undefined) {
    event.errorCode = outcome.error.code;
    if (outcome.error.rule !== undefined) event.rule = outcome.error.rule;
  }
  x.session.record(event);
}
