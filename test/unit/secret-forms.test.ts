/** The injected-secret matcher (issue 25): every written form, split at every boundary. */
import { describe, expect, it } from 'vitest';
import { MIN_HELD_AT_BOUNDARY, SecretForms, decodeEscapes, injectedSecrets } from '../../src/masking/secret-forms.js';

const SECRET = 'sk-live/Ab+9xYz_Q7w=K';
const forms = new SecretForms([SECRET]);
const utf8 = Buffer.from(SECRET, 'utf8');

/** Independent spellings of SECRET, as serializers and encoders write them. */
const jsonU = [...SECRET].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
const spellings: Array<[string, string]> = [
  ['raw', SECRET],
  ['JSON \\/', SECRET.replace(/\//g, '\\/')],
  ['JSON \\u every char', jsonU],
  ['JSON \\u upper hex, some chars', SECRET.replace(/[a-z]/g, (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`)],
  ['encodeURIComponent', encodeURIComponent(SECRET)],
  ['lower-case percent', encodeURIComponent(SECRET).toLowerCase().replace(/%[0-9a-f]{2}/g, (m) => m)],
  ['every char percent-encoded, lower', [...utf8].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')],
  ['python quote() (reserved raw, + encoded)', SECRET.replace(/\+/g, '%2B').replace(/=/g, '%3D')],
  ['form encoding', new URLSearchParams({ k: SECRET }).toString().slice(2)],
  ['upper case', SECRET.toUpperCase()],
  ['HTML decimal refs', [...SECRET].map((c) => `&#${c.charCodeAt(0)};`).join('')],
  ['HTML hex refs without semicolons', [...SECRET].map((c) => `&#x${c.charCodeAt(0).toString(16)}`).join('')],
  ['HTML named refs', SECRET.replace(/\//g, '&sol;').replace(/\+/g, '&plus;').replace(/=/g, '&equals;')],
  ['hex', utf8.toString('hex')],
  ['HEX', utf8.toString('hex').toUpperCase()],
];
for (const align of [0, 1, 2]) {
  const pre = 'Basic:'.slice(0, align + 3);
  const withPad = Buffer.concat([Buffer.from(pre), utf8, Buffer.from('!!')]);
  spellings.push([`base64 at offset ${pre.length % 3}`, withPad.toString('base64')]);
  spellings.push([`base64url at offset ${pre.length % 3}`, withPad.toString('base64url')]);
  spellings.push([`base64, JSON \\/ escaped, at offset ${pre.length % 3}`, withPad.toString('base64').replace(/\//g, '\\/')]);
}

function scan(text: string, cuts: number[]): string {
  const s = forms.scanner();
  let out = '';
  let last = 0;
  for (const c of cuts) {
    out += s.push(text.slice(last, c));
    last = c;
  }
  return out + s.push(text.slice(last)) + s.end();
}

describe('SecretForms', () => {
  for (const [name, spelled] of spellings) {
    it(`${name}: found whole and split at every boundary, nothing around it lost`, () => {
      const text = `before "${spelled}" after`;
      expect(forms.scrub(text)).not.toBe(text);
      for (let cut = 0; cut <= text.length; cut++) {
        const out = scan(text, [cut]);
        expect(out.startsWith('before "')).toBe(true);
        expect(out.endsWith('" after')).toBe(true);
        expect(out).toContain('[redacted]');
        expect(out).not.toContain(spelled);
      }
    });
  }

  it('one character at a time gives the same text as the whole', () => {
    const text = `a ${SECRET} b ${encodeURIComponent(SECRET)} c &amp; %zz \\q &#x; done`;
    const whole = forms.scrub(text);
    expect(whole).toBe('a [redacted] b [redacted] c &amp; %zz \\q &#x; done');
    expect(scan(text, [...text].map((_, i) => i))).toBe(whole);
  });

  it('text with no form passes unchanged at every split, escapes and all', () => {
    const text = 'sk-live/A %2 \\u12 &#x1F600; &bogus; sk-live/Ab+9 end%';
    for (let cut = 0; cut <= text.length; cut++) for (let cut2 = cut; cut2 <= text.length; cut2 += 7) expect(scan(text, [cut, cut2])).toBe(text);
  });

  it('holds back only a tail that could still become a form, and releases it once it cannot', () => {
    const s = forms.scanner();
    expect(s.push('hello sk-live/A')).toBe('hello ');
    expect(s.heldChars).toBe('sk-live/A'.length);
    expect(s.push('X')).toBe('sk-live/AX');
    expect(s.heldChars).toBe(0);
    expect(s.push('%2')).toBe('');
    expect(s.push('0!')).toBe('%20!');
  });

  it('a secret split across pushes is redacted as one', () => {
    const s = forms.scanner();
    const out = s.push(SECRET.slice(0, 9)) + s.push(SECRET.slice(9)) + s.end();
    expect(out).toBe('[redacted]');
  });

  it('decodeEscapes reads each family', () => {
    expect(decodeEscapes('a\\/b\\u0041%2f%2F&amp;&#65;&#x41;&lt')).toBe('a/bA//&AA&lt');
  });

  it('injectedSecrets: the scheme-less credential and a Basic pair are secrets too', () => {
    const basic = `Basic ${Buffer.from('svc-user:pa55word-XYZ').toString('base64')}`;
    expect(injectedSecrets(basic)).toEqual([basic, basic.slice(6), 'svc-user:pa55word-XYZ', 'pa55word-XYZ']);
    expect(injectedSecrets('Bearer sk-1234567890')).toEqual(['Bearer sk-1234567890', 'sk-1234567890']);
    expect(injectedSecrets('short')).toEqual([]);
  });
});

describe('SecretScanner release', () => {
  it('a form at the very end of a push is cut in that push, not held', () => {
    const s = forms.scanner();
    expect(s.push(`your key is ${SECRET}`)).toBe('your key is [redacted]');
    expect(s.push(`, again ${encodeURIComponent(SECRET)}`)).toBe(', again [redacted]');
    expect(s.end()).toBe('');
  });
});

describe('SecretScanner boundary', () => {
  it('releases a short partial form at a boundary, and still cuts the rest when the next unit completes it', () => {
    const s = forms.scanner();
    expect(s.push('over tls') + s.boundary()).toBe('over tls');
    const s2 = forms.scanner();
    expect(s2.push(`a ${SECRET.slice(0, 3)}`) + s2.boundary()).toBe(`a ${SECRET.slice(0, 3)}`);
    expect(s2.push(`${SECRET.slice(3)} b`) + s2.end()).toBe('[redacted] b');
  });

  it('holds a longer partial form across the boundary', () => {
    const s = forms.scanner();
    expect(s.push(`a ${SECRET.slice(0, 4)}`) + s.boundary()).toBe('a ');
    expect(s.push(`${SECRET.slice(4)} b`) + s.end()).toBe('[redacted] b');
  });
});

describe('SecretByteScanner', () => {
  it('every spelling, as bytes among non-UTF-8 bytes, split at every boundary', () => {
    for (const [, spelled] of spellings) {
      const bytes = Buffer.concat([Buffer.from([0xff, 0x00]), Buffer.from(spelled, 'latin1'), Buffer.from([0xfe])]);
      for (let cut = 0; cut <= bytes.length; cut++) {
        const s = forms.byteScanner();
        const out = Buffer.concat([s.push(bytes.subarray(0, cut)), s.push(bytes.subarray(cut)), s.end()]);
        // A base64 value keeps the characters around its core that depend on its neighbours.
        const text = out.toString('latin1');
        expect(text.startsWith('\xff\x00')).toBe(true);
        expect(text.endsWith('\xfe')).toBe(true);
        expect(text).toContain('[redacted]');
        expect(text).not.toContain(spelled);
      }
    }
  });

  it('a chunk with no form comes out as the same Buffer', () => {
    const s = forms.byteScanner();
    const chunk = Buffer.from('nothing to see here.');
    expect(s.push(chunk)).toBe(chunk);
  });

  it('a non-ASCII secret: its UTF-8 bytes raw and percent-encoded', () => {
    const f = new SecretForms(['pässwörd-€-1234']);
    const utf = Buffer.from('pässwörd-€-1234');
    for (const spelled of [utf, Buffer.from(encodeURIComponent('pässwörd-€-1234'))]) {
      for (let cut = 0; cut <= spelled.length; cut++) {
        const s = f.byteScanner();
        expect(Buffer.concat([s.push(spelled.subarray(0, cut)), s.push(spelled.subarray(cut)), s.end()]).toString()).toBe('[redacted]');
      }
    }
    expect(f.scrub('x pässwörd-€-1234 y')).toBe('x [redacted] y');
  });
});

describe('SecretScanner across a released boundary', () => {
  it('a form whose first characters were released at a boundary is cut as soon as it completes', () => {
    for (let at = 1; at < MIN_HELD_AT_BOUNDARY; at++) {
      const s = forms.scanner();
      expect(s.push(`half ${SECRET.slice(0, at)}`) + s.boundary()).toBe(`half ${SECRET.slice(0, at)}`);
      expect(s.push(SECRET.slice(at)) + s.boundary()).toBe('[redacted]');
      expect(s.push('done') + s.boundary()).toBe('done');
      const b = forms.byteScanner();
      expect(Buffer.concat([b.push(Buffer.from(`half ${SECRET.slice(0, at)}`)), b.boundary()]).toString()).toBe(`half ${SECRET.slice(0, at)}`);
      expect(Buffer.concat([b.push(Buffer.from(SECRET.slice(at))), b.boundary()]).toString()).toBe('[redacted]');
    }
  });
});

describe('chunking never changes the result', () => {
  /** A small deterministic PRNG (mulberry32), so a failure is reproducible. */
  function rng(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const pieces = ['%', '%2', '%2F', '%2f', '\\', '\\u', '\\u00', '\\/', '&', '&#', '&#x2f;', '&amp;', '&sol', ';', 'sk-', 'SK-LIVE', ' ', '+', 'x', 'é', ...spellings.map(([, s]) => s), ...spellings.map(([, s]) => s.slice(0, 7)), ...spellings.map(([, s]) => s.slice(5))];
  // Two forms side by side may come out as one marker or two, depending on whether the first was released before the second was found.
  const markers = (t: string): string => t.replace(/(\[redacted\])+/g, '[redacted]');
  it('1,000 random texts of escapes, key fragments and whole forms, cut at random places', () => {
    const next = rng(25);
    for (let round = 0; round < 1000; round++) {
      let text = '';
      const n = 1 + Math.floor(next() * 12);
      for (let k = 0; k < n; k++) text += pieces[Math.floor(next() * pieces.length)] ?? '';
      const whole = markers(forms.scrub(text));
      const cuts = [...new Set(Array.from({ length: Math.floor(next() * 6) }, () => Math.floor(next() * (text.length + 1))))].sort((a, b) => a - b);
      expect(markers(scan(text, cuts)), JSON.stringify({ text, cuts })).toBe(whole);
      const bytes = Buffer.from(text, 'latin1');
      const b = forms.byteScanner();
      let out = Buffer.alloc(0);
      let last = 0;
      for (const c of cuts) {
        out = Buffer.concat([out, b.push(bytes.subarray(last, c))]);
        last = c;
      }
      out = Buffer.concat([out, b.push(bytes.subarray(last)), b.end()]);
      expect(markers(out.toString('latin1')), JSON.stringify({ text, cuts })).toBe(whole);
    }
  });
});

describe('a credential with its scheme', () => {
  const value = 'Bearer sk-scheme-0123456789';
  const f = new SecretForms(injectedSecrets(value));
  it('the credential is cut and the scheme word left; ordinary words are not held', () => {
    expect(f.scrub(`Authorization: ${value}`)).toBe('Authorization: Bearer [redacted]');
    const s = f.scanner();
    expect(s.push('a polar bear') + s.boundary()).toBe('a polar bear');
  });
  it('the base64 of the whole value is still a form of its own', () => {
    expect(f.scrub(Buffer.from(`x:${value}`).toString('base64'))).toContain('[redacted]');
  });
});
