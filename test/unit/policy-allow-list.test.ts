/**
 * Issue 27 item 2: `programs_allowed`, the SSH allow-list for agents. Anything outside the
 * list — opaque and unparsed lines, interactive shells, writes by redirection — is matched.
 */
import { describe, expect, it } from 'vitest';
import { Policy, type PolicyContext } from '../../src/policy/index.js';
import { type RuleConfig } from '../../src/config/index.js';
import { validateConfig } from '../../app/config.js';
import type { Action, Identity } from '../../src/core/types.js';

function rules(doc: unknown[]): RuleConfig[] {
  const r = validateConfig({ rules: doc });
  if (!r.ok) throw new Error(r.problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
  return r.config.rules;
}
const agent: Identity = { subject: 'claude', issuer: 'https://idp', groups: ['agents'], kind: 'agent', expiresAt: Date.now() + 3_600_000 };
const human: Identity = { ...agent, subject: 'ada', groups: ['ops'], kind: 'human' };
const ctx = (identity = agent): PolicyContext => ({ identity, connection: 'web1', resolveRelation: () => [] });
const exec = (command: string): Action => ({ kind: 'exec', argv: command.split(' '), command });

const policy = new Policy(rules([
  {
    name: 'agents-allow-list',
    when: { kinds: ['agent'], programs_allowed: ['ls', 'cat', 'echo', { program: 'git', args: ['status', 'log *', 'diff'] }, { program: 'id', args: [''] }, { program: '/opt/tools/report', args: ['--daily'] }] },
    effect: 'deny',
    reason: 'agents run only allow-listed commands',
  },
]));

describe('programs_allowed', () => {
  const allowed = ['ls -la /tmp', 'git status', 'git log --oneline -5', 'cat /etc/hostname | ls', 'echo $(ls)', 'id', '/usr/bin/git status',
    'ls 2>/dev/null', 'ls 2>&1', 'ls >&2', 'ls 3>&-', 'x=1; echo $x', '/opt/tools/report --daily', 'cat <<EOF\nhi\nEOF'];
  for (const line of allowed) {
    it(`allows ${JSON.stringify(line)}`, () => expect(policy.decide(exec(line), ctx()).effect).toBe('allow'));
  }
  const denied = [
    'rm -rf /tmp/x', 'git push', 'git -c core.pager=sh log', 'git status; rm x', 'echo $(rm x)', 'ls | sh', "sh -c 'ls'",
    'id -u', 'git', '/tmp/git status', './ls', 'ls > ~/.bashrc', 'echo x >> /etc/passwd', '> f', 'python3 -c 1', 'eval "$x"',
    "echo 'unterminated", 'sudo ls', 'echo x >& ~/.bashrc', 'ls 1<>f', 'echo x >| f', 'ls &>> f', '//usr/bin/ls', '/usr/bin/../../tmp/ls', 'env ls', 'PATH=/tmp ls', 'f() { rm x; }; f', 'report --daily', '/opt/tools/report --weekly',
  ];
  for (const line of denied) {
    it(`denies ${JSON.stringify(line)}`, () => {
      const d = policy.decide(exec(line), ctx());
      expect(d.effect).toBe('deny');
      if (d.effect === 'deny') expect(d.rule).toBe('agents-allow-list');
    });
  }
  it('denies an interactive shell', () => {
    expect(policy.decide({ kind: 'shell', command: '' }, ctx()).effect).toBe('deny');
  });
  it('applies only to whom the rule names', () => {
    expect(policy.decide(exec('rm -rf /tmp/x'), ctx(human)).effect).toBe('allow');
  });
  it('explains what is not allowed', () => {
    const d = new Policy(rules([{ name: 'a', when: { programs_allowed: ['ls'] }, effect: 'deny' }])).decide(exec('ls; rm x'), ctx());
    expect(d.effect === 'deny' ? d.reason : '').toMatch(/rm x/);
  });
  it('holds for approval with an approve rule', () => {
    const p = new Policy(rules([{ name: 'a', when: { programs_allowed: ['ls'] }, effect: 'approve', approvers: ['ops'] }]));
    expect(p.decide(exec('rm x'), ctx()).effect).toBe('hold');
    expect(p.decide(exec('ls'), ctx()).effect).toBe('allow');
  });
  it('is refused on allow and mask rules', () => {
    expect(validateConfig({ rules: [{ name: 'a', when: { programs_allowed: ['ls'] }, effect: 'allow' }] }).ok).toBe(false);
    expect(validateConfig({ rules: [{ name: 'a', when: { programs_allowed: [{ program: 'ls', extra: 1 }] }, effect: 'deny' }] }).ok).toBe(false);
  });
});

describe('a deny list explains an opaque line', () => {
  it('says what made the line unknowable, after the rule\'s own reason', () => {
    const p = new Policy(rules([{ name: 'no-rm', when: { programs: ['rm'] }, effect: 'deny', reason: 'nothing is deleted' }]));
    const d = p.decide(exec(`perl -e 'unlink "x"'`), ctx(human));
    expect(d.effect).toBe('deny');
    expect(d.effect === 'deny' ? d.reason : '').toBe('nothing is deleted (what this line runs cannot be known from its text — perl runs code given in -e — so every rule about commands applies to it)');
  });
});
