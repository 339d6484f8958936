/**
 * The SSH gateway (issue 8) through the real daemon with the OpenSSH client (ssh, scp,
 * sftp, ssh -L) against a real sshd that trusts a CA airlock signs per-session
 * certificates with: exec and exit codes, a pty shell recorded and replayed, file
 * transfer, SFTP policy, forwards, caller certificates, denied and approved commands, a
 * host key mismatch — and no secret anywhere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { freePort } from '../harness/ports.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, airlockCommand, type RunningAirlock } from '../harness/airlock.js';
import { run, type RunResult } from '../harness/clients.js';
import { startSshd, sshdAvailable, type SshServer } from '../harness/sshd.js';

const available = sshdAvailable();
let sshd: SshServer;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let adminUrl = '';
let dir = '';
const ports: Record<string, number> = {};
const tokens: Record<string, string> = {};
let echo: Server;
let echoPort = 0;

beforeAll(async () => {
  if (!available) return;
  issuer = await createTestIssuer();
  sshd = await startSshd();
  dir = mkdtempSync(join(tmpdir(), 'airlock-ssh-'));
  chmodSync(dir, 0o755);
  for (const c of ['web1', 'badhost', 'static']) ports[c] = await freePort();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  echo = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  echoPort = (echo.address() as { port: number }).port;
  const base = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    name,
    protocol: 'ssh',
    listen: `127.0.0.1:${ports[name]}`,
    upstream: { host: '127.0.0.1', port: sshd.port, known_hosts: sshd.knownHostsFile },
    credentials: { type: 'ssh-certificate', ca_key: `\${file:${sshd.caKeyFile}}`, ttl: '5m' },
    allow_groups: ['agents', 'dba', 'ci'],
    allowed_logins: { agents: [sshd.user], dba: [sshd.user], ci: [sshd.user] },
    ...extra,
  });
  airlock = await startAirlock({
    state_dir: join(dir, 'state'),
    admin: { listen: `127.0.0.1:${adminPort}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [
      base('web1'),
      base('badhost', { upstream: { host: '127.0.0.1', port: sshd.port, host_key_fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } }),
      base('static', { credentials: { type: 'static', private_key: `\${file:${sshd.userKeyFile}}` } }),
    ],
    rules: [
      { name: 'no-rm', when: { programs: ['rm', 'shutdown', 'reboot'] }, effect: 'deny', reason: 'nothing is deleted through airlock' },
      { name: 'touching-needs-a-dba', when: { groups: ['agents'], commands: ['touch /tmp/airlock-approved*'] }, effect: 'approve', approvers: ['dba'], timeout: '60s' },
      { name: 'ci-exec-only', when: { groups: ['ci'], interactive: true }, effect: 'deny', reason: 'CI runs commands, not shells' },
      { name: 'no-writes-under-etc', when: { sftp: { ops: ['write', 'remove', 'rename', 'mkdir'], paths: ['/etc/**', '/tmp/airlock-protected/**'] } }, effect: 'deny' },
      { name: 'echo-forward', when: { forward: [`127.0.0.1:${echoPort}`] }, effect: 'allow' },
      { name: 'emails', when: { groups: ['agents'] }, effect: 'mask', detect: ['email'], method: 'redact' },
    ],
  });
  tokens.agent = await issuer.token({ sub: 'claude', groups: ['agents'] });
  tokens.dba = await issuer.token({ sub: 'bob', groups: ['dba'] });
  tokens.ci = await issuer.token({ sub: 'ci-bot', groups: ['ci'] });
  tokens.outsider = await issuer.token({ sub: 'eve', groups: ['nobody'] });
}, 120_000);

afterAll(async () => {
  if (!available) return;
  await airlock?.stop();
  await sshd?.stop();
  echo?.close();
});

const SSH_OPTS = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no'];

function ssh(conn: string, who: string, args: string[], input?: string): Promise<RunResult> {
  return run('sshpass', ['-e', 'ssh', ...SSH_OPTS, '-p', String(ports[conn]), `${sshd.user}@127.0.0.1`, ...args], { env: { SSHPASS: tokens[who] ?? '' }, ...(input === undefined ? {} : { input }), timeoutMs: 60_000 });
}

describe.skipIf(!available)('exec through airlock with a per-session certificate upstream', () => {
  it('runs a command as the login, with its exit code and stderr', async () => {
    const r = await ssh('web1', 'agent', ['echo hello; echo oops >&2; id -un; exit 3']);
    expect(r.stdout).toBe(`hello\n${sshd.user}\n`);
    expect(r.stderr).toContain('oops');
    expect(r.code).toBe(3);
    // The target's sshd names the person and the session in its log.
    expect(sshd.log()).toMatch(/airlock:claude:/);
  });

  it('passes stdin through and a signal exit back', async () => {
    const r = await ssh('web1', 'agent', ['wc -c'], 'x'.repeat(100_000));
    expect(r.stdout.trim()).toBe('100000');
    const k = await ssh('web1', 'agent', ['kill -TERM $$']);
    expect(k.code).not.toBe(0);
  });

  it('keyboard-interactive: the token is the answer to airlock\'s prompt', async () => {
    const r = await run('sshpass', ['-P', 'airlock token', '-e', 'ssh', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'PreferredAuthentications=keyboard-interactive', '-o', 'PubkeyAuthentication=no', '-p', String(ports.web1), `${sshd.user}@127.0.0.1`, 'echo kbd-ok'], { env: { SSHPASS: tokens.agent ?? '' }, timeoutMs: 60_000 });
    expect(r.stdout).toBe('kbd-ok\n');
  });

  it('a static key upstream works too', async () => {
    const r = await ssh('static', 'agent', ['echo static-ok']);
    expect(r.stdout).toBe('static-ok\n');
  });

  it('masks what a rule asks for in the output', async () => {
    const r = await ssh('web1', 'agent', ['echo mail ada.lovelace@example.com now']);
    expect(r.stdout).toBe('mail [redacted] now\n');
  });
});

describe.skipIf(!available)('policy on commands', () => {
  it('a denied command: a stderr line naming the rule and exit status 126; nothing ran', async () => {
    const marker = `/tmp/airlock-rm-${Date.now()}`;
    execFileSync('touch', [marker]);
    const r = await ssh('web1', 'agent', [`ls /; rm -f ${marker}`]);
    expect(r.code).toBe(126);
    expect(r.stderr).toContain('airlock: denied by rule no-rm');
    expect(existsSync(marker)).toBe(true);
  });

  it('wrappers do not hide it: sh -c, env, a pipe, a subshell', async () => {
    for (const cmd of ["sh -c 'rm -rf /tmp/x'", 'env rm /tmp/x', 'true | rm /tmp/x', '(cd /; rm /tmp/x)']) {
      const r = await ssh('web1', 'agent', [cmd]);
      expect(r.code, cmd).toBe(126);
    }
  });

  it('a held command: the approval id on stderr, it runs once approved from another process', async () => {
    const file = `/tmp/airlock-approved-${Date.now()}`;
    const child = spawn('sshpass', ['-e', 'ssh', ...SSH_OPTS, '-p', String(ports.web1), `${sshd.user}@127.0.0.1`, `touch ${file} && echo done`], { env: { ...process.env, SSHPASS: tokens.agent ?? '' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    for (let i = 0; i < 150 && !/approve with: airlock approvals approve (\S+)/.test(err); i++) await new Promise((r) => setTimeout(r, 100));
    const id = /approve with: airlock approvals approve (\S+)/.exec(err)?.[1];
    expect(id).toBeDefined();
    expect(existsSync(file)).toBe(false);
    const { cmd, argv } = airlockCommand(['approvals', 'approve', id ?? '']);
    expect((await run(cmd, argv, { env: { AIRLOCK_ADMIN_URL: adminUrl, AIRLOCK_TOKEN: tokens.dba ?? '' } })).code).toBe(0);
    expect(await exited).toBe(0);
    expect(out).toBe('done\n');
    expect(existsSync(file)).toBe(true);
  }, 60_000);

  it('exec-only identities get no shell', async () => {
    const r = await run('sshpass', ['-e', 'ssh', ...SSH_OPTS, '-tt', '-p', String(ports.web1), `${sshd.user}@127.0.0.1`], { env: { SSHPASS: tokens.ci ?? '' }, input: 'echo hi\nexit\n', timeoutMs: 30_000 });
    expect(r.stdout + r.stderr).toContain('denied by rule ci-exec-only');
    const e = await ssh('web1', 'ci', ['echo exec-ok']);
    expect(e.stdout).toBe('exec-ok\n');
  });

  it('refuses a login the caller\'s groups do not allow, and a caller outside allow_groups', async () => {
    // sshpass exits 5 when the password (the token) is refused.
    const r = await run('sshpass', ['-e', 'ssh', ...SSH_OPTS, '-p', String(ports.web1), `root@127.0.0.1`, 'echo ran'], { env: { SSHPASS: tokens.agent ?? '' }, timeoutMs: 30_000 });
    expect(r.code).toBe(5);
    expect(r.stdout).toBe('');
    const o = await ssh('web1', 'outsider', ['echo ran']);
    expect(o.code).toBe(5);
    expect(o.stdout).toBe('');
  });

  it('a target whose host key does not match is refused with a clear message', async () => {
    const r = await ssh('badhost', 'agent', ['echo should-not-run']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/host key of badhost .* does not match/);
  });
});

describe.skipIf(!available)('interactive shell, recorded', () => {
  it('a pty shell driven by a script, recorded as asciicast and replayed', async () => {
    const r = await run('sshpass', ['-e', 'ssh', ...SSH_OPTS, '-tt', '-p', String(ports.web1), `${sshd.user}@127.0.0.1`], { env: { SSHPASS: tokens.agent ?? '' }, input: 'echo shell-$((40+2))\nexit\n', timeoutMs: 30_000 });
    expect(r.stdout).toContain('shell-42');
    await new Promise((res) => setTimeout(res, 500));
    const recordings = readdirSync(join(airlock.stateDir, 'recordings'));
    expect(recordings.length).toBeGreaterThan(0);
    const file = join(airlock.stateDir, 'recordings', recordings[0] ?? '');
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const header = JSON.parse(lines[0] ?? '{}') as { version: number; width: number };
    expect(header.version).toBe(2);
    expect(lines.some((l) => l.includes('shell-42'))).toBe(true);
    expect(lines.some((l) => l.includes('"i"'))).toBe(true);
    const session = (recordings[0] ?? '').replace(/\.cast$/, '');
    const { cmd, argv } = airlockCommand(['sessions', 'replay', session, '--speed', '100', '--config', airlock.configFile]);
    const replay = await run(cmd, argv, { timeoutMs: 30_000 });
    expect(replay.stdout).toContain('shell-42');
  }, 60_000);
});

describe.skipIf(!available)('file transfer and SFTP policy', () => {
  it('scp up and down of a 20 MB file, byte for byte', async () => {
    const local = join(dir, 'big.bin');
    const data = Buffer.alloc(20 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE(i, i);
    writeFileSync(local, data);
    const remote = `/tmp/airlock-scp-${Date.now()}.bin`;
    const up = await run('sshpass', ['-e', 'scp', ...SSH_OPTS, '-P', String(ports.web1), local, `${sshd.user}@127.0.0.1:${remote}`], { env: { SSHPASS: tokens.agent ?? '' }, timeoutMs: 120_000 });
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    const back = join(dir, 'back.bin');
    const down = await run('sshpass', ['-e', 'scp', ...SSH_OPTS, '-P', String(ports.web1), `${sshd.user}@127.0.0.1:${remote}`, back], { env: { SSHPASS: tokens.agent ?? '' }, timeoutMs: 120_000 });
    expect(down.code).toBe(0);
    const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    expect(sha(readFileSync(back))).toBe(sha(data));
  }, 120_000);

  it('sftp: allowed operations work; a write under a denied path gets permission denied and the session goes on', async () => {
    execFileSync('mkdir', ['-p', '/tmp/airlock-protected']);
    execFileSync('chmod', ['777', '/tmp/airlock-protected']);
    const local = join(dir, 'small.txt');
    writeFileSync(local, 'hello sftp\n');
    const stamp = Date.now();
    // Commands on stdin (sftp -b would force BatchMode and refuse a password).
    const commands = [`put ${local} /tmp/airlock-sftp-${stamp}.txt`, `put ${local} /tmp/airlock-protected/x-${stamp}.txt`, `put ${local} ../../../../../tmp/airlock-protected/y-${stamp}.txt`, `ls /tmp/airlock-sftp-${stamp}.txt`, ''].join('\n');
    const r = await run('sshpass', ['-e', 'sftp', ...SSH_OPTS, '-P', String(ports.web1), `${sshd.user}@127.0.0.1`], { env: { SSHPASS: tokens.agent ?? '' }, input: commands, timeoutMs: 60_000 });
    expect(existsSync(`/tmp/airlock-sftp-${stamp}.txt`)).toBe(true);
    expect(existsSync(`/tmp/airlock-protected/x-${stamp}.txt`)).toBe(false);
    expect(existsSync(`/tmp/airlock-protected/y-${stamp}.txt`)).toBe(false);
    expect(r.stdout + r.stderr).toMatch(/[Pp]ermission denied/);
    expect(r.stdout).toContain(`/tmp/airlock-sftp-${stamp}.txt`);
  }, 60_000);
});

describe.skipIf(!available)('port forwarding', () => {
  it('ssh -L to an allowed destination works; to any other it is refused', async () => {
    const local = await freePort();
    const child = spawn('sshpass', ['-e', 'ssh', ...SSH_OPTS, '-N', '-L', `${local}:127.0.0.1:${echoPort}`, '-p', String(ports.web1), `${sshd.user}@127.0.0.1`], { env: { ...process.env, SSHPASS: tokens.agent ?? '' } });
    try {
      let reply = '';
      for (let i = 0; i < 50 && reply === ''; i++) {
        reply = await new Promise<string>((resolve) => {
          const s: Socket = connect(local, '127.0.0.1', () => s.write('ping\n'));
          s.on('data', (d: Buffer) => {
            resolve(d.toString());
            s.destroy();
          });
          s.on('error', () => resolve(''));
          s.on('close', () => resolve(''));
        });
        if (reply === '') await new Promise((r) => setTimeout(r, 200));
      }
      expect(reply).toBe('ping\n');
    } finally {
      child.kill();
    }
    const refused = await run('sshpass', ['-e', 'ssh', ...SSH_OPTS, '-W', `127.0.0.1:${sshd.port}`, '-p', String(ports.web1), `${sshd.user}@127.0.0.1`], { env: { SSHPASS: tokens.agent ?? '' }, input: '', timeoutMs: 30_000 });
    expect(refused.stderr).toMatch(/administratively prohibited|open failed|forwarding failed/);
    expect(refused.code).not.toBe(0);
  }, 60_000);
});

describe.skipIf(!available)('certificates for callers', () => {
  it('airlock ssh-cert signs your key; ssh-keygen -L reads it; plain ssh logs in with it', async () => {
    const key = join(dir, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const certFile = `${key}-cert.pub`;
    const { cmd, argv } = airlockCommand(['ssh-cert', '--key', `${key}.pub`, '--out', certFile, '--ttl', '10m']);
    const issued = await run(cmd, argv, { env: { AIRLOCK_ADMIN_URL: adminUrl, AIRLOCK_TOKEN: tokens.agent ?? '' } });
    expect(issued.code).toBe(0);
    const listing = execFileSync('ssh-keygen', ['-L', '-f', certFile], { encoding: 'utf8' });
    expect(listing).toContain('Type: ssh-ed25519-cert-v01@openssh.com user certificate');
    expect(listing).toContain('Key ID: "airlock:claude"');
    expect(listing).toContain('permit-pty');
    const r = await run('ssh', ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', key, '-o', `CertificateFile=${certFile}`, '-p', String(ports.web1), `${sshd.user}@127.0.0.1`, 'echo cert-ok'], { timeoutMs: 30_000 });
    expect(r.stdout).toBe('cert-ok\n');
    // The same key without the certificate is not enough.
    const bare = await run('ssh', ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'CertificateFile=/dev/null', '-i', key, '-p', String(ports.web1), `${sshd.user}@127.0.0.1`, 'true'], { timeoutMs: 30_000 });
    expect(bare.code).toBe(255);
  }, 60_000);
});

describe.skipIf(!available)('the record', () => {
  it('exec outcomes, sftp refusals and forwards are in the audit log; no key, CA or token anywhere', async () => {
    await new Promise((r) => setTimeout(r, 300));
    const auditDir = join(airlock.stateDir, 'audit');
    const audit = readdirSync(auditDir).filter((f) => f.endsWith('.jsonl')).map((f) => readFileSync(join(auditDir, f), 'utf8')).join('\n');
    expect(audit).toContain('"ssh.exec"');
    expect(audit).toContain('"ssh.recording"');
    expect(audit).toContain('"ssh.forward"');
    const { cmd, argv } = airlockCommand(['audit', 'verify', '--config', airlock.configFile]);
    expect((await run(cmd, argv)).code).toBe(0);
    const ca = readFileSync(sshd.caKeyFile, 'utf8').split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))[0] ?? 'x';
    const userKey = readFileSync(sshd.userKeyFile, 'utf8').split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))[0] ?? 'x';
    for (const haystack of [audit, airlock.output()]) {
      expect(haystack).not.toContain(ca);
      expect(haystack).not.toContain(userKey);
      for (const t of Object.values(tokens)) expect(haystack).not.toContain(t);
    }
  });
});
