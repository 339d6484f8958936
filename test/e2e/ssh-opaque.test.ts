/**
 * Issue 27 items 1, 2 and 7 through the real daemon, the OpenSSH client and a real sshd:
 * the red team's bypasses of a `programs: [rm]` deny rule (and three found since) are refused (exit 126, a stderr
 * line naming the rule) and the file the `rm` would have removed is still there; an
 * allow-list (`programs_allowed`) admits only what it names.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../harness/ports.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { run, type RunResult } from '../harness/clients.js';
import { startSshd, sshdAvailable, type SshServer } from '../harness/sshd.js';

const available = sshdAvailable();
let sshd: SshServer;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let victims = '';
const ports: Record<string, number> = {};
const tokens: Record<string, string> = {};

beforeAll(async () => {
  if (!available) return;
  issuer = await createTestIssuer();
  sshd = await startSshd();
  const dir = mkdtempSync(join(tmpdir(), 'airlock-ssh-opaque-'));
  chmodSync(dir, 0o755);
  // Files the ssh login could remove: a world-writable directory without the sticky bit.
  victims = join(dir, 'victims');
  mkdirSync(victims);
  for (const c of ['web1', 'agents-only']) ports[c] = await freePort();
  const adminPort = await freePort();
  const base = (name: string): Record<string, unknown> => ({
    name,
    protocol: 'ssh',
    listen: `127.0.0.1:${ports[name]}`,
    upstream: { host: '127.0.0.1', port: sshd.port, known_hosts: sshd.knownHostsFile },
    credentials: { type: 'ssh-certificate', ca_key: `\${file:${sshd.caKeyFile}}`, ttl: '5m' },
    allow_groups: ['ops', 'agents'],
    allowed_logins: { ops: [sshd.user], agents: [sshd.user] },
  });
  airlock = await startAirlock({
    state_dir: join(dir, 'state'),
    admin: { listen: `127.0.0.1:${adminPort}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [base('web1'), base('agents-only')],
    rules: [
      { name: 'no-rm', when: { connections: ['web1'], programs: ['rm'] }, effect: 'deny', reason: 'nothing is deleted through airlock' },
      {
        name: 'agents-allow-list',
        when: { connections: ['agents-only'], programs_allowed: ['ls', 'cat', 'echo', { program: 'id', args: ['-un'] }] },
        effect: 'deny',
        reason: 'agents run only allow-listed commands',
      },
    ],
  });
  tokens.ops = await issuer.token({ sub: 'ada', groups: ['ops'] });
  tokens.agent = await issuer.token({ sub: 'claude', groups: ['agents'], airlock_kind: 'agent' });
}, 120_000);

afterAll(async () => {
  if (!available) return;
  await airlock?.stop();
  await sshd?.stop();
});

const SSH_OPTS = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no'];

function ssh(conn: string, who: string, args: string[], input?: string): Promise<RunResult> {
  return run('sshpass', ['-e', 'ssh', ...SSH_OPTS, '-p', String(ports[conn]), `${sshd.user}@127.0.0.1`, ...args], { env: { SSHPASS: tokens[who] ?? '' }, ...(input === undefined ? {} : { input }), timeoutMs: 60_000 });
}

let n = 0;
/** A file the ssh login could remove, for one bypass attempt. */
function victim(): string {
  const f = join(victims, `v${n++}`);
  writeFileSync(f, 'keep me\n');
  chmodSync(victims, 0o777);
  return f;
}

