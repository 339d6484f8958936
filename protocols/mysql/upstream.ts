/**
 * The upstream leg: connect to the real MySQL/MariaDB, negotiate TLS as configured and
 * log in with the session's lease (mysql_native_password; caching_sha2_password fast
 * path, full path as cleartext over TLS or RSA-OAEP with the server's key; sha256_password
 * likewise; MariaDB's client_ed25519; mysql_clear_password only over TLS or to a loopback server). The password is
 * revealed only while the auth packet is written and never enters an error or a log line.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Secret } from '../../src/secrets/index.js';
import { AirlockError } from '../../src/util/errors.js';
import { isLoopback } from '../../src/util/duration.js';
import { PacketReader, framePacket, type Packet } from './codec/framing.js';
import { CACHING_SHA2_PASSWORD, CLEAR_PASSWORD, CLIENT_ED25519, Capability, NATIVE_PASSWORD, PacketHeader, SHA256_PASSWORD, UTF8MB4_GENERAL_CI } from './codec/codes.js';
import { decodeHandshakeV10, encodeHandshakeResponse41, encodeSslRequest, type HandshakeV10 } from './codec/messages/handshake.js';
import { CachingSha2, cachingSha2Scramble, decodeAuthSwitchRequest, nativePasswordScramble, rsaEncryptPassword } from './codec/messages/auth.js';
import { decodeErr, decodeOk, isEof } from './codec/messages/generic.js';
import { decodeColumnCount, decodeTextRow } from './codec/messages/resultset.js';
import { ed25519Sign } from './codec/messages/ed25519.js';
import { PacketQueue } from './packet-queue.js';

export type UpstreamTls = 'disable' | 'require' | 'verify-full';

export interface UpstreamAddress {
  host: string;
  port: number;
  tls: UpstreamTls;
  ca?: string;
}

export interface UpstreamOptions extends UpstreamAddress {
  username: string;
  password: Secret;
  database: string | null;
  /** Capabilities the client negotiated with airlock; the upstream gets the same result format. */
  capabilities: number;
  /** MariaDB extended capabilities the client negotiated with airlock (codes.ts MariadbCapability). */
  mariadbCapabilities?: number;
  characterSet: number;
  attributes: Array<[string, string]>;
  maxPacketBytes: number;
  connectTimeoutMs?: number;
}

export interface UpstreamConnection {
  /** Paused, with no 'data' listener. */
  socket: Socket | TLSSocket;
  capabilities: number;
  connectionId: number;
  serverVersion: string;
  /** The MariaDB extended capabilities the server offered (0 from MySQL). */
  serverMariadbCapabilities: number;
  /** The collation id of the server's greeting (its default character set). */
  serverCollation: number;
  statusFlags: number;
  /** Bytes read after the final OK (normally none). */
  leftover: Buffer;
}

/** Capabilities that change the format of what the server sends: the upstream must honour the client's choice. */
export const FORMAT_CAPABILITIES = Capability.PROTOCOL_41 | Capability.SESSION_TRACK | Capability.DEPRECATE_EOF | Capability.MULTI_RESULTS | Capability.PS_MULTI_RESULTS;

/** What airlock asks of the upstream besides the client's format choices. */
const PASSED_CAPABILITIES =
  Capability.FOUND_ROWS | Capability.LONG_FLAG | Capability.IGNORE_SPACE | Capability.INTERACTIVE | Capability.TRANSACTIONS |
  Capability.MULTI_STATEMENTS | Capability.ODBC | Capability.LOCAL_FILES | FORMAT_CAPABILITIES;

const DEFAULT_TIMEOUT_MS = 10_000;

const where = (a: UpstreamAddress): string => `${a.host}:${a.port}`;

function unavailable(addr: UpstreamAddress, why: string, cause?: unknown): AirlockError {
  return new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `cannot reach the upstream at ${where(addr)}: ${why}`, { fatal: true, cause });
}

function authFailed(why: string): AirlockError {
  return new AirlockError('AIRLOCK_UPSTREAM_AUTH', `upstream authentication failed: ${why}`, { fatal: true });
}

