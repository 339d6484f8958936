/**
 * Issue 25, item 1: the injected upstream key never comes back to the caller in any form an
 * upstream may write it — through the real daemon, with Node's fetch and curl, against the
 * real Node upstream of test/harness echoing the key it got in each encoding (built there,
 * independently of airlock's matcher): in a text, JSON or binary body cut in two writes, a
 * 302 Location, Set-Cookie and any header, and a Server-Sent Events token stream carrying
 * the key in two deltas (for a masked and an unmasked identity); none of it in the audit log
 * or the daemon's output either.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../harness/ports.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { run } from '../harness/clients.js';
import { keyForms, startHttpUpstream, type HttpUpstream } from '../harness/http-upstream.js';
import { textUnder } from '../harness/files.js';

/** '/', '+' and '=' so that every escape family has something to escape. */
const SECRET = 'sk-live/5e4d+3c2b1a09=f8e7d6c5b4';
const FORMS = keyForms(SECRET);
const BASIC_PAIR = 'svc-reader:pa55word-9f8e7d6c';
let upstream: HttpUpstream;
let issuer: TestIssuer;
let airlock: RunningAirlock;
const ports: Record<string, number> = {};
const tokens: Record<string, string> = {};
const url = (conn: string, path: string): string => `http://127.0.0.1:${ports[conn]}${path}`;
const auth = (who: string): Record<string, string> => ({ authorization: `Bearer ${tokens[who] ?? ''}` });

/** No part of the key longer than 3 characters, in any form, is in `text`. */
function expectNoKey(text: string): void {
  for (const [name, form] of Object.entries(FORMS)) {
    // A base64 form is matched by its stable core: the characters at either end depend on its neighbours.
    const core = name.startsWith('base64') ? form.slice(4, -4) : form;
    expect(text, `form ${name}`).not.toContain(core);
  }
  for (const part of [SECRET.slice(0, 12), SECRET.slice(8, 20), SECRET.slice(-12)]) expect(text.toLowerCase()).not.toContain(part.toLowerCase());
}

