/**
 * The upstream leg: connect to the real PostgreSQL, negotiate TLS as configured,
 * authenticate with the held credential (SCRAM-SHA-256, MD5, cleartext or trust) and
 * collect the startup parameters and the backend key. The password is revealed only at
 * the moment it goes onto the wire and never enters an error message or a log line.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Secret } from '../../src/secrets/index.js';
import { AirlockError } from '../../src/util/errors.js';
import { FrameReader, type Frame } from './codec/framing.js';
import { EncryptionReply, MessageCode, describeCode } from './codec/codes.js';
import {
  encodeCancelRequest, encodePasswordMessage, encodeSASLInitialResponse, encodeSASLResponse, encodeSSLRequest, encodeStartupMessage,
} from './codec/frontend.js';
import { decodeAuthentication, decodeBackendKeyData, decodeErrorResponse, decodeParameterStatus } from './codec/backend.js';
import { ScramClient } from './scram.js';

export type UpstreamTls = 'disable' | 'require' | 'verify-full';

export interface UpstreamAddress {
  host: string;
  port: number;
  /** disable: plain TCP; require: TLS without verification; verify-full: chain (ca or system store) and host name. */
  tls: UpstreamTls;
  /** PEM file with the CA(s) for verify-full. */
  ca?: string;
}

export interface UpstreamOptions extends UpstreamAddress {
  database: string;
  username: string;
  password: Secret;
  /** The client's own startup parameters to pass through; 'user' and 'database' are always ours. */
  startupParameters?: Record<string, string>;
  maxMessageBytes: number;
  /** Bound on TCP connect + TLS + authentication together. Default 10 s. */
  connectTimeoutMs?: number;
}

export interface UpstreamConnection {
  /** Paused, with no 'data' listener: attach one and call resume(). */
  socket: Socket | TLSSocket;
  /** Every ParameterStatus received during startup, in arrival order. */
  parameters: Map<string, string>;
  backendKey: { pid: number; secret: number };
  /** Bytes already read after ReadyForQuery (normally empty). */
  leftover: Buffer;
  serverVersion: string;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * The server refused the session during startup (ErrorResponse). A refusal of airlock's own
 * credential (class 28) is airlock's problem, not the caller's: 08004. Any other SQLSTATE —
 * 53300 too many connections, 57P03 starting up, 22023 a bad setting value — is the caller's
 * to act on (pools retry on some), so the client gets the server's SQLSTATE.
 */
export class UpstreamRefusal extends AirlockError {
  constructor(
    readonly sqlState: string,
    message: string,
  ) {
    super(sqlState.startsWith('28') ? 'AIRLOCK_UPSTREAM_AUTH' : 'AIRLOCK_UPSTREAM_UNAVAILABLE', message, { fatal: true });
  }

  /** The SQLSTATE the client should see, or null for airlock's own. */
  get clientSqlState(): string | null {
    return this.sqlState.startsWith('28') || !/^[0-9A-Z]{5}$/.test(this.sqlState) ? null : this.sqlState;
  }
}

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

/** Sends SSLRequest and reads the one-byte answer. */
function requestTls(plain: Socket, addr: UpstreamAddress): Promise<void> {
  plain.write(encodeSSLRequest());
  return new Promise<void>((resolve, reject) => {
    const done = (e?: AirlockError): void => {
      plain.off('data', onData);
      plain.off('error', onError);
      plain.off('close', onClose);
      plain.pause();
      if (e === undefined) resolve();
      else reject(e);
    };
    const onData = (b: Buffer): void => {
      // Bytes after the answer, before the handshake, would be read as if encrypted (CVE-2021-23222).
      if (b.length !== 1) return done(new AirlockError('AIRLOCK_PROTOCOL', `the upstream at ${where(addr)} sent unexpected bytes in answer to SSLRequest`, { fatal: true }));
      if (b[0] === EncryptionReply.Accept) return done();
      if (b[0] === EncryptionReply.Refuse) return done(unavailable(addr, `the server does not offer TLS (tls: ${addr.tls})`));
      return done(new AirlockError('AIRLOCK_PROTOCOL', `the upstream at ${where(addr)} answered SSLRequest with ${describeCode(b[0] as number)}`, { fatal: true }));
    };
    const onError = (e: Error): void => done(unavailable(addr, `connection lost during TLS negotiation (${e.message})`, e));
    const onClose = (): void => done(unavailable(addr, 'connection closed during TLS negotiation'));
    plain.on('data', onData);
    plain.on('error', onError);
    plain.on('close', onClose);
  });
}

function readCa(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new AirlockError('AIRLOCK_CONFIG_INVALID', `cannot read the upstream CA file ${path}`, { fatal: true, cause: e });
  }
}