function tcpConnect(addr: UpstreamAddress, held: { socket: Socket | null }): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const s = netConnect({ host: addr.host, port: addr.port, noDelay: true, keepAlive: true });
    held.socket = s;
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      s.destroy();
      reject(unavailable(addr, e.code ?? e.message, e));
    });
  });
}

function tlsHandshake(plain: Socket, addr: UpstreamAddress): Promise<TLSSocket> {
  const verify = addr.tls === 'verify-full';
  let ca: Buffer | undefined;
  if (verify && addr.ca !== undefined) {
    try {
      ca = readFileSync(addr.ca);
    } catch (e) {
      return Promise.reject(new AirlockError('AIRLOCK_CONFIG_INVALID', `cannot read the upstream CA file ${addr.ca}`, { fatal: true, cause: e }));
    }
  }
  const isIp = /^[\d.]+$|:/.test(addr.host);
  return new Promise<TLSSocket>((resolve, reject) => {
    const s = tlsConnect({ socket: plain, host: addr.host, ...(isIp ? {} : { servername: addr.host }), rejectUnauthorized: verify, ...(ca ? { ca } : {}) });
    s.once('secureConnect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e: Error) => {
      s.destroy();
      plain.destroy();
      reject(unavailable(addr, `TLS failed (${e.message})`, e));
    });
  });
}

