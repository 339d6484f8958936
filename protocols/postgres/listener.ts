/**
 * A Postgres listener: accepts clients, runs the startup and authentication phase
 * (the token is the password), opens a core session, connects upstream with the
 * session's lease and hands both sockets to the Relay.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket, createSecureContext, type SecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { GatewayCore, Session } from '../../src/core/session-types.js';
import type { PostgresConnectionConfig } from './config.js';
import type { Logger } from '../../src/util/log.js';
import { AirlockError, asAirlockError } from '../../src/util/errors.js';
import { isLoopback } from '../../src/util/duration.js';
import { FrameReader, type Frame } from './codec/framing.js';
import { decodeStartup, decodeFrontend, encodeQuery } from './codec/frontend.js';
import { decodeDataRow } from './codec/backend.js';
import { MessageCode } from './codec/codes.js';
import {
  encodeAuthenticationCleartextPassword,
  encodeAuthenticationOk,
  encodeBackendKeyData,
  encodeErrorResponse,
  encodeNoticeResponse,
  encodeParameterStatus,
  encodeReadyForQuery,
  encodeNegotiateProtocolVersion,
  SSL_ACCEPT,
  SSL_REFUSE,
} from './codec/backend.js';
import { connectUpstream, sendCancel, UpstreamRefusal, type UpstreamConnection } from './upstream.js';
import { pgErrorFor } from './errors.js';
import { Relay } from './relay.js';
import { ResultMasker } from './result-masking.js';
import { PgCatalog } from './catalog.js';
import { EffectTracker } from './statement-check.js';
import { AuthDeadline, CLOSE_GRACE_MS } from '../../src/auth/deadline.js';
import { passedStartupSettings } from './startup-settings.js';

interface CancelTarget {
  pid: number;
  secret: number;
}

export class PostgresListener {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly relays = new Set<Relay>();
  private readonly cancelKeys = new Map<string, CancelTarget>();
  private readonly secureContext: SecureContext | null;
  private readonly logger: Logger;
  /** Table OIDs → names for masking by provenance, shared by this listener's sessions. */
  private catalog: PgCatalog;

  constructor(
    private readonly core: GatewayCore,
    private config: PostgresConnectionConfig,
  ) {
    this.logger = core.logger.child({ connection: config.name, protocol: 'postgres' });
    this.catalog = new PgCatalog(config);
    this.secureContext = config.tls
      ? createSecureContext({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) })
      : null;
  }

  get name(): string {
    return this.config.name;
  }

  /** Rules and upstream settings apply to new sessions; the listen address needs a restart of the listener. */
  update(config: PostgresConnectionConfig): void {
    this.config = config;
    this.catalog = new PgCatalog(config);
  }

  listen(): Promise<AddressInfo> {
    const server = createServer({ pauseOnConnect: false, noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        reject(new AirlockError('AIRLOCK_CONFIG_INVALID', `connection "${this.config.name}" cannot listen on ${this.config.listen.host}:${this.config.listen.port}: ${e.code ?? e.message}`));
      });
      server.listen(this.config.listen.port, this.config.listen.host, () => {
        const addr = server.address() as AddressInfo;
        this.logger.info({ address: addr.address, port: addr.port }, 'postgres listener started');
        resolve(addr);
      });
    });
  }

  /** Stops accepting; lets sessions finish until the drain timeout, then ends them. */
  async close(drainMs: number): Promise<void> {
    const server = this.server;
    this.server = null;
    // close() stops accepting at once; its callback would wait for every session, so don't.
    server?.close();
    const deadline = Date.now() + drainMs;
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const relay of this.relays) relay.fatal(new AirlockError('AIRLOCK_SHUTTING_DOWN', undefined, { fatal: true }));
    for (const s of this.sockets) s.destroy();
  }

  get sessionCount(): number {
    return this.relays.size;
  }

  private accept(raw: Socket): void {
    this.sockets.add(raw);
    raw.setNoDelay(true);
    raw.on('close', () => this.sockets.delete(raw));
    raw.on('error', () => undefined);
    void this.startup(raw).catch((e: unknown) => {
      const err = asAirlockError(e);
      if (err.code === 'AIRLOCK_INTERNAL') this.logger.error({ err: e }, 'postgres startup failed');
      else this.logger.info({ code: err.code, client: raw.remoteAddress }, 'postgres connection refused');
    });
  }

  /** Reads startup-phase packets until the StartupMessage; handles SSL/GSS/Cancel requests. */
  private async startup(raw: Socket): Promise<void> {
    let socket: Socket = raw;
    // A FATAL ErrorResponse, then the connection closes; the awaited frame fails with it.
    const deadline = new AuthDeadline(this.config.auth_timeout, (err) => {
      this.logger.info({ client: raw.remoteAddress, code: err.code }, 'postgres connection did not authenticate in time');
      if (!socket.destroyed) socket.end(encodeErrorResponse(pgErrorFor(err, true)), () => socket.destroy());
      // A TLS handshake never finished (or a client that does not read) would hold the answer back.
      setTimeout(() => raw.destroy(), CLOSE_GRACE_MS).unref();
    });
    raw.once('close', () => deadline.cancel());
    let encrypted = false;
    const limits = this.config.limits;
    const reader = new FrameReader({ maxMessageBytes: limits.max_message_bytes, maxStartupBytes: limits.max_startup_bytes, startup: true });
    const frames = new FrameQueue(reader);
    frames.attach(socket);
    try {
      for (;;) {
        const frame = await frames.next();
        // A Terminate before any startup packet: PostgreSQL closes without a word, and so do we.
        if (frame.type === MessageCode.Terminate) {
          socket.destroy();
          return;
        }
        const msg = decodeStartup(frame.payload);
        if (msg.type === 'SSLRequest') {
          if (this.secureContext !== null && !encrypted) {
            frames.detach(socket);
            socket.write(SSL_ACCEPT);
            const secured = new TLSSocket(socket, { isServer: true, secureContext: this.secureContext });
            secured.on('error', () => undefined);
            socket = secured;
            encrypted = true;
            frames.attach(socket);
          } else socket.write(SSL_REFUSE);
          continue;
        }
        if (msg.type === 'GSSENCRequest') {
          socket.write(SSL_REFUSE);
          continue;
        }
        if (msg.type === 'CancelRequest') {
          deadline.cancel();
          const target = this.cancelKeys.get(`${msg.pid}:${msg.secret}`);
          socket.destroy();
          if (target !== undefined) {
            const u = this.config.upstream;
            await sendCancel({ host: u.host, port: u.port, tls: u.tls, ...(u.ca ? { ca: u.ca } : {}) }, target).catch(() => undefined);
          }
          return;
        }
        // StartupMessage
        if (msg.protocolVersion >>> 16 !== 3) {
          throw new AirlockError('AIRLOCK_UNSUPPORTED', `unsupported frontend protocol ${msg.protocolVersion >>> 16}.${msg.protocolVersion & 0xffff}`, { fatal: true });
        }
        // Settings airlock would not pass are refused before the token is asked for, never dropped.
        const passed = passedStartupSettings(msg.parameters);
        frames.detach(socket);
        await this.authenticate(socket, frames, reader, msg.parameters, passed, msg.protocolVersion, encrypted, deadline);
        return;
      }
    } catch (e) {
      const err = asAirlockError(e);
      const fields = pgErrorFor(err, true);
      if (err instanceof UpstreamRefusal) fields.code = err.clientSqlState ?? fields.code;
      if (!socket.destroyed && !deadline.expired) socket.end(encodeErrorResponse(fields));
      throw err;
    }
  }

  private async authenticate(
    socket: Socket,
    frames: FrameQueue,
    reader: FrameReader,
    parameters: Record<string, string>,
    passed: Record<string, string>,
    protocolVersion: number,
    encrypted: boolean,
    deadline: AuthDeadline,
  ): Promise<void> {
    const connection = this.config;
    const remote = socket.remoteAddress ?? '';
    if (!encrypted && !isLoopback(connection.listen.host)) {
      throw new AirlockError('AIRLOCK_AUTH_INSECURE', 'tokens are accepted only over TLS on this listener; connect with sslmode=require', { fatal: true });
    }
    reader.expectStartup(false);
    frames.attach(socket);
    if ((protocolVersion & 0xffff) !== 0) socket.write(encodeNegotiateProtocolVersion(0x30000, []));
    socket.write(encodeAuthenticationCleartextPassword());
    const frame = await frames.next();
    const pw = decodeFrontend(frame, 'password');
    if (pw.type !== 'PasswordMessage') throw new AirlockError('AIRLOCK_PROTOCOL', 'expected a password message', { fatal: true });
    const identity = await this.core.authenticate(pw.password);
    if (connection.startup_user === 'match_subject' && parameters.user !== identity.subject) {
      throw new AirlockError('AIRLOCK_FORBIDDEN', `the user name must be the token's subject on connection "${connection.name}"`, { fatal: true });
    }
    deadline.done();
    frames.detach(socket);
    // The token is good: say so now. libpq accepts NoticeResponse only after AuthenticationOk,
    // and a connection held for approval tells the caller how to get it approved with one.
    socket.write(encodeAuthenticationOk());
    // Until the relay starts, keep what the client sends (it may pipeline a query behind the password).
    const early: Buffer[] = [];
    const keep = (c: Buffer): number => early.push(c);
    socket.on('data', keep);
    let session: Session | null = null;
    let upstream: UpstreamConnection | null = null;
    try {
      session = await this.core.openSession({
        connection,
        identity,
        client: { address: remote, port: socket.remotePort ?? 0 },
        onHold: (h) => socket.write(encodeNoticeResponse({ severity: 'NOTICE', code: '00000', message: h.howToApprove })),
      });
      const u = connection.upstream;
      upstream = await connectUpstream({
        host: u.host,
        port: u.port,
        database: u.database,
        tls: u.tls,
        ...(u.ca ? { ca: u.ca } : {}),
        username: session.lease.username,
        password: session.lease.secret,
        startupParameters: passed,
        maxMessageBytes: connection.limits.max_message_bytes,
      });
    } catch (e) {
      socket.off('data', keep);
      const err = asAirlockError(e);
      if (session !== null) await session.close(err.code);
      if (err instanceof UpstreamRefusal) throw new UpstreamRefusal(err.sqlState, `connection "${connection.name}": ${err.message}`);
      if (err.code === 'AIRLOCK_UPSTREAM_UNAVAILABLE' || err.code === 'AIRLOCK_UPSTREAM_AUTH') {
        throw new AirlockError(err.code, `connection "${connection.name}": ${err.message}`, { fatal: true });
      }
      throw err;
    }
    socket.off('data', keep);
    const live = session;
    // PostgreSQL (before 18) does not report search_path; a role or database default may set it.
    // Ask once so that unqualified names resolve as the server resolves them.
    try {
      const probed = await probeSetting(upstream, 'search_path', connection.limits.max_message_bytes);
      if (probed !== null) live.setParameter('search_path', probed);
    } catch (e) {
      upstream.socket.destroy();
      await live.close('upstream lost');
      throw e;
    }
    const key = { pid: randomInt(1, 2 ** 31 - 1), secret: randomInt(0, 2 ** 31 - 1) };
    const cancelKey = `${key.pid}:${key.secret}`;
    this.cancelKeys.set(cancelKey, upstream.backendKey);
    socket.cork();
    for (const [name, value] of upstream.parameters) {
      live.setParameter(name, value);
      socket.write(encodeParameterStatus(name, value));
    }
    socket.write(encodeBackendKeyData(key.pid, key.secret));
    socket.write(encodeReadyForQuery('I'));
    socket.uncork();
    const masker = ResultMasker.needed(live) ? new ResultMasker(live, this.catalog, await this.core.maskingKey()) : null;
    const relay: Relay = new Relay({
      masker,
      catalog: masker === null ? null : this.catalog,
      effects: new EffectTracker(this.catalog, live),
      session: live,
      client: socket,
      upstream: upstream.socket,
      maxMessageBytes: connection.limits.max_message_bytes,
      clientLeftover: Buffer.concat([...frames.takeRaw(), reader.drain(), ...early]),
      upstreamLeftover: upstream.leftover,
      onEnd: (reason) => {
        this.relays.delete(relay);
        this.cancelKeys.delete(cancelKey);
        void live.close(reason);
      },
    });
    this.relays.add(relay);
    relay.start();
  }
}

