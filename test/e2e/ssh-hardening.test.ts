/**
 * Issue 27 items 3-5, the red team's findings against the SSH gateway, each through the
 * real daemon against a real sshd with real clients (ssh, sftp, scp, and ssh2's SFTP
 * client where a request sequence OpenSSH's sftp never sends is needed):
 * an exec that becomes a shell, SFTP reads through a read+write or a guessed handle,
 * FSETSTAT, the target's sftp-server and legacy scp over exec, and a secret printed in
 * two parts on a pty.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import ssh2 from 'ssh2';
import type { ClientChannel, SFTPWrapper } from 'ssh2';
import { freePort } from '../harness/ports.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { run, type RunResult } from '../harness/clients.js';
import { auditEvents, awaitAuditEvent } from '../harness/files.js';
import { startSshd, sshdAvailable, type SshServer } from '../harness/sshd.js';

const available = sshdAvailable();
let sshd: SshServer;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let dir = '';
let port = 0;
const tokens: Record<string, string> = {};
const stamp = `${process.pid}-${Date.now()}`;
let protectedDir = '';
/** Files anyone may read and write through airlock (reads are masked). */
let openDir = '';
/** An AWS access key id (detector aws_access_key): neither half alone is one. */
const KEY = 'AKIAIOSFODNN7EXAMPLE';

beforeAll(async () => {
  if (!available) return;
  issuer = await createTestIssuer();
  sshd = await startSshd();
  dir = mkdtempSync(join(tmpdir(), 'airlock-ssh-hard-'));
  chmodSync(dir, 0o755);
  protectedDir = `/tmp/airlock-guarded-${stamp}`;
  mkdirSync(protectedDir, { recursive: true });
  chmodSync(protectedDir, 0o777);
  openDir = `/tmp/airlock-open-${stamp}`;
  mkdirSync(openDir, { recursive: true });
  chmodSync(openDir, 0o777);
  port = await freePort();
  airlock = await startAirlock({
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [{
      name: 'web1',
      protocol: 'ssh',
      listen: `127.0.0.1:${port}`,
      upstream: { host: '127.0.0.1', port: sshd.port, known_hosts: sshd.knownHostsFile },
      credentials: { type: 'ssh-certificate', ca_key: `\${file:${sshd.caKeyFile}}`, ttl: '5m' },
      allow_groups: ['agents', 'ci'],
      allowed_logins: { '*': [sshd.user] },
    }],
    rules: [
      { name: 'ci-exec-only', when: { groups: ['ci'], interactive: true }, effect: 'deny', reason: 'CI runs commands, not shells' },
      { name: 'guarded', when: { sftp: { ops: ['write', 'remove', 'rename', 'mkdir', 'setstat', 'symlink', 'link'], paths: [`${protectedDir}/**`] } }, effect: 'deny' },
      { name: 'secrets', when: { groups: ['agents'] }, effect: 'mask', detect: ['email', 'aws_access_key'], method: 'redact' },
    ],
  });
  tokens.agent = await issuer.token({ sub: 'claude', groups: ['agents'], airlock_kind: 'agent' });
  tokens.person = await issuer.token({ sub: 'ada', groups: ['agents'], airlock_kind: 'human' });
  tokens.ci = await issuer.token({ sub: 'ci-bot', groups: ['ci'], airlock_kind: 'machine' });
}, 120_000);

afterAll(async () => {
  if (!available) return;
  await airlock?.stop();
  await sshd?.stop();
  rmSync(protectedDir, { recursive: true, force: true });
  rmSync(openDir, { recursive: true, force: true });
});

const SSH_OPTS = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no'];

function ssh(who: string, args: string[], input?: string): Promise<RunResult> {
  return run('sshpass', ['-e', 'ssh', ...SSH_OPTS, '-p', String(port), `${sshd.user}@127.0.0.1`, ...args], { env: { SSHPASS: tokens[who] ?? '' }, ...(input === undefined ? {} : { input }), timeoutMs: 60_000 });
}

/**
 * ssh -tt driven like a person: each line typed once the output so far matches `ready`
 * (readline flushes what was typed before the shell's prompt came up).
 */
