/**
 * A red-team pass on the SSH gateway, through the real daemon against a real sshd with
 * OpenSSH's clients and ssh2's client (for requests OpenSSH never sends). Cases that held
 * stay here as regressions; cases that were holes name the fix they regress.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import { freePort } from '../harness/ports.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { run, type RunResult } from '../harness/clients.js';
import { auditEvents } from '../harness/files.js';
import { startSshd, sshdAvailable, type SshServer } from '../harness/sshd.js';

const available = sshdAvailable();
let sshd: SshServer;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let echo: Server;
let echoPort = 0;
let otherPort = 0;
let dir = '';
let port = 0;
const tokens: Record<string, string> = {};
const stamp = `${process.pid}-${Date.now()}`;
let guarded = '';
const KEY = 'AKIAIOSFODNN7EXAMPLE';

beforeAll(async () => {
  if (!available) return;
  issuer = await createTestIssuer();
  sshd = await startSshd();
  dir = mkdtempSync(join(tmpdir(), 'airlock-ssh-red-'));
  chmodSync(dir, 0o755);
  guarded = `/tmp/airlock-red-guarded-${stamp}`;
  mkdirSync(guarded, { recursive: true });
  chmodSync(guarded, 0o777);
  echo = createServer((s) => s.pipe(s));
  echoPort = await new Promise<number>((r) => echo.listen(0, '127.0.0.1', () => r((echo.address() as { port: number }).port)));
  otherPort = await freePort();
  port = await freePort();
  airlock = await startAirlock({
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [{
      name: 'web1',
      protocol: 'ssh',
      listen: `127.0.0.1:${port}`,
      upstream: { host: '127.0.0.1', port: sshd.port, known_hosts: sshd.knownHostsFile },
      credentials: { type: 'ssh-certificate', ca_key: `\${file:${sshd.caKeyFile}}`, ttl: '5m' },
      allow_groups: ['agents', 'ci', 'ops'],
      allowed_logins: { '*': [sshd.user] },
    }],
    rules: [
      { name: 'ci-exec-only', when: { groups: ['ci'], interactive: true }, effect: 'deny', reason: 'CI runs commands, not shells' },
      // An address glob: only the loopback network, on the echo port.
      { name: 'loopback-echo', when: { groups: ['agents'], forward: [`127.0.0.*:${echoPort}`] }, effect: 'allow' },
      // Anything on the echo port but the loopback address itself.
      { name: 'not-loopback', when: { groups: ['ops'], forward: [`127.0.0.1:${echoPort}`] }, effect: 'deny', reason: 'not the loopback service' },
      { name: 'echo-anywhere', when: { groups: ['ops'], forward: [`*:${echoPort}`] }, effect: 'allow' },
      { name: 'guarded', when: { sftp: { ops: ['write', 'remove', 'rename', 'mkdir', 'setstat', 'symlink', 'link'], paths: [`${guarded}/**`] } }, effect: 'deny' },
      { name: 'secrets', when: { groups: ['agents'] }, effect: 'mask', detect: ['aws_access_key'], method: 'redact' },
    ],
  });
  tokens.agent = await issuer.token({ sub: 'claude', groups: ['agents'], airlock_kind: 'agent' });
  tokens.ci = await issuer.token({ sub: 'ci-bot', groups: ['ci'], airlock_kind: 'machine' });
  tokens.ops = await issuer.token({ sub: 'oscar', groups: ['ops'], airlock_kind: 'human' });
}, 120_000);

afterAll(async () => {
  if (!available) return;
  await airlock?.stop();
  await sshd?.stop();
  echo?.close();
  rmSync(guarded, { recursive: true, force: true });
});

const SSH_OPTS = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no'];

function ssh(who: string, args: string[], input?: string): Promise<RunResult> {
  return run('sshpass', ['-e', 'ssh', ...SSH_OPTS, '-p', String(port), `${sshd.user}@127.0.0.1`, ...args], { env: { SSHPASS: tokens[who] ?? '' }, ...(input === undefined ? {} : { input }), timeoutMs: 60_000 });
}

async function connect(who: string, extra: Partial<ConnectConfig> = {}): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', port, username: sshd.user, password: tokens[who] ?? '', hostVerifier: () => true, ...extra });
  });
  return client;
}

/** Runs a command on an open connection: stdout, stderr, exit code or signal. */
function execOn(client: ssh2.Client, command: string, opts: ssh2.ExecOptions = {}): Promise<{ stdout: string; stderr: string; code: number | null; signal: string | null }> {
  return new Promise((resolve, reject) => {
    client.exec(command, opts, (err, ch) => {
      if (err) return reject(err);
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      let signal: string | null = null;
      ch.on('data', (d: Buffer) => (stdout += d.toString()));
      ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      ch.on('exit', (c: number | null, s?: string) => {
        code = c;
        signal = s ?? null;
      });
      ch.on('close', () => resolve({ stdout, stderr, code, signal }));
    });
  });
}