/**
 * Runs `SHOW <name>` on a fresh upstream connection before the relay starts and returns the
 * value; leftover bytes after the probe's ReadyForQuery are kept in upstream.leftover.
 */
async function probeSetting(upstream: UpstreamConnection, name: string, maxMessageBytes: number): Promise<string | null> {
  const socket = upstream.socket;
  const reader = new FrameReader({ maxMessageBytes, maxStartupBytes: 0, startup: false });
  return new Promise<string | null>((resolve, reject) => {
    let value: string | null = null;
    let done = false;
    const finish = (err: unknown, rest?: Buffer): void => {
      if (done) return;
      done = true;
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (err !== null) reject(err);
      else {
        upstream.leftover = rest ?? Buffer.alloc(0);
        resolve(value);
      }
    };
    const onData = (chunk: Buffer): void => {
      try {
        let ready = false;
        const after: Buffer[] = [];
        reader.push(chunk, (f) => {
          if (ready) {
            after.push(Buffer.from(f.raw));
            return;
          }
          if (f.type === MessageCode.DataRow) {
            const cell = decodeDataRow(f.payload).cells[0];
            value = cell === null || cell === undefined ? null : cell.toString('utf8');
          } else if (f.type === MessageCode.ReadyForQuery) {
            ready = true;
            reader.expectStartup(false);
          }
        });
        if (ready) finish(null, Buffer.concat([...after, reader.drain()]));
      } catch (e) {
        finish(e);
      }
    };
    const onClose = (): void => finish(new AirlockError('AIRLOCK_UPSTREAM_LOST', 'the upstream closed the connection', { fatal: true }));
    socket.on('data', onData);
    socket.on('close', onClose);
    if (upstream.leftover.length > 0) onData(upstream.leftover);
    socket.write(encodeQuery(`SHOW ${name}`));
    socket.resume();
  });
}

