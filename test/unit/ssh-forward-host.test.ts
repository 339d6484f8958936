import { describe, expect, it } from 'vitest';
import { ForwardGlobs, forwardHost } from '../../src/policy/forward.js';

describe('forwardHost: the spelling the target connects to', () => {
  it.each([
    ['127.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0x7f.0.0.1', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['127.000.000.001', '127.0.0.1'],
    ['10.0.258', '10.0.1.2'],
    ['127.0.0.1.', '127.0.0.1'],
    ['DB.Internal.', 'db.internal'],
    ['::FFFF:127.0.0.1', '::ffff:7f00:1'],
    ['[0:0::1]', '::1'],
  ])('%s is %s', (raw, canonical) => {
    expect(forwardHost(raw)).toBe(canonical);
  });

  it.each(['', '256.0.0.1', '1.2.3.4.5.6', '08.0.0.1', 'db internal', 'db\0.internal', 'fe80::1%eth0', 'db:5432', '-db', `${'a'.repeat(300)}`])('%j is refused', (raw) => {
    expect(forwardHost(raw)).toBeNull();
  });
});

describe('forward globs', () => {
  it('an address glob matches addresses, never a name that starts with its digits', () => {
    const g = new ForwardGlobs(['10.0.0.*:5432']);
    expect(g.test('10.0.0.7', 5432)).toBe(true);
    expect(g.test('10.0.7', 5432)).toBe(true);
    expect(g.test('10.0.0.7.attacker.example', 5432)).toBe(false);
    expect(g.test('10.0.0.7', 5433)).toBe(false);
  });

  it('names match case-insensitively and without the trailing dot', () => {
    const g = new ForwardGlobs(['db.internal:5432', '*.svc:*']);
    expect(g.test('DB.INTERNAL.', 5432)).toBe(true);
    expect(g.test('api.svc', 443)).toBe(true);
    expect(g.test('db.internal\0x', 5432)).toBe(false);
  });
});
