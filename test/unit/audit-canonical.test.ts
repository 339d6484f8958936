import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalScrubbedJson, toPlainJson } from '../../src/audit/canonical.js';
import { scrubDeep, scrubStatement } from '../../src/audit/scrub.js';
import { Secret } from '../../src/secrets/index.js';

/** What the audit log computed before the one-walk serialiser: three passes, two copies. */
const composed = (v: unknown): string => canonicalJson(scrubDeep(toPlainJson(v)));

describe('canonicalScrubbedJson is canonicalJson(scrubDeep(toPlainJson(x)))', () => {
  const cases: Array<[string, unknown]> = [
    ['an action event', { type: 'action', session: 's1', action: { kind: 'sql', dialect: 'postgres', text: 'SELECT 1', statements: ['select'], reads: ['public.t'], writes: [], opaque: false, unparsed: false }, decision: 'allow', rules: [] }],
    ['password literals in nested strings', { type: 'action', a: ["ALTER ROLE x PASSWORD 'hunter2'", { t: "CREATE USER u IDENTIFIED BY 'pw'" }], b: 'dbname=x password=secret' }],
    ['keys out of order, unicode, escapes', { z: 1, a: 'é\u2028"\\\n', M: { y: [3, 2, 1], b: '\u0000' }, '10': 'ten', '2': 'two' }],
    ['undefined, functions and symbols', { type: 'x', u: undefined, f: () => 1, s: Symbol('s'), arr: [undefined, () => 1, Symbol('t'), 1] }],
    ['non-finite numbers and -0', { type: 'x', n: [NaN, Infinity, -Infinity, -0, 1e21, 1.5e-7, 0.1] }],
    ['Dates and toJSON', { type: 'x', at: new Date(0), custom: { toJSON: (k: string) => `key:${k}` } }],
    ['a Secret redacts itself', { type: 'x', secret: new Secret('do-not-log-me') }],
    ['boxed primitives', { type: 'x', b: Object(true) as unknown, n: Object(3) as unknown, s: Object("PASSWORD 'p'") as unknown }],
    ['Maps and class instances', { type: 'x', m: new Map([['a', 1]]), c: new (class { a = 1; b = 'two'; })() }],
    ['empty containers and nulls', { type: 'x', o: {}, a: [], n: null, deep: [[[]], [{}]] }],
  ];
  for (const [name, value] of cases) {
    it(name, () => {
      expect(canonicalScrubbedJson(value, scrubStatement)).toBe(composed(value));
    });
  }

  it('never writes the secret value', () => {
    expect(canonicalScrubbedJson({ type: 'x', s: new Secret('do-not-log-me') }, scrubStatement)).not.toContain('do-not-log-me');
  });

  it('throws on cycles and BigInt, as JSON.stringify does', () => {
    const cyclic: Record<string, unknown> = { type: 'x' };
    cyclic.self = cyclic;
    expect(() => canonicalScrubbedJson(cyclic, scrubStatement)).toThrow(TypeError);
    expect(() => canonicalScrubbedJson({ type: 'x', n: 1n }, scrubStatement)).toThrow(TypeError);
  });

  it('a shared (non-cyclic) object appears twice', () => {
    const shared = { a: 1 };
    const v = { type: 'x', p: shared, q: [shared, shared] };
    expect(canonicalScrubbedJson(v, scrubStatement)).toBe(composed(v));
  });
});
