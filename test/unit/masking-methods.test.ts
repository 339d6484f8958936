import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type ColumnType,
  DetectorRules,
  keyFromSecret,
  maskString,
  maskText,
  maskValue,
  maskValueByDetectors,
  typeFamily,
} from '../../src/masking/index.js';
import type { MaskMethod } from '../../src/core/types.js';

const key = keyFromSecret('test-material');
const otherKey = keyFromSecret('other-material');
const METHODS: MaskMethod[] = ['redact', 'partial', 'hash', 'null', 'email', 'fixed'];

const pg = (oid: number, format: 'text' | 'binary' = 'text'): ColumnType => ({ oid, format });
const my = (mysqlType: number, format: 'text' | 'binary' = 'text'): ColumnType => ({ mysqlType, format });
const str = (b: Buffer | null): string | null => (b === null ? null : b.toString('utf8'));

describe('keyFromSecret', () => {
  it('derives a 32-byte key that depends on the material and is not the HMAC of it', () => {
    expect(key.length).toBe(32);
    expect(key.equals(keyFromSecret('test-material'))).toBe(true);
    expect(key.equals(otherKey)).toBe(false);
    expect(key.equals(createHmac('sha256', 'test-material').digest())).toBe(false);
  });
});

describe('maskString (text methods)', () => {
  it('redact, null, fixed', () => {
    expect(maskString('123-45-6789', 'redact')).toBe('[redacted]');
    expect(maskString('123-45-6789', 'null')).toBe('');
    expect(maskString('123-45-6789', 'fixed', { fixed: 'XXX' })).toBe('XXX');
    expect(maskString('123-45-6789', 'fixed')).toBe('[redacted]');
  });

  it('partial keeps the last N letters and digits, separators, and never more than half', () => {
    expect(maskString('123-45-6789', 'partial', { keep: 4 })).toBe('***-**-6789');
    expect(maskString('4111 1111 1111 1111', 'partial')).toBe('**** **** **** 1111');
    expect(maskString('abc', 'partial', { keep: 4 })).toBe('**c');
    expect(maskString('ab', 'partial', { keep: 10 })).toBe('*b');
    expect(maskString('x', 'partial')).toBe('*');
    expect(maskString('Zoë Müller', 'partial', { keep: 2 })).toBe('*** ****er');
  });

  it('email keeps only the domain; anything else is redacted', () => {
    expect(maskString('alice@example.com', 'email')).toBe('***@example.com');
    expect(maskString('not an address', 'email')).toBe('[redacted]');
  });

  it('hash is keyed, stable and never the value', () => {
    const a = maskString('alice', 'hash', { key });
    expect(a).toMatch(/^h:[0-9a-f]{24}$/);
    expect(maskString('alice', 'hash', { key })).toBe(a);
    expect(maskString('alice', 'hash', { key: otherKey })).not.toBe(a);
    expect(maskString('bob', 'hash', { key })).not.toBe(a);
    // Without a key the value is redacted: an unkeyed hash of a small space is reversible.
    expect(maskString('alice', 'hash')).toBe('[redacted]');
  });
});

