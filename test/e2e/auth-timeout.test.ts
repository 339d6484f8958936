/**
 * auth_timeout on every listener (issue 25, item 6), through the real daemon: a client that
 * connects and does not finish authenticating is told so in its protocol's own error form
 * (PG FATAL 08P01, MySQL ERR 1043, HTTP 408 problem+json, an SSH disconnect) and closed.
 * HTTP slow clients drip a header byte at a time and must be closed too. The tests never
 * measure speed: each waits only for "closed" (a short auth_timeout keeps them quick).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { freePort } from '../harness/ports.js';
import { makeTestCerts } from '../harness/tls.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { startHttpUpstream, type HttpUpstream } from '../harness/http-upstream.js';

let issuer: TestIssuer;
let airlock: RunningAirlock;
let upstream: HttpUpstream;
let dir = '';
let token = '';
const ports: Record<string, number> = {};

beforeAll(async () => {
  issuer = await createTestIssuer();
  upstream = await startHttpUpstream();
  dir = mkdtempSync(join(tmpdir(), 'airlock-auth-timeout-'));
  for (const c of ['pg', 'my', 'ssh', 'web', 'webtls', 'closed']) ports[c] = await freePort();
  const certs = makeTestCerts();
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, '');
  const nobody = { host: '127.0.0.1', port: ports.closed };
  const timeout = { auth_timeout: '1s' };
  airlock = await startAirlock({
    state_dir: join(dir, 'state'),
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [
      { name: 'pg', protocol: 'postgres', listen: `127.0.0.1:${ports.pg}`, upstream: { ...nobody, database: 'x' }, credentials: { type: 'static', username: 'u', password: 'p' }, allow_groups: ['agents'], ...timeout },
      { name: 'my', protocol: 'mysql', listen: `127.0.0.1:${ports.my}`, upstream: { ...nobody, database: 'x' }, credentials: { type: 'static', username: 'u', password: 'p' }, allow_groups: ['agents'], ...timeout },
      { name: 'ssh', protocol: 'ssh', listen: `127.0.0.1:${ports.ssh}`, upstream: { ...nobody, known_hosts: knownHosts }, credentials: { type: 'static', password: 'p' }, allow_groups: ['agents'], allowed_logins: { '*': ['u'] }, ...timeout },
      { name: 'web', protocol: 'http', listen: `127.0.0.1:${ports.web}`, upstream: { base_url: upstream.url }, credentials: { type: 'none' }, allow_groups: ['agents'], ...timeout },
      { name: 'webtls', protocol: 'http', listen: `127.0.0.1:${ports.webtls}`, tls: { cert: certs.cert, key: certs.key }, upstream: { base_url: upstream.url }, credentials: { type: 'none' }, allow_groups: ['agents'], ...timeout },
    ],
  });
  token = await issuer.token({ sub: 'claude', groups: ['agents'] });
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
  await upstream?.close();
});

/** A raw client: what it received until the server closed the connection. */
function rawClient(port: number, opening: Buffer | string = ''): { socket: Socket; closed: Promise<Buffer> } {
  const socket = connect(port, '127.0.0.1');
  const got: Buffer[] = [];
  socket.on('data', (c: Buffer) => got.push(c));
  socket.on('error', () => undefined);
  if (opening.length > 0) socket.write(opening);
  const closed = new Promise<Buffer>((resolve) => socket.on('close', () => resolve(Buffer.concat(got))));
  return { socket, closed };
}

/** PostgreSQL StartupMessage, protocol 3.0 (protocol.html §55.7). */
function pgStartup(user: string): Buffer {
  const body = Buffer.concat([Buffer.from([0, 3, 0, 0]), Buffer.from(`user\0${user}\0database\0x\0\0`)]);
  const len = Buffer.alloc(4);
  len.writeInt32BE(body.length + 4);
  return Buffer.concat([len, body]);
}

