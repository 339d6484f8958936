/**
 * HTTP policy inputs (issue 25, item 5): a method-override header is judged as every method
 * it names and passes only where a rule admits overrides; path globs match either case unless
 * a rule says case_sensitive; path segments that servers read differently are refused.
 */
import { describe, expect, it } from 'vitest';
import { METHOD_OVERRIDE_RULE, Policy, type PolicyContext } from '../../src/policy/index.js';
import { type RuleConfig } from '../../src/config/index.js';
import { validateConfig } from '../../app/config.js';
import type { Action, Identity } from '../../src/core/types.js';
import { normaliseTarget, refusePathOverride } from '../../protocols/http/path.js';

function rules(doc: unknown[]): RuleConfig[] {
  const r = validateConfig({ rules: doc });
  if (!r.ok) throw new Error(r.problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
  return r.config.rules;
}
const identity: Identity = { subject: 'claude', issuer: 'https://idp', groups: ['agents'], kind: 'agent', expiresAt: Date.now() + 3_600_000 };
const ctx: PolicyContext = { identity, connection: 'api', resolveRelation: () => [] };
const http = (method: string, path: string, headers: Record<string, string> = {}, query?: string): Action => ({ kind: 'http', method, path, headers, ...(query === undefined ? {} : { query }) });

describe('method override headers', () => {
  const base = [
    { name: 'no-admin-deletes', when: { http: { methods: ['DELETE'], paths: ['/admin/**'] } }, effect: 'deny' },
    { name: 'admin-puts-wait', when: { http: { methods: ['PUT'], paths: ['/admin/**'] } }, effect: 'approve', approvers: ['dba'] },
  ];
  it('without a rule admitting overrides, any of the three headers is refused by (method_override)', () => {
    const p = new Policy(rules(base));
    for (const h of ['X-HTTP-Method-Override', 'x-http-method', 'X-Method-Override', 'X_HTTP_METHOD_OVERRIDE']) {
      const d = p.decide(http('POST', '/public/x', { [h]: 'GET' }), ctx);
      expect(d.effect).toBe('deny');
      expect(d.effect === 'deny' && d.rule).toBe(METHOD_OVERRIDE_RULE);
    }
    expect(p.decide(http('POST', '/public/x'), ctx).effect).toBe('allow');
  });

  const admitting = new Policy(rules([...base, { name: 'overrides-ok', when: { http: { method_override: true } }, effect: 'allow' }]));
  it('admitted, the request is judged as the override too: POST + DELETE override meets the DELETE deny', () => {
    const d = admitting.decide(http('POST', '/admin/x', { 'x-http-method-override': 'delete' }), ctx);
    expect(d.effect === 'deny' && d.rule).toBe('no-admin-deletes');
    // every value of a repeated header counts
    const d2 = admitting.decide(http('POST', '/admin/x', { 'x-method-override': 'GET, DELETE' }), ctx);
    expect(d2.effect === 'deny' && d2.rule).toBe('no-admin-deletes');
  });
  it('admitted, the most restrictive wins: an override to PUT is held, one to GET passes', () => {
    expect(admitting.decide(http('POST', '/admin/x', { 'x-http-method': 'PUT' }), ctx).effect).toBe('hold');
    expect(admitting.decide(http('POST', '/admin/x', { 'x-http-method': 'GET' }), ctx).effect).toBe('allow');
  });
  it('a _method query parameter (Symfony, Laravel) is an override too, however spelled', () => {
    const p = new Policy(rules(base));
    for (const query of ['_method=DELETE', 'a=1&_method=delete', '%5Fmethod=DELETE', '_method%5B%5D=DELETE', '_method']) {
      const d = p.decide(http('POST', '/public/x', {}, query), ctx);
      expect(d.effect === 'deny' && d.rule).toBe(METHOD_OVERRIDE_RULE);
    }
    expect(p.decide(http('POST', '/public/x', {}, 'method=DELETE&x_method=1'), ctx).effect).toBe('allow');
    const d = admitting.decide(http('POST', '/admin/x', {}, '_method=DELETE'), ctx);
    expect(d.effect === 'deny' && d.rule).toBe('no-admin-deletes');
  });

  it('a deny rule still beats an admitting rule', () => {
    const d = admitting.decide(http('DELETE', '/admin/x', { 'x-http-method-override': 'GET' }), ctx);
    expect(d.effect === 'deny' && d.rule).toBe('no-admin-deletes');
  });
});

describe('path globs fold case unless case_sensitive', () => {
  it('/ADMIN/x and /Admin/X meet a /admin/** rule; case_sensitive: true opts out', () => {
    const p = new Policy(rules([
      { name: 'no-admin', when: { http: { paths: ['/admin/**'] } }, effect: 'deny' },
      { name: 'exact', when: { http: { paths: ['/Exact/**'], case_sensitive: true } }, effect: 'deny' },
    ]));
    for (const path of ['/ADMIN/x', '/Admin/X', '/admin/x']) expect(p.decide(http('GET', path), ctx).effect).toBe('deny');
    expect(p.decide(http('GET', '/Exact/x'), ctx).effect).toBe('deny');
    expect(p.decide(http('GET', '/exact/x'), ctx).effect).toBe('allow');
  });
});

describe('a trailing slash does not change what a path rule matches', () => {
  it('/admin/users/ meets a rule on /admin/users; /admin meets /admin/**', () => {
    const p = new Policy(rules([
      { name: 'users', when: { http: { methods: ['DELETE'], paths: ['/admin/users'] } }, effect: 'deny' },
      { name: 'admin', when: { http: { methods: ['PUT'], paths: ['/admin/**'] } }, effect: 'deny' },
    ]));
    expect(p.decide(http('DELETE', '/admin/users/'), ctx).effect).toBe('deny');
    expect(p.decide(http('DELETE', '/admin/users'), ctx).effect).toBe('deny');
    expect(p.decide(http('PUT', '/admin'), ctx).effect).toBe('deny');
    expect(p.decide(http('PUT', '/administrator'), ctx).effect).toBe('allow');
    expect(p.decide(http('DELETE', '/admin/users/7'), ctx).effect).toBe('allow');
  });
});

describe('path segments servers read differently are refused', () => {
  const refused = [
    '/admin;x/x', '/public/..;/admin/x', '/admin%3Bx/x', '/admin./x', '/admin%2e/x', '/admin%00/x', '/admin%20/x',
    '/admin%09/x', '/admin%7f/x', '/admin%0a/x', '/a/%C0%AE%C0%AE/admin', '/a/%ff', '/admin.../x',
  ];
  for (const raw of refused) it(`refuses ${raw}`, () => expect(() => normaliseTarget(raw)).toThrow(/ambiguous/));
  const kept: Array<[string, string]> = [['/a/%20b', '/a/%20b'], ['/v1.2/x', '/v1.2/x'], ['/a/./b', '/a/b'], ['/a/%2e%2e/b', '/b'], ['/caf%c3%a9', '/caf%C3%A9'], ['/.well-known/x', '/.well-known/x']];
  for (const [raw, want] of kept) it(`keeps ${raw} as ${want}`, () => expect(normaliseTarget(raw).path).toBe(want));
});

describe('headers naming another path', () => {
  it('X-Original-URL and X-Rewrite-URL are refused; other headers pass', () => {
    expect(() => refusePathOverride({ 'x-original-url': '/admin/x' })).toThrow(/ambiguous/);
    expect(() => refusePathOverride({ 'x-rewrite-url': '/admin/x' })).toThrow(/ambiguous/);
    expect(() => refusePathOverride({ x_original_url: '/admin/x' })).toThrow(/ambiguous/);
    expect(() => refusePathOverride({ 'x-url': '/admin/x', accept: '*/*' })).not.toThrow();
  });
});