/** Turns socket data into awaited frames during the startup phase. */
class FrameQueue {
  private readonly frames: Frame[] = [];
  private waiter: { resolve: (f: Frame) => void; reject: (e: unknown) => void } | null = null;
  private failure: unknown = null;
  private readonly onData = (chunk: Buffer): void => {
    try {
      this.reader.push(chunk, (f) => this.frames.push(f));
    } catch (e) {
      this.fail(e);
      return;
    }
    this.wake();
  };
  private readonly onEnd = (): void => this.fail(new AirlockError('AIRLOCK_PROTOCOL', 'client closed during startup', { fatal: true }));

  constructor(private readonly reader: FrameReader) {}

  attach(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('close', this.onEnd);
  }

  detach(socket: Socket): void {
    socket.off('data', this.onData);
    socket.off('close', this.onEnd);
  }

  /** Frames read but not consumed, as their bytes (a client may pipeline behind the password). */
  takeRaw(): Buffer[] {
    return this.frames.splice(0).map((f) => Buffer.from(f.raw));
  }

  next(): Promise<Frame> {
    const f = this.frames.shift();
    if (f !== undefined) return Promise.resolve(f);
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  private wake(): void {
    const w = this.waiter;
    const f = this.frames.shift();
    if (w === null || f === undefined) {
      if (f !== undefined) this.frames.unshift(f);
      return;
    }
    this.waiter = null;
    w.resolve(f);
  }

  private fail(e: unknown): void {
    this.failure = e;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(e);
  }
}
