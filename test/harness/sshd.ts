/**
 * A real OpenSSH server for the SSH gateway tests: `sshd -D -e -f <temp config>` on a
 * random port, its own host key, a test login that trusts a CA (TrustedUserCAKeys) and an
 * authorized key, internal-sftp, TCP forwarding on. Needs root (sshd checks the login
 * against the system's users); the test user is created once if missing.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync, existsSync, readFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { freePort } from './ports.js';

export const SSH_TEST_USER = 'airlock-test';

export interface SshServer {
  dir: string;
  port: number;
  user: string;
  home: string;
  /** known_hosts line for 127.0.0.1:port. */
  knownHostsFile: string;
  /** SHA256:… of the server's host key. */
  hostKeyFingerprint: string;
  /** The CA the server trusts for user certificates (private key file, OpenSSH format). */
  caKeyFile: string;
  /** A key pair in the user's authorized_keys (private key file). */
  userKeyFile: string;
  log(): string;
  stop(): Promise<void>;
}

function keygen(file: string, comment: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { stdio: 'ignore' });
}

function ensureUser(): string {
  try {
    execFileSync('id', [SSH_TEST_USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-m', '-s', '/bin/bash', SSH_TEST_USER], { stdio: 'ignore' });
  }
  // A locked password (`!`) keeps sshd from treating the account as locked only when UsePAM is off: set '*'.
  try {
    execFileSync('usermod', ['-p', '*', SSH_TEST_USER], { stdio: 'ignore' });
  } catch {
    // already so
  }
  return execFileSync('getent', ['passwd', SSH_TEST_USER], { encoding: 'utf8' }).split(':')[5] ?? `/home/${SSH_TEST_USER}`;
}

export function sshdAvailable(): boolean {
  return process.getuid?.() === 0 && existsSync('/usr/sbin/sshd');
}

export async function startSshd(opts: { caPublicKey?: string } = {}): Promise<SshServer> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-sshd-'));
  chmodSync(dir, 0o755);
  const home = ensureUser();
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const hostKey = join(dir, 'host_ed25519');
  keygen(hostKey, 'test-host');
  const caKeyFile = join(dir, 'user_ca');
  keygen(caKeyFile, 'test-user-ca');
  const userKeyFile = join(dir, 'user_key');
  keygen(userKeyFile, 'test-user');
  const trusted = join(dir, 'trusted_user_ca_keys');
  writeFileSync(trusted, `${readFileSync(`${caKeyFile}.pub`, 'utf8')}${opts.caPublicKey === undefined ? '' : `${opts.caPublicKey.trim()}\n`}`);
  const authorized = join(dir, 'authorized_keys');
  writeFileSync(authorized, readFileSync(`${userKeyFile}.pub`, 'utf8'));
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorized}`,
      `TrustedUserCAKeys ${trusted}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin no',
      `AllowUsers ${SSH_TEST_USER}`,
      'AllowTcpForwarding yes',
      'X11Forwarding no',
      'PrintMotd no',
      'LogLevel VERBOSE',
      'Subsystem sftp internal-sftp',
      'AcceptEnv LANG LC_* AIRLOCK_TEST_*',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null) throw new Error(`sshd exited: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const pub = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(' ');
  const knownHostsFile = join(dir, 'known_hosts');
  writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${pub[0]} ${pub[1]}\n`);
  const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${hostKey}.pub`], { encoding: 'utf8' }).split(' ')[1] ?? '';
  return {
    dir,
    port,
    user: SSH_TEST_USER,
    home,
    knownHostsFile,
    hostKeyFingerprint: fp,
    caKeyFile,
    userKeyFile,
    log: () => log,
    stop: async () => {
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    },
  };
}
