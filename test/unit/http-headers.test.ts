/** HTTP gateway header handling (issue 9): RFC 9110 §7.6.1 hop-by-hop fields, forwarding fields, redaction. */
import { describe, expect, it } from 'vitest';
import { endToEnd, forwardedFields, redactedRequestHeaders } from '../../protocols/http/headers.js';
import { SseMasker, bodyMode, MAX_SSE_EVENT_CHARS, type BodyPlan } from '../../protocols/http/body.js';
import { DetectorRules } from '../../src/masking/index.js';

describe('endToEnd', () => {
  it('drops Connection, the fields it lists (any case, repeated), Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade and Proxy-*', () => {
    const out = endToEnd({
      connection: 'Keep-Alive, X-Private , x-other',
      'keep-alive': 'timeout=5',
      te: 'trailers',
      trailer: 'x-t',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      'proxy-authorization': 'Basic x',
      'proxy-connection': 'keep-alive',
      'proxy-foo': '1',
      'x-private': 'p',
      'x-other': 'o',
      accept: 'application/json',
      'x-kept': 'k',
    });
    expect(out).toEqual({ accept: 'application/json', 'x-kept': 'k' });
  });

  it('drops the fields asked for', () => {
    expect(endToEnd({ authorization: 'Bearer t', host: 'h', accept: '*/*' }, new Set(['authorization', 'host']))).toEqual({ accept: '*/*' });
  });
});

describe('forwardedFields', () => {
  it('appends the client to an X-Forwarded-For chain and quotes IPv6 in Forwarded (RFC 7239 §6)', () => {
    expect(forwardedFields({ client: '::1', proto: 'https', host: 'api.example', prior: '10.0.0.1' })).toEqual({
      'x-forwarded-for': '10.0.0.1, ::1',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'api.example',
      forwarded: 'for="[::1]";proto=https;host="api.example"',
    });
  });

  it('a Host with quotes or line breaks cannot break the Forwarded field', () => {
    const f = forwardedFields({ client: '127.0.0.1', proto: 'http', host: 'a"b\\c\r\nx', prior: undefined });
    expect(f.forwarded).toBe('for=127.0.0.1;proto=http;host="abcx"');
    expect(f['x-forwarded-for']).toBe('127.0.0.1');
  });
});

describe('redactedRequestHeaders', () => {
  it('redacts the configured auth header, Authorization, Cookie and Proxy-Authorization', () => {
    const out = redactedRequestHeaders({ 'x-airlock-token': 't', authorization: 'a', cookie: 'c', 'proxy-authorization': 'p', accept: 'x' }, 'x-airlock-token');
    expect(out).toEqual({ 'x-airlock-token': '[redacted]', authorization: '[redacted]', cookie: '[redacted]', 'proxy-authorization': '[redacted]', accept: 'x' });
  });
});

const plan = (detect: boolean, secrets: string[] = []): BodyPlan => ({
  detectors: new DetectorRules(detect ? [{ rule: 'e', detect: ['email'], method: 'redact' }] : []),
  jsonPaths: null,
  secrets,
  key: Buffer.alloc(32),
  maxJsonBytes: 1024,
});

describe('bodyMode', () => {
  it('passes bodies untouched when there is nothing to mask or scrub', () => expect(bodyMode('application/json', plan(false))).toBe('pass'));
  it('scrubs JSON as text when only the secret must go', () => expect(bodyMode('application/json', plan(false, ['sk-12345678']))).toBe('text'));
  it('parses JSON when a rule masks', () => expect(bodyMode('application/vnd.api+json; charset=utf-8', plan(true))).toBe('json'));
  it('follows event streams', () => expect(bodyMode('text/event-stream', plan(false, ['sk-12345678']))).toBe('sse'));
  it('scrubs the literal secret from anything else', () => expect(bodyMode('image/png', plan(true))).toBe('binary'));
});

describe('SseMasker', () => {
  it('refuses an event that never ends instead of buffering it without bound', () => {
    const m = new SseMasker(plan(true));
    expect(() => m.push(Buffer.alloc(MAX_SSE_EVENT_CHARS + 10, 97))).toThrow(/event-stream event/);
  });

  it('CRLF events, comments and event names pass masked and whole', () => {
    const m = new SseMasker(plan(true));
    const out = m.push(Buffer.from(': ping\r\n\r\nevent: note\r\ndata: mail a@b.io\r\n\r\n')).toString() + m.end().toString();
    expect(out).toBe(': ping\n\nevent: note\ndata: mail [redacted]\n\n');
  });
});

describe('clientHeaders (issue 25)', () => {
  it('every form of the key is cut from every value; a field whose name holds one is dropped', async () => {
    const { clientHeaders } = await import('../../protocols/http/respond.js');
    const key = 'sk-hdr/0123456789+abcdef';
    const upstream = {
      headers: {
        location: `https://x.example/cb?t=${encodeURIComponent(key).toLowerCase()}&u=1`,
        'set-cookie': [`a=${key.replace(/\//g, '%2F')}; Path=/`, 'b=plain'],
        'x-echo': Buffer.from(`k=${key}`).toString('base64'),
        [`x-${key.replace(/[/+]/g, (c) => encodeURIComponent(c))}`]: 'by its name',
      },
    } as unknown as import('node:http').IncomingMessage;
    const out = clientHeaders(upstream, [key]);
    expect(out.location).toBe('https://x.example/cb?t=[redacted]&u=1');
    expect(out['set-cookie']).toEqual(['a=[redacted]; Path=/', 'b=plain']);
    expect(String(out['x-echo'])).toContain('[redacted]');
    expect(Object.values(out)).not.toContain('by its name');
  });
});