/** A direct-tcpip forward: what the far end echoes back, or the open's error. */
function forwardEcho(client: ssh2.Client, host: string, destPort: number): Promise<string> {
  return new Promise((resolve, reject) => {
    client.forwardOut('127.0.0.1', 40000, host, destPort, (err, ch: ClientChannel) => {
      if (err) return reject(err);
      ch.once('data', (d: Buffer) => {
        resolve(d.toString());
        ch.close();
      });
      ch.write('ping');
    });
  });
}

const audit = (): Array<Record<string, unknown>> => auditEvents(join(airlock.stateDir, 'audit'));
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

describe.skipIf(!available)('forwarding', () => {
  it('held: -L to an allowed address works, to another port or a name the rule does not give is refused', async () => {
    const client = await connect('agent');
    try {
      expect(await forwardEcho(client, '127.0.0.1', echoPort)).toBe('ping');
      await expect(forwardEcho(client, '127.0.0.1', otherPort)).rejects.toThrow();
      await expect(forwardEcho(client, 'localhost', echoPort)).rejects.toThrow();
    } finally {
      client.end();
    }
  });

  it('an address glob (127.0.0.*) does not match a DNS name that starts with those digits', async () => {
    const client = await connect('agent');
    try {
      await expect(forwardEcho(client, '127.0.0.1.nip.io', echoPort)).rejects.toThrow();
      // The address itself, however spelt, is the address the rule names.
      expect(await forwardEcho(client, '127.1', echoPort)).toBe('ping');
      await settle();
      const e = audit().find((x) => x.type === 'ssh.forward' && String(x.host).includes('nip.io'));
      expect(e?.decision).toBe('deny');
    } finally {
      client.end();
    }
  });

  it.each(['127.1', '2130706433', '0x7f.0.0.1', '0177.0.0.1', '127.0.0.1.', '127.000.000.001'])('a deny rule on an address holds for its other spelling %s', async (host) => {
    const client = await connect('ops');
    try {
      await expect(forwardEcho(client, host, echoPort)).rejects.toThrow();
    } finally {
      client.end();
    }
  });

  it('held: -R, streamlocal forwards both ways are refused', async () => {
    const sock = join(dir, `unix-${stamp}.sock`);
    const unix = createServer((s) => s.end('reached'));
    await new Promise<void>((r) => unix.listen(sock, () => r()));
    const client = await connect('agent');
    try {
      await expect(new Promise((resolve, reject) => client.forwardIn('127.0.0.1', 0, (err, p) => (err ? reject(err) : resolve(p))))).rejects.toThrow();
      await expect(new Promise((resolve, reject) => client.openssh_forwardInStreamLocal(join(dir, 'r.sock'), (err) => (err ? reject(err) : resolve(null))))).rejects.toThrow();
      await expect(new Promise((resolve, reject) => client.openssh_forwardOutStreamLocal(sock, (err, ch) => (err ? reject(err) : resolve(ch))))).rejects.toThrow();
    } finally {
      client.end();
      unix.close();
    }
  });
});