export async function connectUpstream(opts: UpstreamOptions): Promise<UpstreamConnection> {
  const held: { socket: Socket | null } = { socket: null };
  const ms = opts.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      held.socket?.destroy();
      reject(unavailable(opts, `no session within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([login(opts, held), timeout]);
  } catch (e) {
    held.socket?.destroy();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

async function login(opts: UpstreamOptions, held: { socket: Socket | null }): Promise<UpstreamConnection> {
  let socket: Socket = await tcpConnect(opts, held);
  const reader = new PacketReader({ maxPacketBytes: 64 * 1024 });
  let queue = new PacketQueue(reader, () => unavailable(opts, 'the upstream closed the connection during login'));
  queue.attach(socket);
  const greeting = await queue.next();
  if (greeting.payload[0] === PacketHeader.ERR) {
    const err = decodeErr(greeting.payload);
    throw unavailable(opts, `the server refused the connection (${err.code})`);
  }
  const hello: HandshakeV10 = decodeHandshakeV10(greeting.payload);
  const server = hello.capabilities;
  for (const [bit, name] of [[Capability.PROTOCOL_41, 'PROTOCOL_41'], [Capability.SECURE_CONNECTION, 'SECURE_CONNECTION'], [Capability.PLUGIN_AUTH, 'PLUGIN_AUTH']] as const) {
    if ((server & bit) === 0) throw unavailable(opts, `the server lacks ${name}`);
  }
  const missing = opts.capabilities & FORMAT_CAPABILITIES & ~server;
  if (missing !== 0) throw new AirlockError('AIRLOCK_UNSUPPORTED', `the upstream lacks capabilities the client asked for (0x${missing.toString(16)})`, { fatal: true });
  let caps =
    (opts.capabilities & PASSED_CAPABILITIES & server) |
    Capability.LONG_PASSWORD | Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH;
  const ext = opts.mariadbCapabilities ?? 0;
  if ((ext & ~hello.mariadbCapabilities) !== 0) {
    throw new AirlockError('AIRLOCK_UNSUPPORTED', `the upstream no longer offers the MariaDB capabilities the client asked for (0x${(ext & ~hello.mariadbCapabilities).toString(16)}); reconnect`, { fatal: true });
  }
  // The server reads the extended set only from a client that clears CLIENT_MYSQL.
  if (ext !== 0) caps &= ~Capability.LONG_PASSWORD;
  if ((server & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA) !== 0) caps |= Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA;
  if ((server & Capability.CONNECT_ATTRS) !== 0) caps |= Capability.CONNECT_ATTRS;
  if (opts.database !== null && opts.database !== '') caps |= Capability.CONNECT_WITH_DB;
  let seq = greeting.seq;
  let encrypted = false;
  if (opts.tls !== 'disable') {
    if ((server & Capability.SSL) === 0) throw unavailable(opts, `the server does not offer TLS (tls: ${opts.tls})`);
    caps |= Capability.SSL;
    socket.write(framePacket(encodeSslRequest(caps, 1 << 24, opts.characterSet || UTF8MB4_GENERAL_CI, ext), ++seq));
    queue.detach();
    if (queue.pending > 0) throw new AirlockError('AIRLOCK_PROTOCOL', `the upstream at ${where(opts)} sent bytes before the TLS handshake`, { fatal: true });
    socket = await tlsHandshake(socket, opts);
    held.socket = socket;
    encrypted = true;
    queue = new PacketQueue(reader, () => unavailable(opts, 'the upstream closed the connection during login'));
    queue.attach(socket);
  }
  const password = (): Buffer => Buffer.from(opts.password.reveal(), 'utf8');
  const loopback = isLoopback(opts.host);
  const respond = (plugin: string, scramble: Buffer): Buffer => {
    switch (plugin) {
      case NATIVE_PASSWORD:
        return nativePasswordScramble(password(), scramble);
      case CACHING_SHA2_PASSWORD:
        return cachingSha2Scramble(password(), scramble);
      case SHA256_PASSWORD:
        // Over TLS the password itself; otherwise ask for the server's key (0x01) and encrypt.
        return encrypted ? Buffer.concat([password(), Buffer.from([0])]) : Buffer.from([1]);
      case CLIENT_ED25519:
        return ed25519Sign(password(), scramble.subarray(0, 32));
      case CLEAR_PASSWORD:
        if (!encrypted && !loopback) throw authFailed('the server asks for mysql_clear_password; use tls: require or verify-full');
        return Buffer.concat([password(), Buffer.from([0])]);
      default:
        throw authFailed(`the server asks for the unsupported authentication plugin ${JSON.stringify(plugin)}`);
    }
  };
  let plugin = hello.authPluginName || NATIVE_PASSWORD;
  let scramble = hello.authPluginData;
  let first: Buffer;
  try {
    first = respond(plugin, scramble);
  } catch {
    // Unknown initial plugin: answer as native and wait for the switch the server will send.
    plugin = NATIVE_PASSWORD;
    first = respond(plugin, scramble);
  }
  socket.write(
    framePacket(
      encodeHandshakeResponse41({
        capabilities: caps,
        maxPacketSize: 1 << 30,
        characterSet: opts.characterSet || UTF8MB4_GENERAL_CI,
        username: opts.username,
        authResponse: first,
        database: opts.database,
        authPluginName: plugin,
        attributes: [...opts.attributes.filter(([k]) => k !== '_airlock'), ['_airlock', 'gateway']],
        mariadbCapabilities: ext,
      }),
      ++seq,
    ),
  );
  for (;;) {
    const p: Packet = await queue.next();
    seq = p.lastSeq;
    const h = p.payload[0];
    if (h === PacketHeader.OK) {
      queue.detach();
      // The login OK's status is the session's (NO_BACKSLASH_ESCAPES from the user's sql_mode included).
      const statusFlags = decodeOk(p.payload, caps).statusFlags;
      return { socket, capabilities: caps, connectionId: hello.connectionId, serverVersion: hello.serverVersion, serverMariadbCapabilities: hello.mariadbCapabilities, serverCollation: hello.characterSet, statusFlags, leftover: queue.takeRaw() };
    }
    if (h === PacketHeader.ERR) {
      const err = decodeErr(p.payload);
      // The server's text names the upstream user; only its number is passed on.
      throw authFailed(`the server answered error ${err.code} (${err.sqlState})`);
    }
    if (h === PacketHeader.EOF) {
      const sw = decodeAuthSwitchRequest(p.payload);
      plugin = sw.pluginName;
      scramble = sw.pluginData;
      socket.write(framePacket(respond(plugin, scramble), ++seq));
      continue;
    }
    if (h === PacketHeader.AUTH_MORE_DATA) {
      const data = p.payload.subarray(1);
      if (plugin === CACHING_SHA2_PASSWORD && data.length === 1 && data[0] === CachingSha2.FAST_AUTH_SUCCESS) continue;
      if (plugin === CACHING_SHA2_PASSWORD && data.length === 1 && data[0] === CachingSha2.PERFORM_FULL_AUTHENTICATION) {
        if (encrypted) socket.write(framePacket(Buffer.concat([password(), Buffer.from([0])]), ++seq));
        else socket.write(framePacket(Buffer.from([CachingSha2.REQUEST_PUBLIC_KEY]), ++seq));
        continue;
      }
      if ((plugin === CACHING_SHA2_PASSWORD || plugin === SHA256_PASSWORD) && data.includes('-----BEGIN')) {
        let out: Buffer;
        try {
          out = rsaEncryptPassword(password(), scramble, data.toString('latin1'));
        } catch {
          throw authFailed('the server sent a public key that cannot be used');
        }
        socket.write(framePacket(out, ++seq));
        continue;
      }
      throw authFailed(`unexpected AuthMoreData for ${plugin}`);
    }
    throw new AirlockError('AIRLOCK_PROTOCOL', `unexpected packet 0x${(h ?? 0).toString(16)} during upstream login`, { fatal: true });
  }
}

/**
 * Runs one query on a fresh connection with the same credentials and returns its text rows
 * (catalog look-ups for masking). NULL cells are null.
 */
export async function queryOnSideConnection(opts: UpstreamOptions, sql: string): Promise<Array<Array<string | null>>> {
  const conn = await connectUpstream({ ...opts, capabilities: Capability.PROTOCOL_41, mariadbCapabilities: 0 });
  try {
    const q = new PacketQueue(new PacketReader({ maxPacketBytes: 1 << 24 }), () => new AirlockError('AIRLOCK_UPSTREAM_LOST', undefined, { fatal: true }));
    q.attach(conn.socket);
    conn.socket.write(framePacket(Buffer.concat([Buffer.from([0x03]), Buffer.from(sql, 'utf8')]), 0));
    const first = await q.next(10_000);
    if (first.payload[0] === PacketHeader.ERR) throw new AirlockError('AIRLOCK_UPSTREAM_LOST', `catalog query refused (${decodeErr(first.payload).code})`);
    if (first.payload[0] === PacketHeader.OK) return [];
    const n = decodeColumnCount(first.payload);
    for (let i = 0; i <= n; i++) await q.next(10_000); // definitions and EOF
    const rows: Array<Array<string | null>> = [];
    for (;;) {
      const p = await q.next(10_000);
      if (p.payload[0] === PacketHeader.ERR) throw new AirlockError('AIRLOCK_UPSTREAM_LOST', `catalog query failed (${decodeErr(p.payload).code})`);
      if (isEof(p.payload)) return rows;
      rows.push(decodeTextRow(p.payload, n).map((c) => (c === null ? null : c.toString('utf8'))));
    }
  } finally {
    conn.socket.end(framePacket(Buffer.from([0x01]), 0));
    setTimeout(() => conn.socket.destroy(), 1000).unref();
  }
}

/** Runs one statement on a fresh connection with the same credentials (KILL of a session's query). */
export async function runOnSideConnection(opts: UpstreamOptions, payload: Buffer): Promise<{ ok: boolean; code?: number; sqlState?: string; message?: string }> {
  const conn = await connectUpstream(opts);
  try {
    const q = new PacketQueue(new PacketReader({ maxPacketBytes: 1 << 20 }), () => new AirlockError('AIRLOCK_UPSTREAM_LOST', undefined, { fatal: true }));
    q.attach(conn.socket);
    conn.socket.write(framePacket(payload, 0));
    const p = await q.next(10_000);
    if (p.payload[0] === PacketHeader.ERR) {
      const e = decodeErr(p.payload);
      return { ok: false, code: e.code, sqlState: e.sqlState, message: e.message };
    }
    return { ok: true };
  } finally {
    // COM_QUIT: a clean goodbye, not an aborted client in the server's counters.
    conn.socket.end(framePacket(Buffer.from([0x01]), 0));
    setTimeout(() => conn.socket.destroy(), 1000).unref();
  }
}
