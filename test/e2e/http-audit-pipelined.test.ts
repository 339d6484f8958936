/**
 * Pipelined write-ahead (issue 17) on the HTTP gateway, through the real daemon against a
 * real upstream that records every request it got. A GET or HEAD is forwarded while its
 * audit record syncs, but the client gets nothing of the answer (status, headers, body)
 * before the record is durable; if the sync fails, the client gets 503 problem+json and
 * nothing of the upstream's answer. Any other method — and every method on a connection with
 * `audit.pipeline_methods: []` — is never forwarded before its record is durable.
 * The daemon's test hooks hold (gate file) or fail (fail file) every audit sync.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { freePort } from '../harness/ports.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { startHttpUpstream, type HttpUpstream } from '../harness/http-upstream.js';

let upstream: HttpUpstream;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let token = '';
const ports = { pipe: 0, sync: 0 };
const dir = mkdtempSync(join(tmpdir(), 'airlock-http-pipelined-'));
const gate = join(dir, 'hold-syncs');
const fail = join(dir, 'fail-syncs');

beforeAll(async () => {
  issuer = await createTestIssuer();
  upstream = await startHttpUpstream();
  ports.pipe = await freePort();
  ports.sync = await freePort();
  const http = (name: 'pipe' | 'sync', extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    name, protocol: 'http', listen: `127.0.0.1:${ports[name]}`, upstream: { base_url: upstream.url }, credentials: { type: 'none' }, allow_groups: ['agents'], ...extra,
  });
  process.env.AIRLOCK_TEST_AUDIT_SYNC_GATE = gate;
  process.env.AIRLOCK_TEST_AUDIT_SYNC_FAIL = fail;
  try {
    airlock = await startAirlock({
      state_dir: join(dir, 'state'),
      auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
      connections: [http('pipe'), http('sync', { audit: { pipeline_methods: [] } })],
    });
  } finally {
    delete process.env.AIRLOCK_TEST_AUDIT_SYNC_GATE;
    delete process.env.AIRLOCK_TEST_AUDIT_SYNC_FAIL;
  }
  token = await issuer.token({ sub: 'claude', groups: ['agents'] }, { ttlSeconds: 600 });
}, 120_000);

afterAll(async () => {
  rmSync(gate, { force: true });
  rmSync(fail, { force: true });
  await airlock?.stop();
  await upstream?.close();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One client connection (one airlock session): opened, and its session started, before a sync is held or failed. */
async function client(name: 'pipe' | 'sync'): Promise<{ send: (method: string, path: string, body?: string) => Promise<Answer>; close: () => void }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const send = (method: string, path: string, body?: string): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: ports[name], method, path, agent, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'text/plain' }) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  expect((await send('GET', '/echo?warm-up')).status).toBe(200);
  return { send, close: () => agent.destroy() };
}

const arrived = (method: string, url: string): number => upstream.received.filter((r) => r.method === method && r.url === url).length;

async function untilArrived(method: string, url: string): Promise<void> {
  while (arrived(method, url) === 0) await new Promise((r) => setTimeout(r, 20));
}

describe('pipelined write-ahead, http', () => {
  for (const method of ['GET', 'HEAD'] as const) {
    it(`a ${method} reaches the upstream while its record syncs; status, headers and body only once it is durable`, async () => {
      const c = await client('pipe');
      try {
        writeFileSync(gate, '');
        const url = `/echo?held-${method}`;
        let delivered = false;
        const answer = c.send(method, url).then((a) => {
          delivered = true;
          return a;
        });
        await untilArrived(method, url);
        // The upstream has answered; the record is not durable: nothing of the answer has been delivered.
        await new Promise((r) => setTimeout(r, 300));
        expect(delivered).toBe(false);
        rmSync(gate);
        const a = await answer;
        expect(a.status).toBe(200);
        expect(a.headers['content-type']).toBe('application/json');
        if (method === 'GET') expect(JSON.parse(a.body).url).toBe(url);
      } finally {
        rmSync(gate, { force: true });
        c.close();
      }
    });
  }

  it('a large answer held for its record: airlock does not read it (backpressure to the upstream), then all of it arrives', async () => {
    const c = await client('pipe');
    try {
      const finished = upstream.bigFinished();
      writeFileSync(gate, '');
      const url = '/big?mb=64';
      const answer = c.send('GET', url);
      await untilArrived('GET', url);
      await new Promise((r) => setTimeout(r, 500));
      // 64 MB is far more than the sockets' buffers hold: the upstream is still writing.
      expect(upstream.bigFinished()).toBe(finished);
      rmSync(gate);
      const a = await answer;
      expect(a.status).toBe(200);
      expect(a.body.length).toBeGreaterThanOrEqual(64 * 1024 * 1024);
      expect(upstream.bigFinished()).toBe(finished + 1);
    } finally {
      rmSync(gate, { force: true });
      c.close();
    }
  });

  it('a GET whose record cannot be synced: 503 problem+json and nothing of the upstream answer; the connection goes on', async () => {
    const c = await client('pipe');
    try {
      writeFileSync(fail, '');
      const a = await c.send('GET', '/echo?unsynced');
      expect(a.status).toBe(503);
      expect(a.headers['content-type']).toMatch(/problem\+json/);
      expect(a.body).not.toContain('unsynced');
      expect(a.headers['x-echo-auth']).toBeUndefined();
      // It was pipelined: the upstream got it, its answer was dropped.
      expect(arrived('GET', '/echo?unsynced')).toBe(1);
      rmSync(fail);
      expect((await c.send('GET', '/echo?after')).status).toBe(200);
    } finally {
      rmSync(fail, { force: true });
      c.close();
    }
  });

  for (const [name, method, body] of [
    ['pipe', 'POST', 'payload'],
    ['pipe', 'PUT', 'payload'],
    ['pipe', 'DELETE', undefined],
    ['sync', 'GET', undefined],
  ] as const) {
    it(`${method} on a connection ${name === 'sync' ? 'with pipeline_methods: []' : 'with the default pipeline_methods'} is never forwarded before its record is durable`, async () => {
      const c = await client(name);
      const url = `/echo?never-${name}-${method}`;
      try {
        writeFileSync(fail, '');
        const a = await c.send(method, url, body);
        expect(a.status).toBe(503);
        rmSync(fail);
        expect(arrived(method, url)).toBe(0);
        // Held, then released: forwarded only after the record is durable.
        writeFileSync(gate, '');
        const later = c.send(method, `${url}-held`, body);
        await new Promise((r) => setTimeout(r, 300));
        expect(arrived(method, `${url}-held`)).toBe(0);
        rmSync(gate);
        expect((await later).status).toBe(200);
        expect(arrived(method, `${url}-held`)).toBe(1);
      } finally {
        rmSync(fail, { force: true });
        rmSync(gate, { force: true });
        c.close();
      }
    });
  }
});
