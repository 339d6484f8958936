/**
 * `credentials.type: ssh-certificate` for SSH connections: per session a fresh Ed25519 key
 * and a certificate from the configured CA for the requested login (principal = login, key
 * id `airlock:<subject>:<session>` so the target's sshd log names the person), valid from a
 * minute ago to the TTL. The target trusts the CA with one TrustedUserCAKeys line; nobody
 * holds a key to it. `type: static` holds a private key (or a password) instead.
 *
 * The session's certificate permits nothing beyond running commands: no pty, no port,
 * agent or X11 forwarding, no ~/.ssh/rc. The SSH gateway asks `certify` for a second
 * certificate of the same key with `permit-pty` (or `permit-port-forwarding`) only once
 * policy allowed a channel that needs it, so the target's own sshd refuses what airlock's
 * reading of a command might miss.
 */
import { randomBytes } from 'node:crypto';
import sshpk from 'sshpk';
import type { Lease } from '../core/session-types.js';
import { Secret, type SecretResolver } from '../secrets/index.js';
import { AirlockError } from '../util/errors.js';
import { generateEd25519, parsePrivateKey, signUserCertificate } from '../auth/ssh-certs.js';
import type { LeaseBroker, LeaseRequest } from './lease.js';

export const SSH_PERMISSIONS = ['permit-pty', 'permit-port-forwarding', 'permit-agent-forwarding', 'permit-X11-forwarding', 'permit-user-rc'] as const;
export type SshPermission = (typeof SSH_PERMISSIONS)[number];

export class SshCertificateLeases implements LeaseBroker {
  constructor(
    private readonly resolver: SecretResolver,
    private readonly caKeyRef: string,
    private readonly ttlMs: number,
  ) {}

  async acquire(r: LeaseRequest): Promise<Lease> {
    if (r.login === undefined || r.login === '') throw new AirlockError('AIRLOCK_FORBIDDEN', 'no login was requested');
    const login = r.login;
    const ca = parsePrivateKey((await this.resolver.resolve(this.caKeyRef)).reveal(), 'the upstream SSH CA key');
    const key = generateEd25519();
    const keyId = `airlock:${r.identity.subject}:${r.sessionId}`;
    const expiresAt = Math.min(Date.now() + this.ttlMs, r.identity.expiresAt);
    const sign = (permissions: readonly string[]): string => {
      const unknown = permissions.filter((p) => !(SSH_PERMISSIONS as readonly string[]).includes(p));
      if (unknown.length > 0) throw new AirlockError('AIRLOCK_INTERNAL', `not a certificate permission: ${unknown.join(', ')}`);
      return signUserCertificate({
        ca,
        subjectKey: key.publicKey,
        principals: [login],
        keyId,
        validFrom: new Date(Date.now() - 60_000),
        validUntil: new Date(expiresAt),
        permissions: [...permissions],
        serial: randomBytes(8),
      }).toString('openssh');
    };
    return { id: keyId, username: login, secret: new Secret(key.privateKey), expiresAt, certificate: sign([]), certify: async (p) => sign(p) };
  }

  async release(): Promise<void> {}
}

/** A held private key (or password) for every session. */
export class SshStaticLeases implements LeaseBroker {
  constructor(
    private readonly resolver: SecretResolver,
    private readonly privateKeyRef: string | undefined,
    private readonly passwordRef: string | undefined,
    private readonly passphraseRef?: string,
  ) {}

  async acquire(r: LeaseRequest): Promise<Lease> {
    if (r.login === undefined || r.login === '') throw new AirlockError('AIRLOCK_FORBIDDEN', 'no login was requested');
    const ref = this.privateKeyRef ?? this.passwordRef;
    if (ref === undefined) throw new AirlockError('AIRLOCK_CONFIG_INVALID', 'static ssh credentials need private_key or password');
    let secret = await this.resolver.resolve(ref);
    if (this.privateKeyRef !== undefined && this.passphraseRef !== undefined) {
      // The lease carries the key decrypted (in memory only), so the passphrase is not needed again.
      const passphrase = (await this.resolver.resolve(this.passphraseRef)).reveal();
      let key: sshpk.PrivateKey;
      try {
        key = sshpk.parsePrivateKey(secret.reveal(), 'auto', { passphrase });
      } catch {
        throw new AirlockError('AIRLOCK_CONFIG_INVALID', 'the static SSH private key could not be decrypted with its passphrase');
      }
      secret = new Secret(key.toString('ssh'));
    }
    return { id: `static-${randomBytes(6).toString('hex')}`, username: r.login, secret, expiresAt: null };
  }

  async release(): Promise<void> {}
}
