/**
 * The SSH gateway's channels in detail, through the real daemon against a real sshd:
 * the env allow-list, exit signals as OpenSSH reports them directly, a refused approval,
 * a pinned host key, SFTP reads masked across READ boundaries (and a 50 MB file through
 * the masked path byte for byte), relative SFTP paths from a client that never asks
 * REALPATH, POST /v1/ssh/cert, the recording's header — and ssh2's certificate login
 * upstream, which fails without patches/ssh2+1.17.0.patch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import ssh2 from 'ssh2';
import sshpk from 'sshpk';
import { freePort } from '../harness/ports.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, airlockCommand, type RunningAirlock } from '../harness/airlock.js';
import { run, type RunResult } from '../harness/clients.js';
import { startSshd, sshdAvailable, type SshServer } from '../harness/sshd.js';
import { generateEd25519, signUserCertificate } from '../../src/auth/ssh-certs.js';

const available = sshdAvailable();
let sshd: SshServer;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let adminUrl = '';
let dir = '';
const ports: Record<string, number> = {};
const tokens: Record<string, string> = {};
const stamp = `${process.pid}-${Date.now()}`;
let protectedDir = '';

beforeAll(async () => {
  if (!available) return;
  issuer = await createTestIssuer();
  sshd = await startSshd();
  dir = mkdtempSync(join(tmpdir(), 'airlock-ssh-ch-'));
  chmodSync(dir, 0o755);
  protectedDir = join(sshd.home, `airlock-protected-${stamp}`);
  mkdirSync(protectedDir, { recursive: true });
  execFileSync('chown', [`${sshd.user}:`, protectedDir]);
  for (const c of ['web1', 'pinned', 'locked']) ports[c] = await freePort();
  // A held key under a passphrase (both secret references), authorized on the target.
  const lockedKey = join(dir, 'locked_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'open sesame', '-f', lockedKey]);
  writeFileSync(join(dir, 'passphrase'), 'open sesame');
  writeFileSync(join(sshd.dir, 'authorized_keys'), `${readFileSync(join(sshd.dir, 'authorized_keys'), 'utf8')}${readFileSync(`${lockedKey}.pub`, 'utf8')}`);
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  const base = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    name,
    protocol: 'ssh',
    listen: `127.0.0.1:${ports[name]}`,
    upstream: { host: '127.0.0.1', port: sshd.port, known_hosts: sshd.knownHostsFile },
    credentials: { type: 'ssh-certificate', ca_key: `\${file:${sshd.caKeyFile}}`, ttl: '5m' },
    allow_groups: ['agents', 'dba'],
    allowed_logins: { '*': [sshd.user] },
    ...extra,
  });
  airlock = await startAirlock({
    admin: { listen: `127.0.0.1:${adminPort}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [
      base('web1'),
      base('pinned', { upstream: { host: '127.0.0.1', port: sshd.port, host_key_fingerprint: sshd.hostKeyFingerprint } }),
      base('locked', { credentials: { type: 'static', private_key: `\${file:${join(dir, 'locked_key')}}`, passphrase: `\${file:${join(dir, 'passphrase')}}` } }),
    ],
    rules: [
      { name: 'touching-needs-a-dba', when: { groups: ['agents'], commands: ['touch /tmp/airlock-held*'] }, effect: 'approve', approvers: ['dba'], timeout: '60s' },
      { name: 'home-protected', when: { sftp: { ops: ['write', 'remove', 'rename', 'mkdir'], paths: [`${protectedDir}/**`] } }, effect: 'deny' },
      { name: 'emails', when: { groups: ['agents'] }, effect: 'mask', detect: ['email'], method: 'redact' },
    ],
  });
  tokens.agent = await issuer.token({ sub: 'claude', groups: ['agents'] });
  tokens.dba = await issuer.token({ sub: 'bob', groups: ['dba'] });
}, 120_000);

afterAll(async () => {
  if (!available) return;
  await airlock?.stop();
  await sshd?.stop();
  rmSync(protectedDir, { recursive: true, force: true });
});

const SSH_OPTS = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no'];

function ssh(conn: string, who: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return run('sshpass', ['-e', 'ssh', ...SSH_OPTS, '-p', String(ports[conn]), `${sshd.user}@127.0.0.1`, ...args], { env: { SSHPASS: tokens[who] ?? '', ...opts.env }, ...(opts.input === undefined ? {} : { input: opts.input }), timeoutMs: 60_000 });
}

/** The same command straight to sshd with the test user's own key (the reference). */
function direct(args: string[]): Promise<RunResult> {
  return run('ssh', ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', sshd.userKeyFile, '-p', String(sshd.port), `${sshd.user}@127.0.0.1`, ...args], { timeoutMs: 30_000 });
}

function sftpBatch(who: string, commands: string[]): Promise<RunResult> {
  // Commands on stdin (sftp -b would force BatchMode and refuse a password).
  return run('sshpass', ['-e', 'sftp', ...SSH_OPTS, '-P', String(ports.web1), `${sshd.user}@127.0.0.1`], { env: { SSHPASS: tokens[who] ?? '' }, input: `${commands.join('\n')}\n`, timeoutMs: 120_000 });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe.skipIf(!available)('session channels', () => {
  it('only allow-listed environment names reach the target (sshd would accept both)', async () => {
    const r = await ssh('web1', 'dba', ['-o', 'SendEnv=LC_AIRLOCK', '-o', 'SendEnv=AIRLOCK_TEST_X', 'echo "[$LC_AIRLOCK][$AIRLOCK_TEST_X]"'], { env: { LC_AIRLOCK: 'passes', AIRLOCK_TEST_X: 'stopped' } });
    expect(r.stdout).toBe('[passes][]\n');
  });

  it('exit statuses and signals come back as OpenSSH reports them directly', async () => {
    for (const cmd of ['exit 0', 'exit 7', 'exit 255', 'kill -TERM $$', 'kill -KILL $$', 'kill -USR1 $$']) {
      const [through, reference] = await Promise.all([ssh('web1', 'dba', [cmd]), direct([cmd])]);
      expect(through.code, `${cmd}: ${through.stderr}`).toBe(reference.code);
    }
  });

  it('regression: an exit status that came in the same read as the exec reply was lost (255)', async () => {
    const bad: string[] = [];
    for (let round = 0; round < 8; round++) {
      const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => ssh('web1', 'dba', [`echo x; exit ${i + 1}`])));
      rs.forEach((r, i) => { if (r.code !== i + 1) bad.push(`${i + 1} -> ${r.code} ${r.stderr}`); });
    }
    expect(bad).toEqual([]);
  }, 120_000);

  it('a held command the approver refuses: the approval id, then exit status 126, nothing ran', async () => {
    const file = `/tmp/airlock-held-${stamp}`;
    const child = spawn('sshpass', ['-e', 'ssh', ...SSH_OPTS, '-p', String(ports.web1), `${sshd.user}@127.0.0.1`, `touch ${file}`], { env: { ...process.env, SSHPASS: tokens.agent ?? '' } });
    child.stdin?.on('error', () => undefined);
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    for (let i = 0; i < 150 && !/approve with: airlock approvals approve (\S+)/.test(err); i++) await new Promise((r) => setTimeout(r, 100));
    const id = /approve with: airlock approvals approve (\S+)/.exec(err)?.[1];
    expect(id).toBeDefined();
    const { cmd, argv } = airlockCommand(['approvals', 'deny', id ?? '', '--reason', 'not today']);
    expect((await run(cmd, argv, { env: { AIRLOCK_ADMIN_URL: adminUrl, AIRLOCK_TOKEN: tokens.dba ?? '' } })).code).toBe(0);
    expect(await exited).toBe(126);
    expect(existsSync(file)).toBe(false);
  }, 60_000);

  it('a held key under a passphrase (both secret references)', async () => {
    const r = await ssh('locked', 'dba', ['echo locked-ok']);
    expect(r.stdout).toBe('locked-ok\n');
    expect(airlock.output()).not.toContain('open sesame');
  });

  it('-R and agent forwarding are refused (the target would allow both)', async () => {
    const r = await ssh('web1', 'dba', ['-o', 'ExitOnForwardFailure=yes', '-R', '0:127.0.0.1:9', 'echo ran']);
    expect(r.stderr).toMatch(/remote port forwarding failed/);
    expect(r.stdout).toBe('');
    const agent = await run('ssh-agent', ['sshpass', '-e', 'ssh', ...SSH_OPTS, '-A', '-p', String(ports.web1), `${sshd.user}@127.0.0.1`, 'echo "[$SSH_AUTH_SOCK]"'], { env: { SSHPASS: tokens.dba ?? '' }, timeoutMs: 30_000 });
    expect(agent.stdout).toBe('[]\n');
  });

  it('a target pinned by its SHA256 fingerprint', async () => {
    const r = await ssh('pinned', 'dba', ['echo pinned-ok']);
    expect(r.stdout).toBe('pinned-ok\n');
  });
});