async function typeInto(who: string, command: string, lines: string[], ready: RegExp): Promise<RunResult> {
  const child = spawn('sshpass', ['-e', 'ssh', ...SSH_OPTS, '-tt', '-p', String(port), `${sshd.user}@127.0.0.1`, command], { env: { ...process.env, SSHPASS: tokens[who] ?? '' } });
  child.stdin.on('error', () => undefined);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let seen = 0;
  for (const line of lines) {
    for (let i = 0; i < 200; i++) {
      const matches = stdout.match(new RegExp(ready.source, 'g'))?.length ?? 0;
      if (matches > seen) {
        seen = matches;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    child.stdin.write(`${line}\n`);
  }
  child.stdin.end();
  return { code: await exited, stdout, stderr };
}

const recordings = (): string[] => (existsSync(join(airlock.stateDir, 'recordings')) ? readdirSync(join(airlock.stateDir, 'recordings')) : []);
const audit = (): Array<Record<string, unknown>> => auditEvents(join(airlock.stateDir, 'audit'));
const awaitAudit = (pred: (e: Record<string, unknown>) => boolean): Promise<Record<string, unknown> | undefined> => awaitAuditEvent(join(airlock.stateDir, 'audit'), pred);
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

describe.skipIf(!available)('an exec that can become a shell is interactive', () => {
  const escapes = [
    'script -q /dev/null',
    `python3 -c 'import pty; pty.spawn("/bin/bash")'`,
    `perl -e 'exec "/bin/bash","-i"'`,
  ];
  it.each(escapes)('exec-only identity, ssh -tt %s: denied by the interactive rule, nothing typed runs', async (command) => {
    const marker = `/tmp/airlock-typed-${stamp}-${escapes.indexOf(command)}`;
    const r = await ssh('ci', ['-tt', command], `touch ${marker}\nexit\n`);
    expect(r.code).toBe(126);
    expect(r.stdout + r.stderr).toContain('denied by rule ci-exec-only');
    expect(existsSync(marker)).toBe(false);
  });

  it('the same identity still runs plain commands, with a pty too (the target grants the pty it was allowed)', async () => {
    const plain = await ssh('ci', ['echo exec-ok']);
    expect(plain.stdout).toBe('exec-ok\n');
    const tty = await ssh('ci', ['-tt', 'tty']);
    expect(tty.code).toBe(0);
    expect(tty.stdout).toMatch(/\/dev\/pts\//);
  });

  it('where interactive access is allowed, such an exec is recorded like a shell', async () => {
    const before = new Set(recordings());
    const r = await typeInto('agent', `python3 -c 'import pty; pty.spawn("/bin/bash")'`, ['echo py-$((6*7))', 'exit'], /\$ /);
    expect(r.stdout).toContain('py-42');
    await settle();
    const added = recordings().filter((f) => !before.has(f));
    expect(added.length).toBe(1);
    const cast = readFileSync(join(airlock.stateDir, 'recordings', added[0] ?? ''), 'utf8');
    expect(cast).toContain('py-42');
    const exec = await awaitAudit((e) => e.type === 'ssh.exec' && String(e.command).includes('pty.spawn') && e.decision === 'allow');
    expect(exec?.interactive).toBe(true);
    expect(await awaitAudit((e) => e.type === 'ssh.recording' && e.kind === 'line' && e.line === 'echo py-$((6*7))')).toBeDefined();
  }, 60_000);
});

describe.skipIf(!available)('output masking on a pty exec', () => {
  // An agent's, and a person's too: the idle flush is for people's interactive sessions only.
  it.each(['agent', 'person'])('%s: a secret printed in two parts with a pause reaches neither the client nor the record', async (who) => {
    const command = `printf 'key=${KEY.slice(0, 8)}'; sleep 0.3; printf '${KEY.slice(8)} end\\n' # ${who}`;
    const r = await ssh(who, ['-tt', command]);
    expect(r.stdout).not.toContain(KEY);
    expect(r.stdout).not.toContain(KEY.slice(0, 8));
    expect(r.stdout).toContain('[redacted]');
    await settle();
    const exec = await awaitAudit((e) => e.type === 'ssh.exec' && e.command === command);
    expect(exec).toBeDefined();
    // The record holds the output as the client got it (the command line is the caller's own text).
    expect(String(exec?.output)).not.toContain(KEY.slice(0, 8));
    expect(String(exec?.output)).toContain('[redacted]');
  });
});

// ---- SFTP through ssh2's client ---------------------------------------------------------

async function sftpSession(who: string): Promise<{ client: ssh2.Client; sftp: SFTPWrapper }> {
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', port, username: sshd.user, password: tokens[who] ?? '', hostVerifier: () => true });
  });
  const sftp = await new Promise<SFTPWrapper>((resolve, reject) => client.sftp((err, s) => (err ? reject(err) : resolve(s))));
  return { client, sftp };
}

const cb = <T>(f: (done: (err: Error | null | undefined, v: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v))));