describe.skipIf(!available)('session channels', () => {
  it('held: env requests outside env_allow never reach the target (LD_PRELOAD, BASH_ENV, ENV, PROMPT_COMMAND)', async () => {
    const client = await connect('agent');
    try {
      const r = await execOn(client, 'env', { env: { LD_PRELOAD: '/tmp/x.so', BASH_ENV: '/tmp/x', ENV: '/tmp/x', PROMPT_COMMAND: 'id', AIRLOCK_TEST_X: 'y', LC_RED: 'ok' } });
      expect(r.stdout).toContain('LC_RED=ok');
      for (const name of ['LD_PRELOAD', 'BASH_ENV', 'ENV=', 'PROMPT_COMMAND', 'AIRLOCK_TEST_X']) expect(r.stdout).not.toContain(name);
    } finally {
      client.end();
    }
  });

  it('an allowed env name whose value bash could run as code (LC_X=\'a[$(…)]\') is never set', async () => {
    const client = await connect('agent');
    try {
      const r = await execOn(client, 'env', { env: { LC_EVIL: 'a[$(id)]', LC_FINE: 'en_US.UTF-8' } });
      expect(r.stdout).toContain('LC_FINE=en_US.UTF-8');
      expect(r.stdout).not.toContain('LC_EVIL');
    } finally {
      client.end();
    }
  });

  it('held: agent and X11 forwarding requests are refused; the command sees neither', async () => {
    const sock = join(dir, `agent-${stamp}.sock`);
    const agent = execFileSync('ssh-agent', ['-a', sock, '-s'], { encoding: 'utf8' });
    const agentPid = /SSH_AGENT_PID=(\d+)/.exec(agent)?.[1];
    const client = await connect('agent', { agent: sock, agentForward: true });
    try {
      const seen = await execOn(client, 'echo "[$SSH_AUTH_SOCK][$DISPLAY]"').catch((e: Error) => ({ stdout: `refused: ${e.message}`, stderr: '', code: null, signal: null }));
      expect(seen.stdout).toMatch(/^\[\]\[\]\n$|^refused: /);
      const x11 = await execOn(client, 'echo "[$DISPLAY]"', { x11: true }).catch((e: Error) => ({ stdout: `refused: ${e.message}`, stderr: '', code: null, signal: null }));
      expect(x11.stdout).toMatch(/^\[\]\n$|^refused: /);
    } finally {
      client.end();
      if (agentPid !== undefined) process.kill(Number(agentPid));
    }
  });

  it('held: a subsystem other than sftp is refused', async () => {
    const client = await connect('agent');
    try {
      for (const name of ['Sftp', 'sftp ', 'netconf', 'sftp-server']) {
        await expect(new Promise((resolve, reject) => client.subsys(name, (err, ch) => (err ? reject(err) : resolve(ch))))).rejects.toThrow();
      }
    } finally {
      client.end();
    }
  });

  it('held: an exec-only identity: a denied shell channel, then an exec and an empty-command pty exec on the same connection', async () => {
    const client = await connect('ci');
    try {
      const shell = await new Promise<{ stderr: string; code: number | null }>((resolve, reject) => {
        client.shell({ term: 'xterm', rows: 24, cols: 80 }, (err, ch) => {
          if (err) return reject(err);
          let stderr = '';
          let code: number | null = null;
          ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          ch.on('data', () => undefined);
          ch.on('exit', (c: number | null) => (code = c));
          ch.on('close', () => resolve({ stderr, code }));
        });
      });
      expect(shell.code).toBe(126);
      expect(shell.stderr).toContain('ci-exec-only');
      const plain = await execOn(client, 'echo after-denied-shell');
      expect(plain.stdout).toBe('after-denied-shell\n');
      const empty = await execOn(client, '', { pty: true });
      expect(empty.code).toBe(126);
    } finally {
      client.end();
    }
  });

  it('held: signals reach the command and its end comes back exactly; a window-change storm changes nothing', async () => {
    const client = await connect('agent');
    try {
      const r = await new Promise<{ signal: string | null; stdout: string }>((resolve, reject) => {
        client.exec('echo started; sleep 30', { pty: true }, (err, ch) => {
          if (err) return reject(err);
          let stdout = '';
          let signal: string | null = null;
          ch.on('data', (d: Buffer) => {
            stdout += d.toString();
            if (stdout.includes('started')) {
              for (let i = 0; i < 500; i++) ch.setWindow(10 + (i % 50), 40 + (i % 80), 0, 0);
              ch.signal('KILL');
            }
          });
          ch.on('exit', (_c: number | null, s?: string) => (signal = s ?? null));
          ch.on('close', () => resolve({ signal, stdout }));
        });
      });
      expect(r.stdout).toContain('started');
      expect(r.signal).toMatch(/KILL$/);
    } finally {
      client.end();
    }
  });
});

