/**
 * The SSH gateway's upstream leg: an ssh2 Client that logs in with the session's lease (a
 * per-session certificate, a held key or password) and trusts the target's host key only
 * as configured — a known_hosts file or a pinned SHA256 fingerprint, never on first use.
 */
import { createHmac } from 'node:crypto';
import { sshFingerprint } from '../../src/auth/ssh-certs.js';
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { SshConnectionConfig } from './config.js';
import type { Lease } from '../../src/core/session-types.js';
import { AirlockError } from '../../src/util/errors.js';

/** The target's host key fingerprint (one definition, in src/auth/ssh-certs.ts). */
export const fingerprintOf = sshFingerprint;

function hostPatterns(host: string, port: number): string[] {
  return port === 22 ? [host, `[${host}]:22`] : [`[${host}]:${port}`];
}

/** Whether a known_hosts file lists this key for host:port (plain or hashed names; markers and negation refuse). */
export function knownHostsAccepts(text: string, host: string, port: number, keyBlob: Buffer): boolean {
  const names = hostPatterns(host, port);
  const b64 = keyBlob.toString('base64');
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    if (fields[0]?.startsWith('@')) {
      // @revoked names a key that must never be trusted; @cert-authority is not used for host keys here.
      if (fields[0] === '@revoked' && fields[3] === b64) return false;
      continue;
    }
    const [hosts, , key] = fields;
    if (hosts === undefined || key === undefined || key !== b64) continue;
    for (const h of hosts.split(',')) {
      if (h.startsWith('|1|')) {
        const [, , salt, hash] = h.split('|');
        if (salt === undefined || hash === undefined) continue;
        for (const n of names) if (createHmac('sha1', Buffer.from(salt, 'base64')).update(n).digest('base64') === hash) return true;
      } else if (names.includes(h)) return true;
    }
  }
  return false;
}

/** An ssh2 "parsed key" that presents an OpenSSH certificate and signs with its private key. */
function certifiedKey(privateKey: string, certificateLine: string): object {
  const priv = ssh2.utils.parseKey(privateKey);
  if (priv instanceof Error || Array.isArray(priv)) throw new AirlockError('AIRLOCK_INTERNAL', 'the session key could not be read');
  const [type, b64] = certificateLine.split(' ');
  const blob = Buffer.from(b64 ?? '', 'base64');
  return Object.create(priv, { type: { value: type }, getPublicSSH: { value: () => blob } }) as object;
}

export interface UpstreamOptions {
  config: SshConnectionConfig;
  lease: Lease;
  login: string;
  /** Certificate leases: log in with this certificate of the lease's key instead of its own (one carrying permissions). */
  certificate?: string;
  timeoutMs?: number;
}

export function connectUpstream(o: UpstreamOptions): Promise<ssh2.Client> {
  const { config, lease, login } = o;
  const u = config.upstream;
  const knownHosts = u.known_hosts === undefined ? null : readFileSync(u.known_hosts, 'utf8');
  let hostKeyProblem: string | null = null;
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    const fail = (e: Error): void => {
      client.end();
      if (hostKeyProblem !== null) reject(new AirlockError('AIRLOCK_UPSTREAM_AUTH', hostKeyProblem, { fatal: true }));
      else if (/authentication methods failed/i.test(e.message)) reject(new AirlockError('AIRLOCK_UPSTREAM_AUTH', `airlock could not log in to ${config.name} as ${login}`, { fatal: true }));
      else reject(new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `the upstream of connection "${config.name}" could not be reached`, { fatal: true }));
    };
    client.once('ready', () => {
      // ssh2 leaves Nagle on: small packets (SFTP requests, window adjusts) would wait for ACKs.
      client.setNoDelay(true);
      client.removeListener('error', fail);
      client.on('error', () => undefined);
      resolve(client);
    });
    client.once('error', fail);
    const cred = config.credentials;
    const secret = lease.secret.reveal();
    const auth =
      cred.type === 'ssh-certificate'
        ? [{ type: 'publickey', username: login, key: certifiedKey(secret, o.certificate ?? lease.certificate ?? '') }]
        : cred.private_key !== undefined
          ? [{ type: 'publickey', username: login, key: secret }] // decrypted by the lease broker
          : [{ type: 'password', username: login, password: secret }];
    client.connect({
      host: u.host,
      port: u.port,
      username: login,
      authHandler: auth as never,
      readyTimeout: o.timeoutMs ?? 20_000,
      keepaliveInterval: 30_000,
      hostVerifier: (key: Buffer) => {
        const fp = fingerprintOf(key);
        const pinned = u.host_key_fingerprint;
        const ok = pinned !== undefined ? pinned.replace(/=+$/, '') === fp : knownHosts !== null && knownHostsAccepts(knownHosts, u.host, u.port, key);
        if (!ok) hostKeyProblem = `the host key of ${config.name} (${fp}) does not match the configured ${pinned !== undefined ? 'fingerprint' : 'known_hosts'}: refusing to connect`;
        return ok;
      },
    });
  });
}