/** SFTP packets by hand (draft-ietf-secsh-filexfer-02), written raw on the sftp subsystem channel. */
const str = (s: string | Buffer): Buffer => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  const l = Buffer.alloc(4);
  l.writeUInt32BE(b.length);
  return Buffer.concat([l, b]);
};
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const sftpPacket = (type: number, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat([Buffer.from([type]), ...parts]);
  return Buffer.concat([u32(body.length), body]);
};

/** A raw sftp channel: send bytes, collect whole reply packets. */
async function rawSftp(who: string): Promise<{ client: ssh2.Client; send: (b: Buffer) => void; replies: (n: number) => Promise<Buffer[]> }> {
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', port, username: sshd.user, password: tokens[who] ?? '', hostVerifier: () => true });
  });
  const ch = await new Promise<ClientChannel>((resolve, reject) => client.subsys('sftp', (err, c) => (err ? reject(err) : resolve(c))));
  let buf = Buffer.alloc(0);
  const packets: Buffer[] = [];
  let wake: (() => void) | null = null;
  ch.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      packets.push(buf.subarray(0, 4 + buf.readUInt32BE(0)));
      buf = buf.subarray(4 + buf.readUInt32BE(0));
    }
    wake?.();
  });
  const replies = async (n: number): Promise<Buffer[]> => {
    for (let i = 0; i < 200 && packets.length < n; i++) await new Promise<void>((r) => { wake = r; setTimeout(r, 50); });
    return packets.splice(0, n);
  };
  return { client, send: (b) => ch.write(b), replies };
}