describe.skipIf(!available)('huge output', () => {
  it('stderr the client does not read holds the command back instead of filling airlock\'s memory', async () => {
    const client = await connect('agent');
    const MB = 64;
    try {
      const r = await new Promise<{ doneBeforeRead: boolean; stderrBytes: number; stdout: string }>((resolve, reject) => {
        client.exec(`dd if=/dev/zero bs=1M count=${MB} status=none >&2; echo done`, (err, ch) => {
          if (err) return reject(err);
          let stdout = '';
          let stderrBytes = 0;
          let doneBeforeRead: boolean | null = null;
          ch.on('data', (d: Buffer) => (stdout += d.toString()));
          // Done once the channel closed and stderr was read to its end (ssh2 emits 'close'
          // when stdout ends: stderr may still hold data it has not handed over).
          let waiting = 2;
          const done = (): void => {
            if (--waiting === 0) resolve({ doneBeforeRead: doneBeforeRead ?? true, stderrBytes, stdout });
          };
          ch.on('close', done);
          ch.stderr.on('end', done);
          // Nobody reads stderr for a while: the client's window closes; had airlock kept
          // reading the target, the command would finish (all 64 MiB held in the daemon).
          const watch = setInterval(() => {
            if (stdout.includes('done')) doneBeforeRead = true;
          }, 50);
          setTimeout(() => {
            clearInterval(watch);
            doneBeforeRead ??= stdout.includes('done');
            ch.stderr.on('data', (d: Buffer) => (stderrBytes += d.length));
          }, 6_000);
        });
      });
      expect(r.doneBeforeRead).toBe(false);
      // Once read, every byte comes through and the command ends.
      expect(r.stderrBytes).toBe(MB * 1024 * 1024);
      expect(r.stdout).toBe('done\n');
    } finally {
      client.end();
    }
  }, 60_000);
});