beforeAll(async () => {
  issuer = await createTestIssuer();
  upstream = await startHttpUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'airlock-http-forms-'));
  writeFileSync(join(dir, 'key'), `${SECRET}\n`, { mode: 0o600 });
  for (const c of ['bearer', 'apikey', 'basic']) ports[c] = await freePort();
  const http = (name: string, credentials: Record<string, unknown>): Record<string, unknown> => ({
    name, protocol: 'http', listen: `127.0.0.1:${ports[name]}`, upstream: { base_url: upstream.url }, credentials, allow_groups: ['agents'], record: { body_bytes: 4096 },
  });
  airlock = await startAirlock({
    state_dir: join(dir, 'state'),
    admin: { listen: `127.0.0.1:${await freePort()}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [
      http('bearer', { type: 'header', name: 'Authorization', value: `Bearer \${file:${join(dir, 'key')}}` }),
      http('apikey', { type: 'header', name: 'x-api-key', value: `\${file:${join(dir, 'key')}}` }),
      http('basic', { type: 'header', name: 'Authorization', value: `Basic ${Buffer.from(BASIC_PAIR).toString('base64')}` }),
    ],
    rules: [{ name: 'pii-for-support', when: { groups: ['support'] }, effect: 'mask', detect: ['email'], method: 'redact' }],
  });
  tokens.agent = await issuer.token({ sub: 'claude', groups: ['agents'] });
  tokens.support = await issuer.token({ sub: 'sam', groups: ['agents', 'support'] });
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
  await upstream?.close();
});

describe('every written form of the key is cut from a body, whatever its type', () => {
  for (const form of Object.keys(FORMS)) {
    it(form, async () => {
      for (const ct of ['text/plain', 'application/json', 'application/octet-stream']) {
        for (const [conn, who] of [['bearer', 'agent'], ['apikey', 'agent'], ['bearer', 'support']] as const) {
          const res = await fetch(url(conn, `/key-forms?form=${form}&ct=${encodeURIComponent(ct)}`), { headers: auth(who) });
          const body = await res.text();
          expect(res.status).toBe(200);
          expectNoKey(body);
          expect(body, `${form} ${ct} ${conn} ${who}`).toContain('[redacted]');
          expect(body.startsWith('{"note":"you sent","value":"')).toBe(true);
          // A masked identity's JSON is parsed and written again (no newline).
          expect(body).toMatch(/","n":1\}\n?$/);
        }
      }
    });
  }
});

describe('and from response headers', () => {
  it('a 302 Location, Set-Cookie and any header, in every form (fetch)', async () => {
    for (const form of Object.keys(FORMS)) {
      const res = await fetch(url('bearer', `/key-redirect?form=${form}`), { headers: auth('agent'), redirect: 'manual' });
      expect(res.status).toBe(302);
      const location = res.headers.get('location') ?? '';
      expect(location.startsWith('https://elsewhere.example/cb?token=')).toBe(true);
      expect(location).toContain('[redacted]');
      expect(location.endsWith('&x=1')).toBe(true);
      expectNoKey(location);
      expectNoKey(res.headers.getSetCookie().join('\n'));
      expectNoKey(res.headers.get('x-key') ?? '');
    }
  });

  it('as curl shows them', async () => {
    for (const form of ['pct_lower', 'python_quote', 'json_slash', 'base64_header']) {
      const r = await run('curl', ['-sS', '-D', '-', '-o', '/dev/null', '-H', `Authorization: Bearer ${tokens.agent}`, url('apikey', `/key-redirect?form=${form}`)]);
      expect(r.stdout).toMatch(/^HTTP\/1.1 302/);
      expect(r.stdout).toMatch(/^location: https:\/\/elsewhere\.example\/cb\?token=.*\[redacted\]/im);
      expectNoKey(r.stdout);
    }
  });
});

describe('a Server-Sent Events token stream with the key in two deltas', () => {
  for (const who of ['agent', 'support']) {
    it(`${who === 'support' ? 'a masked' : 'an unmasked'} identity: neither half reaches the client, the rendered text has one redaction`, async () => {
      for (const at of [4, 10, 20, SECRET.length - 2]) {
        const res = await fetch(url('bearer', `/key-sse?at=${at}`), { headers: auth(who) });
        const raw = await res.text();
        const events = raw.split('\n\n').filter((e) => e !== '');
        expect(events[events.length - 1]).toBe('data: [DONE]');
        const rendered = events.filter((e) => e !== 'data: [DONE]').map((e) => (JSON.parse(e.replace(/^data: /, '')) as { choices: Array<{ delta: { content: string } }> }).choices[0]?.delta.content ?? '').join('');
        expect(rendered).toBe('the key is [redacted], keep it safe');
        expect(raw).not.toContain(SECRET.slice(0, at));
        expect(raw).not.toContain(SECRET.slice(at));
      }
    });
  }

  it('curl sees the same', async () => {
    const r = await run('curl', ['-sS', '-N', '-H', `Authorization: Bearer ${tokens.agent}`, url('bearer', '/key-sse?at=12')]);
    expect(r.stdout).toContain('[redacted]');
    expectNoKey(r.stdout);
  });
});

describe('a Basic credential', () => {
  it('its user:password, its password in upper case and the base64 of the whole header value are cut', async () => {
    const res = await fetch(url('basic', '/key-basic'), { headers: auth('agent') });
    const body = await res.text();
    // The user name is not a secret: the password after it is cut.
    expect(body).toMatch(/^pair=svc-reader:\[redacted\]\npassword=\[redacted\]\nheader=.*\[redacted\].*\n$/);
    expect(body).not.toContain(BASIC_PAIR);
    expect(body.toLowerCase()).not.toContain('pa55word-9f8e7d6c');
    expect(body).not.toContain(Buffer.from(BASIC_PAIR).toString('base64'));
    expect(upstream.received[upstream.received.length - 1]?.headers.authorization).toBe(`Basic ${Buffer.from(BASIC_PAIR).toString('base64')}`);
  });
});

describe('the record', () => {
  it('no form of the key, nor a caller token, is in the audit log or the daemon output', async () => {
    await new Promise((r) => setTimeout(r, 300));
    const audit = textUnder(join(airlock.stateDir, 'audit'));
    expect(audit).toContain('"http.exchange"');
    expect(audit).toContain('[redacted]');
    for (const haystack of [audit, airlock.output()]) {
      expectNoKey(haystack);
      for (const t of Object.values(tokens)) expect(haystack).not.toContain(t);
    }
  });
});
