/**
 * A MySQL/MariaDB listener: greets each client with HandshakeV10, upgrades to TLS on an
 * SSLRequest, takes the caller's token as a cleartext password (mysql_clear_password,
 * asked for with an AuthSwitchRequest; TLS required unless the listener is on loopback),
 * opens a core session, logs in upstream with the session's lease and hands both sockets
 * to the Relay. Connection ids the client sees are airlock's own; KILL maps them.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { TLSSocket, createSecureContext, type SecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import type { GatewayCore, Session } from '../../src/core/session-types.js';
import type { MysqlConnectionConfig } from './config.js';
import type { Logger } from '../../src/util/log.js';
import { AirlockError, asAirlockError } from '../../src/util/errors.js';
import { isLoopback } from '../../src/util/duration.js';
import { PacketReader, framePacket, type Packet } from './codec/framing.js';
import { CLEAR_PASSWORD, Capability, ErrorNumber, MariadbCapability, NATIVE_PASSWORD, ServerStatus, UTF8MB4_GENERAL_CI } from './codec/codes.js';
import { SSL_REQUEST_LENGTH, decodeHandshakeResponse, encodeHandshakeV10, type HandshakeResponse41 } from './codec/messages/handshake.js';
import { decodeClearPassword, encodeAuthSwitchRequest } from './codec/messages/auth.js';
import { encodeErr, encodeOk } from './codec/messages/generic.js';
import { mysqlErrorFor, type MysqlErrorFields } from './errors.js';
import { connectUpstream, runOnSideConnection, type UpstreamConnection, type UpstreamOptions } from './upstream.js';
import { PacketQueue } from './packet-queue.js';
import { Relay, type KillRequest } from './relay.js';
import { ResultMasker } from './result-masking.js';
import { MysqlCatalog } from './catalog.js';
import { AuthDeadline, CLOSE_GRACE_MS } from '../../src/auth/deadline.js';
import { charsetOfCollation, isUtf8 } from './charsets.js';

/**
 * What airlock offers a client. LOCAL_FILES is offered so that a client that enables LOAD
 * DATA LOCAL can use it where a rule allows it (the relay checks each request the server
 * makes against the statement). Not offered: COMPRESS (not implemented), DEPRECATE_EOF (one result
 * format to follow), QUERY_ATTRIBUTES and OPTIONAL_RESULTSET_METADATA (MySQL 8 only),
 * CAN_HANDLE_EXPIRED_PASSWORDS (the lease is airlock's business).
 */
const OFFERED =
  Capability.LONG_PASSWORD | Capability.FOUND_ROWS | Capability.LONG_FLAG | Capability.CONNECT_WITH_DB | Capability.ODBC |
  Capability.IGNORE_SPACE | Capability.PROTOCOL_41 | Capability.INTERACTIVE | Capability.IGNORE_SIGPIPE | Capability.TRANSACTIONS |
  Capability.SECURE_CONNECTION | Capability.MULTI_STATEMENTS | Capability.MULTI_RESULTS | Capability.PS_MULTI_RESULTS |
  Capability.PLUGIN_AUTH | Capability.CONNECT_ATTRS | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.SESSION_TRACK |
  Capability.LOCAL_FILES;

/**
 * MariaDB extended capabilities airlock passes on when the upstream offers them: the extended
 * column metadata (a JSON column's `json` format, UUID/INET types), which the relay reads, and
 * STMT_BULK_OPERATIONS (COM_STMT_BULK_EXECUTE, judged as an execute of its prepared statement,
 * relay.ts). Not PROGRESS (progress packets), BULK_UNIT_RESULTS (a result set per bulk) or
 * CACHE_METADATA (result sets without column definitions).
 */
const OFFERED_MARIADB = MariadbCapability.EXTENDED_METADATA | MariadbCapability.STMT_BULK_OPERATIONS;

const HANDSHAKE_TIMEOUT_MS = 30_000;

const DEFAULT_SERVER_VERSION = '8.0.0-airlock';

interface Live {
  relay: Relay;
  session: Session;
  upstreamId: number;
  upstream: UpstreamOptions;
}