describe.skipIf(!available)('logins and authentication', () => {
  it.each(['root', 'ROOT', 'AIRLOCK-TEST', `${'airlock-test'}@127.0.0.1`, 'airlock-test '])('held: login %j outside allowed_logins is refused', async (login) => {
    await expect(connect('agent', { username: login })).rejects.toThrow(/authentication methods failed/);
  });

  it('held: keyboard-interactive with no answer, extra answers or a padded token', async () => {
    const attempt = (reply: string[]): Promise<ssh2.Client> => {
      const client = new ssh2.Client();
      return new Promise((resolve, reject) => {
        client.once('ready', () => resolve(client));
        client.once('error', reject);
        client.on('keyboard-interactive', (_n, _i, _l, _p, finish) => finish(reply));
        client.connect({ host: '127.0.0.1', port, username: sshd.user, tryKeyboard: true, authHandler: ['keyboard-interactive'], hostVerifier: () => true });
      });
    };
    await expect(attempt([])).rejects.toThrow();
    await expect(attempt(['', tokens.agent ?? ''])).rejects.toThrow();
    await expect(attempt(['x'.repeat(30_000)])).rejects.toThrow();
    const ok = await attempt([`  ${tokens.agent ?? ''}\n`]);
    ok.end();
  });

  it('held: a certificate from another CA, with the subject as principal, is refused', async () => {
    const key = join(dir, 'foreign');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    execFileSync('ssh-keygen', ['-q', '-s', sshd.caKeyFile, '-I', 'airlock:claude', '-n', 'claude', '-O', 'extension:airlock-identity@airlock=x', `${key}.pub`]);
    const r = await run('ssh', ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', key, '-o', `CertificateFile=${key}-cert.pub`, '-p', String(port), `${sshd.user}@127.0.0.1`, 'echo in'], { timeoutMs: 30_000 });
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain('in');
  });
});

describe.skipIf(!available)('certificates from airlock\'s own CA', () => {
  const sshWithCert = (key: string): Promise<RunResult> =>
    run('ssh', ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', key, '-o', `CertificateFile=${key}-cert.pub`, '-p', String(port), `${sshd.user}@127.0.0.1`, 'echo in'], { timeoutMs: 30_000 });
  const sign = (name: string, validity: string): string => {
    const key = join(dir, name);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const identity = JSON.stringify({ sub: 'claude', groups: ['agents'], kind: 'agent' });
    execFileSync('ssh-keygen', ['-q', '-s', join(airlock.stateDir, 'ssh-user-ca'), '-I', 'airlock:claude', '-n', 'claude', '-V', validity, '-O', 'clear', '-O', `extension:identity@airlock=${identity}`, `${key}.pub`]);
    return key;
  };

  it('held: a well-formed certificate logs in; the same expired or not yet valid is refused', async () => {
    // airlock makes its CA on first use: a certificate login attempt (any) makes it.
    const probe = join(dir, 'probe');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', probe]);
    execFileSync('ssh-keygen', ['-q', '-s', sshd.caKeyFile, '-I', 'x', '-n', 'claude', `${probe}.pub`]);
    await sshWithCert(probe);
    expect(existsSync(join(airlock.stateDir, 'ssh-user-ca'))).toBe(true);
    expect((await sshWithCert(sign('fresh', '-1m:+5m'))).stdout).toBe('in\n');
    const expired = await sshWithCert(sign('expired', '-10m:-5m'));
    expect(expired.code).not.toBe(0);
    expect(expired.stdout).toBe('');
    const early = await sshWithCert(sign('early', '+5m:+10m'));
    expect(early.code).not.toBe(0);
    expect(early.stdout).toBe('');
  });
});

describe.skipIf(!available)('SFTP paths', () => {
  const sftpBatch = (who: string, batch: string): Promise<RunResult> =>
    run('sshpass', ['-e', 'sftp', ...SSH_OPTS, '-b', '-', '-P', String(port), `${sshd.user}@127.0.0.1`], { env: { SSHPASS: tokens[who] ?? '' }, input: batch, timeoutMs: 60_000 });

  it('held: .., //, long and non-UTF-8 spellings of a guarded path are refused', async () => {
    const local = join(dir, 'payload.txt');
    writeFileSync(local, 'payload\n');
    const name = guarded.split('/').pop() ?? '';
    const spellings = [
      `/tmp/../tmp/${name}/a.txt`,
      `//tmp//${name}//b.txt`,
      `/tmp/./${name}/./c.txt`,
      `${'/tmp/x/..'.repeat(400)}/tmp/${name}/d.txt`,
    ];
    for (const target of spellings) {
      const r = await sftpBatch('agent', `put ${local} ${target}\n`);
      expect(r.code, target).not.toBe(0);
    }
    expect(execFileSync('ls', [guarded], { encoding: 'utf8' })).toBe('');
  });

  it('held: a symlink made over SFTP from an open place into a guarded one is refused (both paths are judged)', async () => {
    const link = `/tmp/airlock-red-link-${stamp}`;
    const r = await sftpBatch('agent', `symlink ${guarded} ${link}\n`);
    expect(r.code).not.toBe(0);
    expect(existsSync(link)).toBe(false);
  });
});

/** SFTP packets by hand (draft-ietf-secsh-filexfer-02) on a raw sftp subsystem channel. */
const str = (v: string | Buffer): Buffer => {
  const b = typeof v === 'string' ? Buffer.from(v) : v;
  return Buffer.concat([u32(b.length), b]);
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

async function rawSftp(who: string): Promise<{ client: ssh2.Client; send: (b: Buffer) => void; reply: () => Promise<Buffer | undefined> }> {
  const client = await connect(who);
  const ch = await new Promise<ClientChannel>((resolve, reject) => client.subsys('sftp', (err, c) => (err ? reject(err) : resolve(c))));
  let buf = Buffer.alloc(0);
  const packets: Buffer[] = [];
  let closed = false;
  let wake: (() => void) | null = null;
  ch.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      packets.push(buf.subarray(0, 4 + buf.readUInt32BE(0)));
      buf = buf.subarray(4 + buf.readUInt32BE(0));
    }
    wake?.();
  });
  ch.on('close', () => {
    closed = true;
    wake?.();
  });
  const reply = async (): Promise<Buffer | undefined> => {
    while (packets.length === 0 && !closed) await new Promise<void>((r) => (wake = r));
    return packets.shift();
  };
  return { client, send: (b) => ch.write(b), reply };
}

