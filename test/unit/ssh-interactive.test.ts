/**
 * Which SSH execs count as interactive (issue 27 item 3: `ssh -tt host 'script -q /dev/null'`
 * gave an exec-only identity a shell), which start a file-transfer server past the SFTP
 * judge, and how the `interactive` rule key reads an exec that can become a shell.
 */
import { describe, expect, it } from 'vitest';
import { execIsInteractive, transferServerOf } from '../../parsers/shell/interactive.js';
import { Policy } from '../../src/policy/index.js';
import { validateConfig } from '../../app/config.js';
import type { Identity } from '../../src/core/types.js';

describe('execIsInteractive', () => {
  const withPty = [
    'script -q /dev/null',
    `python3 -c 'import pty; pty.spawn("/bin/bash")'`,
    `/usr/bin/python3.11 -c 'import os; os.system("sh")'`,
    `perl -e 'exec "/bin/bash","-i"'`,
    'bash',
    'bash -i',
    'sudo -i',
    'sudo -u root vim /etc/hosts',
    'env TERM=xterm less /var/log/syslog',
    'timeout 100 tmux',
    '$SHELL',
    '$(which bash)',
    'echo "unterminated',
    'cd /tmp && exec zsh -l',
    'git log',
    'psql -h db',
    '',
  ];
  it.each(withPty)('with a pty, %j is interactive', (command) => {
    expect(execIsInteractive(command, true).interactive).toBe(true);
  });

  const plain = ['echo hello', 'ls -la /tmp', 'tty', 'df -h', 'sudo systemd-analyze', "printf 'a'; sleep 1; printf 'b'", 'cat /etc/os-release | grep ID'];
  it.each(plain)('with a pty, %j is not', (command) => {
    expect(execIsInteractive(command, true)).toEqual({ interactive: false, reason: '' });
  });

  it('without a pty only programs that make a terminal of their own count (and lines that do not parse)', () => {
    expect(execIsInteractive('script -q -c bash /dev/null', false).interactive).toBe(true);
    expect(execIsInteractive('unbuffer bash', false).interactive).toBe(true);
    expect(execIsInteractive('echo "open', false).interactive).toBe(true);
    expect(execIsInteractive('python3 -c "print(1)"', false).interactive).toBe(false);
    expect(execIsInteractive('ls', false).interactive).toBe(false);
  });

  it('says why', () => {
    expect(execIsInteractive('script -q /dev/null', true).reason).toMatch(/script gives a terminal/);
    expect(execIsInteractive('perl -e 1', true).reason).toMatch(/perl can start a shell/);
  });
});

describe('transferServerOf', () => {
  it('the target\'s sftp-server by any path, and scp\'s remote end (-t / -f), anywhere in the line', () => {
    expect(transferServerOf('/usr/lib/openssh/sftp-server')).toEqual({ kind: 'sftp-server' });
    expect(transferServerOf('exec /usr/libexec/sftp-server -l DEBUG3')).toEqual({ kind: 'sftp-server' });
    expect(transferServerOf('internal-sftp')).toEqual({ kind: 'sftp-server' });
    expect(transferServerOf('scp -t /tmp/x')).toEqual({ kind: 'scp' });
    expect(transferServerOf('scp -v -r -d -t -- /tmp')).toEqual({ kind: 'scp' });
    expect(transferServerOf('scp -pf /etc/passwd')).toEqual({ kind: 'scp' });
    expect(transferServerOf("sh -c 'scp -f /etc/shadow'")).toEqual({ kind: 'scp' });
    expect(transferServerOf('sudo /usr/lib/openssh/sftp-server')).toEqual({ kind: 'sftp-server' });
  });

  it('ordinary commands, scp as a client on the target included, are not', () => {
    expect(transferServerOf('ls /usr/lib/openssh')).toBeNull();
    expect(transferServerOf('scp backup.tar other:/srv/')).toBeNull();
    expect(transferServerOf('echo sftp')).toBeNull();
  });
});

describe('the interactive rule key on an exec', () => {
  const r = validateConfig({ rules: [
    { name: 'ci-exec-only', when: { groups: ['ci'], interactive: true }, effect: 'deny' },
    { name: 'exec-audit', when: { interactive: false, programs: ['ls'] }, effect: 'deny' },
  ] });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  const policy = new Policy(r.config.rules);
  const ci: Identity = { subject: 'ci-bot', issuer: 'x', groups: ['ci'], kind: 'machine', expiresAt: Date.now() + 60_000 };
  const ctx = { identity: ci, connection: 'web1', resolveRelation: () => [] };

  it('an exec that can become a shell matches interactive: true, a plain one does not', () => {
    expect(policy.decide({ kind: 'exec', argv: ['script'], command: 'script -q /dev/null', interactive: true }, ctx).effect).toBe('deny');
    expect(policy.decide({ kind: 'exec', argv: ['echo'], command: 'echo hi' }, ctx).effect).toBe('allow');
    expect(policy.decide({ kind: 'shell', command: '' }, ctx).effect).toBe('deny');
  });

  it('interactive: false matches plain execs only', () => {
    const d = policy.decide({ kind: 'exec', argv: ['ls'], command: 'ls', interactive: false }, { ...ctx, identity: { ...ci, groups: [] } });
    expect(d.effect === 'deny' && d.rule).toBe('exec-audit');
    const i = policy.decide({ kind: 'exec', argv: ['ls'], command: 'ls', interactive: true }, { ...ctx, identity: { ...ci, groups: [] } });
    expect(i.effect).toBe('allow');
  });
});

describe('output_flush_idle', () => {
  const ssh = (extra: Record<string, unknown>) => validateConfig({ connections: [{
    name: 'web1', protocol: 'ssh', listen: '127.0.0.1:2222',
    upstream: { host: '10.0.0.1', host_key_fingerprint: `SHA256:${'A'.repeat(43)}` },
    credentials: { type: 'static', password: 'x' }, ...extra,
  }] });
  const flush = (extra: Record<string, unknown>): unknown => {
    const r = ssh(extra);
    if (!r.ok) return r.problems;
    const c = r.config.connections[0];
    return c?.protocol === 'ssh' ? c.output_flush_idle : null;
  };
  it('defaults to 40 ms; a duration or 0 (never) may be set', () => {
    expect(flush({})).toBe(40);
    expect(flush({ output_flush_idle: '100ms' })).toBe(100);
    expect(flush({ output_flush_idle: 0 })).toBe(0);
    expect(ssh({ output_flush_idle: 'soon' }).ok).toBe(false);
  });
});