function tlsHandshake(plain: Socket, addr: UpstreamAddress): Promise<TLSSocket> {
  const verify = addr.tls === 'verify-full';
  const ca = verify && addr.ca !== undefined ? readCa(addr.ca) : undefined;
  const isIp = /^[\d.]+$|:/.test(addr.host);
  return new Promise<TLSSocket>((resolve, reject) => {
    // With rejectUnauthorized, node checks the chain and (through `host`) the name or IP.
    const s = tlsConnect({
      socket: plain,
      host: addr.host,
      ...(isIp ? {} : { servername: addr.host }),
      rejectUnauthorized: verify,
      ...(ca !== undefined ? { ca } : {}),
    });
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

/** TCP, then TLS as configured, within `timeoutMs`; on time-out the half-open socket is destroyed. */
async function openSocket(addr: UpstreamAddress, timeoutMs: number): Promise<Socket | TLSSocket> {
  const held: { socket: Socket | null } = { socket: null };
  const work = (async (): Promise<Socket | TLSSocket> => {
    const plain = await tcpConnect(addr, held);
    if (addr.tls === 'disable') return plain;
    try {
      await requestTls(plain, addr);
    } catch (e) {
      plain.destroy();
      throw e;
    }
    return tlsHandshake(plain, addr);
  })();
  return withDeadline(work, timeoutMs, () => held.socket?.destroy(), addr);
}

function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => void, addr: UpstreamAddress): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(unavailable(addr, `no session within ${ms} ms`));
    }, ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** Queues the server's frames during startup so the exchange reads as a sequence. */
class StartupFrames {
  private readonly queue: Frame[] = [];
  private waiting: { resolve: (f: Frame) => void; reject: (e: Error) => void } | null = null;
  private error: Error | null = null;
  private readonly reader: FrameReader;
  private readonly onData = (chunk: Buffer): void => {
    try {
      this.reader.push(chunk, (f) => this.deliver(f));
    } catch (e) {
      this.fail(e instanceof Error ? e : new AirlockError('AIRLOCK_PROTOCOL', undefined, { fatal: true }));
    }
  };
  private readonly onEnd = (): void =>
    this.fail(new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', 'the upstream closed the connection during startup', { fatal: true }));
  private readonly onError = (e: Error): void => this.fail(new AirlockError('AIRLOCK_UPSTREAM_LOST', `connection lost during startup (${e.message})`, { fatal: true, cause: e }));

  constructor(private readonly socket: Socket, maxMessageBytes: number) {
    this.reader = new FrameReader({ maxMessageBytes, maxStartupBytes: 0, startup: false });
    socket.on('data', this.onData);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
    socket.resume();
  }

  private deliver(f: Frame): void {
    // Frames are views of the socket's chunk; kept across reads, so copied (startup only).
    const raw = Buffer.from(f.raw);
    const frame: Frame = { type: f.type, raw, payload: raw.subarray(5) };
    const w = this.waiting;
    this.waiting = null;
    if (w !== null) w.resolve(frame);
    else this.queue.push(frame);
  }

  fail(e: Error): void {
    if (this.error === null) this.error = e;
    const w = this.waiting;
    this.waiting = null;
    w?.reject(this.error);
  }

  next(): Promise<Frame> {
    const f = this.queue.shift();
    if (f !== undefined) return Promise.resolve(f);
    if (this.error !== null) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  /** Detaches and pauses; returns the bytes read beyond the last frame taken. */
  finish(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    this.socket.pause();
    return Buffer.concat([...this.queue.map((f) => f.raw), this.reader.drain()]);
  }
}

const md5Hex = (data: string | Buffer): string => createHash('md5').update(data).digest('hex');

/** PostgreSQL's MD5 scheme: "md5" + md5(md5(password || user) || salt). */
function md5Password(password: string, user: string, salt: Buffer): string {
  return `md5${md5Hex(Buffer.concat([Buffer.from(md5Hex(password + user)), salt]))}`;
}

/** Until the caller attaches its own handlers, a socket error must not crash the process; 'close' follows it. */
const ignoreUntilAttached = (): void => undefined;

export async function connectUpstream(opts: UpstreamOptions): Promise<UpstreamConnection> {
  const ms = opts.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const started = Date.now();
  const socket = await openSocket(opts, ms);
  const frames = new StartupFrames(socket, opts.maxMessageBytes);
  const abort = (): void => {
    frames.fail(unavailable(opts, `no session within ${ms} ms`));
    socket.destroy();
  };
  try {
    return await withDeadline(startup(socket, frames, opts), Math.max(1, ms - (Date.now() - started)), abort, opts);
  } catch (e) {
    frames.finish();
    socket.destroy();
    throw e;
  }
}

async function startup(socket: Socket | TLSSocket, frames: StartupFrames, opts: UpstreamOptions): Promise<UpstreamConnection> {
  const params: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.startupParameters ?? {})) if (k !== 'user' && k !== 'database') params[k] = v;
  params.user = opts.username;
  params.database = opts.database;
  socket.write(encodeStartupMessage(params));

  const parameters = new Map<string, string>();
  let backendKey = { pid: 0, secret: 0 };
  let scram: ScramClient | null = null;
  let scramVerified = false;
  for (;;) {
    const f = await frames.next();
    switch (f.type) {
      case MessageCode.Authentication: {
        const req = decodeAuthentication(f.payload);
        switch (req.type) {
          case 'AuthenticationOk':
            // A server that skips the SCRAM final message has not proven it knows the password.
            if (scram !== null && !scramVerified) throw authFailed('the server ended SCRAM without proving its identity');
            break;
          case 'AuthenticationCleartextPassword':
            socket.write(encodePasswordMessage(opts.password.reveal()));
            break;
          case 'AuthenticationMD5Password':
            socket.write(encodePasswordMessage(md5Password(opts.password.reveal(), opts.username, req.salt)));
            break;
          case 'AuthenticationSASL':
            if (!req.mechanisms.includes('SCRAM-SHA-256')) throw authFailed(`no supported SASL mechanism offered (${req.mechanisms.join(', ')})`);
            scram = new ScramClient(opts.password);
            socket.write(encodeSASLInitialResponse('SCRAM-SHA-256', scram.clientFirst()));
            break;
          case 'AuthenticationSASLContinue':
            if (scram === null) throw authFailed('SASLContinue before SASL');
            socket.write(encodeSASLResponse(scram.clientFinal(req.data)));
            break;
          case 'AuthenticationSASLFinal':
            if (scram === null) throw authFailed('SASLFinal before SASL');
            scram.verifyServerFinal(req.data);
            scramVerified = true;
            break;
        }
        break;
      }
      case MessageCode.ParameterStatus: {
        const p = decodeParameterStatus(f.payload);
        parameters.set(p.name, p.value);
        break;
      }
      case MessageCode.BackendKeyData: {
        const k = decodeBackendKeyData(f.payload);
        backendKey = { pid: k.pid, secret: k.secret };
        break;
      }
      case MessageCode.NoticeResponse:
      case MessageCode.NegotiateProtocolVersion:
        break;
      case MessageCode.ErrorResponse: {
        // The server's text names the user at most; it never carries the password we sent.
        const { code, message } = decodeErrorResponse(f.payload).fields;
        throw new UpstreamRefusal(code, `upstream refused the session: ${code} ${message}`);
      }
      case MessageCode.ReadyForQuery: {
        const leftover = frames.finish();
        socket.on('error', ignoreUntilAttached);
        return { socket, parameters, backendKey, leftover, serverVersion: parameters.get('server_version') ?? '' };
      }
      default:
        throw new AirlockError('AIRLOCK_PROTOCOL', `unexpected upstream message ${describeCode(f.type)} during startup`, { fatal: true });
    }
  }
}

/**
 * Sends a CancelRequest for an upstream backend on a fresh connection (TLS as configured)
 * and waits until the server closes it, which it does once the cancel is delivered.
 */
export async function sendCancel(addr: UpstreamAddress, key: { pid: number; secret: number }, timeoutMs = 5_000): Promise<void> {
  const socket = await openSocket(addr, timeoutMs);
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, timeoutMs);
    socket.once('close', () => {
      clearTimeout(t);
      resolve();
    });
    socket.on('error', () => undefined);
    socket.resume();
    socket.write(encodeCancelRequest(key.pid, key.secret));
  });
  socket.destroy();
}
