import { describe, expect, it } from 'vitest';
import { DETECTORS, StreamMasker, keyFromSecret, maskText } from '../../src/masking/index.js';
import type { DetectorMaskRule } from '../../src/core/types.js';

const key = keyFromSecret('stream-test');
const ALL: DetectorMaskRule[] = [{ rule: 'all', detect: [...DETECTORS], method: 'redact' }];
const MIXED: DetectorMaskRule[] = [
  { rule: 'keys', detect: ['private_key', 'jwt', 'aws_access_key', 'aws_secret_key', 'github_token', 'high_entropy'], method: 'redact' },
  { rule: 'pii', detect: ['email'], method: 'email' },
  { rule: 'cards', detect: ['credit_card', 'us_ssn'], method: 'partial', keep: 4 },
  { rule: 'net', detect: ['ipv4', 'ipv6', 'phone', 'iban'], method: 'hash' },
];

const join = (...parts: string[]): string => parts.join('');
const PEM = join('-----BEGIN RSA ', 'PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234abcdXk9mQ2pL7vR4\nQ2pL7vR4tY8w==\n-----END RSA ', 'PRIVATE KEY-----');
const JWT = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
const SECRETS = [
  'alice.smith@example.com', '4111 1111 1111 1111', '123-45-6789', '+44 20 7946 0958', 'DE89 3704 0044 0532 0130 00',
  '192.168.1.20', '2001:db8::8a2e:370:7334', JWT, 'AKIAIOSFODNN7EXAMPLE', join('gh', 'p_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'),
  'Xk9mQ2pL7vR4tY8wZ3nB6cF1hJ5sD0aG', 'MIIEpAIBAAKCAQEA1234abcdXk9mQ2pL7vR4',
];

const INPUTS = [
  `user alice.smith@example.com paid with 4111 1111 1111 1111 from 192.168.1.20\n`,
  `ssn=123-45-6789; phone +44 20 7946 0958, iban DE89 3704 0044 0532 0130 00 AND more`,
  `Authorization: Bearer ${JWT}\r\nX-Key: AKIAIOSFODNN7EXAMPLE\r\n\r\n`,
  `${PEM}\nafter the key ${join('gh', 'p_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8')} and 2001:db8::8a2e:370:7334.`,
  `data: {"token":"Xk9mQ2pL7vR4tY8wZ3nB6cF1hJ5sD0aG","n":1}\n\ndata: plain words only\n\n`,
  `no secrets at all, just words and 2024-01-15T10:30:00Z and 550e8400-e29b-41d4-a716-446655440000`,
];

function streamed(pieces: readonly string[], rules: DetectorMaskRule[], holdBack?: number): string {
  const m = new StreamMasker(rules, { key, ...(holdBack === undefined ? {} : { holdBack }) });
  let out = '';
  for (const p of pieces) out += m.push(p);
  return out + m.end();
}

