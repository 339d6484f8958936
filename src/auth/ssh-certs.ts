/**
 * OpenSSH user certificates (PROTOCOL.certkeys), signed with sshpk by an Ed25519 CA
 * (an RSA CA would sign with SHA-1, which sshd refuses). Used twice: airlock's own user CA
 * signs callers' keys (the identity rides in a signed extension), and per-session upstream
 * leases get a fresh key with a certificate for the login.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import sshpk from 'sshpk';
import ssh2 from 'ssh2';
import { AirlockError } from '../util/errors.js';
import type { Identity, IdentityKind } from '../core/types.js';

/** Non-critical extension carrying the caller's identity in certificates airlock's CA signs. */
export const IDENTITY_EXTENSION = 'identity@airlock';

export interface CertRequest {
  ca: sshpk.PrivateKey;
  subjectKey: sshpk.Key;
  principals: string[];
  keyId: string;
  validFrom: Date;
  validUntil: Date;
  /** e.g. permit-pty, permit-port-forwarding (sorted here; OpenSSH requires it). */
  permissions: string[];
  identity?: Identity;
  serial?: Buffer;
}

/** A key blob's fingerprint as `ssh-keygen -l` prints it (SHA256:base64, no padding). */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

export function parsePrivateKey(text: string, what: string): sshpk.PrivateKey {
  try {
    return sshpk.parsePrivateKey(text, 'auto');
  } catch {
    throw new AirlockError('AIRLOCK_CONFIG_INVALID', `${what} is not a private key airlock can read (OpenSSH or PEM)`);
  }
}

/** A fresh Ed25519 key: the private key in OpenSSH format (what ssh2 reads) and its sshpk public key. */
export function generateEd25519(): { privateKey: string; publicKey: sshpk.Key } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const key = sshpk.parsePrivateKey(pem, 'pem');
  return { privateKey: key.toString('ssh'), publicKey: key.toPublic() };
}