describe.skipIf(!available)('SFTP rules on every path', () => {
  const secretFile = (where = openDir): string => {
    const f = join(where, `mail-${Math.random().toString(36).slice(2)}.txt`);
    writeFileSync(f, `contact ada.lovelace@example.com and ${KEY}\n`);
    chmodSync(f, 0o666);
    return f;
  };

  it('a file opened read+write (pflags 0x03) is read masked', async () => {
    const file = secretFile();
    const { client, sftp } = await sftpSession('agent');
    try {
      const handle = await cb<Buffer>((d) => sftp.open(file, 'r+', d));
      const buf = Buffer.alloc(4096);
      const n = await cb<number>((d) => sftp.read(handle, buf, 0, 4096, 0, (err, bytes) => d(err, bytes)));
      const text = buf.subarray(0, n).toString();
      expect(text).not.toContain('ada.lovelace@example.com');
      expect(text).not.toContain(KEY);
      expect(text).toContain('[redacted]');
    } finally {
      client.end();
    }
  });

  it('a READ pipelined behind its OPEN with a guessed handle is answered masked, never raw', async () => {
    const file = secretFile();
    const { client, send, replies } = await rawSftp('agent');
    try {
      send(sftpPacket(1, u32(3))); // INIT v3
      expect((await replies(1))[0]?.[4]).toBe(2); // VERSION
      // OpenSSH's first handle is the 4-byte index 0: guess it, in the same write as the OPEN.
      const offset = Buffer.alloc(8);
      send(Buffer.concat([
        sftpPacket(3, u32(1), str(file), u32(0x01), u32(0)), // OPEN read, no attrs
        sftpPacket(5, u32(2), str(Buffer.from([0, 0, 0, 0])), offset, u32(4096)), // READ
      ]));
      const [open, read] = await replies(2);
      expect(open?.[4]).toBe(102); // HANDLE
      const text = read?.toString('latin1') ?? '';
      expect(text).not.toContain('ada.lovelace@example.com');
      expect(text).not.toContain(KEY);
      // A handle that no OPEN returned never reaches the target.
      send(sftpPacket(5, u32(3), str(Buffer.from([0, 0, 0, 9])), offset, u32(4096)));
      const [unknown] = await replies(1);
      expect(unknown?.[4]).toBe(101); // STATUS
      expect(unknown?.toString('latin1')).toContain('no such handle');
    } finally {
      client.end();
    }
  });

  it('FSETSTAT is judged by the handle\'s path: a read-only open then chmod 0777 on a guarded file is refused', async () => {
    const file = secretFile(protectedDir);
    chmodSync(file, 0o644);
    // The login owns it, so the target itself would let the chmod through.
    execFileSync('chown', [sshd.user, file]);
    const { client, sftp } = await sftpSession('agent');
    try {
      const handle = await cb<Buffer>((d) => sftp.open(file, 'r', d));
      await expect(cb<void>((d) => sftp.fchmod(handle, 0o777, (err) => d(err, undefined)))).rejects.toThrow(/denied by rule guarded/);
      expect(statSync(file).mode & 0o777).toBe(0o644);
      // A path-named SETSTAT likewise.
      await expect(cb<void>((d) => sftp.chmod(file, 0o777, (err) => d(err, undefined)))).rejects.toThrow(/denied by rule guarded/);
      expect(statSync(file).mode & 0o777).toBe(0o644);
    } finally {
      client.end();
    }
  });

  it('sftp -s <the target\'s sftp-server> is refused with a clear line; nothing is written', async () => {
    const local = join(dir, 'up.txt');
    writeFileSync(local, 'x\n');
    const target = `${protectedDir}/via-sftp-server-${stamp}.txt`;
    const r = await run('sshpass', ['-e', 'sftp', ...SSH_OPTS, '-s', '/usr/lib/openssh/sftp-server', '-P', String(port), `${sshd.user}@127.0.0.1`], { env: { SSHPASS: tokens.agent ?? '' }, input: `put ${local} ${target}\n`, timeoutMs: 60_000 });
    expect(existsSync(target)).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('use sftp without -s');
    expect(await awaitAudit((e) => e.type === 'ssh.exec' && e.rule === '(file-transfer-exec)')).toBeDefined();
  });

  it('scp -O (the legacy protocol over exec) is refused with a line pointing at scp without -O; nothing is written or removed', async () => {
    const local = join(dir, 'up2.txt');
    writeFileSync(local, 'y\n');
    const target = `${protectedDir}/via-scp-${stamp}.txt`;
    const up = await run('sshpass', ['-e', 'scp', ...SSH_OPTS, '-O', '-P', String(port), local, `${sshd.user}@127.0.0.1:${target}`], { env: { SSHPASS: tokens.agent ?? '' }, timeoutMs: 60_000 });
    expect(existsSync(target)).toBe(false);
    expect(up.code).not.toBe(0);
    expect(up.stderr).toContain('use scp without -O');
    const file = secretFile();
    const down = await run('sshpass', ['-e', 'scp', ...SSH_OPTS, '-O', '-P', String(port), `${sshd.user}@127.0.0.1:${file}`, join(dir, 'down.txt')], { env: { SSHPASS: tokens.agent ?? '' }, timeoutMs: 60_000 });
    expect(down.code).not.toBe(0);
    expect(existsSync(join(dir, 'down.txt'))).toBe(false);
    // scp over SFTP (the default) is judged: the guarded directory refuses the write.
    const sftpScp = await run('sshpass', ['-e', 'scp', ...SSH_OPTS, '-P', String(port), local, `${sshd.user}@127.0.0.1:${target}`], { env: { SSHPASS: tokens.agent ?? '' }, timeoutMs: 60_000 });
    expect(sftpScp.code).not.toBe(0);
    expect(existsSync(target)).toBe(false);
  });
});

describe.skipIf(!available)('the record', () => {
  it('no token, CA key or unmasked secret in the audit log or the daemon output', async () => {
    await settle();
    const auditText = JSON.stringify(audit());
    const ca = readFileSync(sshd.caKeyFile, 'utf8').split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))[0] ?? 'x';
    for (const haystack of [auditText, airlock.output()]) {
      expect(haystack).not.toContain(ca);
      expect(haystack).not.toContain(KEY);
      for (const t of Object.values(tokens)) expect(haystack).not.toContain(t);
    }
    expect(execFileSync('ls', [protectedDir], { encoding: 'utf8' })).not.toMatch(/via-/);
  });
});