describe('a client that does not authenticate within auth_timeout is closed, with its protocol\'s error', () => {
  it('postgres: a client stuck at the password prompt gets FATAL 08P01 naming auth_timeout', async () => {
    const { closed } = rawClient(ports.pg ?? 0, pgStartup('claude'));
    const got = await closed;
    expect(got[0]).toBe(0x52); // 'R' AuthenticationCleartextPassword came first
    const text = got.toString('latin1');
    expect(text).toContain('SFATAL');
    expect(text).toContain('C08P01');
    expect(text).toContain('auth_timeout');
  });

  it('postgres: a client that sends nothing at all is closed too', async () => {
    const { closed } = rawClient(ports.pg ?? 0);
    expect((await closed).toString('latin1')).toContain('C08P01');
  });

  it('mysql: a client that never answers the handshake gets ERR 1043', async () => {
    const { closed } = rawClient(ports.my ?? 0);
    const got = await closed;
    // the server's greeting (seq 0), then an ERR packet (0xff, error code 1043 little-endian)
    const err = got.indexOf(Buffer.from([0xff, 1043 & 0xff, 1043 >> 8]));
    expect(err).toBeGreaterThan(0);
    expect(got.toString('latin1')).toContain('auth_timeout');
  });

  it('ssh: a client (ssh2) that never answers the keyboard-interactive prompt is disconnected', async () => {
    const client = new ssh2.Client();
    const prompted = new Promise<void>((resolve) => client.on('keyboard-interactive', () => resolve()));
    const closed = new Promise<void>((resolve) => client.on('close', () => resolve()));
    client.on('error', () => undefined);
    client.connect({ host: '127.0.0.1', port: ports.ssh ?? 0, username: 'u', tryKeyboard: true, authHandler: ['keyboard-interactive'], readyTimeout: 60_000 });
    await prompted; // the token prompt arrived; it is never answered
    await closed;
  });

  it('ssh: a client that sends only its version string is closed', async () => {
    const { closed } = rawClient(ports.ssh ?? 0, 'SSH-2.0-slowloris\r\n');
    expect((await closed).toString('latin1')).toMatch(/^SSH-2\.0-airlock/);
  });

  it('http: 300 slow clients dripping a header byte at a time are all answered 408 and closed', async () => {
    const request = `GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n${'X-Pad: y\r\n'.repeat(200)}\r\n`;
    const clients = Array.from({ length: 300 }, () => rawClient(ports.web ?? 0));
    let i = 0;
    const drip = setInterval(() => {
      for (const c of clients) if (!c.socket.destroyed && i < request.length) c.socket.write(request[i] ?? '');
      i++;
    }, 250);
    try {
      const answers = await Promise.all(clients.map((c) => c.closed));
      for (const a of answers) {
        expect(a.toString()).toMatch(/^HTTP\/1\.1 408/);
        expect(a.toString()).toContain('AIRLOCK_AUTH_TIMEOUT');
      }
    } finally {
      clearInterval(drip);
    }
    expect(i).toBeLessThan(request.length); // none got to finish its header block
  });

  it('http: a connection that sends nothing is answered 408 and closed', async () => {
    const { closed } = rawClient(ports.web ?? 0);
    expect((await closed).toString()).toMatch(/^HTTP\/1\.1 408/);
  });

  it('http: a keep-alive connection with no valid token is closed once auth_timeout has passed', async () => {
    const { socket, closed } = rawClient(ports.web ?? 0);
    const ask = (): void => void socket.write('GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer not-a-token\r\n\r\n');
    ask();
    const again = setInterval(() => !socket.destroyed && ask(), 300);
    try {
      const got = (await closed).toString();
      expect(got).toMatch(/^HTTP\/1\.1 401/);
      expect(got).not.toContain('200 OK');
    } finally {
      clearInterval(again);
    }
  });

  it('https: a client that never starts its TLS handshake is closed', async () => {
    const { closed } = rawClient(ports.webtls ?? 0);
    await closed;
  });

  it('https: a client that completes TLS and then sends nothing is answered 408 and closed', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: ports.webtls ?? 0, rejectUnauthorized: false });
    const got: Buffer[] = [];
    socket.on('data', (c: Buffer) => got.push(c));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.on('close', () => resolve()));
    expect(Buffer.concat(got).toString()).toMatch(/^HTTP\/1\.1 408/);
  });

  it('http: an authenticated keep-alive connection is served past auth_timeout, request after request', async () => {
    const { socket, closed } = rawClient(ports.web ?? 0);
    let got = '';
    socket.on('data', (c: Buffer) => (got += c.toString()));
    const answers = (): number => got.split('HTTP/1.1 200').length - 1;
    for (let n = 1; n <= 6; n++) {
      socket.write(`GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      while (answers() < n) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300)); // six of these outlast the 1 s auth_timeout
    }
    expect(socket.destroyed).toBe(false);
    socket.end();
    await closed;
  });

  it('http: an authenticated client is served as before', async () => {
    const r = await fetch(`http://127.0.0.1:${ports.web}/echo`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
  });
});