export class MysqlListener {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly live = new Map<number, Live>();
  private readonly secureContext: SecureContext | null;
  private readonly logger: Logger;
  private nextConnectionId = randomInt(1000, 1_000_000);
  /**
   * The upstream's version string, learned from the first session's login; clients see it as
   * the server's. (Not probed at start: a greeting abandoned before login counts against the
   * server's max_connect_errors for airlock's host.)
   */
  private serverVersion = DEFAULT_SERVER_VERSION;
  /** The upstream's MariaDB extended capabilities, learned like its version (none until a first login). */
  private serverMariadbCapabilities = 0;
  /**
   * The collation of the upstream's greeting, learned like its version. Drivers choose by it:
   * MariaDB Connector/Node.js sends no SET NAMES when the greeting says utf8mb4, and the server
   * keeps its own default collation when the client asks for its default character set.
   */
  private serverCollation = UTF8MB4_GENERAL_CI;
  /** Which relations are views, shared by this listener's masked sessions. */
  readonly catalog = new MysqlCatalog();

  constructor(private readonly core: GatewayCore, private config: MysqlConnectionConfig) {
    this.logger = core.logger.child({ connection: config.name, protocol: 'mysql' });
    this.secureContext = config.tls ? createSecureContext({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) }) : null;
  }

  get name(): string {
    return this.config.name;
  }

  get sessionCount(): number {
    return this.live.size;
  }

  /** Rules and upstream settings apply to new sessions; the listen address needs a restart of the listener. */
  update(config: MysqlConnectionConfig): void {
    this.config = config;
  }

  listen(): Promise<AddressInfo> {
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        reject(new AirlockError('AIRLOCK_CONFIG_INVALID', `connection "${this.config.name}" cannot listen on ${this.config.listen.host}:${this.config.listen.port}: ${e.code ?? e.message}`));
      });
      server.listen(this.config.listen.port, this.config.listen.host, () => {
        const addr = server.address() as AddressInfo;
        this.logger.info({ address: addr.address, port: addr.port }, 'mysql listener started');
        resolve(addr);
      });
    });
  }

  /** Stops accepting; lets sessions finish until the drain timeout, then ends them. */
  async close(drainMs = 0): Promise<void> {
    const server = this.server;
    this.server = null;
    server?.close();
    const deadline = Date.now() + drainMs;
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const l of this.live.values()) l.relay.fatal(new AirlockError('AIRLOCK_SHUTTING_DOWN', undefined, { fatal: true }));
    for (const s of this.sockets) s.destroy();
  }

  private accept(raw: Socket): void {
    this.sockets.add(raw);
    raw.setNoDelay(true);
    raw.on('close', () => this.sockets.delete(raw));
    raw.on('error', () => undefined);
    const id = this.nextConnectionId;
    this.nextConnectionId = (this.nextConnectionId % 0x7fffffff) + 1;
    void new Handshake(this, raw, id).run().catch((e: unknown) => {
      const err = asAirlockError(e);
      if (err.code === 'AIRLOCK_INTERNAL') this.logger.error({ err: e }, 'mysql handshake failed');
      else this.logger.info({ code: err.code, client: raw.remoteAddress }, 'mysql connection refused');
    });
  }

  // ---- what the handshake needs from the listener ----

  get settings(): MysqlConnectionConfig {
    return this.config;
  }

  get tls(): SecureContext | null {
    return this.secureContext;
  }

  get version(): string {
    return this.serverVersion;
  }

  get gateway(): GatewayCore {
    return this.core;
  }

  get log(): Logger {
    return this.logger;
  }

  register(id: number, l: Live): void {
    this.live.set(id, l);
  }

  unregister(id: number): void {
    this.live.delete(id);
  }

  get mariadbCapabilities(): number {
    return this.serverMariadbCapabilities;
  }

  get collation(): number {
    return this.serverCollation;
  }

  learnServer(version: string, mariadbCapabilities: number, collation: number): void {
    this.serverVersion = version;
    this.serverMariadbCapabilities = mariadbCapabilities;
    if (collation !== 0) this.serverCollation = collation;
  }

  /**
   * KILL [QUERY] of one of airlock's connection ids, on behalf of `caller`: only the same
   * subject's sessions on this listener. Runs on a side connection with the target's own
   * lease, so a short-lived upstream user can always stop its own query.
   */
  async kill(caller: Session, req: KillRequest): Promise<MysqlErrorFields | null> {
    const target = this.live.get(req.targetConnectionId);
    if (target === undefined || target.session.identity.subject !== caller.identity.subject) {
      return { code: ErrorNumber.ER_NO_SUCH_THREAD, sqlState: 'HY000', message: `Unknown thread id: ${req.targetConnectionId}` };
    }
    const sql = `KILL ${req.query ? 'QUERY ' : 'CONNECTION '}${target.upstreamId}`;
    const r = await runOnSideConnection(target.upstream, Buffer.concat([Buffer.from([0x03]), Buffer.from(sql)]));
    if (r.ok) return null;
    return { code: r.code ?? ErrorNumber.ER_UNKNOWN_ERROR, sqlState: r.sqlState ?? 'HY000', message: `airlock: the upstream refused the KILL (${r.code ?? '?'})` };
  }
}

