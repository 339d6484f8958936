/**
 * The HTTP gateway: a reverse proxy on Node's own HTTP stack. The caller's airlock token
 * (Authorization: Bearer, or a configured header) opens a session per client connection;
 * each request is an action checked by policy; the real credential is added upstream;
 * what comes back is masked (the injected secret always) and every exchange is recorded.
 */
import { createServer as createHttpServer, request as httpRequest, Agent as HttpAgent, type IncomingMessage, type Server, type ServerResponse, type OutgoingHttpHeaders, type IncomingHttpHeaders } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Transform, pipeline, type Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { GatewayCore, Session } from '../../src/session-types.js';
import type { HttpConnectionConfig } from '../../src/config.js';
import type { Identity } from '../../src/types.js';
import { AirlockError, asAirlockError } from '../../src/errors.js';
import { isLoopback } from '../../src/duration.js';
import { DetectorRules, keyFromSecret } from '../../src/masking/index.js';
import { compileJsonPaths } from '../../src/masking/json-paths.js';
import { normaliseTarget } from './path.js';
import { BinaryScrubber, LiteralScrubber, SseMasker, TextMasker, bodyMode, maskJsonDocument, type BodyPlan } from './body.js';
import { sendProblem, statusFor } from './problem.js';

/** RFC 9110 §7.6.1: connection-specific fields, never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const MAX_JSON_BYTES = 16 * 1024 * 1024;
const TOKEN_CACHE_MAX = 1_000;

interface ConnectionSession {
  tokenHash: string;
  session: Session;
}

export class HttpListener {
  private readonly server: Server;
  private readonly sessions = new Map<Socket, ConnectionSession>();
  private readonly opening = new Map<Socket, Promise<ConnectionSession>>();
  private readonly tokens = new Map<string, { identity: Identity; until: number }>();
  private readonly agent: HttpAgent | HttpsAgent;
  private active = 0;
  private closing = false;

  constructor(
    private readonly core: GatewayCore,
    private config: HttpConnectionConfig,
    readonly context: { readonly stateDir: string },
  ) {
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.handle(req, res);
    this.server = config.tls === undefined ? createHttpServer({ keepAlive: true }, handler) : createHttpsServer({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) }, handler);
    this.server.headersTimeout = 30_000;
    this.server.requestTimeout = 0;
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket) => this.refuseUpgrade(req, socket));
    this.server.on('connection', (socket: Socket) => {
      socket.once('close', () => {
        const s = this.sessions.get(socket);
        this.sessions.delete(socket);
        this.opening.delete(socket);
        void s?.session.close('client closed the connection');
      });
    });
    const upstream = new URL(config.upstream.base_url);
    const options = { keepAlive: true, maxSockets: 256 };
    this.agent = upstream.protocol === 'https:' ? new HttpsAgent(options) : new HttpAgent(options);
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
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  update(config: HttpConnectionConfig): void {
    this.config = config;
  }

  async close(drainMs: number): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const deadline = Date.now() + drainMs;
    while (this.active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    this.server.closeAllConnections();
    await Promise.all([...this.sessions.values()].map((s) => s.session.close('airlock is shutting down')));
    this.sessions.clear();
    this.agent.destroy();
    await closed;
  }

  // ---- one request ---------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.active++;
    const started = Date.now();
    const requestId = randomUUID();
    res.setHeader('x-request-id', requestId);
    try {
      if (this.closing) throw new AirlockError('AIRLOCK_SHUTTING_DOWN');
      const remote = req.socket.remoteAddress ?? '';
      if (this.config.tls === undefined && !isLoopback(remote)) throw new AirlockError('AIRLOCK_AUTH_INSECURE');
      const token = this.callerToken(req);
      const identity = await this.authenticate(token);
      const session = await this.sessionFor(req.socket, token, identity);
      const target = normaliseTarget(req.url ?? '');
      const method = (req.method ?? 'GET').toUpperCase();
      const decision = await this.decide(session, method, target.path, req, res);
      if (decision !== null) {
        this.record(session, { method, path: target.path, query: target.query, requestId, status: 403, decision, started, req });
        sendProblem(res, decision);
        return;
      }
      await this.forward(req, res, session, target.path, target.query, method, requestId, started);
    } catch (e) {
      const err = asAirlockError(e);
      if (err.code === 'AIRLOCK_INTERNAL') this.core.logger.error({ err: e, connection: this.config.name, requestId }, 'http request failed');
      if (!res.headersSent) sendProblem(res, err);
      else res.destroy();
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

  /** Verified identities by the token's hash, until they expire (at most a minute). */
  private async authenticate(token: string): Promise<Identity> {
    const key = createHash('sha256').update(token).digest('base64url');
    const hit = this.tokens.get(key);
    if (hit !== undefined && hit.until > Date.now()) return hit.identity;
    const identity = await this.core.authenticate(token);
    if (this.tokens.size >= TOKEN_CACHE_MAX) this.tokens.clear();
    this.tokens.set(key, { identity, until: Math.min(identity.expiresAt, Date.now() + 60_000) });
    return identity;
  }

  /** One session per client connection and token; a new token on the connection starts a new session. */
  private async sessionFor(socket: Socket, token: string, identity: Identity): Promise<Session> {
    const tokenHash = createHash('sha256').update(token).digest('base64url');
    const current = this.sessions.get(socket);
    if (current !== undefined && current.tokenHash === tokenHash && !current.session.signal.aborted) return current.session;
    const pending = this.opening.get(socket);
    if (pending !== undefined) {
      const p = await pending;
      if (p.tokenHash === tokenHash && !p.session.signal.aborted) return p.session;
    }
    if (current !== undefined) {
      this.sessions.delete(socket);
      void current.session.close('the client presented another token');
    }
    const opening = this.core
      .openSession({ connection: this.config, identity, client: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 } })
      .then((session) => ({ tokenHash, session }));
    this.opening.set(socket, opening);
    try {
      const s = await opening;
      if (socket.destroyed) {
        void s.session.close('client closed the connection');
        throw new AirlockError('AIRLOCK_UPSTREAM_LOST', 'the client went away');
      }
      this.sessions.set(socket, s);
      return s.session;
    } finally {
      this.opening.delete(socket);
    }
  }

  /** Policy for the request; null when it may go on. A held request waits (bounded), then goes on or is refused. */
  private async decide(session: Session, method: string, path: string, req: IncomingMessage, res: ServerResponse): Promise<AirlockError | null> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (k === this.config.auth_header.toLowerCase() || k === 'authorization' || k === 'cookie' || v === undefined) continue;
      headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    let approvalId: string | null = null;
    const check = session.check({ kind: 'http', method, path, headers }, (hold) => {
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
    const decision = limit === undefined
      ? await check
      : await Promise.race([
          check,
          new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), limit).unref()),
        ]);
    if (decision === 'timeout') {
      return new AirlockError('AIRLOCK_APPROVAL_TIMEOUT', `approval ${approvalId ?? ''} was not decided within ${Math.round((limit ?? 0) / 1000)} s`.replace('  ', ' '));
    }
    if (decision.effect === 'deny') return new AirlockError('AIRLOCK_DENIED', `denied by rule ${decision.rule}: ${decision.reason}`, { rule: decision.rule });
    return null;
  }

  // ---- upstream ------------------------------------------------------------

  private upstreamHeaders(req: IncomingMessage, session: Session, requestId: string, scanning: boolean): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    const connectionListed = new Set(
      String(req.headers.connection ?? '')
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .filter((s) => s !== ''),
    );
    const authHeader = this.config.auth_header.toLowerCase();
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined || HOP_BY_HOP.has(k) || connectionListed.has(k) || k === authHeader || k === 'host') continue;
      if (k.startsWith('x-forwarded-') || k === 'forwarded' || k === 'x-request-id') continue;
      out[k] = v;
    }
    const upstream = new URL(this.config.upstream.base_url);
    out.host = upstream.host;
    const client = req.socket.remoteAddress ?? '';
    const proto = this.config.tls === undefined ? 'http' : 'https';
    const host = req.headers.host ?? '';
    const prior = req.headers['x-forwarded-for'];
    out['x-forwarded-for'] = prior === undefined ? client : `${Array.isArray(prior) ? prior.join(', ') : prior}, ${client}`;
    out['x-forwarded-proto'] = proto;
    if (host !== '') out['x-forwarded-host'] = host;
    out.forwarded = `for=${client.includes(':') ? `"[${client}]"` : client};proto=${proto}${host !== '' ? `;host="${host.replace(/["\\]/g, '')}"` : ''}`;
    out['x-request-id'] = requestId;
    // Bodies airlock must read come back uncompressed.
    if (scanning) out['accept-encoding'] = 'identity';
    const cred = this.config.credentials;
    if (cred.type === 'header' && cred.in === 'header') out[session.lease.username.toLowerCase()] = session.lease.secret.reveal();
    if (cred.type === 'jwt') out[session.lease.username.toLowerCase()] = session.lease.secret.reveal();
    return out;
  }

  private bodyPlan(session: Session): BodyPlan {
    const secrets: string[] = [];
    const cred = this.config.credentials;
    if (cred.type !== 'none') {
      const value = session.lease.secret.reveal();
      if (value.length >= 4) secrets.push(value);
      // "Bearer sk-…": the credential alone must not come back either.
      const bare = /^(?:bearer|basic|token)\s+(.+)$/i.exec(value)?.[1];
      if (bare !== undefined && bare.length >= 8) secrets.push(bare);
    }
    const plan = session.maskPlan;
    return {
      detectors: new DetectorRules(plan.detectors),
      jsonPaths: plan.jsonPaths.length === 0 ? null : compileJsonPaths(plan.jsonPaths),
      secrets,
      key: this.maskingKey ?? Buffer.alloc(32),
      maxJsonBytes: MAX_JSON_BYTES,
    };
  }

  private maskingKey: Buffer | null = null;

  private async forward(req: IncomingMessage, res: ServerResponse, session: Session, path: string, query: string, method: string, requestId: string, started: number): Promise<void> {
    this.maskingKey ??= keyFromSecret(await this.core.maskingKey());
    const plan = this.bodyPlan(session);
    const scanning = !plan.detectors.empty || plan.jsonPaths !== null || plan.secrets.length > 0;
    const upstream = new URL(this.config.upstream.base_url);
    const base = upstream.pathname.replace(/\/+$/, '');
    let q = query;
    const cred = this.config.credentials;
    if (cred.type === 'header' && cred.in === 'query') {
      const param = `${encodeURIComponent(session.lease.username)}=${encodeURIComponent(session.lease.secret.reveal())}`;
      q = q === '' ? param : `${q}&${param}`;
    }
    const declared = Number(req.headers['content-length'] ?? '0');
    if (Number.isFinite(declared) && declared > this.config.max_request_bytes) throw new AirlockError('AIRLOCK_TOO_LARGE', `the request body exceeds ${this.config.max_request_bytes} bytes`);
    const requestBody: Buffer[] = [];
    let requestBytes = 0;
    const cap = this.config.record.body_bytes;
    const https = upstream.protocol === 'https:';
    const ca = this.config.upstream.ca === undefined ? undefined : readFileSync(this.config.upstream.ca);
    const upReq = (https ? httpsRequest : httpRequest)({
      protocol: upstream.protocol,
      hostname: upstream.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: upstream.port === '' ? (https ? 443 : 80) : Number(upstream.port),
      method,
      path: `${base}${path}${q === '' ? '' : `?${q}`}`,
      headers: this.upstreamHeaders(req, session, requestId, scanning),
      agent: this.agent,
      ...(https ? { rejectUnauthorized: this.config.upstream.tls === 'verify-full', ...(ca === undefined ? {} : { ca }), servername: upstream.hostname } : {}),
    });
    upReq.setTimeout(this.config.upstream.timeout, () => upReq.destroy(new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `the upstream of connection "${this.config.name}" did not answer in time`)));
    const limit = this.config.max_request_bytes;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        requestBytes += chunk.length;
        if (requestBytes > limit) return cb(new AirlockError('AIRLOCK_TOO_LARGE', `the request body exceeds ${limit} bytes`));
        const kept = requestBody.reduce((n, b) => n + b.length, 0);
        if (kept < cap) requestBody.push(chunk.subarray(0, cap - kept));
        cb(null, chunk);
      },
    });
    await new Promise<void>((resolve) => {
      let done = false;
      const finish = (): void => {
        if (!done) {
          done = true;
          resolve();
        }
      };
      pipeline(req, counter, upReq, (err) => {
        if (err === undefined || err === null) return;
        upReq.destroy();
        const e = asAirlockError(err);
        if (!res.headersSent) sendProblem(res, e.code === 'AIRLOCK_INTERNAL' ? new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `the upstream of connection "${this.config.name}" could not be reached`) : e);
        this.record(session, { method, path, query, requestId, status: statusFor(e), started, req, requestBody });
        finish();
      });
      upReq.on('response', (upRes) => {
        this.respond(upRes, res, plan, method)
          .then((sent) => this.record(session, { method, path, query, requestId, status: upRes.statusCode ?? 502, started, req, requestBody, responseHeaders: this.scrubbedHeaders(upRes.headers, new LiteralScrubber(plan.secrets)), responseBody: sent }))
          .catch((e: unknown) => {
            const err = asAirlockError(e);
            if (!res.headersSent) sendProblem(res, err);
            else res.destroy();
          })
          .finally(finish);
      });
    });
  }

  private scrubbedHeaders(headers: IncomingHttpHeaders, literals: LiteralScrubber): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(headers)) {
      if (v === undefined || HOP_BY_HOP.has(k)) continue;
      out[k] = Array.isArray(v) ? v.map((x) => literals.scrub(x)) : literals.scrub(v);
    }
    return out;
  }

  /** Sends the upstream's answer, masked; returns the first bytes the client got (for the record). */
  private async respond(upRes: IncomingMessage, res: ServerResponse, plan: BodyPlan, method: string): Promise<Buffer> {
    const status = upRes.statusCode ?? 502;
    const headers = this.scrubbedHeaders(upRes.headers, new LiteralScrubber(plan.secrets));
    const contentType = typeof upRes.headers['content-type'] === 'string' ? upRes.headers['content-type'] : undefined;
    const mode = bodyMode(contentType, plan);
    const noBody = method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
    const recorded: Buffer[] = [];
    let recordedBytes = 0;
    const cap = this.config.record.body_bytes;
    const keep = (b: Buffer): void => {
      if (recordedBytes < cap) {
        recorded.push(b.subarray(0, cap - recordedBytes));
        recordedBytes += Math.min(b.length, cap - recordedBytes);
      }
    };
    if (mode === 'pass' || noBody) {
      res.writeHead(status, headers);
      await new Promise<void>((resolve, reject) => {
        upRes.on('data', keep);
        pipeline(upRes, res, (err) => (err ? reject(err) : resolve()));
      });
      return Buffer.concat(recorded);
    }
    // The body may change length: it goes out chunked; a compressed body is read uncompressed.
    delete headers['content-length'];
    const encoding = String(upRes.headers['content-encoding'] ?? 'identity').toLowerCase();
    let source: Readable = upRes;
    if (encoding !== 'identity') {
      const decoder = encoding === 'gzip' || encoding === 'x-gzip' ? createGunzip() : encoding === 'deflate' ? createInflate() : encoding === 'br' ? createBrotliDecompress() : null;
      if (decoder === null) throw new AirlockError('AIRLOCK_UNSUPPORTED', `the upstream answered with content-encoding ${encoding}, which airlock cannot read to mask`);
      source = upRes.pipe(decoder);
      delete headers['content-encoding'];
    }
    if (mode === 'json') {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of source as AsyncIterable<Buffer>) {
        size += c.length;
        if (size > plan.maxJsonBytes) {
          upRes.destroy();
          throw new AirlockError('AIRLOCK_TOO_LARGE', `a JSON response over ${plan.maxJsonBytes} bytes cannot be masked`);
        }
        chunks.push(c);
      }
      const text = Buffer.concat(chunks).toString('utf8');
      const masked = maskJsonDocument(text, plan);
      let body: Buffer;
      if (masked !== null) body = Buffer.from(masked, 'utf8');
      else if (plan.jsonPaths !== null) throw new AirlockError('AIRLOCK_UPSTREAM_LOST', 'the upstream sent a JSON content type with a body that is not JSON: it cannot be masked');
      else {
        const t = new TextMasker(plan);
        body = Buffer.concat([t.push(Buffer.from(text, 'utf8')), t.end()]);
      }
      headers['content-length'] = String(body.length);
      res.writeHead(status, headers);
      res.end(body);
      keep(body);
      return Buffer.concat(recorded);
    }
    const masker = mode === 'sse' ? new SseMasker(plan) : mode === 'text' ? new TextMasker(plan) : new BinaryScrubber(plan.secrets);
    res.writeHead(status, headers);
    if (mode === 'sse') res.flushHeaders();
    const transform = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        const out = masker.push(chunk);
        keep(out);
        cb(null, out);
      },
      flush(cb) {
        const out = masker.end();
        keep(out);
        cb(null, out);
      },
    });
    await new Promise<void>((resolve, reject) => pipeline(source, transform, res, (err) => (err ? reject(err) : resolve())));
    return Buffer.concat(recorded);
  }

  // ---- records ---------------------------------------------------------------

  private record(
    session: Session,
    x: { method: string; path: string; query: string; requestId: string; status: number; started: number; req: IncomingMessage; decision?: AirlockError; requestBody?: Buffer[]; responseHeaders?: Record<string, string | string[]>; responseBody?: Buffer },
  ): void {
    const redacted = new Set([this.config.auth_header.toLowerCase(), 'authorization', 'cookie', 'proxy-authorization']);
    const requestHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(x.req.headers)) {
      if (v === undefined) continue;
      requestHeaders[k] = redacted.has(k) ? '[redacted]' : Array.isArray(v) ? v.join(', ') : v;
    }
    const literals = new LiteralScrubber(this.config.credentials.type === 'none' ? [] : [session.lease.secret.reveal()]);
    const text = (b: Buffer | undefined): string | undefined => (b === undefined || b.length === 0 ? undefined : literals.scrub(b.toString('utf8')));
    session.record({
      type: 'http.exchange',
      requestId: x.requestId,
      method: x.method,
      path: x.path,
      query: literals.scrub(x.query),
      status: x.status,
      durationMs: Date.now() - x.started,
      requestHeaders,
      ...(x.requestBody === undefined || x.requestBody.length === 0 ? {} : { requestBody: text(Buffer.concat(x.requestBody)) }),
      ...(x.responseHeaders === undefined ? {} : { responseHeaders: x.responseHeaders }),
      ...(x.responseBody === undefined || x.responseBody.length === 0 ? {} : { responseBody: text(x.responseBody) }),
      ...(x.decision === undefined ? {} : { errorCode: x.decision.code }),
    });
  }

  /** WebSocket (and any other) upgrades are refused: their frames would pass unchecked. */
  private refuseUpgrade(req: IncomingMessage, socket: Socket): void {
    const body = JSON.stringify({ type: 'urn:airlock:error:AIRLOCK_UNSUPPORTED', title: 'protocol upgrades (WebSocket) are not allowed through this connection', status: 403, code: 'AIRLOCK_UNSUPPORTED' });
    socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    this.core.logger.info({ connection: this.config.name, path: req.url?.split('?')[0] }, 'http upgrade refused');
  }
}