/** Each builds a command line (and optional stdin) that removes `f` on today's main. */
const BYPASSES: Array<[string, (f: string) => { line: string; input?: string }]> = [
  ['perl -e', (f) => ({ line: `perl -e 'system "rm -f ${f}"'` })],
  ['python3 -c', (f) => ({ line: `python3 -c 'import os; os.system("rm -f ${f}")'` })],
  ['awk BEGIN{system}', (f) => ({ line: `awk 'BEGIN{system("rm -f ${f}")}'` })],
  ['sed e command', (f) => ({ line: `sed -n '1e rm -f ${f}' /etc/hostname` })],
  ['tar --checkpoint-action=exec', (f) => ({ line: `tar -cf /dev/null /etc/hostname --checkpoint=1 --checkpoint-action=exec='rm -f ${f}'` })],
  ['code on python3 stdin', (f) => ({ line: 'python3', input: `import os; os.system("rm -f ${f}")\n` })],
  ['bash <(…)', (f) => ({ line: `bash <(echo rm -f ${f})` })],
  ['bash /dev/stdin <<<', (f) => ({ line: `bash /dev/stdin <<< 'rm -f ${f}'` })],
  ['trap -- EXIT', (f) => ({ line: `trap -- 'rm -f ${f}' EXIT` })],
  ['hash -p', (f) => ({ line: `hash -p /bin/rm del; del -f ${f}` })],
  ['PS4 and set -x', (f) => ({ line: `PS4='$(rm -f ${f})'; set -x; :` })],
  ["let 'a[$(…)]'", (f) => ({ line: `let 'a[$(rm -f ${f})]'` })],
  ['setarch', (f) => ({ line: `setarch x86_64 rm -f ${f}` })],
  ['linux64', (f) => ({ line: `linux64 rm -f ${f}` })],
  ['prlimit', (f) => ({ line: `prlimit --nofile=256 rm -f ${f}` })],
  ['ssh-agent', (f) => ({ line: `ssh-agent rm -f ${f}` })],
  ['time --', (f) => ({ line: `time -- rm -f ${f}` })],
  ['a subscript written in a file, evaluated as arithmetic', (f) => ({ line: `(( $(cat ${code(`a[$(rm -f ${f})]`)}) ))` })],
  ['an exported function through env', (f) => ({ line: `env 'BASH_FUNC_ls%%=() { rm -f ${f}; }' bash -c ls` })],
];

/** A world-readable file holding this text, for a line to read. */
function code(text: string): string {
  const file = join(victims, `code${n++}`);
  writeFileSync(file, `${text}\n`);
  chmodSync(file, 0o644);
  return file;
}

describe.skipIf(!available)('red-team bypasses of programs: [rm] are refused, and the file stays', () => {
  for (const [name, make] of BYPASSES) {
    it(name, async () => {
      const f = victim();
      const { line, input } = make(f);
      const r = await ssh('web1', 'ops', [line], input);
      expect(existsSync(f), `${line} removed the file`).toBe(true);
      expect(r.stderr, `${line}\n${r.stderr}`).toContain('airlock: denied by rule no-rm');
      expect(r.code).toBe(126);
    });
  }

  it('what the deny list does not name still runs', async () => {
    const r = await ssh('web1', 'ops', ['ls / >/dev/null && echo listed; python3 --version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('listed');
  });
});

describe.skipIf(!available)('programs_allowed: an allow-list for agents', () => {
  it('runs what the list names', async () => {
    const r = await ssh('agents-only', 'agent', ['echo hi; id -un; ls / | cat']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`hi\n${sshd.user}\n`);
  });

  it('refuses anything else: another program, other arguments, an opaque line, a write, an interactive shell', async () => {
    const f = victim();
    for (const line of [`rm -f ${f}`, 'id -u', `perl -e 'unlink "${f}"'`, `echo gone > ${f}`, `ls; sh -c 'rm -f ${f}'`, 'eval "$X"']) {
      const r = await ssh('agents-only', 'agent', [line]);
      expect(r.stderr, line).toContain('airlock: denied by rule agents-allow-list');
      expect(r.code, line).toBe(126);
    }
    expect(existsSync(f)).toBe(true);
    const shell = await ssh('agents-only', 'agent', ['-tt'], 'exit\n');
    expect(shell.stdout + shell.stderr).toContain('denied by rule agents-allow-list');
  });
});