/**
 * The version as executable comments compare it: 8.0.36 → 80036, 10.11.19 → 101119 (MariaDB's
 * greeting may carry a `5.5.5-` prefix for old clients); '' when it is not of that shape.
 */
export function versionNumber(version: string): string {
  const m = /^(?:5\.5\.5-)?(\d{1,2})\.(\d{1,2})\.(\d{1,2})(?!\d)/.exec(version);
  return m === null ? '' : String(Number(m[1]) * 10000 + Number(m[2]) * 100 + Number(m[3]));
}

/** Printable scramble bytes, as servers send (some clients read the scramble as a C string). */
function scramble(): Buffer {
  const b = randomBytes(20);
  for (let i = 0; i < b.length; i++) b[i] = 0x21 + ((b[i] as number) % 94);
  return b;
}

/** The connection phase of one client, as a sequence. */
class Handshake {
  private socket: Socket;
  private seq = 0;
  private readonly reader: PacketReader;
  private queue: PacketQueue;
  private deadline: AuthDeadline | null = null;

  constructor(
    private readonly listener: MysqlListener,
    raw: Socket,
    private readonly connectionId: number,
  ) {
    this.socket = raw;
    this.reader = new PacketReader({ maxPacketBytes: listener.settings.limits.max_startup_bytes });
    this.queue = this.newQueue();
    this.queue.attach(raw);
  }

  private newQueue(): PacketQueue {
    return new PacketQueue(this.reader, () => new AirlockError('AIRLOCK_PROTOCOL', 'the client closed the connection during the handshake', { fatal: true }));
  }

  private write(payload: Buffer): void {
    this.seq = (this.seq + 1) & 0xff;
    this.socket.write(framePacket(payload, this.seq));
  }

  private async next(): Promise<Packet> {
    const p = await this.queue.next(HANDSHAKE_TIMEOUT_MS);
    if (p.seq !== ((this.seq + 1) & 0xff)) throw new AirlockError('AIRLOCK_PROTOCOL', 'packets out of order during the handshake', { fatal: true });
    this.seq = p.lastSeq;
    return p;
  }

  async run(): Promise<void> {
    const raw = this.socket;
    this.deadline = new AuthDeadline(this.listener.settings.auth_timeout, (err) => {
      this.listener.log.info({ client: raw.remoteAddress, code: err.code }, 'mysql connection did not authenticate in time');
      if (!this.socket.destroyed) {
        this.seq = (this.seq + 1) & 0xff;
        this.socket.end(framePacket(encodeErr(mysqlErrorFor(err)), this.seq), () => this.socket.destroy());
      }
      // A TLS handshake never finished (or a client that does not read) would hold the answer back.
      setTimeout(() => raw.destroy(), CLOSE_GRACE_MS).unref();
    });
    raw.once('close', () => this.deadline?.cancel());
    try {
      await this.greet();
    } catch (e) {
      const err = asAirlockError(e);
      if (!this.socket.destroyed && !this.deadline.expired) {
        this.seq = (this.seq + 1) & 0xff;
        this.socket.end(framePacket(encodeErr(mysqlErrorFor(err)), this.seq));
      }
      throw err;
    }
  }

