/**
 * `airlock sessions kill` reaches SSH and HTTP sessions too (issue 18), on one embedded node:
 * the OpenSSH client's exec and pty shell end with exit status 255 and the reason on stderr; an
 * HTTP keep-alive connection is closed (its next request opens a new session on a new
 * connection); a request in flight is cut; a WebSocket gets close code 1008 naming who ended it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { freePort } from '../harness/ports.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { startSshd, sshdAvailable, type SshServer } from '../harness/sshd.js';
import { startHttpUpstream, type HttpUpstream } from '../harness/http-upstream.js';

const KEY = 'sk-kill-test-7a6b5c4d3e2f1a0b';
const available = sshdAvailable();
let sshd: SshServer;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let upstream: HttpUpstream;
let wss: WebSocketServer;
let adminUrl = '';
const ports: Record<string, number> = {};
let dana = '';
let olga = '';

beforeAll(async () => {
  if (!available) return;
  issuer = await createTestIssuer();
  sshd = await startSshd();
  upstream = await startHttpUpstream();
  wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  wss.on('connection', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const wsPort = (wss.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), 'airlock-kill-ssh-http-'));
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'key'), `${KEY}\n`, { mode: 0o600 });
  for (const c of ['web1', 'api', 'ws']) ports[c] = await freePort();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  const key = { type: 'header', name: 'x-api-key', value: `\${file:${join(dir, 'key')}}` };
  airlock = await startAirlock({
    state_dir: join(dir, 'state'),
    admin: { listen: `127.0.0.1:${adminPort}` },
    audit: { auditors: ['admins'] },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [
      {
        name: 'web1',
        protocol: 'ssh',
        listen: `127.0.0.1:${ports.web1}`,
        upstream: { host: '127.0.0.1', port: sshd.port, known_hosts: sshd.knownHostsFile },
        credentials: { type: 'ssh-certificate', ca_key: `\${file:${sshd.caKeyFile}}`, ttl: '5m' },
        allow_groups: ['dev'],
        allowed_logins: { dev: [sshd.user] },
      },
      { name: 'api', protocol: 'http', listen: `127.0.0.1:${ports.api}`, upstream: { base_url: upstream.url }, credentials: key, allow_groups: ['dev'] },
      { name: 'ws', protocol: 'http', listen: `127.0.0.1:${ports.ws}`, upstream: { base_url: `http://127.0.0.1:${wsPort}` }, credentials: key, allow_groups: ['dev'] },
    ],
    rules: [{ name: 'sockets', when: { connections: ['ws'], http: { websocket: true } }, effect: 'allow' }],
  });
  dana = await issuer.token({ sub: 'dana', groups: ['dev'] });
  olga = await issuer.token({ sub: 'olga', groups: ['admins'] });
}, 120_000);

afterAll(async () => {
  if (!available) return;
  await airlock?.stop();
  await sshd?.stop();
  await upstream?.close();
  wss?.close();
});

/** Polls `probe` until it holds; the bound only keeps a broken build from hanging the suite. */
async function until<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 300; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`never happened: ${what}`);
}

interface Listed {
  session: string;
  connection: string;
  endedAt: string | null;
  endReason: string | null;
}

async function sessions(connection: string): Promise<Listed[]> {
  const r = await fetch(`${adminUrl}/v1/sessions?subject=dana&connection=${connection}`, { headers: { authorization: `Bearer ${olga}` } });
  return ((await r.json()) as { sessions: Listed[] }).sessions;
}

/** The one open session of dana on `connection`. */
function openSession(connection: string): Promise<string> {
  return until(async () => (await sessions(connection)).find((s) => s.endedAt === null)?.session, `an open ${connection} session`);
}