describe('maskValue by type family', () => {
  it('maps oids and MySQL types to families', () => {
    expect(typeFamily(pg(25))).toBe('text');
    expect(typeFamily(pg(1043))).toBe('text');
    expect(typeFamily(pg(1042))).toBe('text');
    expect(typeFamily(pg(19))).toBe('text');
    expect(typeFamily({ oid: 16_385, typname: 'citext', format: 'text' })).toBe('text');
    expect(typeFamily(pg(114))).toBe('json');
    expect(typeFamily(pg(3802))).toBe('jsonb');
    expect(typeFamily(pg(2950))).toBe('uuid');
    expect(typeFamily(pg(23))).toBe('integer');
    expect(typeFamily(pg(17))).toBe('bytea');
    expect(typeFamily(pg(1700))).toBe('other');
    expect(typeFamily(pg(1082))).toBe('other');
    expect(typeFamily({ oid: 99_999, format: 'text' })).toBe('other');
    expect(typeFamily(my(253))).toBe('text');
    expect(typeFamily(my(245))).toBe('json');
    expect(typeFamily(my(8))).toBe('integer');
    expect(typeFamily(my(12))).toBe('other');
  });

  it('NULL in is NULL out, for every method and type', () => {
    for (const m of METHODS) {
      for (const t of [pg(25), pg(3802, 'binary'), pg(2950), pg(23, 'binary'), pg(17), pg(1700), my(253), my(3, 'binary')]) {
        expect(maskValue(null, t, m, { key, fixed: 'x' })).toBeNull();
      }
    }
  });

  it('method null is SQL NULL for every type', () => {
    for (const t of [pg(25), pg(114), pg(2950), pg(20), pg(17), my(254)]) expect(maskValue(Buffer.from('v'), t, 'null', {})).toBeNull();
  });

  it('text family: the same bytes in text and binary format', () => {
    for (const format of ['text', 'binary'] as const) {
      const t = pg(1043, format);
      const v = Buffer.from('123-45-6789');
      expect(str(maskValue(v, t, 'redact', {}))).toBe('[redacted]');
      expect(str(maskValue(v, t, 'partial', { keep: 4 }))).toBe('***-**-6789');
      expect(str(maskValue(v, t, 'fixed', { fixed: 'n/a' }))).toBe('n/a');
      expect(str(maskValue(Buffer.from('alice@example.com'), t, 'email', {}))).toBe('***@example.com');
      expect(str(maskValue(v, t, 'hash', { key }))).toMatch(/^h:[0-9a-f]{24}$/);
    }
    expect(str(maskValue(Buffer.from('x'), my(253), 'redact', {}))).toBe('[redacted]');
  });

  it('json and jsonb stay valid JSON; jsonb binary keeps its version byte', () => {
    const asJson = (b: Buffer | null): unknown => JSON.parse(str(b) ?? 'null');
    expect(asJson(maskValue(Buffer.from('"alice@example.com"'), pg(114), 'email', {}))).toBe('***@example.com');
    expect(asJson(maskValue(Buffer.from('{"ssn":"123-45-6789"}'), pg(3802), 'redact', {}))).toBe('[redacted]');
    expect(asJson(maskValue(Buffer.from('"123-45-6789"'), pg(114), 'partial', { keep: 4 }))).toBe('***-**-6789');
    expect(asJson(maskValue(Buffer.from('"x"'), pg(114), 'fixed', { fixed: 'say "hi"' }))).toBe('say "hi"');
    const bin = maskValue(Buffer.concat([Buffer.from([1]), Buffer.from('"alice"')]), pg(3802, 'binary'), 'hash', { key });
    expect(bin?.[0]).toBe(1);
    const text = maskValue(Buffer.from('"alice"'), pg(3802), 'hash', { key });
    expect(JSON.parse(bin?.subarray(1).toString() ?? '')).toBe(JSON.parse(str(text) ?? ''));
    // A JSON string hashes like the same text in a text column, so joins across them work.
    expect(JSON.parse(str(text) ?? '')).toBe(str(maskValue(Buffer.from('alice'), pg(25), 'hash', { key })));
    expect(asJson(maskValue(Buffer.from('42'), my(245), 'redact', {}))).toBe('[redacted]');
  });

  it('uuid: hash gives a stable well-formed uuid in either format; other methods NULL', () => {
    const u = '550e8400-e29b-41d4-a716-446655440000';
    const text = str(maskValue(Buffer.from(u), pg(2950), 'hash', { key }));
    expect(text).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(text).not.toBe(u);
    const bin = maskValue(Buffer.from(u.replace(/-/g, ''), 'hex'), pg(2950, 'binary'), 'hash', { key });
    expect(bin?.length).toBe(16);
    expect(bin?.toString('hex')).toBe(text?.replace(/-/g, ''));
    expect(str(maskValue(Buffer.from(u.toUpperCase()), pg(2950), 'hash', { key }))).toBe(text);
    for (const m of ['redact', 'partial', 'email'] as const) expect(maskValue(Buffer.from(u), pg(2950), m, {})).toBeNull();
    expect(maskValue(Buffer.from(u), pg(2950), 'hash', {})).toBeNull();
    expect(str(maskValue(Buffer.from(u), pg(2950), 'fixed', { fixed: '00000000-0000-0000-0000-000000000000' }))).toBe(
      '00000000-0000-0000-0000-000000000000',
    );
    expect(maskValue(Buffer.from(u), pg(2950), 'fixed', { fixed: 'n/a' })).toBeNull();
  });

  it('integers: hash stays in range and agrees across text/binary and pg/MySQL; others NULL', () => {
    const t = str(maskValue(Buffer.from('123456'), pg(23), 'hash', { key }));
    expect(t).toMatch(/^\d+$/);
    expect(Number(t)).toBeLessThanOrEqual(0x7fffffff);
    const be = Buffer.alloc(4);
    be.writeInt32BE(123456);
    expect(maskValue(be, pg(23, 'binary'), 'hash', { key })?.readInt32BE(0)).toBe(Number(t));
    const le = Buffer.alloc(4);
    le.writeInt32LE(123456);
    expect(maskValue(le, my(3, 'binary'), 'hash', { key })?.readInt32LE(0)).toBe(Number(t));
    const small = maskValue(Buffer.from('-5'), pg(21, 'text'), 'hash', { key });
    expect(Number(str(small))).toBeLessThanOrEqual(0x7fff);
    const big = maskValue(Buffer.from('9007199254740993'), pg(20, 'binary'), 'hash', { key });
    expect(big).toBeNull(); // text bytes handed over as binary: wrong width, fail closed
    const b8 = Buffer.alloc(8);
    b8.writeBigInt64BE(-9007199254740993n);
    expect(maskValue(b8, pg(20, 'binary'), 'hash', { key })?.readBigInt64BE(0)).toBeGreaterThanOrEqual(0n);
    for (const m of ['redact', 'partial', 'email'] as const) expect(maskValue(Buffer.from('1'), pg(23), m, {})).toBeNull();
    expect(str(maskValue(Buffer.from('1'), pg(23), 'fixed', { fixed: '0' }))).toBe('0');
    expect(maskValue(Buffer.from('1'), pg(21), 'fixed', { fixed: '99999' })).toBeNull();
    expect(maskValue(Buffer.from('1'), pg(23, 'binary'), 'fixed', { fixed: '7' })?.readInt32BE(0)).toBe(7);
    expect(maskValue(Buffer.from('1'), my(1, 'binary'), 'fixed', { fixed: '7' })?.length).toBe(1);
  });

  it('bytea: hash gives HMAC bytes in the format asked for; the hex text form decodes first', () => {
    const raw = Buffer.from('secret bytes');
    const bin = maskValue(raw, pg(17, 'binary'), 'hash', { key });
    expect(bin?.length).toBe(32);
    const text = str(maskValue(Buffer.from(`\\x${raw.toString('hex')}`), pg(17), 'hash', { key }));
    expect(text).toBe(`\\x${bin?.toString('hex')}`);
    expect(maskValue(raw, pg(17), 'redact', {})).toBeNull();
  });

  it('other types (numeric, date, arrays …) become NULL whatever the method', () => {
    for (const m of METHODS) {
      expect(maskValue(Buffer.from('12.50'), pg(1700), m, { key, fixed: '0' })).toBeNull();
      expect(maskValue(Buffer.from('2024-01-15'), pg(1082, 'binary'), m, { key })).toBeNull();
      expect(maskValue(Buffer.from('{a,b}'), pg(1009), m, { key })).toBeNull();
    }
  });

  it('no masked output contains the value', () => {
    const v = 'Sensitive-Value-42';
    for (const m of METHODS) {
      for (const t of [pg(25), pg(25, 'binary'), pg(114), pg(3802, 'binary'), my(253), my(245)]) {
        const out = maskValue(Buffer.from(t.oid === 3802 && t.format === 'binary' ? `\u0001"${v}"` : t.oid === 114 || t.mysqlType === 245 ? `"${v}"` : v), t, m, { key, keep: 4 });
        expect(out?.toString('utf8') ?? '').not.toContain('Sensitive');
      }
    }
  });
});