  private async greet(): Promise<void> {
    const l = this.listener;
    const config = l.settings;
    const loopback = isLoopback(config.listen.host);
    const salt = scramble();
    const offered = OFFERED | (l.tls !== null ? Capability.SSL : 0);
    const offeredMariadb = l.mariadbCapabilities & OFFERED_MARIADB;
    // On loopback the token may travel in the first response; elsewhere the switch to the
    // cleartext plugin comes only once TLS is up, so a client without TLS never sends it.
    const initialPlugin = loopback ? CLEAR_PASSWORD : NATIVE_PASSWORD;
    this.socket.write(
      framePacket(
        encodeHandshakeV10({ serverVersion: l.version, connectionId: this.connectionId, authPluginData: salt, capabilities: offered, mariadbCapabilities: offeredMariadb, characterSet: l.collation, statusFlags: ServerStatus.AUTOCOMMIT, authPluginName: initialPlugin }),
        0,
      ),
    );
    // A client may send its TLS ClientHello right behind the SSLRequest, in the same segment.
    this.queue.stopAfter = (p) => p.payload.length === SSL_REQUEST_LENGTH;
    let msg = decodeHandshakeResponse((await this.next()).payload);
    let encrypted = false;
    if (msg.type === 'SSLRequest') {
      if (l.tls === null) throw new AirlockError('AIRLOCK_PROTOCOL', 'TLS is not configured on this listener', { fatal: true });
      this.queue.detach();
      const hello = this.queue.takeRaw();
      // Node's TLSSocket reads what is buffered in the socket it wraps.
      if (hello.length > 0) this.socket.unshift(hello);
      const secured = new TLSSocket(this.socket, { isServer: true, secureContext: l.tls });
      secured.on('error', () => undefined);
      this.socket = secured;
      encrypted = true;
      this.queue = this.newQueue();
      this.queue.attach(secured);
      msg = decodeHandshakeResponse((await this.next()).payload);
      if (msg.type === 'SSLRequest') throw new AirlockError('AIRLOCK_PROTOCOL', 'a second SSLRequest', { fatal: true });
    }
    this.queue.stopAfter = null;
    const response: HandshakeResponse41 = msg;
    const capabilities = (response.capabilities & offered & ~Capability.SSL) >>> 0;
    const mariadbCapabilities = response.mariadbCapabilities & offeredMariadb;
    if (!encrypted && !loopback) {
      throw new AirlockError('AIRLOCK_AUTH_INSECURE', 'tokens are accepted only over TLS on this listener; connect with --ssl (mariadb) or ssl options (drivers)', { fatal: true });
    }
    let token: string;
    if (response.authPluginName === CLEAR_PASSWORD) token = decodeClearPassword(response.authResponse);
    else {
      if ((response.capabilities & Capability.PLUGIN_AUTH) === 0) throw new AirlockError('AIRLOCK_UNSUPPORTED', 'the client cannot switch authentication plugins', { fatal: true });
      this.write(encodeAuthSwitchRequest(CLEAR_PASSWORD, salt));
      token = decodeClearPassword((await this.next()).payload);
    }
    if (token === '') throw new AirlockError('AIRLOCK_AUTH_MISSING', undefined, { fatal: true });
    const core = l.gateway;
    const identity = await core.authenticate(token);
    this.deadline?.done();
    await this.open(response, capabilities, mariadbCapabilities, identity);
  }

