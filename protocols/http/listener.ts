/**
 * The HTTP gateway: a reverse proxy on Node's own HTTP stack. The caller's airlock token
 * (Authorization: Bearer, or a configured header) opens a session per client connection;
 * each request is an action checked by policy; the real credential is added upstream;
 * what comes back is masked (the injected secret always) and every exchange is recorded.
 * A WebSocket upgrade takes the same path as any request (auth, session, path, policy —
 * where only a rule with `http.websocket: true` admits it), then its frames are relayed
 * and recorded by websocket.ts.
 */
import { createServer as createHttpServer, request as httpRequest, Agent as HttpAgent, ServerResponse, type ClientRequest, type IncomingMessage, type Server, type OutgoingHttpHeaders } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Transform, pipeline } from 'node:stream';
import type { GatewayCore, Session } from '../../src/core/session-types.js';
import type { HttpConnectionConfig } from './config.js';
import type { Identity } from '../../src/core/types.js';
import { AirlockError, asAirlockError } from '../../src/util/errors.js';
import { isLoopback } from '../../src/util/duration.js';
import { DetectorRules, keyFromSecret } from '../../src/masking/index.js';
import { compileJsonPaths } from '../../src/masking/json-paths.js';
import { METHOD_OVERRIDE_RULE } from '../../src/policy/index.js';
import { normaliseTarget, refusePathOverride, type Target } from './path.js';
import { ConnectionAdmission } from './admission.js';
import { LiteralScrubber, type BodyPlan } from './body.js';
import { injectedSecrets } from '../../src/masking/secret-forms.js';
import { guardSecrets } from '../../src/audit/scrub.js';
import { endToEnd, forwardedFields, redactedRequestHeaders, switchingProtocolsHead, websocketUpgradeFields } from './headers.js';
import { clientHeaders, sendResponse, type Sent } from './respond.js';
import { WebSocketRelay } from './websocket.js';
import { sendProblem, statusFor } from './problem.js';

/** A JSON answer larger than this is not masked whole (see respond.ts). */
const MAX_JSON_BYTES = 16 * 1024 * 1024;
const TOKEN_CACHE_MAX = 1_000;
const TOKEN_CACHE_MS = 60_000;
/** A session whose lease (a signed JWT) expires sooner than this is replaced before the next request. */
const LEASE_MARGIN_MS = 30_000;
const TEXTUAL = /^(text\/|application\/([\w.+-]+\+)?(json|xml)|application\/x-www-form-urlencoded)/i;

interface ConnectionSession {
  tokenHash: string;
  session: Session;
  plan: BodyPlan;
}

interface Upstream {
  url: URL;
  https: boolean;
  /** base_url's path without a trailing slash: the prefix of every forwarded path. */
  base: string;
  ca: Buffer | undefined;
  agent: HttpAgent | HttpsAgent;
}

/** A WebSocket opening handshake's connection, handed over by the server's 'upgrade' event. */
interface Upgrade {
  socket: Socket;
  /** Bytes after the request's header block. */
  head: Buffer;
}

/** RFC 6455 §4.2.1: a GET with Upgrade: websocket, a key and version 13. Anything else is not a WebSocket handshake. */
function isWebSocketHandshake(req: IncomingMessage): boolean {
  return (
    req.method === 'GET' &&
    String(req.headers.upgrade ?? '').trim().toLowerCase() === 'websocket' &&
    typeof req.headers['sec-websocket-key'] === 'string' &&
    req.headers['sec-websocket-version'] === '13'
  );
}

interface Exchange {
  session: Session;
  method: string;
  path: string;
  query: string;
  requestId: string;
  started: number;
  req: IncomingMessage;
}