describe('maskValueByDetectors', () => {
  const rules = new DetectorRules([
    { rule: 'pii', detect: ['email', 'credit_card'], method: 'redact' },
    { rule: 'ssn', detect: ['us_ssn'], method: 'partial', keep: 4 },
  ]);

  it('masks findings inside text cells and leaves clean cells as they came', () => {
    const clean = Buffer.from('nothing here');
    expect(maskValueByDetectors(clean, pg(25), rules).value).toBe(clean);
    const r = maskValueByDetectors(Buffer.from('mail alice@example.com ssn 123-45-6789'), pg(25), rules);
    expect(str(r.value)).toBe('mail [redacted] ssn ***-**-6789');
    expect(r.findings).toBe(2);
  });

  it('keeps JSON valid, masking inside strings and numbers', () => {
    const r = maskValueByDetectors(Buffer.from('{"to":"alice@example.com","card":4111111111111111,"n":7}'), pg(3802), rules);
    expect(JSON.parse(str(r.value) ?? '')).toEqual({ to: '[redacted]', card: '[redacted]', n: 7 });
  });

  it('a finding in a non-text cell makes it NULL', () => {
    expect(maskValueByDetectors(Buffer.from('4111111111111111'), pg(20), rules).value).toBeNull();
    const b8 = Buffer.alloc(8);
    b8.writeBigInt64BE(4111111111111111n);
    expect(maskValueByDetectors(b8, pg(20, 'binary'), rules).value).toBeNull();
    const ok = Buffer.from('42');
    expect(maskValueByDetectors(ok, pg(20), rules).value).toBe(ok);
  });
});

describe('maskText rule accumulation', () => {
  it('applies the most destructive rule when several name a detector', () => {
    const text = 'ssn 123-45-6789';
    const out = maskText(text, [
      { rule: 'soft', detect: ['us_ssn'], method: 'partial', keep: 4 },
      { rule: 'hard', detect: ['us_ssn'], method: 'redact' },
    ]);
    expect(out).toEqual({ text: 'ssn [redacted]', findings: 1 });
  });

  it('hashes findings with the key, stably', () => {
    const rules = [{ rule: 'h', detect: ['email'], method: 'hash' as const }];
    const a = maskText('from alice@example.com', rules, key).text;
    expect(a).toMatch(/^from h:[0-9a-f]{24}$/);
    expect(maskText('to alice@example.com', rules, key).text.slice(3)).toBe(a.slice(5));
  });

  it('rejects an unknown detector name', () => {
    expect(() => maskText('x', [{ rule: 'r', detect: ['ssn'], method: 'redact' }])).toThrow(/unknown detector/);
  });
});