  private async open(response: HandshakeResponse41, capabilities: number, mariadbCapabilities: number, identity: Awaited<ReturnType<GatewayCore['authenticate']>>): Promise<void> {
    const l = this.listener;
    const config = l.settings;
    const core = l.gateway;
    let session: Session | null = null;
    let upstream: UpstreamConnection | null = null;
    // The login database is read as UTF-8 and sent upstream as UTF-8: in another character set a
    // name outside ASCII would be checked (and asked for) as another name.
    if (response.database !== null && /[^\x00-\x7f]/.test(response.database) && (!isUtf8(charsetOfCollation(response.characterSet)) || response.database.includes('\ufffd'))) {
      throw new AirlockError('AIRLOCK_UNSUPPORTED', 'a login database whose name is not ASCII needs a UTF-8 connection character set; connect without one and send USE', { fatal: true });
    }
    const database = response.database !== null && response.database !== '' ? response.database : (config.upstream.database ?? null);
    const u = config.upstream;
    let upstreamOptions: UpstreamOptions | null = null;
    try {
      session = await core.openSession({
        connection: config,
        identity,
        client: { address: this.socket.remoteAddress ?? '', port: this.socket.remotePort ?? 0 },
        // No asynchronous notice before the OK: the caller waits; the id is in the log and the audit.
        onHold: (h) => l.log.info({ approval: h.approvalId, rule: h.rule }, 'mysql connection held for approval'),
      });
      // MySQL reads backslash escapes in strings unless sql_mode has NO_BACKSLASH_ESCAPES (the greeting's status says).
      session.setParameter('standard_conforming_strings', 'off');
      // Until the relay reads text in the client's character set (charsets.ts), only ASCII is read.
      if (charsetOfCollation(response.characterSet) === null) session.setParameter('client_encoding', 'UNKNOWN');
      if (database !== null) session.setParameter('search_path', `"${database.replace(/"/g, '""')}"`);
      // The database the client names is its choice, checked like USE; the configured default is not.
      if (database !== null && database === response.database) {
        for (const statement of session.analyzeSql(`USE \`${database.replace(/`/g, '``')}\``, 'mysql').statements) {
          const d = await session.check({ kind: 'sql', dialect: 'mysql', text: statement.text, statement });
          if (d.effect === 'deny') throw new AirlockError('AIRLOCK_DENIED', `denied by rule ${d.rule}: ${d.reason}`, { rule: d.rule, fatal: true });
        }
      }
      upstreamOptions = {
        host: u.host,
        port: u.port,
        tls: u.tls,
        ...(u.ca ? { ca: u.ca } : {}),
        username: session.lease.username,
        password: session.lease.secret,
        database,
        capabilities,
        mariadbCapabilities,
        characterSet: response.characterSet,
        attributes: response.attributes,
        maxPacketBytes: config.limits.max_message_bytes,
      };
      upstream = await connectUpstream(upstreamOptions);
    } catch (e) {
      const err = asAirlockError(e);
      if (session !== null) await session.close(err.code);
      if (err.code === 'AIRLOCK_UPSTREAM_UNAVAILABLE' || err.code === 'AIRLOCK_UPSTREAM_AUTH') {
        throw new AirlockError(err.code, `connection "${config.name}": ${err.message}`, { fatal: true });
      }
      throw err;
    }
    l.learnServer(upstream.serverVersion, upstream.serverMariadbCapabilities, upstream.serverCollation);
    // Versioned comments (`/*!40101 …*/`, `/*M!999999 …*/`) are then read as this server reads them.
    session.setParameter('mysql_version_id', versionNumber(upstream.serverVersion));
    if ((upstream.statusFlags & ServerStatus.NO_BACKSLASH_ESCAPES) !== 0) session.setParameter('standard_conforming_strings', 'on');
    const live = session;
    const masker = ResultMasker.needed(live) ? new ResultMasker(live, await core.maskingKey(), { views: l.catalog, upstream: upstreamOptions as UpstreamOptions }) : null;
    this.queue.detach();
    const clientLeftover = this.queue.takeRaw();
    this.write(encodeOk({ statusFlags: upstream.statusFlags || ServerStatus.AUTOCOMMIT }, capabilities));
    const id = this.connectionId;
    const options = upstreamOptions as UpstreamOptions;
    const relay: Relay = new Relay({
      session: live,
      client: this.socket,
      upstream: upstream.socket,
      capabilities,
      extendedMetadata: (mariadbCapabilities & MariadbCapability.EXTENDED_METADATA) !== 0,
      bulk: (mariadbCapabilities & MariadbCapability.STMT_BULK_OPERATIONS) !== 0,
      maxPacketBytes: config.limits.max_message_bytes,
      maxLocalInfileBytes: config.local_infile.max_bytes,
      clientLeftover,
      upstreamLeftover: upstream.leftover,
      masker,
      clientCharset: charsetOfCollation(response.characterSet),
      connectionId: id,
      upstreamId: upstream.connectionId,
      kill: (req) => l.kill(live, req),
      views: { catalog: l.catalog, upstream: options },
      onEnd: (reason) => {
        l.unregister(id);
        void live.close(reason);
      },
    });
    l.register(id, { relay, session: live, upstreamId: upstream.connectionId, upstream: options });
    relay.start();
  }
}

