/**
 * What comes back through the HTTP gateway (issue 9), through the real daemon with curl and
 * Node's fetch: JSON by JSON paths and detectors (plain, gzip, brotli), text and
 * Server-Sent Events masked as they stream (across chunk and event boundaries), a JSON
 * answer over the whole-body cap, and the injected credential scrubbed from every header
 * and body — even with no mask rule, even in a binary body of fixed length.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../harness/ports.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { run } from '../harness/clients.js';
import { startHttpUpstream, type HttpUpstream } from '../harness/http-upstream.js';

const SECRET = 'sk-live-5e4d3c2b1a09f8e7d6c5b4';
let upstream: HttpUpstream;
let issuer: TestIssuer;
let airlock: RunningAirlock;
const ports: Record<string, number> = {};
const tokens: Record<string, string> = {};
const url = (conn: string, path: string): string => `http://127.0.0.1:${ports[conn]}${path}`;
const auth = (who: string): Record<string, string> => ({ authorization: `Bearer ${tokens[who] ?? ''}` });

beforeAll(async () => {
  issuer = await createTestIssuer();
  upstream = await startHttpUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'airlock-http-mask-'));
  writeFileSync(join(dir, 'key'), `${SECRET}\n`, { mode: 0o600 });
  for (const c of ['api', 'paths', 'raw']) ports[c] = await freePort();
  const http = (name: string, credentials: Record<string, unknown>): Record<string, unknown> => ({
    name, protocol: 'http', listen: `127.0.0.1:${ports[name]}`, upstream: { base_url: upstream.url }, credentials, allow_groups: ['agents'], record: { body_bytes: 2048 },
  });
  const key = { type: 'header', name: 'Authorization', value: `Bearer \${file:${join(dir, 'key')}}` };
  airlock = await startAirlock({
    state_dir: join(dir, 'state'),
    admin: { listen: `127.0.0.1:${await freePort()}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [http('api', key), http('paths', key), http('raw', { type: 'header', name: 'x-api-key', value: `\${file:${join(dir, 'key')}}` })],
    rules: [
      { name: 'pii-for-support', when: { groups: ['support'], connections: ['api', 'paths'] }, effect: 'mask', detect: ['email', 'credit_card'], method: 'redact' },
      { name: 'names-for-support', when: { groups: ['support'], connections: ['paths'] }, effect: 'mask', json_paths: ['$.data[*].name'], method: 'partial', keep: 1 },
    ],
  });
  tokens.agent = await issuer.token({ sub: 'claude', groups: ['agents'] });
  tokens.support = await issuer.token({ sub: 'sam', groups: ['agents', 'support'] });
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
  await upstream?.close();
});

interface Users {
  data: Array<{ name: string; email: string; card: string | number; note: string }>;
}

describe('JSON', () => {
  it('by JSON paths and detectors on every value, plain, gzip and brotli, answered identity-encoded', async () => {
    for (const path of ['/users', '/users-gzip', '/users-br']) {
      const res = await fetch(url('paths', path), { headers: { ...auth('support'), 'accept-encoding': 'gzip, br' } });
      const text = await res.text();
      expect(res.headers.get('content-encoding')).toBeNull();
      expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(text));
      const doc = JSON.parse(text) as Users;
      // partial, keep 1: only the last character of each name is left.
      expect(doc.data[0]?.name).toMatch(/^\*+a$/);
      expect(doc.data[0]?.email).toBe('[redacted]');
      for (const pii of ['Ada', 'ada@example.com', 'ada.l@example.org', '4111111111111111', '5500005555555559']) expect(text).not.toContain(pii);
      expect(doc.data[1]?.note).toBe('no notes');
    }
    // The upstream was asked for identity bodies.
    expect(upstream.received[upstream.received.length - 1]?.headers['accept-encoding']).toBe('identity');
  });

  it('a caller no mask rule names gets the data as it is', async () => {
    const res = await fetch(url('paths', '/users'), { headers: auth('agent') });
    expect(await res.text()).toContain('ada@example.com');
  });

  it('over the whole-body cap: detectors keep masking as the body streams; JSON paths refuse with 502', async () => {
    const res = await fetch(url('api', '/big-json?mb=17'), { headers: auth('support') });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text.length).toBeGreaterThan(16 * 1024 * 1024);
    expect(text.endsWith(']}')).toBe(true);
    expect(text).not.toMatch(/user\d+@example\.com/);
    expect(text).toContain('"email":"[redacted]"');
    const refused = await fetch(url('paths', '/big-json?mb=17'), { headers: auth('support') });
    expect(refused.status).toBe(502);
    expect(((await refused.json()) as { code: string; detail: string }).detail).toContain('JSON path');
  }, 60_000);
});

describe('streams', () => {
  it('a type airlock does not read as text is still scanned where a rule asks; other bytes pass exactly', async () => {
    const res = await fetch(url('api', '/ndjson'), { headers: { authorization: `Bearer ${tokens.support}` } });
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.toString('latin1')).not.toContain('lovelace');
    expect(body).toEqual(Buffer.concat([Buffer.from('{"who":"café","mail":"[redacted]"}\n'), Buffer.from([0xff, 0x00, 0x0a])]));
    const plain = await fetch(url('api', '/ndjson'), { headers: { authorization: `Bearer ${tokens.agent}` } });
    expect(Buffer.from(await plain.arrayBuffer()).toString('utf8')).toContain('ada.lovelace@example.com');
  });

  it('text: an address split across two upstream writes is masked (curl)', async () => {
    const r = await run('curl', ['-sS', '-H', `Authorization: Bearer ${tokens.support}`, url('api', '/text')]);
    expect(r.stdout).toContain('contact: [redacted] or call');
    expect(r.stdout).not.toContain('grace');
  });

  it('Server-Sent Events (fetch): masked across events and chunks, the first event before the last is sent', async () => {
    const res = await fetch(url('api', '/sse'), { headers: auth('support') });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body?.getReader();
    if (reader === undefined) throw new Error('no body');
    let text = '';
    let firstAt = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (firstAt === 0) firstAt = Date.now();
      text += Buffer.from(value).toString('utf8');
    }
    expect(firstAt).toBeLessThan(await upstream.sseLastSent());
    const events = text.split('\n\n').filter((e) => e.startsWith('data: '));
    const content = events
      .map((e) => e.slice(6))
      .filter((d) => d !== '[DONE]')
      .map((d) => (JSON.parse(d) as { choices: Array<{ delta: { content?: string } }> }).choices[0]?.delta.content ?? '')
      .join('');
    expect(content).toBe('Write to [redacted] today. Bye');
    expect(text).not.toMatch(/john|smith/);
    expect(events[events.length - 1]).toBe('data: [DONE]');
  });

  it('Server-Sent Events (curl -N): every event is still one well-formed event', async () => {
    const r = await run('curl', ['-sS', '-N', '-H', `Authorization: Bearer ${tokens.support}`, url('api', '/sse')]);
    expect(r.stdout).not.toMatch(/john|smith|example\.com/);
    for (const e of r.stdout.split('\n\n').filter((x) => x !== '')) expect(e).toMatch(/^data: (\[DONE\]|\{.*\})$/);
  });
});

describe('the injected credential never comes back, with or without a mask rule', () => {
  it('an echo of the request headers (JSON) and of the credential in text', async () => {
    for (const who of ['agent', 'support']) {
      const r = await run('curl', ['-sS', '-D', '-', '-H', `Authorization: Bearer ${tokens[who]}`, url('api', '/echo')]);
      expect(r.stdout).toMatch(/^HTTP\/1.1 200/);
      expect(r.stdout).not.toContain(SECRET);
      expect(r.stdout).toContain('[redacted]');
      const t = await (await fetch(url('api', '/echo-text'), { headers: auth(who) })).text();
      expect(t).not.toContain(SECRET);
    }
    expect(upstream.received[upstream.received.length - 1]?.headers.authorization).toBe(`Bearer ${SECRET}`);
  });

  it('response headers (Set-Cookie too) and a binary body of fixed length, its Content-Length fixed up', async () => {
    for (const conn of ['api', 'raw']) {
      const res = await fetch(url(conn, '/leak'), { headers: auth('agent') });
      const body = Buffer.from(await res.arrayBuffer());
      expect(res.headers.get('x-seen')).not.toContain(SECRET);
      expect(res.headers.getSetCookie().join(';')).not.toContain(SECRET);
      expect(body.toString('latin1')).not.toContain(SECRET);
      expect(body.toString('latin1')).toContain('key=[redacted];');
      expect([...body.subarray(0, 3)]).toEqual([0, 1, 2]);
      expect([...body.subarray(body.length - 2)]).toEqual([255, 254]);
    }
  });

  it('the audit log and the daemon output hold no secret and no token', async () => {
    await new Promise((r) => setTimeout(r, 300));
    const { readdirSync, readFileSync } = await import('node:fs');
    const dir = join(airlock.stateDir, 'audit');
    const audit = readdirSync(dir).filter((f) => f.endsWith('.jsonl')).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
    expect(audit).toContain('"http.exchange"');
    for (const haystack of [audit, airlock.output()]) {
      expect(haystack).not.toContain(SECRET);
      for (const t of Object.values(tokens)) expect(haystack).not.toContain(t);
    }
  });
});
