/**
 * Codec fuzzing through the real daemon (issue 23 step 2): a raw socket finishes a valid
 * startup (PostgreSQL and MySQL: authenticated with a token; WebSocket: upgraded; SSH: the
 * version exchange), then sends fast-check-generated garbage that ends in a frame no reader
 * may accept. The session must end with the protocol's own error (PG FATAL ErrorResponse,
 * MySQL ERR packet, WebSocket close frame, SSH disconnect), every byte airlock sent must be
 * well framed, and the daemon must keep serving: a fresh session works afterwards.
 * Seeded (AIRLOCK_FUZZ_SEED); sessions per protocol scale with AIRLOCK_FUZZ_RUNS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import pg from 'pg';
import mysql from 'mysql2/promise';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { startAppDb, type AppDb } from '../harness/appdb.js';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { freePort } from '../harness/ports.js';
import { FUZZ_SEED, fuzzRuns } from '../harness/sql-gen.js';
import { encodePasswordMessage, encodeStartupMessage } from '../../protocols/postgres/codec/frontend.js';
import { framePacket } from '../../protocols/mysql/codec/framing.js';
import { Capability } from '../../protocols/mysql/codec/codes.js';
import { encodeHandshakeResponse41 } from '../../protocols/mysql/codec/messages/handshake.js';
import { encodeFrame } from '../../protocols/http/websocket-frames.js';

/** Sessions per protocol: 8 in `make test`, AIRLOCK_FUZZ_RUNS / 100 in `make fuzz`. */
const SESSIONS = Math.max(1, Math.ceil(fuzzRuns(800) / 100));
const PASSWORD = 'codec-Fuzz-upstream-pw-23';

let db: AppDb;
let maria: LocalMaria;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let wsServer: ReturnType<typeof createServer>;
let token = '';
const ports: Record<string, number> = {};

beforeAll(async () => {
  issuer = await createTestIssuer();
  db = await startAppDb({ password: PASSWORD });
  maria = await startLocalMaria({ password: PASSWORD, setupSql: 'CREATE TABLE t (id int)' });
  wsServer = createServer();
  const wss = new WebSocketServer({ server: wsServer });
  wss.on('connection', (ws) => ws.on('message', (data: RawData, isBinary: boolean) => ws.send(data, { binary: isBinary })));
  await new Promise<void>((r) => wsServer.listen(0, '127.0.0.1', () => r()));
  const upPort = (wsServer.address() as { port: number }).port;
  for (const c of ['pg', 'my', 'ws', 'ssh', 'closed']) ports[c] = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'airlock-codec-fuzz-'));
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, '');
  airlock = await startAirlock({
    state_dir: join(dir, 'state'),
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [
      db.connection('pg', ports.pg ?? 0, { allow_groups: ['agents'] }),
      maria.connection('my', ports.my ?? 0, { allow_groups: ['agents'], limits: { max_message_bytes: 1 << 20 } }),
      { name: 'ws', protocol: 'http', listen: `127.0.0.1:${ports.ws}`, upstream: { base_url: `http://127.0.0.1:${upPort}` }, credentials: { type: 'none' }, allow_groups: ['agents'], websocket: { max_frame_bytes: 4096 } },
      { name: 'ssh', protocol: 'ssh', listen: `127.0.0.1:${ports.ssh}`, upstream: { host: '127.0.0.1', port: ports.closed, known_hosts: knownHosts }, credentials: { type: 'static', password: 'p' }, allow_groups: ['agents'], allowed_logins: { '*': ['u'] } },
    ],
    rules: [{ name: 'streams', when: { connections: ['ws'], http: { websocket: true } }, effect: 'allow' }],
  });
  token = await issuer.token({ sub: 'fuzzer', groups: ['agents'] });
}, 240_000);

afterAll(async () => {
  await airlock?.stop();
  await maria?.stop();
  await db?.upstream.stop();
  await new Promise<void>((r) => (wsServer === undefined ? r() : wsServer.close(() => r())));
});

