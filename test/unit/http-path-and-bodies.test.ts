/** HTTP gateway pieces (issue 9): path normalisation, JSON paths, body maskers. */
import { describe, expect, it } from 'vitest';
import { normaliseTarget } from '../../protocols/http/path.js';
import { LiteralScrubber, SseMasker, TextMasker, type BodyPlan } from '../../protocols/http/body.js';
import { compileJsonPaths, maskJsonPaths } from '../../src/masking/json-paths.js';
import { DetectorRules } from '../../src/masking/index.js';
import { MIN_HELD_AT_BOUNDARY } from '../../src/masking/secret-forms.js';

describe('normaliseTarget', () => {
  const ok: Array<[string, string]> = [
    ['/a/b', '/a/b'], ['/a//b///c', '/a/b/c'], ['/a/./b/../c', '/a/c'], ['/%61%62c', '/abc'], ['/a/b/', '/a/b/'], ['/', '/'],
    ['/a/%20b', '/a/%20b'], ['/caf%c3%a9', '/caf%C3%A9'], ['/a/b/..', '/a/'],
  ];
  for (const [raw, want] of ok) it(`${raw} → ${want}`, () => expect(normaliseTarget(raw).path).toBe(want));
  it('keeps the query as sent', () => expect(normaliseTarget('/x?a=%2F&b=1')).toEqual({ path: '/x', query: 'a=%2F&b=1' }));
  for (const raw of ['/a%2fb', '/a%5cb', '/a%25b', '/a%zz', '/a%4', '/..', '/a/../../b', '/a\\b', 'http://x/a', '*', '/a b']) {
    it(`refuses ${JSON.stringify(raw)}`, () => expect(() => normaliseTarget(raw)).toThrow(/ambiguous/));
  }
});

describe('JSON paths', () => {
  const rule = (paths: string[]): ReturnType<typeof compileJsonPaths> => compileJsonPaths([{ rule: 'r', paths, method: 'redact' }]);
  it('masks by key, index, wildcard and bracket key; a selected object goes whole', () => {
    const doc = { data: [{ email: 'a@x.io', n: 1 }, { email: 'b@x.io', n: 2 }], 'odd key': 's', deep: { a: { b: 1 } } };
    const { doc: out, masked } = maskJsonPaths(doc, rule(['$.data[*].email', "$['odd key']", '$.deep', '$.data[1].n']));
    expect(out).toEqual({ data: [{ email: '[redacted]', n: 1 }, { email: '[redacted]', n: '[redacted]' }], 'odd key': '[redacted]', deep: '[redacted]' });
    expect(masked).toBe(5);
  });
});

const plan = (secrets: string[] = []): BodyPlan => ({
  detectors: new DetectorRules([{ rule: 'e', detect: ['email'], method: 'redact' }]),
  jsonPaths: null,
  secrets,
  key: Buffer.alloc(32),
  maxJsonBytes: 1024,
});