describe.skipIf(!available)('SFTP requests by hand', () => {
  it('a path with a NUL byte is refused by airlock (the target would read only what comes before it); the session goes on', async () => {
    const { client, send, reply } = await rawSftp('agent');
    try {
      send(sftpPacket(1, u32(3)));
      expect((await reply())?.[4]).toBe(2); // VERSION
      // Judged as /tmp/ok-… (allowed); a C server would read the guarded path before the NUL.
      const path = `${guarded}/nul-${stamp}.txt\0/../../../tmp/airlock-red-ok-${stamp}`;
      send(sftpPacket(3, u32(1), str(path), u32(0x1a), u32(0))); // OPEN WRITE|CREAT|TRUNC
      const refused = await reply();
      expect(refused?.[4]).toBe(101); // STATUS
      expect(refused?.readUInt32BE(9)).toBe(3); // PERMISSION_DENIED
      expect(refused?.toString('latin1')).toContain('NUL');
      send(sftpPacket(16, u32(2), str('/tmp'))); // REALPATH: the subsystem still answers
      expect((await reply())?.[4]).toBe(104); // NAME
      expect(execFileSync('ls', [guarded], { encoding: 'utf8' })).toBe('');
    } finally {
      client.end();
    }
  });
});

describe.skipIf(!available)('masking', () => {
  it('held: a secret in one stream is masked on stdout and stderr alike', async () => {
    // The command line does not hold the key whole (the record keeps the caller's own line).
    const k = `'${KEY.slice(0, 10)}''${KEY.slice(10)}'`;
    const r = await ssh('agent', [`printf ${k}; echo; printf ${k} >&2; echo >&2`]);
    expect(r.stdout + r.stderr).not.toContain(KEY);
    expect(r.stdout).toContain('[redacted]');
    expect(r.stderr).toContain('[redacted]');
  });
});

describe.skipIf(!available)('the record', () => {
  it('no token or unmasked secret in the audit log or the daemon output', async () => {
    await settle();
    const text = JSON.stringify(audit()) + airlock.output();
    for (const t of Object.values(tokens)) expect(text).not.toContain(t);
    expect(text).not.toContain(KEY);
    expect(existsSync(join(guarded, 'a.txt'))).toBe(false);
  });
});