/** A raw client: bytes received so far, a wait for a condition on them, and the close. */
class Raw {
  readonly socket: Socket;
  private got: Buffer[] = [];
  private waiters: Array<() => void> = [];
  readonly closed: Promise<void>;

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (c: Buffer) => {
      this.got.push(c);
      for (const w of this.waiters) w();
    });
    this.socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => this.socket.on('close', () => {
      resolve();
      for (const w of this.waiters) w();
    }));
  }

  get bytes(): Buffer {
    return Buffer.concat(this.got);
  }

  /** Resolves with the bytes once test(bytes) is true; rejects if the socket closes first. */
  until(test: (b: Buffer) => boolean): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const b = this.bytes;
        if (test(b)) resolve(b);
        else if (this.socket.destroyed) reject(new Error(`closed before the expected reply; got ${b.toString('hex').slice(0, 200)}`));
      };
      this.waiters.push(check);
      check();
    });
  }
}

const seeds = (n: number): number[] => Array.from({ length: n }, (_, i) => FUZZ_SEED + i);
const sample = <T>(arb: fc.Arbitrary<T>, seed: number): T => fc.sample(arb, { seed, numRuns: 1 })[0] as T;
const junk = (max: number): fc.Arbitrary<Buffer> =>
  fc.array(fc.oneof(fc.constantFrom(0x00, 0xff, 0xfe, 0xfb, 0x7f), fc.integer({ min: 0, max: 255 })), { maxLength: max }).map((a) => Buffer.from(a));

// ---------------------------------------------------------------- PostgreSQL

/** Typed frames, in order; null if the bytes are not a sequence of well-formed frames (an incomplete last one is allowed). */
function pgFrames(b: Buffer): Array<{ type: number; payload: Buffer }> | null {
  const out: Array<{ type: number; payload: Buffer }> = [];
  let off = 0;
  while (off + 5 <= b.length) {
    const len = b.readInt32BE(off + 1);
    if (len < 4) return null;
    if (off + 1 + len > b.length) break;
    out.push({ type: b[off] as number, payload: b.subarray(off + 5, off + 1 + len) });
    off += 1 + len;
  }
  return out;
}

async function pgAuthenticated(): Promise<Raw> {
  const r = new Raw(ports.pg ?? 0);
  r.socket.write(encodeStartupMessage({ user: 'fuzzer', database: 'appdb' }));
  await r.until((b) => b.length >= 9 && b[0] === 0x52);
  r.socket.write(encodePasswordMessage(token));
  await r.until((b) => (pgFrames(b) ?? []).some((f) => f.type === 0x5a));
  return r;
}

/** Random client frames (never Terminate) and then a header no reader accepts. */
const pgGarbage = fc.tuple(
  fc.array(fc.tuple(fc.constantFrom(...[...'QPBDECSHdcfFp'].map((c) => c.charCodeAt(0))), junk(40)), { maxLength: 6 }),
  junk(30),
  fc.constantFrom('type0', 'huge', 'short'),
).map(([frames, tail, end]) => {
  const parts = frames.map(([type, body]) => {
    const f = Buffer.alloc(5 + body.length);
    f[0] = type;
    f.writeInt32BE(4 + body.length, 1);
    body.copy(f, 5);
    return f;
  });
  const bad = Buffer.alloc(5);
  if (end === 'type0') bad.writeInt32BE(4, 1);
  else {
    bad[0] = 0x51;
    bad.writeInt32BE(end === 'huge' ? 0x7fffffff : 3, 1);
  }
  return { parts, bad, tail };
});