describe('body maskers', () => {
  it('a literal secret split across any two chunks is scrubbed', () => {
    const secret = 'sk-abcdefghijklmnop';
    const text = `x ${secret} y ${secret}`;
    for (let cut = 0; cut <= text.length; cut++) {
      const s = new LiteralScrubber([secret]);
      const out = s.push(text.slice(0, cut)) + s.push(text.slice(cut)) + s.end();
      expect(out).toBe('x [redacted] y [redacted]');
    }
  });

  it('text: an address split at every byte is masked', () => {
    const text = 'mail ada.lovelace@example.com now';
    for (let cut = 1; cut < text.length; cut++) {
      const m = new TextMasker(plan());
      const out = Buffer.concat([m.push(Buffer.from(text.slice(0, cut))), m.push(Buffer.from(text.slice(cut))), m.end()]).toString();
      expect(out).toBe('mail [redacted] now');
    }
  });

  it('SSE: metadata fields stay intact, text deltas are followed across events', () => {
    const m = new SseMasker(plan());
    const ev = (content: string): Buffer => Buffer.from(`data: ${JSON.stringify({ id: 'c-1', choices: [{ delta: { content } }] })}\n\n`);
    let out = '';
    for (const d of ['hi ', 'bob', '@exam', 'ple.com', ' ok']) out += m.push(ev(d)).toString();
    out += m.push(Buffer.from('data: [DONE]\n\n')).toString() + m.end().toString();
    const events = out.split('\n\n').filter((e) => e !== '');
    const json = events.filter((e) => e !== 'data: [DONE]').map((e) => JSON.parse(e.slice(6)) as { id: string; choices: Array<{ delta: { content: string } }> });
    expect(json.every((j) => j.id === 'c-1')).toBe(true);
    expect(json.map((j) => j.choices[0]?.delta.content).join('')).toBe('hi [redacted] ok');
    expect(events[events.length - 1]).toBe('data: [DONE]');
  });

  const secret = 'sk-live-0123456789abcdef';
  const bare = (secrets: string[]): BodyPlan => ({ detectors: new DetectorRules([]), jsonPaths: null, secrets, key: Buffer.alloc(32), maxJsonBytes: 1024 });
  for (const [name, p] of [['masked identity', { ...plan([secret]) }], ['unmasked identity', bare([secret])]] as const) {
    it(`SSE (${name}): a secret streamed in two deltas at any split is held, then cut; never sent whole or in halves`, () => {
      for (let cut = 1; cut < secret.length; cut++) {
        const m = new SseMasker(p);
        const ev = (content: string): Buffer => Buffer.from(`data: ${JSON.stringify({ id: 'c-1', choices: [{ delta: { content } }] })}\n\n`);
        const rendered = (out: string): string => out.split('\n\n').filter((e) => e !== '' && e !== 'data: [DONE]').map((e) => (JSON.parse(e.slice(6)) as { choices: Array<{ delta: { content: string } }> }).choices[0]?.delta.content).join('');
        const first = m.push(ev(`key: ${secret.slice(0, cut)}`)).toString();
        // The first half is held while it could still complete the secret (under 4 characters, released: at most "sk-").
        const short = cut < MIN_HELD_AT_BOUNDARY;
        if (!short) expect(rendered(first)).not.toContain(secret.slice(0, cut));
        const out = first + m.push(ev(`${secret.slice(cut)} end`)).toString() + m.push(Buffer.from('data: [DONE]\n\n')).toString() + m.end().toString();
        expect(rendered(out)).toBe(`key: ${short ? secret.slice(0, cut) : ''}[redacted] end`);
      }
    });
  }

  it('SSE: a plain-text token stream split over two events is held, then cut', () => {
    const m = new SseMasker(bare([secret]));
    const out = m.push(Buffer.from(`data: a ${secret.slice(0, 7)}\n\n`)).toString() + m.push(Buffer.from(`data: ${secret.slice(7)} b\n\n`)).toString() + m.end().toString();
    expect(out).not.toContain(secret.slice(0, 7));
    expect(out.replace(/data: |\n/g, '')).toBe('a [redacted] b');
  });

  it('SSE: a secret split across two events in a reasoning field is held, then cut; an id ending like the key is left whole', () => {
    for (const who of [bare([secret]), plan([secret])]) {
      const m = new SseMasker(who);
      // An id whose tail is the start of the key: not a delta, so never held into the next event's id.
      const id = `c-1-${secret.slice(0, 6)}`;
      const ev = (reasoning: string): Buffer => Buffer.from(`data: ${JSON.stringify({ id, choices: [{ delta: { reasoning } }] })}\n\n`);
      const first = m.push(ev(`so ${secret.slice(0, 9)}`)).toString();
      expect(first).not.toContain(secret.slice(0, 9));
      const out = first + m.push(ev(`${secret.slice(9)} ok`)).toString() + m.push(Buffer.from('data: [DONE]\n\n')).toString() + m.end().toString();
      const docs = out.split('\n\n').filter((e) => e !== '' && e !== 'data: [DONE]').map((e) => JSON.parse(e.slice(6)) as { id: string; choices: Array<{ delta: { reasoning: string } }> });
      expect(docs.every((d) => d.id === id)).toBe(true);
      expect(docs.map((d) => d.choices[0]?.delta.reasoning).join('')).toBe('so [redacted] ok');
    }
  });

  it('SSE: a secret split across two data lines of one event, or of two events, is cut', () => {
    for (const raw of [`data: a ${secret.slice(0, 10)}\ndata: ${secret.slice(10)} b\n\n`, `data: a ${secret.slice(0, 10)}\n\ndata: ${secret.slice(10)} b\n\n`]) {
      const m = new SseMasker(bare([secret]));
      const out = m.push(Buffer.from(raw)).toString() + m.end().toString();
      expect(out).not.toContain(secret.slice(0, 10));
      expect(out).not.toContain(secret.slice(10));
      expect(out.replace(/data: |\n/g, '')).toBe('a [redacted] b');
    }
  });
});
