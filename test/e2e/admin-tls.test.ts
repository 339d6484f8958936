/**
 * `admin.tls` is served: the admin API (tokens, approvals, the console's cookie) answers over
 * HTTPS with the configured certificate, and a plain-HTTP request gets no answer from it.
 * (The key was accepted by the config and ignored: the API ran in clear text.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { readFileSync } from 'node:fs';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { freePort } from '../harness/ports.js';
import { makeTestCerts, type TestCerts } from '../harness/tls.js';

let airlock: RunningAirlock;
let certs: TestCerts;
let port = 0;

beforeAll(async () => {
  certs = makeTestCerts();
  port = await freePort();
  airlock = await startAirlock({ admin: { listen: `127.0.0.1:${port}`, tls: { cert: certs.cert, key: certs.key } } });
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
});

function get(secure: boolean, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const opts = { host: '127.0.0.1', port, path, method: 'GET', ...(secure ? { ca: readFileSync(certs.ca), servername: 'localhost' } : {}) };
    const req = (secure ? httpsRequest : httpRequest)(opts, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function untilUp(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await get(true, '/healthz');
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('admin.tls', () => {
  it('serves the admin API over HTTPS with the configured certificate (verified against its CA)', async () => {
    await untilUp();
    const r = await get(true, '/healthz');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ status: 'ok' });
  });

  it('a plain-HTTP request gets no admin answer', async () => {
    await untilUp();
    const r = await get(false, '/healthz').catch((e: unknown) => e);
    expect(r).toBeInstanceOf(Error);
  });
});