describe('PostgreSQL: garbage after an authenticated startup', () => {
  it.each(seeds(SESSIONS))('seed %i: the session ends with a FATAL ErrorResponse, well framed; the daemon serves the next session', async (seed) => {
    const g = sample(pgGarbage, seed);
    const r = await pgAuthenticated();
    const before = r.bytes.length;
    r.socket.write(Buffer.concat([...g.parts, g.bad, g.tail]));
    await r.closed;
    const after = pgFrames(r.bytes.subarray(before));
    expect(after, 'airlock sent bytes that are not PostgreSQL frames').not.toBeNull();
    const fatal = (after ?? []).filter((f) => f.type === 0x45 && f.payload.includes(Buffer.from('\0VFATAL\0')));
    expect(fatal.length).toBeGreaterThan(0);
    expect(fatal.some((f) => f.payload.includes(Buffer.from('C08P01\0')))).toBe(true);
    const c = new pg.Client({ host: '127.0.0.1', port: ports.pg, user: 'fuzzer', password: token, database: 'appdb' });
    await c.connect();
    try {
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });
});

// ---------------------------------------------------------------- MySQL

function myPackets(b: Buffer): Array<{ seq: number; payload: Buffer }> {
  const out: Array<{ seq: number; payload: Buffer }> = [];
  let off = 0;
  while (off + 4 <= b.length) {
    const len = b.readUIntLE(off, 3);
    if (off + 4 + len > b.length) break;
    out.push({ seq: b[off + 3] as number, payload: b.subarray(off + 4, off + 4 + len) });
    off += 4 + len;
  }
  return out;
}

async function myAuthenticated(): Promise<Raw> {
  const r = new Raw(ports.my ?? 0);
  await r.until((b) => myPackets(b).length >= 1);
  const caps = Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.CONNECT_WITH_DB;
  r.socket.write(framePacket(encodeHandshakeResponse41({ capabilities: caps, maxPacketSize: 1 << 24, characterSet: 45, username: 'fuzzer', authResponse: Buffer.from(`${token}\0`), database: 'appdb', authPluginName: 'mysql_clear_password', attributes: [] }), 1));
  const second = myPackets(await r.until((b) => myPackets(b).length >= 2))[1];
  if (second?.payload[0] === 0xfe) {
    // AuthSwitchRequest to the clear-text plugin: the token again.
    r.socket.write(framePacket(Buffer.from(`${token}\0`), second.seq + 1));
    const third = myPackets(await r.until((b) => myPackets(b).length >= 3))[2];
    expect(third?.payload[0]).toBe(0x00);
  } else expect(second?.payload[0]).toBe(0x00);
  return r;
}

/** Random commands (never COM_QUIT or COM_PROCESS_KILL) with random sequence ids, then a packet over the 1 MiB cap. */
const myGarbage = fc.tuple(
  fc.array(fc.tuple(fc.integer({ min: 0, max: 0x20 }).filter((c) => c !== 0x01 && c !== 0x0c), junk(40), fc.oneof(fc.constant(0), fc.nat({ max: 255 }))), { maxLength: 6 }),
  junk(30),
).map(([cmds, tail]) => {
  const parts = cmds.map(([cmd, body, seq]) => framePacket(Buffer.concat([Buffer.from([cmd]), body]), seq));
  const bad = Buffer.from([0xff, 0xff, 0xfe, 0x00]);
  return { parts, bad, tail };
});

describe('MySQL: garbage after an authenticated handshake', () => {
  it.each(seeds(SESSIONS))('seed %i: the session ends with an ERR packet, well framed; the daemon serves the next session', async (seed) => {
    const g = sample(myGarbage, seed);
    const r = await myAuthenticated();
    const before = r.bytes.length;
    r.socket.write(Buffer.concat([...g.parts, g.bad, g.tail]));
    await r.closed;
    const rest = r.bytes.subarray(before);
    const packets = myPackets(rest);
    expect(packets.reduce((n, p) => n + 4 + p.payload.length, 0), 'airlock sent bytes that are not MySQL packets').toBe(rest.length);
    expect(packets.at(-1)?.payload[0]).toBe(0xff);
    const c = await mysql.createConnection({ host: '127.0.0.1', port: ports.my, user: 'fuzzer', password: token, database: 'appdb', enableCleartextPlugin: true });
    try {
      const [rows] = await c.query('SELECT 1 AS one');
      expect(rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });
});

// ---------------------------------------------------------------- WebSocket

/** Server frames (unmasked), in order; null if not well framed. */
function wsFrames(b: Buffer): Array<{ opcode: number; payload: Buffer }> | null {
  const out: Array<{ opcode: number; payload: Buffer }> = [];
  let off = 0;
  while (off + 2 <= b.length) {
    if (((b[off + 1] as number) & 0x80) !== 0) return null;
    let len = (b[off + 1] as number) & 0x7f;
    let head = 2;
    if (len === 126) {
      if (off + 4 > b.length) break;
      len = b.readUInt16BE(off + 2);
      head = 4;
    } else if (len === 127) {
      if (off + 10 > b.length) break;
      len = Number(b.readBigUInt64BE(off + 2));
      head = 10;
    }
    if (off + head + len > b.length) break;
    out.push({ opcode: (b[off] as number) & 0x0f, payload: b.subarray(off + head, off + head + len) });
    off += head + len;
  }
  return out;
}

async function wsUpgraded(): Promise<Raw> {
  const r = new Raw(ports.ws ?? 0);
  const key = randomBytes(16).toString('base64');
  r.socket.write(`GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${token}\r\n\r\n`);
  const head = await r.until((b) => b.includes('\r\n\r\n'));
  expect(head.toString('latin1')).toMatch(/^HTTP\/1\.1 101/);
  return r;
}

/** Random client frames (masked, well-formed or not), then an unmasked one, which §5.1 forbids. */
const wsGarbage = fc.tuple(
  fc.array(fc.oneof(
    fc.tuple(fc.constantFrom('text' as const, 'binary' as const, 'ping' as const, 'pong' as const), junk(60)).map(([opcode, payload]) => encodeFrame({ fin: true, opcode, payload, mask: true })),
    junk(12),
  ), { maxLength: 5 }),
  junk(30),
).map(([parts, tail]) => ({ parts, bad: Buffer.from([0x82, 0x01, 0x00]), tail }));

describe('WebSocket: garbage after an upgrade', () => {
  it.each(seeds(SESSIONS))('seed %i: the session ends with a close frame, well framed; the daemon serves the next session', async (seed) => {
    const g = sample(wsGarbage, seed);
    const r = await wsUpgraded();
    const before = r.bytes.indexOf('\r\n\r\n') + 4;
    r.socket.write(Buffer.concat([...g.parts, g.bad, g.tail]));
    await r.closed;
    const frames = wsFrames(r.bytes.subarray(before));
    expect(frames, 'airlock sent bytes that are not WebSocket frames').not.toBeNull();
    const close = (frames ?? []).find((f) => f.opcode === 0x8);
    expect(close).toBeDefined();
    expect(close?.payload.length === 0 || (close?.payload.readUInt16BE(0) ?? 0) >= 1000).toBe(true);
    const ws = new WebSocket(`ws://127.0.0.1:${ports.ws}/stream`, { headers: { authorization: `Bearer ${token}` } });
    try {
      const echoed = await new Promise<string>((resolve, reject) => {
        ws.on('open', () => ws.send('still here'));
        ws.on('message', (d: RawData) => resolve(String(d)));
        ws.on('error', reject);
      });
      expect(echoed).toBe('still here');
    } finally {
      ws.close();
    }
  });
});

// ---------------------------------------------------------------- SSH

describe('SSH: garbage after the version exchange', () => {
  it.each(seeds(SESSIONS))('seed %i: the connection is closed; the daemon greets the next session', async (seed) => {
    const g = sample(junk(400), seed);
    const r = new Raw(ports.ssh ?? 0);
    await r.until((b) => b.includes('\r\n'));
    expect(r.bytes.toString('latin1')).toMatch(/^SSH-2\.0-/);
    // A packet length no implementation accepts follows the garbage.
    r.socket.write(Buffer.concat([Buffer.from('SSH-2.0-fuzz\r\n'), g, Buffer.from([0xff, 0xff, 0xff, 0xf0]), randomBytes(64)]));
    await r.closed;
    const next = new Raw(ports.ssh ?? 0);
    const banner = await next.until((b) => b.includes('\r\n'));
    expect(banner.toString('latin1')).toMatch(/^SSH-2\.0-/);
    next.socket.destroy();
  });
});