describe.skipIf(!available)('SFTP reads under a masking rule', () => {
  it('a file with an email across both READ boundaries is masked for agents, intact for others', async () => {
    // OpenSSH reads 32 KiB at a time, airlock 64 KiB upstream: an address across each.
    const line = 'nothing to see here, move along\n';
    const filler = (n: number): string => line.repeat(Math.ceil(n / line.length)).slice(0, n - 1) + '\n';
    const a = 'ada.lovelace@example.com';
    const g = 'grace.hopper@example.org';
    const text = `${filler(32 * 1024 - 10)}${a}\n${filler(64 * 1024 - 32 * 1024 - 12 - a.length)}${g}\n${filler(10_000)}`;
    expect(text.indexOf(a)).toBeLessThan(32 * 1024);
    expect(text.indexOf(a) + a.length).toBeGreaterThan(32 * 1024);
    expect(text.indexOf(g)).toBeLessThan(64 * 1024);
    expect(text.indexOf(g) + g.length).toBeGreaterThan(64 * 1024);
    const remote = `/tmp/airlock-mask-${stamp}.txt`;
    writeFileSync(remote, text);
    chmodSync(remote, 0o644);
    const mine = join(dir, 'masked.txt');
    const theirs = join(dir, 'plain.txt');
    expect((await sftpBatch('agent', [`get ${remote} ${mine}`])).code).toBe(0);
    expect((await sftpBatch('dba', [`get ${remote} ${theirs}`])).code).toBe(0);
    const got = readFileSync(mine, 'utf8');
    expect(got).not.toContain('lovelace');
    expect(got).not.toContain('hopper');
    expect(got).toBe(text.replace(a, '[redacted]').replace(g, '[redacted]'));
    expect(readFileSync(theirs, 'utf8')).toBe(text);
    // exec output goes through the same detectors.
    const cat = await ssh('web1', 'agent', [`grep -c example ${remote}; grep example ${remote}`]);
    expect(cat.stdout).toBe('2\n[redacted]\n[redacted]\n');
  }, 60_000);

  it('scp of 50 MB up, then down through the plain and the masked path, byte for byte', async () => {
    const local = join(dir, 'big.bin');
    const data = Buffer.alloc(50 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE(i, i);
    writeFileSync(local, data);
    const remote = `/tmp/airlock-scp-${stamp}.bin`;
    const scp = (who: string, from: string, to: string): Promise<RunResult> => run('sshpass', ['-e', 'scp', ...SSH_OPTS, '-P', String(ports.web1), from, to], { env: { SSHPASS: tokens[who] ?? '' }, timeoutMs: 120_000 });
    const up = await scp('agent', local, `${sshd.user}@127.0.0.1:${remote}`);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(sha(readFileSync(remote))).toBe(sha(data));
    for (const who of ['dba', 'agent']) {
      const back = join(dir, `back-${who}.bin`);
      const down = await scp(who, `${sshd.user}@127.0.0.1:${remote}`, back);
      expect(down.code, who).toBe(0);
      expect(sha(readFileSync(back)), who).toBe(sha(data));
      rmSync(back);
    }
    rmSync(remote);
  }, 120_000);
});

describe.skipIf(!available)('SFTP paths', () => {
  it('a client that sends relative paths without asking REALPATH cannot slip past a path rule', async () => {
    const rel = `airlock-protected-${stamp}/sneaky.txt`;
    const outcome = await new Promise<string>((resolve, reject) => {
      const c = new ssh2.Client();
      c.on('error', reject);
      c.on('ready', () => {
        c.sftp((err, sftp) => {
          if (err) return reject(err);
          sftp.writeFile(rel, 'x', (e) => {
            sftp.writeFile(`airlock-ok-${stamp}.txt`, 'y', (e2) => {
              c.end();
              resolve(`${e === undefined || e === null ? 'written' : e.message}|${e2 === undefined || e2 === null ? 'written' : e2.message}`);
            });
          });
        });
      });
      c.connect({ host: '127.0.0.1', port: ports.web1, username: sshd.user, password: tokens.dba ?? '', hostVerifier: () => true });
    });
    expect(outcome).toMatch(/^airlock: denied by rule home-protected.*\|written$/);
    expect(existsSync(join(sshd.home, rel))).toBe(false);
    expect(readFileSync(join(sshd.home, `airlock-ok-${stamp}.txt`), 'utf8')).toBe('y');
    rmSync(join(sshd.home, `airlock-ok-${stamp}.txt`));
  }, 30_000);
});

describe.skipIf(!available)('certificates', () => {
  it('POST /v1/ssh/cert signs a public key for a bearer token, and refuses without one', async () => {
    const key = generateEd25519();
    const body = JSON.stringify({ public_key: key.publicKey.toString('ssh'), ttl_seconds: 300 });
    const denied = await fetch(`${adminUrl}/v1/ssh/cert`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    expect(denied.status).toBe(401);
    const res = await fetch(`${adminUrl}/v1/ssh/cert`, { method: 'POST', body, headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.dba}` } });
    expect(res.status).toBe(200);
    const out = (await res.json()) as { certificate: string; key_id: string; valid_until: string };
    expect(out.key_id).toBe('airlock:bob');
    const file = join(dir, 'api-cert.pub');
    writeFileSync(file, `${out.certificate}\n`);
    const listing = execFileSync('ssh-keygen', ['-L', '-f', file], { encoding: 'utf8' });
    expect(listing).toMatch(/Principals:\s+bob/);
    expect(Date.parse(out.valid_until) - Date.now()).toBeLessThanOrEqual(300_000);
  });

  it('ssh2 logs in upstream with an OpenSSH certificate (fails without patches/ssh2+1.17.0.patch)', async () => {
    const ca = sshpk.parsePrivateKey(readFileSync(sshd.caKeyFile, 'utf8'), 'auto');
    const key = generateEd25519();
    const cert = signUserCertificate({ ca, subjectKey: key.publicKey, principals: [sshd.user], keyId: 'patch-test', validFrom: new Date(Date.now() - 60_000), validUntil: new Date(Date.now() + 300_000), permissions: ['permit-pty'] });
    const line = cert.toString('openssh');
    const priv = ssh2.utils.parseKey(key.privateKey);
    if (priv instanceof Error || Array.isArray(priv)) throw new Error('key');
    const [type, b64] = line.split(' ');
    const certified = Object.create(priv, { type: { value: type }, getPublicSSH: { value: () => Buffer.from(b64 ?? '', 'base64') } }) as object;
    const out = await new Promise<string>((resolve, reject) => {
      const c = new ssh2.Client();
      c.on('error', reject);
      c.on('ready', () => c.exec('id -un', (err, ch) => {
        if (err) return reject(err);
        let s = '';
        ch.on('data', (d: Buffer) => (s += d.toString()));
        ch.on('close', () => {
          c.end();
          resolve(s);
        });
      }));
      c.connect({ host: '127.0.0.1', port: sshd.port, username: sshd.user, authHandler: [{ type: 'publickey', username: sshd.user, key: certified }] as never, hostVerifier: () => true });
    });
    expect(out).toBe(`${sshd.user}\n`);
  });
});

describe.skipIf(!available)('recording', () => {
  it('a script-driven pty shell: header with the terminal size, output and input events in time order', async () => {
    const before = new Set(existsSync(join(airlock.stateDir, 'recordings')) ? readdirSync(join(airlock.stateDir, 'recordings')) : []);
    const r = await run('sshpass', ['-e', 'ssh', ...SSH_OPTS, '-tt', '-p', String(ports.web1), `${sshd.user}@127.0.0.1`], { env: { SSHPASS: tokens.dba ?? '' }, input: 'echo rec-$((6*7))\nexit\n', timeoutMs: 30_000 });
    expect(r.stdout).toContain('rec-42');
    let file = '';
    for (let i = 0; i < 50 && file === ''; i++) {
      file = readdirSync(join(airlock.stateDir, 'recordings')).find((f) => !before.has(f)) ?? '';
      if (file === '') await new Promise((res) => setTimeout(res, 100));
    }
    // The recording is written as the session runs: read it until the output the client saw is in it
    // (the client can have printed its last bytes before the recorder's write of them landed).
    const read = (): unknown[] => readFileSync(join(airlock.stateDir, 'recordings', file), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown);
    const output = (ls: unknown[]): string => (ls.slice(1) as Array<[number, string, string]>).filter(([, k]) => k === 'o').map(([, , d]) => d).join('');
    let lines = read();
    for (let i = 0; i < 50 && !output(lines).includes('rec-42'); i++) {
      await new Promise((res) => setTimeout(res, 100));
      lines = read();
    }
    const header = lines[0] as { version: number; width: number; height: number };
    expect(header).toMatchObject({ version: 2, width: 80, height: 24 });
    const events = lines.slice(1) as Array<[number, string, string]>;
    expect(output(lines)).toContain('rec-42');
    expect(events.filter(([, k]) => k === 'i').map(([, , d]) => d).join('')).toContain('echo rec-$((6*7))');
    for (let i = 1; i < events.length; i++) expect((events[i]?.[0] ?? 0) >= (events[i - 1]?.[0] ?? 0)).toBe(true);
    // The typed line is an audit event of its own.
    await new Promise((res) => setTimeout(res, 300));
    const auditDir = join(airlock.stateDir, 'audit');
    const audit = readdirSync(auditDir).filter((f) => f.endsWith('.jsonl')).map((f) => readFileSync(join(auditDir, f), 'utf8')).join('\n');
    expect(audit).toContain('"line":"echo rec-$((6*7))"');
  }, 30_000);

  it('what is typed and shown is masked in the recording too, even a key at a time', async () => {
    const before = new Set(readdirSync(join(airlock.stateDir, 'recordings')));
    // Typed slowly: each key its own chunk, echoed back one by one.
    const child = spawn('sshpass', ['-e', 'ssh', ...SSH_OPTS, '-tt', '-p', String(ports.web1), `${sshd.user}@127.0.0.1`], { env: { ...process.env, SSHPASS: tokens.agent ?? '' } });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise((r) => child.on('exit', r));
    child.stdin.on('error', () => undefined);
    for (let i = 0; i < 100 && !out.includes('$'); i++) await new Promise((r) => setTimeout(r, 100));
    for (const ch of 'echo mail ada.lovelace@example.com\n') {
      child.stdin.write(ch);
      await new Promise((r) => setTimeout(r, 60));
    }
    child.stdin.end('exit\n');
    await exited;
    expect(out).toContain('mail [redacted]');
    let file = '';
    for (let i = 0; i < 50 && file === ''; i++) {
      file = readdirSync(join(airlock.stateDir, 'recordings')).find((f) => !before.has(f)) ?? '';
      if (file === '') await new Promise((res) => setTimeout(res, 100));
    }
    await new Promise((res) => setTimeout(res, 300));
    const cast = readFileSync(join(airlock.stateDir, 'recordings', file), 'utf8');
    expect(cast).toContain('[redacted]');
    const typed = cast.trim().split('\n').slice(1).map((l) => JSON.parse(l) as [number, string, string]);
    expect(typed.filter(([, k]) => k === 'o').map(([, , d]) => d).join('')).not.toMatch(/lovelace/);
    expect(typed.filter(([, k]) => k === 'i').map(([, , d]) => d).join('')).not.toMatch(/lovelace/);
    const auditDir = join(airlock.stateDir, 'audit');
    const audit = readdirSync(auditDir).filter((f) => f.endsWith('.jsonl')).map((f) => readFileSync(join(auditDir, f), 'utf8')).join('\n');
    expect(audit).toContain('"line":"echo mail [redacted]"');
    expect(audit).not.toContain('lovelace');
  }, 30_000);
});

describe.skipIf(!available)('the record', () => {
  it('sftp operations are audit events; no token, key, passphrase or CA key anywhere', async () => {
    await new Promise((r) => setTimeout(r, 300));
    const auditDir = join(airlock.stateDir, 'audit');
    const audit = readdirSync(auditDir).filter((f) => f.endsWith('.jsonl')).map((f) => readFileSync(join(auditDir, f), 'utf8')).join('\n');
    expect(audit).toMatch(/"kind":"sftp"/);
    expect(audit).toContain('"ssh.sftp"');
    const recordings = readdirSync(join(airlock.stateDir, 'recordings')).map((f) => readFileSync(join(airlock.stateDir, 'recordings', f), 'utf8')).join('\n');
    const body = (file: string): string => readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))[0] ?? 'x';
    const secrets = [body(sshd.caKeyFile), body(sshd.userKeyFile), body(join(dir, 'locked_key')), 'open sesame', ...Object.values(tokens)];
    for (const haystack of [audit, recordings, airlock.output()]) for (const secret of secrets) expect(haystack).not.toContain(secret);
  });
});