async function kill(id: string): Promise<void> {
  const res = await fetch(`${adminUrl}/v1/sessions/${id}/kill`, {
    method: 'POST',
    headers: { authorization: `Bearer ${olga}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reason: 'incident 42' }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  expect(await res.json()).toMatchObject({ killed: { session: id, endReason: 'killed by olga' } });
}

const SSH_OPTS = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no'];

describe.skipIf(!available)('sessions kill: SSH', () => {
  for (const mode of ['exec', 'pty shell'] as const) {
    it(`ends an open ssh ${mode}: the client exits 255 with the reason on stderr`, async () => {
      const args = mode === 'exec' ? [`${sshd.user}@127.0.0.1`, 'echo started; sleep 120'] : ['-tt', `${sshd.user}@127.0.0.1`];
      const child = spawn('sshpass', ['-e', 'ssh', ...SSH_OPTS, '-p', String(ports.web1), ...args], { env: { ...process.env, SSHPASS: dana } });
      child.stdin.on('error', () => undefined);
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      if (mode === 'pty shell') child.stdin.write('echo sh""ell-started\n');
      await until(async () => (/^(started|shell-started)\r?$/m.test(out) ? true : undefined), `ssh ${mode} started`);
      const id = await openSession('web1');
      await kill(id);
      const code = await exited;
      expect(code).toBe(255);
      expect(`${out}${err}`, JSON.stringify({ out, err })).toContain("airlock: an administrator (olga) ended the session");
      expect((await sessions('web1')).find((s) => s.session === id)).toMatchObject({ endReason: 'killed by olga' });
      child.stdin.destroy();
    }, 60_000);
  }
});

describe.skipIf(!available)('sessions kill: HTTP', () => {
  it('closes a keep-alive connection: its next request opens a new session on a new connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets: Socket[] = [];
    const get = (path: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = http.get(`http://127.0.0.1:${ports.api}${path}`, { agent, headers: { authorization: `Bearer ${dana}` } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('socket', (s: Socket) => {
          if (!sockets.includes(s)) sockets.push(s);
        });
        req.on('error', reject);
      });
    try {
      expect((await get('/echo')).status).toBe(200);
      expect((await get('/echo')).status).toBe(200);
      expect(sockets).toHaveLength(1);
      const first = sockets[0] as Socket;
      let closed = first.destroyed;
      first.once('close', () => (closed = true));
      const id = await openSession('api');
      await kill(id);
      // The client keeps asking on its keep-alive connection (never idle long enough for the
      // server's keep-alive timeout): only airlock closing it makes the agent open another.
      await until(async () => {
        await get('/echo').catch(() => undefined);
        return closed ? true : undefined;
      }, 'the killed session\'s connection closed by airlock');
      expect((await get('/echo')).status).toBe(200);
      expect(sockets.length).toBeGreaterThanOrEqual(2);
      const after = await sessions('api');
      expect(after.find((s) => s.session === id)).toMatchObject({ endReason: 'killed by olga' });
      expect(after.filter((s) => s.endedAt === null).map((s) => s.session)).not.toContain(id);
    } finally {
      agent.destroy();
    }
  }, 60_000);

  it('cuts a request in flight', async () => {
    const failed = new Promise<Error | null>((resolve) => {
      const req = http.get(`http://127.0.0.1:${ports.api}/slow?ms=120000`, { agent: false, headers: { authorization: `Bearer ${dana}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(null));
      });
      req.on('error', (e) => resolve(e));
    });
    const id = await until(async () => (await sessions('api')).find((s) => s.endedAt === null)?.session, 'the slow request\'s session');
    await kill(id);
    expect(await failed).toMatchObject({ message: expect.stringMatching(/socket hang up|ECONNRESET/) });
  }, 60_000);

  it('closes a WebSocket with 1008 naming who ended it', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${ports.ws}/stream`, { headers: { authorization: `Bearer ${dana}` } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send('ping-1');
    await new Promise<void>((r) => ws.once('message', () => r()));
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    const id = await openSession('ws');
    await kill(id);
    const c = await closed;
    expect(c.code).toBe(1008);
    expect(c.reason).toBe('airlock: an administrator (olga) ended the session');
    expect((await sessions('ws')).find((s) => s.session === id)).toMatchObject({ endReason: 'killed by olga' });
    expect(airlock.output()).not.toContain(KEY);
    expect(airlock.output()).not.toContain(dana);
  }, 60_000);
});
