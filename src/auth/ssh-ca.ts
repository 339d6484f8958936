/**
 * airlock's SSH user CA for callers: `airlock ssh-cert` / POST /v1/ssh/cert sign a caller's
 * own public key for a short TTL, with the identity in a signed extension; the SSH listener
 * then accepts plain `ssh` with that certificate. The CA key comes from `ssh_ca.key` (a
 * secret reference) or is generated once into state_dir.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import sshpk from 'sshpk';
import type { Config } from '../config/index.js';
import type { SecretResolver } from '../secrets/index.js';
import type { Identity } from '../core/types.js';
import { AirlockError } from '../util/errors.js';
import { generateEd25519, parsePrivateKey, signUserCertificate, verifyCallerCertificate, type CallerCertificate } from './ssh-certs.js';

export class SshCa {
  private constructor(
    private readonly key: sshpk.PrivateKey,
    private readonly limits: { defaultTtlMs: number; maxTtlMs: number },
  ) {}

  static async load(config: Config, secrets: SecretResolver): Promise<SshCa> {
    let text: string;
    if (config.ssh_ca.key !== undefined) text = (await secrets.resolve(config.ssh_ca.key)).reveal();
    else {
      const file = join(config.state_dir, 'ssh-user-ca');
      if (!existsSync(file)) {
        mkdirSync(config.state_dir, { recursive: true, mode: 0o700 });
        try {
          writeFileSync(file, generateEd25519().privateKey, { mode: 0o600, flag: 'wx' });
        } catch {
          // made by another process first
        }
      }
      text = readFileSync(file, 'utf8');
    }
    return new SshCa(parsePrivateKey(text, 'the SSH CA key'), { defaultTtlMs: config.ssh_ca.default_ttl, maxTtlMs: config.ssh_ca.max_ttl });
  }

  /** The CA's public key as an OpenSSH line (for a TrustedUserCAKeys file, if a target should trust callers directly). */
  publicKeyLine(): string {
    return this.key.toPublic().toString('ssh');
  }

  /** Signs a caller's public key: principal and key id name the subject; valid from a minute ago, never past the token. */
  issue(identity: Identity, publicKeyText: string, ttlMs?: number): { certificate: string; validUntil: Date; keyId: string } {
    let subjectKey: sshpk.Key;
    try {
      subjectKey = sshpk.parseKey(publicKeyText.trim(), 'ssh');
    } catch {
      throw new AirlockError('AIRLOCK_PROTOCOL', 'public_key must be an OpenSSH public key line (ssh-ed25519 AAAA… or ecdsa/rsa)');
    }
    if (subjectKey.type === 'rsa' && subjectKey.size < 2048) throw new AirlockError('AIRLOCK_PROTOCOL', 'RSA keys under 2048 bits are refused');
    const ttl = Math.min(ttlMs ?? this.limits.defaultTtlMs, this.limits.maxTtlMs);
    const validUntil = new Date(Math.min(Date.now() + ttl, identity.expiresAt));
    const keyId = `airlock:${identity.subject}`;
    const cert = signUserCertificate({
      ca: this.key,
      subjectKey,
      principals: [identity.subject],
      keyId,
      validFrom: new Date(Date.now() - 60_000),
      validUntil,
      permissions: ['permit-pty', 'permit-port-forwarding'],
      identity,
      serial: randomBytes(8),
    });
    return { certificate: `${cert.toString('openssh').split(' ').slice(0, 2).join(' ')} ${keyId}`, validUntil, keyId };
  }

  verify(blob: Buffer): CallerCertificate {
    return verifyCallerCertificate(blob, this.key.toPublic());
  }
}