describe('StreamMasker', () => {
  for (const rules of [ALL, MIXED]) {
    describe(`rules ${rules.map((r) => r.rule).join('+')}`, () => {
      INPUTS.forEach((input, n) => {
        const expected = maskText(input, rules, key).text;

        it(`input ${n}: split at every boundary equals one-shot`, () => {
          for (let i = 0; i <= input.length; i++) {
            expect(streamed([input.slice(0, i), input.slice(i)], rules), `split at ${i}`).toBe(expected);
          }
        });

        it(`input ${n}: one character at a time equals one-shot`, () => {
          expect(streamed([...input], rules)).toBe(expected);
        });

        it(`input ${n}: three pieces at every pair of boundaries equals one-shot`, () => {
          const step = Math.max(1, Math.floor(input.length / 40));
          for (let i = 0; i <= input.length; i += step) {
            for (let j = i; j <= input.length; j += step) {
              expect(streamed([input.slice(0, i), input.slice(i, j), input.slice(j)], rules), `${i}/${j}`).toBe(expected);
            }
          }
        });
      });
    });
  }

  it('never lets a raw secret through, whatever the chunking', () => {
    const input = INPUTS.join('');
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let round = 0; round < 200; round++) {
      const pieces: string[] = [];
      for (let i = 0; i < input.length; ) {
        const n = 1 + rand(40);
        pieces.push(input.slice(i, i + n));
        i += n;
      }
      const out = streamed(pieces, ALL);
      for (const s of SECRETS) expect(out).not.toContain(s);
    }
  });

  it('emits text that cannot start a match at once, and holds only a possible token', () => {
    const m = new StreamMasker(ALL);
    expect(m.push('$ ls -la\n')).toBe('$ ls -la\n');
    expect(m.push('total 4\nuser alice.sm')).toBe('total 4\n');
    expect(m.held).toBe('user alice.sm'.length);
    expect(m.push('ith@example.com\n')).toBe('user [redacted]\n');
    expect(m.held).toBe(0);
    expect(m.end()).toBe('');
  });

  it('flush emits what is held (for an idle interactive shell) and keeps working after', () => {
    const m = new StreamMasker(ALL);
    expect(m.push('db=# ')).toBe('db=#');
    expect(m.flush()).toBe(' ');
    expect(m.push('key AKIAIOSFODN')).toBe('');
    expect(m.push('N7EXAMPLE\n')).toBe('key [redacted]\n');
  });

  it('bounds what it holds on a long line without breaks', () => {
    const m = new StreamMasker(ALL, { holdBack: 512 });
    let out = '';
    for (let i = 0; i < 200; i++) {
      out += m.push('the quick brown fox ');
      expect(m.held).toBeLessThanOrEqual(512 + 20);
    }
    out += m.end();
    expect(out).toBe('the quick brown fox '.repeat(200));
  });

  it('masks a token longer than holdBack across chunks, and its continuation', () => {
    const body = Array.from({ length: 120 }, (_, i) => `MIIEpAIBAAKCAQEA${String(i).padStart(4, '0')}Xk9mQ2pL7vR4tY8wZ3nB6cF1h`).join('\n');
    const pem = join('-----BEGIN ', 'PRIVATE KEY-----\n', body, '\n-----END ', 'PRIVATE KEY-----');
    const input = `before\n${pem}\nafter words\n`;
    for (const size of [1, 7, 64, 500, 1024]) {
      const pieces: string[] = [];
      for (let i = 0; i < input.length; i += size) pieces.push(input.slice(i, i + size));
      const m = new StreamMasker([{ rule: 'k', detect: ['private_key'], method: 'redact' }], { holdBack: 512 });
      let out = '';
      for (const p of pieces) {
        out += m.push(p);
        expect(m.held).toBeLessThanOrEqual(2 * 512 + size);
      }
      out += m.end();
      expect(out, `chunks of ${size}`).not.toMatch(/MIIE|Xk9m/);
      expect(out.startsWith('before\n')).toBe(true);
      expect(out.endsWith('after words\n')).toBe(true);
    }
  });

  it('masks a huge high-entropy blob without holding it all', () => {
    let blob = '';
    let seed = 1;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    for (let i = 0; i < 50_000; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      blob += alphabet[(seed >> 8) % 64];
    }
    const m = new StreamMasker([{ rule: 'e', detect: ['high_entropy'], method: 'redact' }], { holdBack: 1024 });
    let out = m.push('blob=');
    for (let i = 0; i < blob.length; i += 333) {
      out += m.push(blob.slice(i, i + 333));
      expect(m.held).toBeLessThanOrEqual(2 * 1024 + 333);
    }
    out += m.push(' end\n') + m.end();
    expect(out).toBe('blob=[redacted] end\n');
  });

  it('passes chunks through untouched when no detector rule applies', () => {
    const m = new StreamMasker([]);
    expect(m.push('alice@example.com')).toBe('alice@example.com');
    expect(m.end()).toBe('');
  });
});
