import { describe, expect, it } from 'vitest';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { nodeTag, parseRoleComment, quoteIdent, quoteLiteral, roleComment, roleName, sanitiseSubject, scramVerifier } from '../../src/credentials/pg-sql.js';

describe('quoting for admin SQL', () => {
  it('quote_ident doubles double quotes and always quotes', () => {
    expect(quoteIdent('app_readonly')).toBe('"app_readonly"');
    expect(quoteIdent('we"ird')).toBe('"we""ird"');
    expect(quoteIdent('')).toBe('""');
    expect(() => quoteIdent('a\0b')).toThrow();
  });
  it('quote_literal doubles quotes, and uses E\'\' with doubled backslashes when needed', () => {
    expect(quoteLiteral("o'brien")).toBe("'o''brien'");
    expect(quoteLiteral('a\\b')).toBe("E'a\\\\b'");
    expect(quoteLiteral("x\\'; drop role postgres; --")).toBe("E'x\\\\''; drop role postgres; --'");
    expect(quoteLiteral('ü 😀')).toBe("'ü 😀'");
  });
});

describe('role names', () => {
  it('sanitises any subject to lower-case [a-z0-9_] of bounded length', () => {
    expect(sanitiseSubject(`o'brien "x" ü 😀 ; drop role postgres`)).toBe('o_brien_x_u_drop_rol');
    expect(sanitiseSubject('Zoë.Müller@Example.COM')).toBe('zoe_muller_example_c');
    expect(sanitiseSubject('😀😀')).toBe('user');
    expect(sanitiseSubject('___')).toBe('user');
  });
  it('stays within 63 bytes whatever the prefix and subject', () => {
    for (const prefix of ['airlock_', 'a', 'p'.repeat(40)]) {
      const n = roleName(prefix, 'x'.repeat(500), 'node-1');
      expect(Buffer.byteLength(n)).toBeLessThanOrEqual(63);
      expect(n).toMatch(/^[a-z0-9_]+$/);
      expect(n).toContain(`_${nodeTag('node-1')}_`);
    }
    expect(roleName('airlock_', 'bob', 'n')).not.toBe(roleName('airlock_', 'bob', 'n'));
  });
  it('recognises only airlock comments', () => {
    expect(parseRoleComment(roleComment({ node: 'n1', session: 's1', subject: "o'b" }))).toEqual({ node: 'n1', session: 's1' });
    expect(parseRoleComment(null)).toBeNull();
    expect(parseRoleComment('the DBA team')).toBeNull();
    expect(parseRoleComment('{"airlock":{"node":1,"session":"s"}}')).toBeNull();
    expect(parseRoleComment('{"other":{}}')).toBeNull();
  });
});

describe('SCRAM-SHA-256 verifier', () => {
  it('matches RFC 5802 key derivation in PostgreSQL\'s stored form', async () => {
    const v = await scramVerifier('pencil', 4096);
    const m = /^SCRAM-SHA-256\$4096:([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(v);
    expect(m).not.toBeNull();
    const salt = Buffer.from(m?.[1] ?? '', 'base64');
    const salted = pbkdf2Sync('pencil', salt, 4096, 32, 'sha256');
    const stored = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest('base64');
    expect(m?.[2]).toBe(stored);
    expect(m?.[3]).toBe(createHmac('sha256', salted).update('Server Key').digest('base64'));
    expect(v).not.toContain('pencil');
  });
});
