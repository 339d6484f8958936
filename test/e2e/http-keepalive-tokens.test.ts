/**
 * Review of issue 17's HTTP fast path: on a keep-alive connection whose caller and session are
 * known, a request awaits neither — the token's hash is kept per connection and compared. A
 * determined caller switches tokens on the same socket: a forged signature, a token for a
 * group the connection does not allow, an expired token, then the good one again. Each must be
 * judged by its own token, never by the connection's last good one. Real daemon, real
 * upstream, Node's http client on one keep-alive socket (checked). And the session's reused secret
 * forms: the injected key written as JSON member names (raw and \\u-escaped, nested) never comes back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../harness/ports.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { startHttpUpstream, type HttpUpstream } from '../harness/http-upstream.js';

let upstream: HttpUpstream;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let port = 0;
let jsonPort = 0;
let jsonUpstream: Server;
/** The credential airlock injects upstream: no form of it may come back. */
const KEY = 'sk-ka17/member+names=0a1b2c3d';
/** `\uXXXX` for every character: JSON.parse turns it back into the key. */
const jsonEscaped = [...KEY].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');

beforeAll(async () => {
  issuer = await createTestIssuer();
  upstream = await startHttpUpstream();
  port = await freePort();
  jsonPort = await freePort();
  // An upstream that writes the key it was sent as JSON member names, raw and \u-escaped, nested.
  jsonUpstream = createServer((req, res) => {
    req.resume();
    const body = `{"${KEY}":1,"outer":{"${jsonEscaped}":"x","list":[{"${jsonEscaped}":{"${KEY}":2}}]},"email":"ada@example.com"}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((r) => jsonUpstream.listen(0, '127.0.0.1', () => r()));
  airlock = await startAirlock({
    state_dir: join(mkdtempSync(join(tmpdir(), 'airlock-http-ka-')), 'state'),
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [
      { name: 'api', protocol: 'http', listen: `127.0.0.1:${port}`, upstream: { base_url: upstream.url }, credentials: { type: 'header', name: 'x-api-key', value: 'upstream-key-ka-17' }, allow_groups: ['agents'] },
      {
        name: 'json', protocol: 'http', listen: `127.0.0.1:${jsonPort}`, upstream: { base_url: `http://127.0.0.1:${(jsonUpstream.address() as AddressInfo).port}` },
        credentials: { type: 'header', name: 'x-api-key', value: KEY }, allow_groups: ['agents'],
      },
    ],
    rules: [{ name: 'pii-for-support', when: { groups: ['support'] }, effect: 'mask', detect: ['email'], method: 'redact' }],
  });
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
  await upstream?.close();
  jsonUpstream?.close();
});

/** One request on `agent` (one socket): status and the socket it went over. */
function get(agent: Agent, token: string): Promise<{ status: number; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/echo', agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket as Socket }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('a keep-alive connection that changes its token is judged by each token', () => {
  it('forged, wrong-group and expired tokens are refused between two good requests on one socket', async () => {
    const good = await issuer.token({ sub: 'claude', groups: ['agents'] });
    const [head, body, sig] = good.split('.') as [string, string, string];
    // The same claims with a signature that is not the issuer's (last character changed).
    const forged = `${head}.${body}.${sig.slice(0, -2)}${sig.endsWith('A') ? 'B' : 'A'}${sig.slice(-1)}`;
    // The good token's claims, re-signed by nobody: a payload swapped under the good signature.
    const swapped = `${head}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), sub: 'mallory' })).toString('base64url')}.${sig}`;
    const outsider = await issuer.token({ sub: 'eve', groups: ['contractors'] });
    const expired = await issuer.token({ sub: 'claude', groups: ['agents'] }, { ttlSeconds: -60 });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await get(agent, good);
      expect(first.status).toBe(200);
      const seen: Array<[string, number, boolean]> = [];
      for (const [name, t] of [['forged', forged], ['good', good], ['swapped', swapped], ['good', good], ['outsider', outsider], ['good', good], ['expired', expired], ['good', good]] as const) {
        const r = await get(agent, t);
        // Each went over the first request's socket: the connection's known caller was on hand every time.
        seen.push([name, r.status, r.socket === first.socket]);
      }
      expect(seen).toEqual([
        ['forged', 401, true], ['good', 200, true], ['swapped', 401, true], ['good', 200, true],
        ['outsider', 403, true], ['good', 200, true], ['expired', 401, true], ['good', 200, true],
      ]);
      // Nothing but the five good requests reached the upstream.
      expect(upstream.received.filter((r) => r.url === '/echo')).toHaveLength(5);
    } finally {
      agent.destroy();
    }
  });
});

describe('the injected key as a JSON member name', () => {
  // Unmasked identity: the body is streamed through the matcher; masked: parsed, each member name and value scrubbed, written again.
  for (const who of [['claude', ['agents']], ['sam', ['agents', 'support']]] as const) {
    it(`never reaches ${who[0]} (${who[1].join(', ')}), raw or \\u-escaped, at any depth`, async () => {
      const token = await issuer.token({ sub: who[0], groups: [...who[1]] });
      // Two requests on one keep-alive connection: the second answer is scrubbed by the session's reused forms.
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`http://127.0.0.1:${jsonPort}/doc`, { headers: { authorization: `Bearer ${token}` } });
        const body = await res.text();
        expect(res.status).toBe(200);
        expect(body).not.toContain(KEY);
        expect(body).not.toContain(jsonEscaped);
        expect(body.toLowerCase()).not.toContain('member+names');
        expect(body).toContain('[redacted]');
        if (who[0] === 'sam') {
          // Parsed and rewritten: every name that was the key is now the redaction, and the email is masked.
          const doc = JSON.parse(body) as Record<string, unknown>;
          expect(Object.keys(doc).some((k) => k.includes('redacted'))).toBe(true);
          expect(body).not.toContain('ada@example.com');
        }
      }
    });
  }
});
