/**
 * HTTP policy inputs through the real daemon (issue 25, item 5), with curl against a real
 * upstream that records what it received: a method-override header cannot carry a DELETE
 * past a DELETE rule, and path spellings that some upstream reads as /admin (`;` params,
 * a trailing dot or space, NUL, another case) never reach it past an /admin/** rule.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../harness/ports.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { run } from '../harness/clients.js';
import { startHttpUpstream, type HttpUpstream } from '../harness/http-upstream.js';

let upstream: HttpUpstream;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let token = '';
const ports: Record<string, number> = {};

beforeAll(async () => {
  issuer = await createTestIssuer();
  upstream = await startHttpUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'airlock-http-inputs-'));
  for (const c of ['api', 'ov']) ports[c] = await freePort();
  const http = (name: string): Record<string, unknown> => ({ name, protocol: 'http', listen: `127.0.0.1:${ports[name]}`, upstream: { base_url: upstream.url }, credentials: { type: 'none' }, allow_groups: ['agents'] });
  airlock = await startAirlock({
    state_dir: join(dir, 'state'),
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [http('api'), http('ov')],
    rules: [
      { name: 'no-admin-deletes', when: { http: { methods: ['DELETE'], paths: ['/admin/**'] } }, effect: 'deny', reason: 'nobody deletes admin objects' },
      { name: 'no-admin', when: { connections: ['api'], http: { paths: ['/admin/**'] } }, effect: 'deny', reason: 'no admin at all here' },
      { name: 'overrides-on-ov', when: { connections: ['ov'], http: { method_override: true } }, effect: 'allow' },
    ],
  });
  token = await issuer.token({ sub: 'claude', groups: ['agents'] });
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
  await upstream?.close();
});

/** curl sends the target exactly as written; the answer's status and body, and what arrived upstream meanwhile. */
async function curl(conn: string, path: string, args: string[] = []): Promise<{ status: number; body: string; arrived: string[] }> {
  const before = upstream.received.length;
  const r = await run('curl', ['-sS', '--path-as-is', '-o', '-', '-w', '\n%{http_code}', '-H', `Authorization: Bearer ${token}`, ...args, `http://127.0.0.1:${ports[conn]}${path}`]);
  const lines = r.stdout.split('\n');
  const status = Number(lines.pop());
  return { status, body: lines.join('\n'), arrived: upstream.received.slice(before).map((x) => `${x.method} ${x.url}`) };
}

describe('method override headers', () => {
  it('POST /admin/x with X-HTTP-Method-Override: DELETE is refused with 400 where no rule admits overrides', async () => {
    for (const h of ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override', 'X_HTTP_METHOD_OVERRIDE']) {
      const r = await curl('api', '/public/x', ['-X', 'POST', '-H', `${h}: DELETE`]);
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body)).toMatchObject({ code: 'AIRLOCK_PROTOCOL', rule: '(method_override)' });
      expect(r.arrived).toEqual([]);
    }
  });
  it('POST /admin/x?_method=DELETE (Symfony, Laravel) is an override too: 400 here, the DELETE rule where overrides are admitted', async () => {
    const plain = await curl('api', '/public/x?_method=DELETE', ['-X', 'POST']);
    expect(plain.status).toBe(400);
    expect(JSON.parse(plain.body)).toMatchObject({ rule: '(method_override)' });
    const ov = await curl('ov', '/admin/x?_method=DELETE', ['-X', 'POST']);
    expect(JSON.parse(ov.body)).toMatchObject({ rule: 'no-admin-deletes' });
    expect([...plain.arrived, ...ov.arrived]).toEqual([]);
  });

  it('where a rule admits overrides, the override is judged: DELETE meets the deny rule, GET passes with its header', async () => {
    const denied = await curl('ov', '/admin/x', ['-X', 'POST', '-H', 'X-HTTP-Method-Override: DELETE']);
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body)).toMatchObject({ code: 'AIRLOCK_DENIED', rule: 'no-admin-deletes' });
    expect(denied.arrived).toEqual([]);
    const passed = await curl('ov', '/admin/x', ['-X', 'POST', '-H', 'X-HTTP-Method-Override: GET']);
    expect(passed.status).toBe(404);
    expect(passed.arrived).toEqual(['POST /admin/x']);
    expect(upstream.received[upstream.received.length - 1]?.headers['x-http-method-override']).toBe('GET');
  });
});

describe('ambiguous paths never reach the upstream', () => {
  for (const path of ['/admin;x/x', '/public/..;/admin/x', '/admin./x', '/admin%00/x', '/admin%20/x', '/admin%2e/x', '/admin%3b/x']) {
    it(`${path} → 400`, async () => {
      const r = await curl('api', path);
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body)).toMatchObject({ code: 'AIRLOCK_PROTOCOL' });
      expect(r.arrived).toEqual([]);
    });
  }
  it('/ADMIN/x meets the /admin/** rule (paths fold case); DELETE /Admin/x meets the DELETE rule', async () => {
    const r = await curl('api', '/ADMIN/x');
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body)).toMatchObject({ rule: 'no-admin' });
    const d = await curl('ov', '/Admin/x', ['-X', 'DELETE']);
    expect(JSON.parse(d.body)).toMatchObject({ rule: 'no-admin-deletes' });
    expect([...r.arrived, ...d.arrived]).toEqual([]);
  });
  // Review red team: other spellings of the same path — an encoded unreserved letter, encoded dots,
  // raw backslashes (IIS and some frameworks read `\` as `/`), a tab. None may reach the upstream as /admin.
  for (const path of ['/%61dmin/x', '/public/%2e%2e/admin/x', '/public/%2E%2E/%41DMIN/x', '/public\\..\\admin/x', '/admin%09/x', '//admin//x']) {
    it(`${path} never reaches the upstream as an /admin path`, async () => {
      const r = await curl('api', path);
      expect([400, 403]).toContain(r.status);
      expect(r.arrived).toEqual([]);
    });
  }
  it('X-Original-URL / X-Rewrite-URL (another path for IIS, Zend, older Symfony) → 400', async () => {
    for (const h of ['X-Original-URL', 'X-Rewrite-URL']) {
      const r = await curl('api', '/public/x', ['-H', `${h}: /admin/x`]);
      expect(r.status).toBe(400);
      expect(r.arrived).toEqual([]);
    }
  });

  it('DELETE /admin (no trailing slash) meets the DELETE /admin/** rule', async () => {
    const r = await curl('ov', '/admin', ['-X', 'DELETE']);
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body)).toMatchObject({ rule: 'no-admin-deletes' });
    expect(r.arrived).toEqual([]);
  });

  it('an ordinary path still passes', async () => {
    const r = await curl('api', '/public/x');
    expect(r.arrived).toEqual(['GET /public/x']);
  });
});