export function signUserCertificate(r: CertRequest): sshpk.Certificate {
  if (r.ca.type !== 'ed25519') throw new AirlockError('AIRLOCK_CONFIG_INVALID', 'the SSH CA key must be Ed25519 (sshd refuses SHA-1 signatures from an RSA CA)');
  const subjects = r.principals.map((p) => sshpk.identityForUser(p));
  const cert = sshpk.createCertificate(subjects, r.subjectKey, sshpk.identityForUser('airlock'), r.ca, {
    validFrom: r.validFrom,
    validUntil: r.validUntil,
    ...(r.serial === undefined ? {} : { serial: r.serial }),
  });
  const exts: Array<{ critical: boolean; name: string; data: Buffer }> = [...new Set(r.permissions)].sort().map((name) => ({ critical: false, name, data: Buffer.alloc(0) }));
  if (r.identity !== undefined) {
    const claims = { sub: r.identity.subject, iss: r.identity.issuer, groups: r.identity.groups, kind: r.identity.kind };
    exts.push({ critical: false, name: IDENTITY_EXTENSION, data: sshString(JSON.stringify(claims)) });
    exts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  const sigs = cert.signatures as { openssh?: { keyId?: string; exts?: unknown; nonce?: Buffer; signature?: unknown } };
  sigs.openssh = { keyId: r.keyId, exts };
  cert.signWith(r.ca);
  return cert;
}

function sshString(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const out = Buffer.alloc(4 + b.length);
  out.writeUInt32BE(b.length, 0);
  b.copy(out, 4);
  return out;
}

function readSshString(b: Buffer): string | null {
  if (b.length < 4) return null;
  const n = b.readUInt32BE(0);
  return b.length === 4 + n ? b.subarray(4).toString('utf8') : null;
}

/** The certificate's signature (the last field) is the CA's, over every byte before it. */
function signedBy(blob: Buffer, cert: sshpk.Certificate, ca: sshpk.Key): boolean {
  const issuer = (cert as unknown as { issuerKey?: sshpk.Key }).issuerKey;
  if (issuer === undefined || !ca.fingerprint('sha256').matches(issuer)) return false;
  const sig = (cert.signatures as { openssh?: { signature?: { toBuffer(f: string): Buffer } } }).openssh?.signature;
  if (sig === undefined) return false;
  const sigBuf = sig.toBuffer('ssh');
  const at = blob.length - 4 - sigBuf.length;
  if (at <= 0 || blob.readUInt32BE(at) !== sigBuf.length || !blob.subarray(at + 4).equals(sigBuf)) return false;
  const key = ssh2.utils.parseKey(ca.toString('ssh'));
  if (key instanceof Error || Array.isArray(key)) return false;
  // sigBuf is `string algo, string signature`.
  const nameLen = sigBuf.readUInt32BE(0);
  const raw = sigBuf.subarray(4 + nameLen + 4);
  return key.verify(blob.subarray(0, at), raw) === true;
}

export interface CallerCertificate {
  identity: Identity;
  principals: string[];
  keyId: string;
  subjectKey: sshpk.Key;
}

/**
 * A certificate a caller presents: signed by airlock's CA, inside its validity, a user
 * certificate with airlock's identity extension. Throws AIRLOCK_AUTH_* otherwise.
 */
export function verifyCallerCertificate(blob: Buffer, ca: sshpk.Key, now = new Date()): CallerCertificate {
  let cert: sshpk.Certificate;
  try {
    // sshpk reads the one-line text form: the blob's first string names its type.
    const typeLen = blob.readUInt32BE(0);
    const type = blob.toString('ascii', 4, 4 + typeLen);
    cert = sshpk.parseCertificate(`${type} ${blob.toString('base64')}`, 'openssh');
  } catch {
    throw new AirlockError('AIRLOCK_AUTH_INVALID');
  }
  // sshpk's isSignedByKey only compares the key the certificate names as its signer; the
  // signature itself is checked here, over the bytes before it, with our CA's key.
  if (!signedBy(blob, cert, ca)) throw new AirlockError('AIRLOCK_AUTH_SIGNATURE');
  if (now.getTime() < cert.validFrom.getTime()) throw new AirlockError('AIRLOCK_AUTH_NOT_YET_VALID');
  if (now.getTime() >= cert.validUntil.getTime()) throw new AirlockError('AIRLOCK_AUTH_EXPIRED');
  const sig = (cert.signatures as { openssh?: { keyId?: string; exts?: Array<{ critical: boolean; name: string; data: Buffer }> } }).openssh;
  const exts = sig?.exts ?? [];
  if (exts.some((e) => e.critical)) throw new AirlockError('AIRLOCK_AUTH_INVALID');
  const ext = exts.find((e) => e.name === IDENTITY_EXTENSION);
  const json = ext === undefined ? null : readSshString(ext.data);
  if (json === null) throw new AirlockError('AIRLOCK_AUTH_INVALID');
  let claims: { sub?: unknown; iss?: unknown; groups?: unknown; kind?: unknown };
  try {
    claims = JSON.parse(json) as typeof claims;
  } catch {
    throw new AirlockError('AIRLOCK_AUTH_INVALID');
  }
  const kinds: IdentityKind[] = ['human', 'machine', 'agent'];
  if (typeof claims.sub !== 'string' || !Array.isArray(claims.groups) || !claims.groups.every((g) => typeof g === 'string')) throw new AirlockError('AIRLOCK_AUTH_INVALID');
  const identity: Identity = {
    subject: claims.sub,
    issuer: typeof claims.iss === 'string' ? claims.iss : 'airlock',
    groups: claims.groups as string[],
    kind: kinds.includes(claims.kind as IdentityKind) ? (claims.kind as IdentityKind) : 'human',
    expiresAt: cert.validUntil.getTime(),
  };
  return {
    identity,
    principals: cert.subjects.map((s) => s.uid ?? '').filter((s) => s !== ''),
    keyId: sig?.keyId ?? '',
    subjectKey: cert.subjectKey,
  };
}
