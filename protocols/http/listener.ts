/**
 * The HTTP gateway: a reverse proxy on Node's own HTTP stack. The caller's airlock token
 * (Authorization: Bearer, or a configured header) opens a session per client connection;
 * each request is an action checked by policy; the real credential is added upstream;
 * what comes back is masked (the injected secret always) and every exchange is recorded.
 * A WebSocket upgrade takes the same path as any request (auth, session, path, policy —
 * where only a rule with `http.websocket: true` admits it), then its frames are relayed
 * and recorded by websocket.ts. Policy is policy.ts, forwarding and records forward.ts,
 * the upgrade's way up upgrade.ts; this file admits connections and keeps their sessions.
 */
import { createServer as createHttpServer, ServerResponse, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { GatewayCore, Session } from '../../src/core/session-types.js';
import type { HttpConnectionConfig } from './config.js';
import type { Identity } from '../../src/core/types.js';
import { AirlockError, asAirlockError } from '../../src/util/errors.js';
import { isLoopback } from '../../src/util/duration.js';
import { keyFromSecret } from '../../src/masking/index.js';
import { normaliseTarget, refusePathOverride } from './path.js';
import { ConnectionAdmission } from './admission.js';
import type { BodyPlan } from './body.js';
import type { WebSocketRelay } from './websocket.js';
import { sendProblem, statusFor } from './problem.js';
import { bodyPlan, decide, declaredTooLarge } from './policy.js';
import { forward, record, upstreamOf, type Exchange, type Hop, type Upstream } from './forward.js';
import { forwardUpgrade, isWebSocketHandshake, refuseUpgrade, type Upgrade } from './upgrade.js';

const TOKEN_CACHE_MAX = 1_000;
const TOKEN_CACHE_MS = 60_000;
/** A session whose lease (a signed JWT) expires sooner than this is replaced before the next request. */
const LEASE_MARGIN_MS = 30_000;

interface ConnectionSession {
  tokenHash: string;
  session: Session;
  plan: BodyPlan;
}

const hashOf = (token: string): string => createHash('sha256').update(token).digest('base64url');

export class HttpListener implements Hop {
  private readonly server: Server;
  private readonly sessions = new Map<Socket, ConnectionSession>();
  private readonly admissions = new Map<Socket, ConnectionAdmission>();
  private readonly opening = new Map<Socket, Promise<ConnectionSession>>();
  private readonly tokens = new Map<string, { identity: Identity; until: number }>();
  /** Read by forward.ts and upgrade.ts (Hop), like config, core and websockets. */
  upstream: Upstream;
  private maskingKey: Buffer | null = null;
  private active = 0;
  private closing = false;
  readonly websockets = new Set<WebSocketRelay>();
  /** Requests being handled per client connection, and connections handed to a WebSocket relay (for an administrator's kill). */
  private readonly inFlight = new WeakMap<Socket, number>();
  private readonly upgraded = new WeakSet<Socket>();
  /** The last token each client connection presented and its hash (gone with the connection). */
  private readonly lastToken = new WeakMap<Socket, { token: string; hash: string }>();

  constructor(
    readonly core: GatewayCore,
    public config: HttpConnectionConfig,
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
    this.upgraded.add(socket);
    // The handshake is a complete request; what follows is no longer HTTP's to time.
    this.admissions.get(socket)?.detach();
    if (!isWebSocketHandshake(req)) return refuseUpgrade(this, req, socket);
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket);
    // A refusal ends the connection; a 101 detaches the socket from this response first.
    res.on('finish', () => socket.end());
    void this.handle(req, res, { socket, head });
  }

  private async handle(req: IncomingMessage, res: ServerResponse, mode: 'plain' | 'continue' | Upgrade): Promise<void> {
    this.active++;
    const socket = req.socket;
    this.inFlight.set(socket, (this.inFlight.get(socket) ?? 0) + 1);
    const admission = typeof mode === 'object' ? undefined : this.admissions.get(req.socket);
    admission?.requestArrived(res);
    const started = Date.now();
    // x-request-id goes out with the head (respond.ts, problem.ts), not set here: a head given
    // whole to writeHead() is written in one go, one also set field by field is merged first.
    const requestId = randomUUID();
    let session: Session | null = null;
    try {
      if (this.closing) throw new AirlockError('AIRLOCK_SHUTTING_DOWN');
      const remote = req.socket.remoteAddress ?? '';
      if (this.config.tls === undefined && !isLoopback(remote)) throw new AirlockError('AIRLOCK_AUTH_INSECURE');
      const token = this.callerToken(req);
      const tokenHash = this.tokenHashOf(req.socket, token);
      // A keep-alive connection's next request: identity and session known, no promise to wait for.
      const identity = this.knownIdentity(tokenHash) ?? (await this.authenticate(token, tokenHash));
      const current = this.sessions.get(req.socket);
      const cs = current !== undefined && this.usable(current, tokenHash) ? current : await this.sessionFor(req.socket, tokenHash, identity);
      session = cs.session;
      admission?.authenticatedNow();
      const target = normaliseTarget(req.url ?? '');
      refusePathOverride(req.headers);
      const method = (req.method ?? 'GET').toUpperCase();
      const x: Exchange = { session, method, path: target.path, query: target.query, requestId, started, req };
      const decided = await decide(this.config, session, method, target, req, res, typeof mode === 'object');
      const refusal = decided.refusal ?? declaredTooLarge(this.config, req);
      if (refusal !== null) {
        // A body the client has not sent (Expect: 100-continue) or not finished is not waited for.
        if (!req.complete) res.setHeader('connection', 'close');
        record(this, x, { status: statusFor(refusal), error: refusal });
        sendProblem(res, refusal, requestId);
        // The approval would outlive its request: ending the session withdraws it; the next request opens another.
        if (refusal.code === 'AIRLOCK_APPROVAL_TIMEOUT') this.endSession(req.socket, cs, 'a held request was not decided within hold_timeout');
        return;
      }
      if (req.socket.destroyed) {
        record(this, x, { status: 499, error: new AirlockError('AIRLOCK_UPSTREAM_LOST', 'the client went away before the request was forwarded') });
        return;
      }
      if (typeof mode === 'object') return await forwardUpgrade(this, x, res, cs.plan, mode, token);
      if (mode === 'continue') res.writeContinue();
      await forward(this, x, res, cs.plan, decided.durable);
    } catch (e) {
      const err = asAirlockError(e);
      if (err.code === 'AIRLOCK_INTERNAL') this.core.logger.error({ err: e, connection: this.config.name, requestId }, 'http request failed');
      else if (session === null) this.core.logger.info({ connection: this.config.name, requestId, code: err.code, client: req.socket.remoteAddress }, 'http request refused');
      if (!res.headersSent) {
        if (!req.complete) res.setHeader('connection', 'close');
        sendProblem(res, err, requestId);
      } else res.destroy();
    } finally {
      this.active--;
      this.inFlight.set(socket, (this.inFlight.get(socket) ?? 1) - 1);
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

  /**
   * The token's hash, computed once per client connection while the connection keeps sending
   * the same token (a keep-alive client sends it with every request); another token is hashed anew.
   */
  private tokenHashOf(socket: Socket, token: string): string {
    const last = this.lastToken.get(socket);
    if (last !== undefined && last.token === token) return last.hash;
    const hash = hashOf(token);
    this.lastToken.set(socket, { token, hash });
    return hash;
  }

  /** The identity verified for this token hash, while it is still valid; null when it must be verified. */
  private knownIdentity(key: string): Identity | null {
    const hit = this.tokens.get(key);
    return hit !== undefined && hit.until > Date.now() ? hit.identity : null;
  }

  /** Verified identities by the token's hash (never the token itself), until they expire (at most a minute). */
  private async authenticate(token: string, key: string): Promise<Identity> {
    const known = this.knownIdentity(key);
    if (known !== null) return known;
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
      s.session.signal.addEventListener('abort', () => this.sessionAborted(socket, s), { once: true });
      return s;
    } finally {
      if (this.opening.get(socket) === opening) this.opening.delete(socket);
    }
  }

  /**
   * An administrator's kill ends the client's connection too — else its next request on the
   * same keep-alive connection would quietly open a new session. Idle: closed (FIN); a request
   * in flight: cut (its answer would run on under a session that is over). A WebSocket's relay
   * closes its own connection with a close frame that says why.
   */
  private sessionAborted(socket: Socket, cs: ConnectionSession): void {
    const why: unknown = cs.session.signal.reason;
    if (!(why instanceof AirlockError && why.code === 'AIRLOCK_SESSION_KILLED')) return;
    if (this.sessions.get(socket) === cs) this.sessions.delete(socket);
    if (this.upgraded.has(socket)) return;
    if ((this.inFlight.get(socket) ?? 0) > 0) socket.destroy();
    else socket.end();
  }

  private endSession(socket: Socket, cs: ConnectionSession, reason: string): void {
    if (this.sessions.get(socket) === cs) this.sessions.delete(socket);
    void cs.session.close(reason);
  }

  /** What must be masked and scrubbed in this session's answers: fixed for the session. */
  private async bodyPlan(session: Session): Promise<BodyPlan> {
    this.maskingKey ??= keyFromSecret(await this.core.maskingKey());
    return bodyPlan(this.config, session, this.maskingKey);
  }
}
