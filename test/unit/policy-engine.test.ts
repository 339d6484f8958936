import { describe, expect, it } from 'vitest';
import { Policy, WEBSOCKET_RULE, LOAD_DATA_LOCAL_RULE, compileGlob, globProblem, commandLines, type PolicyContext } from '../../src/policy/index.js';
import { type RuleConfig } from '../../src/config/index.js';
import { validateConfig } from '../../app/config.js';
import type { Action, Decision, Identity } from '../../src/core/types.js';
import type { RelationRef, StatementAnalysis, StatementKind } from '../../parsers/sql/types.js';

function rules(doc: unknown[]): RuleConfig[] {
  const r = validateConfig({ rules: doc });
  if (!r.ok) throw new Error(r.problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
  return r.config.rules;
}

function who(over: Partial<Identity> = {}): Identity {
  return { subject: 'alice@example.com', issuer: 'https://idp', groups: ['dev'], kind: 'human', expiresAt: Date.now() + 3_600_000, ...over };
}

const rel = (name: string, schema: string | null = null): RelationRef => ({ schema, name });

function stmt(over: Partial<StatementAnalysis> & { kinds: StatementKind[] }): Action {
  const statement: StatementAnalysis = {
    text: 'SQL',
    reads: [],
    writes: [],
    functions: [],
    withoutWhere: false,
    opaque: false,
    unparsed: false,
    outputs: null,
    predicateColumns: [],
    ...over,
  };
  return { kind: 'sql', dialect: 'postgres', text: statement.text, statement };
}

function ctx(identity = who(), connection = 'appdb', path = ['app', 'public']): PolicyContext {
  return { identity, connection, resolveRelation: (r) => (r.schema !== null ? [`${r.schema}.${r.name}`] : path.map((s) => `${s}.${r.name}`)) };
}

function expectEffect(d: Decision, effect: Decision['effect'], rule?: string): void {
  expect(d.effect).toBe(effect);
  if (rule !== undefined && d.effect !== 'allow') expect(d.rule).toBe(rule);
}

/** The issue's example rule list, verbatim. */
const issueRules = rules([
  { name: 'no-ddl-for-agents', when: { groups: ['agents'], connections: ['appdb'], statements: ['drop', 'truncate', 'alter', 'create', 'grant', 'revoke'] }, effect: 'deny', reason: 'agents may not change the schema' },
  { name: 'no-unbounded-writes', when: { statements: ['update', 'delete'], without_where: true }, effect: 'deny' },
  { name: 'orders-writes-need-a-dba', when: { statements: ['insert', 'update', 'delete', 'merge'], tables: ['public.orders'] }, effect: 'approve', approvers: ['dba'], timeout: '10m' },
  { name: 'opaque-is-denied', when: { opaque: true }, effect: 'deny' },
]);

describe('compileGlob', () => {
  it('* stays within a segment, ** crosses, ? is one character, classes work, anchored and case-sensitive', () => {
    expect(compileGlob('public.*').test('public.orders')).toBe(true);
    expect(compileGlob('public.*').test('public.a.b')).toBe(false);
    expect(compileGlob('public.**').test('public.a.b')).toBe(true);
    expect(compileGlob('*.ord?rs').test('x.orders')).toBe(true);
    expect(compileGlob('*.ord?rs').test('x.ord.rs')).toBe(false);
    expect(compileGlob('t[0-9]').test('t7')).toBe(true);
    expect(compileGlob('t[!0-9]').test('t7')).toBe(false);
    expect(compileGlob('t[!0-9]').test('tx')).toBe(true);
    expect(compileGlob('orders').test('public.orders')).toBe(false);
    expect(compileGlob('orders').test('Orders')).toBe(false);
    expect(compileGlob('a\\*b').test('a*b')).toBe(true);
    expect(compileGlob('a\\*b').test('axb')).toBe(false);
    expect(compileGlob('a+b(c)').test('a+b(c)')).toBe(true);
  });

  it('separator is selectable: / for paths, none for subjects', () => {
    expect(compileGlob('/admin/*', { separator: '/' }).test('/admin/users')).toBe(true);
    expect(compileGlob('/admin/*', { separator: '/' }).test('/admin/users/1')).toBe(false);
    expect(compileGlob('/admin/**', { separator: '/' }).test('/admin/users/1')).toBe(true);
    expect(compileGlob('*@example.com', { separator: null }).test('alice.smith@example.com')).toBe(true);
  });

  it('rejects malformed globs', () => {
    for (const g of ['', 'public.[x', 'a]b', 'x[]', 'x\\', 'x[z-a]']) {
      expect(globProblem(g)).not.toBeNull();
      expect(() => compileGlob(g)).toThrow(/malformed glob/);
    }
    expect(globProblem('[]x]')).toBeNull();
  });
});

describe('config validation of rules', () => {
  it('rejects unknown statement kinds, malformed globs, unknown when keys and per-action keys on mask rules', () => {
    const r = validateConfig({
      rules: [
        { name: 'a', when: { statements: ['dorp'] }, effect: 'deny' },
        { name: 'b', when: { tables: ['public.[orders'] }, effect: 'deny' },
        { name: 'c', when: { subjects: ['x]'] }, effect: 'deny' },
        { name: 'd', when: { colour: 'red' }, effect: 'deny' },
        { name: 'e', when: { tables: ['x'] }, effect: 'mask', columns: ['*.*.ssn'] },
        { name: 'f', when: { http: { paths: ['/a/[b'] } }, effect: 'deny' },
      ],
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const paths = r.problems.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining(['rules[0].when.statements[0]', 'rules[1].when.tables[0]', 'rules[2].when.subjects[0]', 'rules[3].when', 'rules[4].when.tables', 'rules[5].when.http.paths[0]']),
    );
    expect(r.problems.find((p) => p.path === 'rules[1].when.tables[0]')?.message).toMatch(/malformed glob/);
  });

  it('accepts the issue example and the SSH/HTTP keys', () => {
    expect(issueRules).toHaveLength(4);
    expect(() =>
      rules([
        { name: 's', when: { commands: ['rm -rf *'], programs: ['psql'] }, effect: 'deny' },
        { name: 'f', when: { forward: ['*:22'] }, effect: 'deny' },
        { name: 'p', when: { sftp: { ops: ['write'], paths: ['/etc/**'] } }, effect: 'deny' },
        { name: 'h', when: { http: { methods: ['DELETE'], paths: ['/api/**'] } }, effect: 'approve', approvers: ['ops'] },
      ]),
    ).not.toThrow();
  });
});

describe('Policy.decide: the issue example', () => {
  const policy = new Policy(issueRules);
  const agent = who({ subject: 'bot-1', groups: ['agents'], kind: 'agent' });

  it('denies DDL for agents on appdb with the rule reason, but not elsewhere or for others', () => {
    const d = policy.decide(stmt({ kinds: ['drop'], writes: [rel('t')] }), ctx(agent));
    expectEffect(d, 'deny', 'no-ddl-for-agents');
    if (d.effect === 'deny') expect(d.reason).toBe('agents may not change the schema');
    expectEffect(policy.decide(stmt({ kinds: ['drop'] }), ctx(agent, 'otherdb')), 'allow');
    expectEffect(policy.decide(stmt({ kinds: ['drop'] }), ctx(who())), 'allow');
  });

  it('denies an UPDATE/DELETE without WHERE with a generated reason', () => {
    const d = policy.decide(stmt({ kinds: ['delete'], writes: [rel('logs')], withoutWhere: true }), ctx());
    expectEffect(d, 'deny', 'no-unbounded-writes');
    if (d.effect === 'deny') expect(d.reason).toBe('an unbounded DELETE (nothing in its text pins the rows it changes) on appdb');
  });

  it('holds writes to public.orders for a dba with the rule timeout', () => {
    const d = policy.decide(stmt({ kinds: ['update'], writes: [rel('orders')] }), ctx());
    expectEffect(d, 'hold', 'orders-writes-need-a-dba');
    if (d.effect !== 'hold') return;
    expect(d.approvers).toEqual(['dba']);
    expect(d.timeoutMs).toBe(600_000);
    expect(d.perExecution).toBe(false);
    expect(d.grantForMs).toBeUndefined();
    expect(d.reason).toBe('UPDATE touching public.orders on appdb needs approval from dba');
  });

  it('deny beats approve, and rules lists every matching rule in config order', () => {
    const d = policy.decide(stmt({ kinds: ['delete'], writes: [rel('orders', 'public')], withoutWhere: true }), ctx());
    expectEffect(d, 'deny', 'no-unbounded-writes');
    expect(d.rules).toEqual(['no-unbounded-writes', 'orders-writes-need-a-dba']);
  });

  it('denies opaque statements and allows a plain SELECT with no rules listed', () => {
    expectEffect(policy.decide(stmt({ kinds: ['do'], opaque: true }), ctx()), 'deny', 'opaque-is-denied');
    const d = policy.decide(stmt({ kinds: ['select'], reads: [rel('orders')] }), ctx());
    expect(d).toMatchObject({ effect: 'allow', rules: [] });
  });

  it('EXPLAIN ANALYZE DELETE matches delete; plain EXPLAIN does not', () => {
    expectEffect(policy.decide(stmt({ kinds: ['explain', 'delete'], writes: [rel('orders')] }), ctx()), 'hold');
    expectEffect(policy.decide(stmt({ kinds: ['explain'], writes: [rel('orders')] }), ctx()), 'allow');
  });
});

describe('Policy.decide: every when key', () => {
  const deny = (when: Record<string, unknown>) => new Policy(rules([{ name: 'r', when, effect: 'deny' }]));
  const denied = (p: Policy, a: Action, c = ctx()) => p.decide(a, c).effect === 'deny';
  const select = (over: Partial<StatementAnalysis> = {}) => stmt({ kinds: ['select'], ...over });

  it('groups (any of), kinds, subjects (globs)', () => {
    expect(denied(deny({ groups: ['ops', 'dev'] }), select())).toBe(true);
    expect(denied(deny({ groups: ['ops'] }), select())).toBe(false);
    expect(denied(deny({ kinds: ['agent', 'machine'] }), select(), ctx(who({ kind: 'machine' })))).toBe(true);
    expect(denied(deny({ kinds: ['agent'] }), select())).toBe(false);
    expect(denied(deny({ subjects: ['*@example.com'] }), select())).toBe(true);
    expect(denied(deny({ subjects: ['bob@*'] }), select())).toBe(false);
  });

  it('connections are globs', () => {
    expect(denied(deny({ connections: ['prod-*'] }), select(), ctx(who(), 'prod-eu'))).toBe(true);
    expect(denied(deny({ connections: ['prod-*'] }), select(), ctx(who(), 'staging'))).toBe(false);
  });

  it('statements match if any of the statement kinds is listed', () => {
    expect(denied(deny({ statements: ['insert'] }), stmt({ kinds: ['select', 'insert'] }))).toBe(true);
    expect(denied(deny({ statements: ['insert'] }), select())).toBe(false);
  });

  it('tables match any read or written relation; unqualified names through every search_path candidate', () => {
    const p = deny({ tables: ['app.secrets'] });
    expect(denied(p, select({ reads: [rel('secrets')] }))).toBe(true); // app is first on the path
    expect(denied(p, select({ reads: [rel('secrets')] }), ctx(who(), 'appdb', ['public']))).toBe(false);
    expect(denied(p, stmt({ kinds: ['insert'], writes: [rel('secrets', 'app')] }))).toBe(true);
    expect(denied(p, select({ reads: [rel('secrets', 'public')] }))).toBe(false);
    // A dotless glob names the table in any schema.
    expect(denied(deny({ tables: ['secrets'] }), select({ reads: [rel('secrets', 'other')] }))).toBe(true);
    const d = deny({ tables: ['secrets'] }).decide(select({ reads: [rel('secrets')] }), ctx());
    if (d.effect === 'deny') expect(d.reason).toBe('SELECT touching app.secrets on appdb');
    expect(denied(deny({ tables: ['public.sec*'] }), select({ reads: [rel('x'), rel('secrets')] }))).toBe(true);
  });

  it('resolveRelation returning nothing falls back to public', () => {
    const c: PolicyContext = { identity: who(), connection: 'appdb', resolveRelation: () => [] };
    expect(denied(deny({ tables: ['public.t'] }), select({ reads: [rel('t')] }), c)).toBe(true);
  });

  it('tables_read and tables_written narrow to one side', () => {
    const a = stmt({ kinds: ['insert', 'select'], reads: [rel('src', 'public')], writes: [rel('dst', 'public')] });
    expect(denied(deny({ tables_read: ['public.src'] }), a)).toBe(true);
    expect(denied(deny({ tables_read: ['public.dst'] }), a)).toBe(false);
    expect(denied(deny({ tables_written: ['public.dst'] }), a)).toBe(true);
    expect(denied(deny({ tables_written: ['public.src'] }), a)).toBe(false);
  });

  it('functions match as written, by bare name, and through pg_catalog', () => {
    const p = deny({ functions: ['pg_read_file'] });
    expect(denied(p, select({ functions: ['pg_read_file'] }))).toBe(true);
    expect(denied(p, select({ functions: ['pg_catalog.pg_read_file'] }))).toBe(true);
    expect(denied(deny({ functions: ['pg_catalog.pg_read_*'] }), select({ functions: ['pg_read_binary_file'] }))).toBe(true);
    expect(denied(p, select({ functions: ['now'] }))).toBe(false);
    const d = p.decide(select({ functions: ['pg_read_file'] }), ctx());
    if (d.effect === 'deny') expect(d.reason).toBe('SELECT calling pg_read_file on appdb');
  });

  it('without_where, opaque and unparsed match on their boolean value', () => {
    expect(denied(deny({ without_where: true }), stmt({ kinds: ['update'], withoutWhere: true }))).toBe(true);
    expect(denied(deny({ without_where: true }), stmt({ kinds: ['update'] }))).toBe(false);
    expect(denied(deny({ opaque: true }), stmt({ kinds: ['call'], opaque: true }))).toBe(true);
    expect(denied(deny({ opaque: false }), stmt({ kinds: ['call'], opaque: true }))).toBe(false);
    expect(denied(deny({ unparsed: true }), stmt({ kinds: ['other'], unparsed: true }))).toBe(true);
  });

  it('all given keys must match', () => {
    const p = deny({ groups: ['dev'], statements: ['delete'], tables: ['public.t'] });
    expect(denied(p, stmt({ kinds: ['delete'], writes: [rel('t', 'public')] }))).toBe(true);
    expect(denied(p, stmt({ kinds: ['delete'], writes: [rel('u', 'public')] }))).toBe(false);
    expect(denied(p, stmt({ kinds: ['delete'], writes: [rel('t', 'public')] }), ctx(who({ groups: ['ops'] })))).toBe(false);
  });

  it('a rule with only identity keys applies to every action but connect', () => {
    const p = deny({ kinds: ['agent'] });
    const agent = ctx(who({ kind: 'agent' }));
    expect(denied(p, select(), agent)).toBe(true);
    expect(denied(p, { kind: 'shell', command: 'ls' }, agent)).toBe(true);
    expect(denied(p, { kind: 'connect' }, agent)).toBe(false);
  });
});

describe('Policy.decide: unparsed statements fail closed', () => {
  const unparsed = stmt({ kinds: ['other'], unparsed: true, text: 'SELEC 1' });

  it('are denied by (unparsed) with no rules at all', () => {
    const d = new Policy([]).decide(unparsed, ctx());
    expectEffect(d, 'deny', '(unparsed)');
    if (d.effect === 'deny') expect(d.reason).toMatch(/could not parse.*alice@example\.com on appdb/);
    expect(d.rules).toEqual(['(unparsed)']);
  });

  it('are allowed only by an allow rule with unparsed: true that matches this identity', () => {
    const p = new Policy(rules([
      { name: 'dba-may-send-anything', when: { groups: ['dba'], unparsed: true }, effect: 'allow' },
      { name: 'allow-everything', when: {}, effect: 'allow' },
    ]));
    expectEffect(p.decide(unparsed, ctx(who({ groups: ['dba'] }))), 'allow');
    expectEffect(p.decide(unparsed, ctx()), 'deny', '(unparsed)');
  });

  it('an explicit deny still wins over the explicit allow; an approve rule with unparsed: true holds', () => {
    const p = new Policy(rules([
      { name: 'allow-unparsed', when: { unparsed: true }, effect: 'allow' },
      { name: 'agents-never', when: { kinds: ['agent'] }, effect: 'deny' },
      { name: 'ci-asks', when: { kinds: ['machine'], unparsed: true }, effect: 'approve', approvers: ['dba'] },
    ]));
    expectEffect(p.decide(unparsed, ctx(who({ kind: 'agent' }))), 'deny', 'agents-never');
    expectEffect(p.decide(unparsed, ctx(who({ kind: 'machine' }))), 'hold', 'ci-asks');
    expectEffect(p.decide(unparsed, ctx()), 'allow');
  });
});

describe('Policy.decide: connect', () => {
  const p = new Policy(
    rules([
      { name: 'prod-access', when: { connections: ['prod'], statements: ['connect'] }, effect: 'approve', approvers: ['dba'], grant_for: '1h' },
      { name: 'orders', when: { statements: ['connect', 'delete'], tables: ['*.orders'] }, effect: 'deny' },
      { name: 'deletes', when: { statements: ['delete'] }, effect: 'approve', approvers: ['dba'], timeout: '30s', per_execution: true },
    ]),
    { defaultApprovalTimeoutMs: 120_000 },
  );

  it('holds the session start with grant_for and the default timeout; SQL-keyed rules never match connect', () => {
    const d = p.decide({ kind: 'connect' }, ctx(who(), 'prod'));
    expectEffect(d, 'hold', 'prod-access');
    if (d.effect !== 'hold') return;
    expect(d.grantForMs).toBe(3_600_000);
    expect(d.timeoutMs).toBe(120_000);
    expect(d.rules).toEqual(['prod-access']);
    expect(d.reason).toBe('connecting to prod needs approval from dba');
    expectEffect(p.decide({ kind: 'connect' }, ctx(who(), 'staging')), 'allow');
  });

  it('a connect rule does not match statements, and per_execution/timeout carry through', () => {
    const d = p.decide(stmt({ kinds: ['delete'], writes: [rel('x', 'public')] }), ctx(who(), 'prod'));
    expectEffect(d, 'hold', 'deletes');
    if (d.effect === 'hold') {
      expect(d.perExecution).toBe(true);
      expect(d.timeoutMs).toBe(30_000);
      expect(d.rules).toEqual(['deletes']);
    }
  });
});

describe('Policy.decide: SSH and HTTP keys', () => {
  const p = new Policy(rules([
    { name: 'no-rm', when: { commands: ['rm -rf *'] }, effect: 'deny' },
    { name: 'no-psql', when: { programs: ['psql'] }, effect: 'approve', approvers: ['dba'] },
    { name: 'no-ssh-fwd', when: { forward: ['*:22'] }, effect: 'deny' },
    { name: 'no-etc', when: { sftp: { ops: ['write', 'remove'], paths: ['/etc/**'] } }, effect: 'deny' },
    { name: 'api-deletes', when: { http: { methods: ['delete'], paths: ['/api/*/users/**'] } }, effect: 'deny' },
  ]));

  it('commands match each simple command of a line; programs the argv0 basename', () => {
    expectEffect(p.decide({ kind: 'shell', command: 'cd /tmp && rm -rf /' }, ctx()), 'deny', 'no-rm');
    expectEffect(p.decide({ kind: 'shell', command: 'ls | /usr/bin/psql --version' }, ctx()), 'hold', 'no-psql');
    expectEffect(p.decide({ kind: 'exec', argv: ['/usr/bin/psql'], command: '/usr/bin/psql --help' }, ctx()), 'hold', 'no-psql');
    // psql runs what it reads (`\!` runs a shell command): with -c or code on stdin it is opaque,
    // and opaque matches every deny rule about commands.
    expectEffect(p.decide({ kind: 'shell', command: 'ls | /usr/bin/psql -c x' }, ctx()), 'deny', 'no-rm');
    expectEffect(p.decide({ kind: 'exec', argv: ['/usr/bin/psql'], command: '/usr/bin/psql' }, ctx()), 'deny', 'no-rm');
    expectEffect(p.decide({ kind: 'shell', command: 'ls -l' }, ctx()), 'allow');
    expect(commandLines('a; b && c')).toEqual(['a; b && c', 'a', 'b', 'c']);
  });

  it('forward, sftp and http', () => {
    expectEffect(p.decide({ kind: 'forward', host: 'db.internal', port: 22 }, ctx()), 'deny', 'no-ssh-fwd');
    expectEffect(p.decide({ kind: 'forward', host: 'db.internal', port: 5432 }, ctx()), 'allow');
    expectEffect(p.decide({ kind: 'sftp', op: 'WRITE', path: '/etc/ssh/sshd_config' }, ctx()), 'deny', 'no-etc');
    expectEffect(p.decide({ kind: 'sftp', op: 'read', path: '/etc/hosts' }, ctx()), 'allow');
    expectEffect(p.decide({ kind: 'http', method: 'DELETE', path: '/api/v1/users/7?x=1', headers: {} }, ctx()), 'deny', 'api-deletes');
    expectEffect(p.decide({ kind: 'http', method: 'GET', path: '/api/v1/users/7', headers: {} }, ctx()), 'allow');
  });

  it('SSH keys never match SQL and SQL keys never match SSH', () => {
    expectEffect(p.decide(stmt({ kinds: ['delete'] }), ctx()), 'allow');
    const q = new Policy(rules([{ name: 'r', when: { statements: ['delete'] }, effect: 'deny' }]));
    expectEffect(q.decide({ kind: 'shell', command: 'delete' }, ctx()), 'allow');
  });
});

describe('Policy.maskPlan', () => {
  const p = new Policy(rules([
    { name: 'ssn', when: { groups: ['dev'] }, effect: 'mask', columns: ['*.*.ssn'], method: 'partial', keep: 4 },
    { name: 'emails', when: { connections: ['appdb'] }, effect: 'mask', detect: ['email'], method: 'email', deny_predicates: true },
    { name: 'cards', when: { groups: ['support'] }, effect: 'mask', columns: ['public.cards.number'] },
  ]));

  it('accumulates every mask rule for this identity and connection, in order', () => {
    const plan = p.maskPlan({ identity: who(), connection: 'appdb' });
    expect(plan.columns).toEqual([{ rule: 'ssn', columns: ['*.*.ssn'], method: 'partial', keep: 4 }]);
    expect(plan.detectors).toEqual([{ rule: 'emails', detect: ['email'], method: 'email' }]);
    expect(plan.denyPredicates).toBe(true);
    const other = p.maskPlan({ identity: who({ groups: ['support'] }), connection: 'x' });
    expect(other.columns.map((c) => c.rule)).toEqual(['cards']);
    expect(other.columns[0]?.method).toBe('redact');
    expect(other.denyPredicates).toBe(false);
  });

  it('decisions carry the same plan, and mask rules never decide', () => {
    const d = p.decide(stmt({ kinds: ['select'] }), ctx());
    expect(d.effect).toBe('allow');
    expect(d.rules).toEqual([]);
    expect(d.mask.columns.map((c) => c.rule)).toEqual(['ssn']);
  });

  it('the per-identity subset is cached, yet follows a changed group list', () => {
    const id = who();
    expect(p.maskPlan({ identity: id, connection: 'appdb' })).toBe(p.maskPlan({ identity: id, connection: 'appdb' }));
    id.groups = ['support'];
    expect(p.maskPlan({ identity: id, connection: 'appdb' }).columns.map((c) => c.rule)).toEqual(['cards']);
  });
});

describe('relations whose schema cannot be known', () => {
  it('match a table glob by the table part alone', async () => {
    const { GlobSet } = await import('../../src/policy/glob.js');
    const { ANY_SCHEMA } = await import('../../parsers/sql/types.js');
    const set = new GlobSet(['secret.orders', 'billing.card_*']);
    expect(set.test(`${ANY_SCHEMA}orders`)).toBe(true);
    expect(set.test(`${ANY_SCHEMA}card_numbers`)).toBe(true);
    expect(set.test(`${ANY_SCHEMA}customers`)).toBe(false);
    expect(set.test('public.orders')).toBe(false);
  });

  it('a whole schema ("secret.*", from DROP SCHEMA) matches every table glob in that schema', async () => {
    const { GlobSet } = await import('../../src/policy/glob.js');
    const set = new GlobSet(['secret.keys', 'bill*.cards']);
    expect(set.test('secret.*')).toBe(true);
    expect(set.test('billing.*')).toBe(true);
    expect(set.test('public.*')).toBe(false);
  });
});

describe('command rules fail closed', () => {
  it('deny a line whose commands cannot all be known, for identities under a command rule', async () => {
    const { Policy } = await import('../../src/policy/index.js');
    const p = new Policy([{ name: 'no-rm', when: { programs: ['rm'] }, effect: 'deny', per_execution: false, deny_predicates: false } as never]);
    const ctx = { identity: { subject: 'a', issuer: 'i', groups: [], kind: 'human' as const, expiresAt: Date.now() + 60_000 }, connection: 'web1', resolveRelation: () => [] };
    const exec = (command: string) => p.decide({ kind: 'exec', argv: command.split(' '), command }, ctx).effect;
    expect(exec('ls -la')).toBe('allow');
    expect(exec('r""m -rf /tmp/x')).toBe('deny');
    expect(exec('a=rm; $a x')).toBe('deny');
    expect(exec('echo "unterminated')).toBe('deny');
  });
});

describe('Policy.decide: statements whose effects are unknown fail closed', () => {
  const p = new Policy(rules([
    { name: 'no-secret-tables', when: { tables: ['secret.*'] }, effect: 'deny', reason: 'off limits' },
    { name: 'writes-need-approval', when: { statements: ['update', 'delete'] }, effect: 'approve', approvers: ['dba'] },
    { name: 'reads-allowed', when: { statements: ['select'] }, effect: 'allow' },
  ]));

  it('CALL / DO / EXECUTE match every deny and approve rule about effects, deny first', () => {
    const d = p.decide(stmt({ kinds: ['call'], opaque: true }), ctx());
    expect(d.effect).toBe('deny');
    if (d.effect === 'deny') {
      expect(d.rule).toBe('no-secret-tables');
      expect(d.reason).toContain('effects cannot be known');
    }
  });

  it('an allow rule is never matched by an opaque statement', () => {
    const onlyAllow = new Policy(rules([{ name: 'reads-allowed', when: { statements: ['select'] }, effect: 'allow' }]));
    expect(onlyAllow.decide(stmt({ kinds: ['do'], opaque: true }), ctx())).toMatchObject({ effect: 'allow', rules: [] });
  });

  it('a rule that matched on its own terms is the one named', () => {
    const d = p.decide(stmt({ kinds: ['select'], reads: [rel('secret.keys')], opaque: true }), ctx());
    expect(d.effect === 'deny' && d.rule).toBe('no-secret-tables');
  });
});

describe('Policy.decide: WebSocket upgrades are admitted only by a rule that says http.websocket: true', () => {
  const ws = (path: string): Action => ({ kind: 'http', method: 'GET', path, headers: {}, websocket: true });
  const p = new Policy(rules([
    { name: 'realtime', when: { groups: ['dev'], http: { websocket: true, paths: ['/v1/realtime/**'] } }, effect: 'allow' },
    { name: 'ops-sockets', when: { groups: ['ops'], http: { websocket: true } }, effect: 'approve', approvers: ['lead'] },
    { name: 'no-internal', when: { http: { paths: ['/v1/realtime/internal/**'] } }, effect: 'deny' },
    { name: 'plain-gets-only', when: { http: { websocket: false, methods: ['GET'], paths: ['/v1/plain'] } }, effect: 'deny' },
  ]));

  it('no admitting rule: denied as "(websocket)", with a reason that says which key admits one', () => {
    const d = p.decide(ws('/v1/other'), ctx());
    expectEffect(d, 'deny', WEBSOCKET_RULE);
    expect(d.effect === 'deny' && d.reason).toContain('websocket: true');
    expectEffect(p.decide(ws('/v1/realtime/x'), ctx(who({ groups: ['guest'] }))), 'deny', WEBSOCKET_RULE);
  });

  it('an allow rule admits it on its paths; a deny on the path still beats it', () => {
    expectEffect(p.decide(ws('/v1/realtime/chat'), ctx()), 'allow');
    expectEffect(p.decide(ws('/v1/realtime/internal/x'), ctx()), 'deny', 'no-internal');
  });

  it('an approve rule with websocket: true admits it after approval', () => {
    expectEffect(p.decide(ws('/anything'), ctx(who({ groups: ['ops'] }))), 'hold', 'ops-sockets');
  });

  it('websocket: false and true keep to their own kind of request', () => {
    expectEffect(p.decide({ kind: 'http', method: 'GET', path: '/v1/plain', headers: {} }, ctx()), 'deny', 'plain-gets-only');
    expectEffect(p.decide({ kind: 'http', method: 'GET', path: '/v1/realtime/chat', headers: {} }, ctx()), 'allow');
    expect(p.decide({ kind: 'http', method: 'GET', path: '/v1/realtime/chat', headers: {} }, ctx()).rules).toEqual([]);
  });
});

describe('Policy.decide: LOAD DATA LOCAL is admitted only by a rule that names load_data_local', () => {
  const local = (): Action => stmt({ kinds: ['load_data', 'load_data_local'], writes: [rel('imports')], localFile: '/tmp/in.csv' });
  const p = new Policy(rules([
    { name: 'loads', when: { groups: ['etl'], statements: ['load_data_local'], tables: ['imports'] }, effect: 'allow' },
    { name: 'any-load', when: { groups: ['dev'], statements: ['load_data'] }, effect: 'allow' },
    { name: 'held-loads', when: { groups: ['ops'], statements: ['load_data_local'] }, effect: 'approve', approvers: ['lead'] },
    { name: 'no-secrets', when: { tables: ['secret.*'] }, effect: 'deny' },
  ]));

  it('no rule naming it: denied as "(load_data_local)", even where a rule allows load_data', () => {
    const d = p.decide(local(), ctx(who({ groups: ['dev'] })));
    expectEffect(d, 'deny', LOAD_DATA_LOCAL_RULE);
    expect(d.effect === 'deny' && d.reason).toContain('load_data_local');
    expectEffect(p.decide(local(), ctx(who({ groups: ['guest'] }))), 'deny', LOAD_DATA_LOCAL_RULE);
  });

  it('a rule naming it admits it on its tables; a deny still beats it; LOAD DATA of a server file is not gated', () => {
    expectEffect(p.decide(local(), ctx(who({ groups: ['etl'] }))), 'allow');
    expectEffect(p.decide(stmt({ kinds: ['load_data', 'load_data_local'], writes: [rel('other')] }), ctx(who({ groups: ['etl'] }))), 'deny', LOAD_DATA_LOCAL_RULE);
    expectEffect(p.decide(stmt({ kinds: ['load_data', 'load_data_local'], writes: [rel('keys', 'secret')] }), ctx(who({ groups: ['etl'] }))), 'deny', 'no-secrets');
    expectEffect(p.decide(stmt({ kinds: ['load_data'], writes: [rel('imports')] }), ctx(who({ groups: ['guest'] }))), 'allow');
  });

  it('an approve rule naming it holds it', () => {
    expectEffect(p.decide(local(), ctx(who({ groups: ['ops'] }))), 'hold', 'held-loads');
  });
});
