/**
 * The checkpoint key: Ed25519. Either `audit.signing_key` (a secret reference, the same on every
 * node of a fleet) or, when that is not set, one generated per node into
 * `state_dir/audit-signing.key` (0600, PKCS#8 PEM). Its public half is written beside the log
 * either way (`audit-signing.pub`, SPKI PEM). The chain alone can be rewritten end to end by
 * anyone who can write the files; a signed checkpoint cannot be forged without the key, and
 * `verify` needs only the public half (see verify-keys.ts for where verify gets it from).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AirlockError } from '../util/errors.js';
import type { SecretResolver } from '../secrets/index.js';

export function publicKeyPath(keyFile: string): string {
  return keyFile.endsWith('.key') ? `${keyFile.slice(0, -4)}.pub` : `${keyFile}.pub`;
}

/** Where a public key that `audit-signing.pub` held before a key change is kept, so older checkpoints still verify. */
export function retiredPublicKeyPath(keyFile: string, id: string): string {
  const pub = publicKeyPath(keyFile);
  return `${pub.slice(0, -4)}.${id}.pub`;
}

/** First 16 hex digits of the SHA-256 of the public key's SPKI DER: what each checkpoint names as `key`. A private key is named by its public half. */
export function keyId(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

export interface CheckpointSigner {
  keyId: string;
  sign(head: string): string;
}

/**
 * `audit.signing_key`'s resolved text: an Ed25519 private key as PKCS#8 PEM (or a JWK with "d").
 * Errors name the setting and what was wrong, never a byte of the text.
 */
export function checkpointKeyFromText(text: string, setting = 'audit.signing_key'): KeyObject {
  const bad = (what: string): AirlockError => new AirlockError('AIRLOCK_CONFIG_INVALID', `${setting}: ${what}; expected an Ed25519 private key as PKCS#8 PEM ("airlock audit keygen" makes one)`);
  const trimmed = text.trim();
  let key: KeyObject;
  try {
    if (trimmed.startsWith('{')) key = createPrivateKey({ key: JSON.parse(trimmed) as JsonWebKey, format: 'jwk' });
    else key = createPrivateKey(trimmed);
  } catch {
    if (/-----BEGIN [A-Z ]*PUBLIC KEY-----/.test(trimmed)) throw bad('this is a public key');
    if (trimmed.includes('ENCRYPTED')) throw bad('the key is encrypted (a passphrase cannot be given)');
    throw bad('not a private key');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw bad(`this is a ${key.asymmetricKeyType ?? 'non-asymmetric'} key`);
  return key;
}

/** Resolves `audit.signing_key` now (at start), so a bad one stops the daemon with a clear error. */
export async function loadCheckpointKey(ref: string, secrets: SecretResolver): Promise<KeyObject> {
  let text: string;
  try {
    text = (await secrets.resolve(ref)).reveal();
  } catch (e) {
    // The resolver's messages name the reference (a file, a variable), never its value.
    throw new AirlockError('AIRLOCK_CONFIG_INVALID', `audit.signing_key: ${e instanceof Error ? e.message : 'cannot be resolved'}`);
  }
  return checkpointKeyFromText(text);
}

/** A fresh key pair for `airlock audit keygen`: the private key (PKCS#8 PEM), its public half (SPKI PEM), and its id. */
export function generateCheckpointKey(): { privatePem: string; publicPem: string; keyId: string } {
  const pair = generateKeyPairSync('ed25519');
  return {
    privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyId(pair.publicKey),
  };
}

async function loadOrCreateKeyFile(keyFile: string): Promise<KeyObject> {
  try {
    return createPrivateKey(await readFile(keyFile, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(dirname(keyFile), { recursive: true });
  const pair = generateKeyPairSync('ed25519');
  try {
    // 'wx': never overwrite a key another process created meanwhile; use that one.
    await writeFile(keyFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    return pair.privateKey;
  } catch (w) {
    if ((w as NodeJS.ErrnoException).code !== 'EEXIST') throw w;
    return createPrivateKey(await readFile(keyFile, 'utf8'));
  }
}

/**
 * Writes the public half beside the log. When the file held another key (the node switched to
 * audit.signing_key, or back), that key is kept as `audit-signing.<id>.pub` first: the
 * checkpoints it signed stay verifiable.
 */
async function writePublicKey(keyFile: string, publicKey: KeyObject): Promise<void> {
  const path = publicKeyPath(keyFile);
  const id = keyId(publicKey);
  let previous: string | null = null;
  try {
    previous = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (previous !== null) {
    let oldId: string | null = null;
    try {
      oldId = keyId(createPublicKey(previous));
    } catch {
      // Not a key: nothing worth keeping.
    }
    if (oldId !== null && oldId !== id) await writeFile(retiredPublicKeyPath(keyFile, oldId), previous, { mode: 0o644 });
  }
  // Rewritten each time so a lost .pub file comes back; it is public.
  await writeFile(path, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
}

/** The signer for the writer thread: `configured` (audit.signing_key) when given, else the per-node key in `keyFile`. */
export async function loadOrCreateSigner(keyFile: string, configured: KeyObject | null = null): Promise<CheckpointSigner> {
  const privateKey = configured ?? (await loadOrCreateKeyFile(keyFile));
  const publicKey = createPublicKey(privateKey);
  await mkdir(dirname(keyFile), { recursive: true });
  await writePublicKey(keyFile, publicKey);
  const id = keyId(publicKey);
  return {
    keyId: id,
    sign: (head) => sign(null, Buffer.from(head, 'utf8'), privateKey).toString('base64'),
  };
}

/** `state_dir/audit-signing.key` for an audit directory `state_dir/audit`. */
export function defaultKeyFile(auditDir: string): string {
  return join(dirname(auditDir), 'audit-signing.key');
}