function upstreamOf(config: HttpConnectionConfig): Upstream {
  const url = new URL(config.upstream.base_url);
  const https = url.protocol === 'https:';
  const options = { keepAlive: true, maxSockets: 256 };
  return {
    url,
    https,
    base: url.pathname.replace(/\/+$/, ''),
    ca: config.upstream.ca === undefined ? undefined : readFileSync(config.upstream.ca),
    agent: https ? new HttpsAgent(options) : new HttpAgent(options),
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

const hashOf = (token: string): string => createHash('sha256').update(token).digest('base64url');

export class HttpListener {
  private readonly server: Server;
  private readonly sessions = new Map<Socket, ConnectionSession>();
  private readonly admissions = new Map<Socket, ConnectionAdmission>();
  private readonly opening = new Map<Socket, Promise<ConnectionSession>>();
  private readonly tokens = new Map<string, { identity: Identity; until: number }>();
  private upstream: Upstream;
  private maskingKey: Buffer | null = null;
  private active = 0;
  private closing = false;
  private readonly websockets = new Set<WebSocketRelay>();

  constructor(
    private readonly core: GatewayCore,
    private config: HttpConnectionConfig,
    readonly context: { readonly stateDir: string },
  ) {
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.handle(req, res, 'plain');
    // A TLS handshake is bounded by auth_timeout too (Node's own timer), before admission's starts.
    this.server = config.tls === undefined
      ? createHttpServer({ keepAlive: true }, handler)
      : createHttpsServer({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key), handshakeTimeout: config.auth_timeout }, handler);
    // Node's header timer, only checked now and then: a backstop behind ConnectionAdmission's.
    this.server.headersTimeout = config.auth_timeout;
    this.server.requestTimeout = 0;
    // Expect: 100-continue is answered only once the caller is known and policy lets the request on.
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res, 'continue'));
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.upgrade(req, socket, head));
    this.server.on(config.tls === undefined ? 'connection' : 'secureConnection', (socket: Socket) => {
      this.admissions.set(socket, new ConnectionAdmission(socket, this.config.auth_timeout, (err) => {
        this.core.logger.info({ connection: this.config.name, client: socket.remoteAddress, code: err.code }, 'http connection did not send an authenticated request in time');
      }));
      socket.once('close', () => this.admissions.delete(socket));
    });
    this.server.on('connection', (socket: Socket) => {
      socket.once('close', () => {
        const s = this.sessions.get(socket);
        this.sessions.delete(socket);
        this.opening.delete(socket);
        void s?.session.close('client closed the connection');
      });
    });
    this.upstream = upstreamOf(config);
  }

  get name(): string {
    return this.config.name;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.listen.port, this.config.listen.host, () => {
        this.server.off('error', reject);
        const addr = this.server.address() as AddressInfo;
        this.core.logger.info({ connection: this.config.name, address: addr.address, port: addr.port, upstream: this.upstream.url.origin }, 'http listener started');
        resolve(addr);
      });
    });
  }

  /** A reload: new requests use the new upstream, rules and limits; sessions keep their lease. */
  update(config: HttpConnectionConfig): void {
    const previous = this.upstream;
    this.config = config;
    // New connections get the new auth_timeout (ConnectionAdmission reads it per connection).
    this.server.headersTimeout = config.auth_timeout;
    this.upstream = upstreamOf(config);
    previous.agent.destroy();
  }

  async close(drainMs: number): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const deadline = Date.now() + drainMs;
    while (this.active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const ws of this.websockets) ws.shutdown();
    this.server.closeAllConnections();
    await Promise.all([...this.sessions.values()].map((s) => s.session.close('airlock is shutting down')));
    this.sessions.clear();
    this.upstream.agent.destroy();
    await closed;
  }

  // ---- one request ---------------------------------------------------------

  /**
   * A WebSocket handshake goes through handle() like any request, answered on a response
   * of its own on the handed-over socket (the server gives none for an upgrade); other
   * upgrades are refused.
   */
  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    // The handshake is a complete request; what follows is no longer HTTP's to time.
    this.admissions.get(socket)?.detach();
    if (!isWebSocketHandshake(req)) return this.refuseUpgrade(req, socket);
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket);
    // A refusal ends the connection; a 101 detaches the socket from this response first.
    res.on('finish', () => socket.end());
    void this.handle(req, res, { socket, head });
  }

  private async handle(req: IncomingMessage, res: ServerResponse, mode: 'plain' | 'continue' | Upgrade): Promise<void> {
    this.active++;
    const admission = typeof mode === 'object' ? undefined : this.admissions.get(req.socket);
    admission?.requestArrived(res);
    const started = Date.now();
    const requestId = randomUUID();
    res.setHeader('x-request-id', requestId);
    let session: Session | null = null;
    try {
      if (this.closing) throw new AirlockError('AIRLOCK_SHUTTING_DOWN');
      const remote = req.socket.remoteAddress ?? '';
      if (this.config.tls === undefined && !isLoopback(remote)) throw new AirlockError('AIRLOCK_AUTH_INSECURE');
      const token = this.callerToken(req);
      const tokenHash = hashOf(token);
      const identity = await this.authenticate(token, tokenHash);
      const cs = await this.sessionFor(req.socket, tokenHash, identity);
      session = cs.session;
      admission?.authenticatedNow();
      const target = normaliseTarget(req.url ?? '');
      refusePathOverride(req.headers);
      const method = (req.method ?? 'GET').toUpperCase();
      const x: Exchange = { session, method, path: target.path, query: target.query, requestId, started, req };
      const refusal = (await this.decide(session, method, target, req, res, typeof mode === 'object')) ?? this.declaredTooLarge(req);
      if (refusal !== null) {
        // A body the client has not sent (Expect: 100-continue) or not finished is not waited for.
        if (!req.complete) res.setHeader('connection', 'close');
        this.record(x, { status: statusFor(refusal), error: refusal });
        sendProblem(res, refusal);
        // The approval would outlive its request: ending the session withdraws it; the next request opens another.
        if (refusal.code === 'AIRLOCK_APPROVAL_TIMEOUT') this.endSession(req.socket, cs, 'a held request was not decided within hold_timeout');
        return;
      }
      if (req.socket.destroyed) {
        this.record(x, { status: 499, error: new AirlockError('AIRLOCK_UPSTREAM_LOST', 'the client went away before the request was forwarded') });
        return;
      }
      if (typeof mode === 'object') return await this.forwardUpgrade(x, res, cs.plan, mode, token);
      if (mode === 'continue') res.writeContinue();
      await this.forward(x, res, cs.plan);
    } catch (e) {
      const err = asAirlockError(e);
      if (err.code === 'AIRLOCK_INTERNAL') this.core.logger.error({ err: e, connection: this.config.name, requestId }, 'http request failed');
      else if (session === null) this.core.logger.info({ connection: this.config.name, requestId, code: err.code, client: req.socket.remoteAddress }, 'http request refused');
      if (!res.headersSent) {
        if (!req.complete) res.setHeader('connection', 'close');
        sendProblem(res, err);
      } else res.destroy();
    } finally {
      this.active--;
    }
  }

  /** The caller's token: `Authorization: Bearer …`, or the whole value of the configured header. */
  private callerToken(req: IncomingMessage): string {
    const name = this.config.auth_header.toLowerCase();
    const raw = req.headers[name];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value === undefined || value.trim() === '') throw new AirlockError('AIRLOCK_AUTH_MISSING');
    if (name !== 'authorization') return value.trim();
    const m = /^Bearer\s+(\S+)\s*$/i.exec(value);
    if (m === null || m[1] === undefined) throw new AirlockError('AIRLOCK_AUTH_INVALID', 'expected Authorization: Bearer <token>');
    return m[1];
  }

  /** Verified identities by the token's hash (never the token itself), until they expire (at most a minute). */
  private async authenticate(token: string, key: string): Promise<Identity> {
    const hit = this.tokens.get(key);
    if (hit !== undefined && hit.until > Date.now()) return hit.identity;
    const identity = await this.core.authenticate(token);
    if (this.tokens.size >= TOKEN_CACHE_MAX) this.tokens.clear();
    this.tokens.set(key, { identity, until: Math.min(identity.expiresAt, Date.now() + TOKEN_CACHE_MS) });
    return identity;
  }

  private usable(s: ConnectionSession, tokenHash: string): boolean {
    if (s.tokenHash !== tokenHash || s.session.signal.aborted) return false;
    const until = s.session.lease.expiresAt;
    return until === null || until - Date.now() > LEASE_MARGIN_MS;
  }

  /**
   * One session per client connection and token. A new token on the connection, or a lease
   * about to expire (a signed JWT), starts a new session.
   */
  private async sessionFor(socket: Socket, tokenHash: string, identity: Identity): Promise<ConnectionSession> {
    const current = this.sessions.get(socket);
    if (current !== undefined && this.usable(current, tokenHash)) return current;
    const pending = this.opening.get(socket);
    if (pending !== undefined) {
      const p = await pending.catch(() => undefined);
      if (p !== undefined && this.usable(p, tokenHash)) return p;
    }
    if (current !== undefined) {
      this.sessions.delete(socket);
      void current.session.close(current.tokenHash === tokenHash ? 'the session was renewed' : 'the client presented another token');
    }
    const opening = this.core
      .openSession({ connection: this.config, identity, client: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 } })
      .then(async (session) => ({ tokenHash, session, plan: await this.bodyPlan(session) }));
    this.opening.set(socket, opening);
    try {
      const s = await opening;
      if (socket.destroyed) {
        void s.session.close('client closed the connection');
        throw new AirlockError('AIRLOCK_UPSTREAM_LOST', 'the client went away');
      }
      this.sessions.set(socket, s);
      return s;
    } finally {
      if (this.opening.get(socket) === opening) this.opening.delete(socket);
    }
  }

  private endSession(socket: Socket, cs: ConnectionSession, reason: string): void {
    if (this.sessions.get(socket) === cs) this.sessions.delete(socket);
    void cs.session.close(reason);
  }

  /** What must be masked and scrubbed in this session's answers: fixed for the session. */
  private async bodyPlan(session: Session): Promise<BodyPlan> {
    this.maskingKey ??= keyFromSecret(await this.core.maskingKey());
    const secrets = new Set<string>();
    if (this.config.credentials.type !== 'none') {
      // The value, the credential after its scheme, a Basic pair: every written form of each is scrubbed (body.ts).
      for (const v of injectedSecrets(session.lease.secret.reveal())) secrets.add(v);
      // The audit log cuts them from every event while the session is open (and the tick its end is recorded in).
      const release = guardSecrets([...secrets]);
      if (session.signal.aborted) setImmediate(release);
      else session.signal.addEventListener('abort', () => setImmediate(release), { once: true });
    }
    const plan = session.maskPlan;
    return {
      detectors: new DetectorRules(plan.detectors),
      jsonPaths: plan.jsonPaths.length === 0 ? null : compileJsonPaths(plan.jsonPaths),
      secrets: [...secrets],
      key: this.maskingKey,
      maxJsonBytes: MAX_JSON_BYTES,
    };
  }

  /** Policy for the request; null when it may go on. A held request waits (bounded), then goes on or is refused. */
  private async decide(session: Session, method: string, target: Target, req: IncomingMessage, res: ServerResponse, websocket: boolean): Promise<AirlockError | null> {
    const path = target.path;
    const headers: Record<string, string> = {};
    const authHeader = this.config.auth_header.toLowerCase();
    for (const [k, v] of Object.entries(req.headers)) {
      if (k === authHeader || k === 'authorization' || k === 'cookie' || k === 'proxy-authorization' || v === undefined) continue;
      headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    let approvalId: string | null = null;
    const check = session.check({ kind: 'http', method, path, headers, ...(target.query === '' ? {} : { query: target.query }), ...(websocket ? { websocket } : {}) }, (hold) => {
      approvalId = hold.approvalId;
      session.logger.info({ approval: hold.approvalId, rule: hold.rule, method, path }, 'http request held for approval');
      // 103 Early Hints: the caller learns the approval id while it waits.
      try {
        res.writeEarlyHints({ 'x-airlock-approval': hold.approvalId });
      } catch {
        // a client that cannot take informational responses still gets the verdict
      }
    });
    const limit = this.config.hold_timeout;
    let timer: NodeJS.Timeout | undefined;
    const decision = limit === undefined
      ? await check
      : await Promise.race([check, new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), limit)))]);
    clearTimeout(timer);
    if (decision === 'timeout') {
      return new AirlockError('AIRLOCK_APPROVAL_TIMEOUT', `approval ${approvalId ?? ''} was not decided within ${Math.round((limit ?? 0) / 1000)} s`.replace('  ', ' '));
    }
    if (decision.effect === 'deny') {
      // A method override no rule admits is a request airlock will not read two ways: 400, like an ambiguous path.
      const code = decision.rule === METHOD_OVERRIDE_RULE ? 'AIRLOCK_PROTOCOL' : 'AIRLOCK_DENIED';
      return new AirlockError(code, `denied by rule ${decision.rule}: ${decision.reason}`, { rule: decision.rule });
    }
    return null;
  }

  private declaredTooLarge(req: IncomingMessage): AirlockError | null {
    const declared = Number(req.headers['content-length'] ?? '0');
    if (Number.isFinite(declared) && declared > this.config.max_request_bytes) return new AirlockError('AIRLOCK_TOO_LARGE', `the request body exceeds ${this.config.max_request_bytes} bytes`);
    return null;
  }

  // ---- upstream ------------------------------------------------------------

  private upstreamHeaders(x: Exchange, plan: BodyPlan): OutgoingHttpHeaders {
    // The caller's token, the client's own forwarding claims and request id, and Expect
    // (airlock answered it) stop here.
    const drop = new Set([this.config.auth_header.toLowerCase(), 'host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-request-id', 'expect']);
    const out: OutgoingHttpHeaders = { ...endToEnd(x.req.headers, drop) };
    Object.assign(out, forwardedFields({ client: x.req.socket.remoteAddress ?? '', proto: this.config.tls === undefined ? 'http' : 'https', host: x.req.headers.host ?? '', prior: x.req.headers['x-forwarded-for'] }));
    out.host = this.upstream.url.host;
    out['x-request-id'] = x.requestId;
    // Bodies airlock must read come back uncompressed (airlock still decodes gzip/deflate/br if sent anyway).
    if (!plan.detectors.empty || plan.jsonPaths !== null || plan.secrets.length > 0) out['accept-encoding'] = 'identity';
    const cred = this.config.credentials;
    if ((cred.type === 'header' && cred.in === 'header') || cred.type === 'jwt') out[x.session.lease.username.toLowerCase()] = x.session.lease.secret.reveal();
    return out;
  }

  private upstreamPath(x: Exchange): string {
    let q = x.query;
    const cred = this.config.credentials;
    if (cred.type === 'header' && cred.in === 'query') {
      const name = x.session.lease.username;
      // A parameter of the same name from the caller would sit before the injected one: it goes.
      const own = q.split('&').filter((p) => p !== '' && safeDecode(p.split('=')[0] ?? '') !== name);
      own.push(`${encodeURIComponent(name)}=${encodeURIComponent(x.session.lease.secret.reveal())}`);
      q = own.join('&');
    }
    return `${this.upstream.base}${x.path}${q === '' ? '' : `?${q}`}`;
  }

  /** The request to the upstream, its TLS verified as configured. A WebSocket gets a connection of its own (no agent). */
  private upstreamRequest(x: Exchange, headers: OutgoingHttpHeaders, pooled: boolean): ClientRequest {
    const up = this.upstream;
    return (up.https ? httpsRequest : httpRequest)({
      protocol: up.url.protocol,
      hostname: up.url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: up.url.port === '' ? (up.https ? 443 : 80) : Number(up.url.port),
      method: x.method,
      path: this.upstreamPath(x),
      headers,
      agent: pooled ? up.agent : false,
      ...(up.https ? { rejectUnauthorized: this.config.upstream.tls === 'verify-full', ...(up.ca === undefined ? {} : { ca: up.ca }), servername: up.url.hostname } : {}),
    });
  }

  private async forward(x: Exchange, res: ServerResponse, plan: BodyPlan): Promise<void> {
    const upReq = this.upstreamRequest(x, this.upstreamHeaders(x, plan), true);
    upReq.setTimeout(this.config.upstream.timeout, () => upReq.destroy(new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `the upstream of connection "${this.config.name}" did not answer in time`)));
    const limit = this.config.max_request_bytes;
    const cap = this.config.record.body_bytes;
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
        this.record(x, { ...outcome, request: request() });
        resolve();
      };
      // Any failure on the way up (refused, reset, timed out, the body over the cap): 502 or 413
      // while nothing was answered yet, else the client's connection is cut.
      const fail = (err: unknown): void => {
        if (settled) return;
        upReq.destroy();
        const e = tooLarge ?? asAirlockError(err);
        const shown = e.code === 'AIRLOCK_INTERNAL' ? new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `the upstream of connection "${this.config.name}" could not be reached`) : e;
        const status = res.headersSent ? res.statusCode : statusFor(shown);
        if (!res.headersSent) {
          if (!x.req.complete) res.setHeader('connection', 'close');
          sendProblem(res, shown);
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
        sendResponse(upRes, res, plan, { method: x.method, recordBytes: cap })
          .then((sent) => settle({ status: sent.status, sent, upstreamMs }))
          .catch((e: unknown) => {
            const err = asAirlockError(e);
            const status = res.headersSent ? res.statusCode : statusFor(err);
            if (!res.headersSent) sendProblem(res, err);
            else res.destroy();
            settle({ status, error: err, upstreamMs });
          });
      });
    });
  }

  /**
   * The handshake goes upstream; a 101 is relayed to the client (its fields end-to-end and
   * scrubbed, Upgrade/Connection set for this hop) and the frames flow. Any other answer,
   * or a switch airlock cannot follow, is a 502 and nothing of the upstream's answer passes.
   */
  private forwardUpgrade(x: Exchange, res: ServerResponse, plan: BodyPlan, client: Upgrade, token: string): Promise<void> {
    const upReq = this.upstreamRequest(x, websocketUpgradeFields(this.upstreamHeaders(x, plan)), false);
    upReq.setTimeout(this.config.upstream.timeout, () => upReq.destroy(new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `the upstream of connection "${this.config.name}" did not answer in time`)));
    return new Promise<void>((resolve) => {
      let settled = false;
      const fail = (e: unknown, upstreamMs?: number): void => {
        if (settled) return;
        settled = true;
        upReq.destroy();
        const err = asAirlockError(e);
        const shown = err.code === 'AIRLOCK_INTERNAL' ? new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `the upstream of connection "${this.config.name}" could not be reached`) : err;
        sendProblem(res, shown);
        this.record(x, { status: statusFor(shown), error: shown, ...(upstreamMs === undefined ? {} : { upstreamMs }) });
        resolve();
      };
      upReq.on('error', (e) => fail(e));
      upReq.on('response', (upRes) => {
        upRes.resume();
        fail(new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `the upstream answered the WebSocket handshake with ${upRes.statusCode ?? 0} instead of 101`), Date.now() - x.started);
      });
      upReq.on('upgrade', (upRes: IncomingMessage, upSocket: Socket, upHead: Buffer) => {
        const upstreamMs = Date.now() - x.started;
        const refuse = (e: AirlockError): void => {
          upSocket.destroy();
          fail(e, upstreamMs);
        };
        if (String(upRes.headers.upgrade ?? '').trim().toLowerCase() !== 'websocket') return refuse(new AirlockError('AIRLOCK_UNSUPPORTED', 'the upstream switched to another protocol than WebSocket'));
        // None was offered; frames airlock cannot read (permessage-deflate) do not pass.
        if (upRes.headers['sec-websocket-extensions'] !== undefined) return refuse(new AirlockError('AIRLOCK_UNSUPPORTED', 'the upstream negotiated a WebSocket extension airlock did not offer'));
        if (client.socket.destroyed) return refuse(new AirlockError('AIRLOCK_UPSTREAM_LOST', 'the client went away before the WebSocket opened'));
        settled = true;
        const headers = { ...clientHeaders(upRes, plan.secrets), 'x-request-id': x.requestId };
        res.detachSocket(client.socket);
        client.socket.write(switchingProtocolsHead(headers));
        this.record(x, { status: 101, upstreamMs, sent: { status: 101, headers, body: null, bytes: 0 } });
        const relay = new WebSocketRelay({
          session: x.session,
          requestId: x.requestId,
          path: x.path,
          client: client.socket,
          clientHead: client.head,
          upstream: upSocket,
          upstreamHead: upHead,
          plan,
          maxFrameBytes: this.config.websocket.max_frame_bytes,
          recordTextBytes: this.config.record.body_bytes,
          unrecordable: [...plan.secrets, token],
          onEnd: () => this.websockets.delete(relay),
        });
        this.websockets.add(relay);
        relay.start();
        resolve();
      });
      upReq.end();
    });
  }

  // ---- records ---------------------------------------------------------------

  private record(x: Exchange, outcome: { status: number; error?: AirlockError; sent?: Sent; upstreamMs?: number; request?: { body?: Buffer; bytes: number } }): void {
    const secret = this.config.credentials.type === 'none' ? [] : injectedSecrets(x.session.lease.secret.reveal(), 1);
    const literals = new LiteralScrubber(secret);
    const ct = String(x.req.headers['content-type'] ?? '');
    const requestBody = outcome.request?.body;
    const responseBody = outcome.sent?.body;
    const durationMs = Date.now() - x.started;
    x.session.record({
      type: 'http.exchange',
      requestId: x.requestId,
      method: x.method,
      path: x.path,
      query: literals.scrub(x.query),
      status: outcome.status,
      durationMs,
      ...(outcome.upstreamMs === undefined ? {} : { upstreamMs: outcome.upstreamMs }),
      requestHeaders: redactedRequestHeaders(x.req.headers, this.config.auth_header.toLowerCase()),
      ...(outcome.request === undefined || outcome.request.bytes === 0 ? {} : { requestBytes: outcome.request.bytes }),
      ...(requestBody === undefined || !TEXTUAL.test(ct) ? {} : { requestBody: literals.scrub(requestBody.toString('utf8')) }),
      ...(outcome.sent === undefined ? {} : { responseHeaders: outcome.sent.headers, responseBytes: outcome.sent.bytes }),
      ...(responseBody === undefined || responseBody === null || responseBody.length === 0 ? {} : { responseBody: literals.scrub(responseBody.toString('utf8')) }),
      ...(outcome.error === undefined ? {} : { errorCode: outcome.error.code, ...(outcome.error.rule === undefined ? {} : { rule: outcome.error.rule }) }),
    });
    const fields = { connection: this.config.name, session: x.session.id, requestId: x.requestId, method: x.method, path: x.path, status: outcome.status, durationMs };
    if (outcome.error === undefined) x.session.logger.debug(fields, 'http exchange');
    else x.session.logger.info({ ...fields, code: outcome.error.code }, 'http exchange refused or failed');
  }

  /** Upgrades other than a WebSocket handshake (h2c, a malformed handshake …) are refused: airlock cannot read what would follow. */
  private refuseUpgrade(req: IncomingMessage, socket: Socket): void {
    const body = JSON.stringify({ type: 'urn:airlock:error:AIRLOCK_FORBIDDEN', title: 'forbidden', status: 403, code: 'AIRLOCK_FORBIDDEN', detail: 'only WebSocket upgrades (RFC 6455, version 13) can pass through airlock, where a rule allows them' });
    socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    this.core.logger.info({ connection: this.config.name, path: req.url?.split('?')[0] }, 'http upgrade refused');
  }
}
