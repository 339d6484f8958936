/**
 * The checkpoint key: Ed25519, generated once into `state_dir/audit-signing.key` (0600,
 * PKCS#8 PEM) with its public key beside it (`audit-signing.pub`, SPKI PEM). The chain
 * alone can be rewritten end to end by anyone who can write the files; a signed
 * checkpoint cannot be forged without the key, and `verify` needs only the public half.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export function publicKeyPath(keyFile: string): string {
  return keyFile.endsWith('.key') ? `${keyFile.slice(0, -4)}.pub` : `${keyFile}.pub`;
}

export function keyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

export interface CheckpointSigner {
  keyId: string;
  sign(head: string): string;
}

export async function loadOrCreateSigner(keyFile: string): Promise<CheckpointSigner> {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(await readFile(keyFile, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await mkdir(dirname(keyFile), { recursive: true });
    const pair = generateKeyPairSync('ed25519');
    privateKey = pair.privateKey;
    try {
      // 'wx': never overwrite a key another process created meanwhile; use that one.
      await writeFile(keyFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    } catch (w) {
      if ((w as NodeJS.ErrnoException).code !== 'EEXIST') throw w;
      privateKey = createPrivateKey(await readFile(keyFile, 'utf8'));
    }
  }
  const publicKey = createPublicKey(privateKey);
  // Rewritten each time so a lost .pub file comes back; it is public.
  await writeFile(publicKeyPath(keyFile), publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
  const id = keyId(publicKey);
  return {
    keyId: id,
    sign: (head) => sign(null, Buffer.from(head, 'utf8'), privateKey).toString('base64'),
  };
}

export interface CheckpointVerifier {
  keyId: string;
  verify(head: string, sig: string): boolean;
}

export async function loadVerifier(keyFile: string): Promise<CheckpointVerifier | null> {
  let pem: string;
  try {
    pem = await readFile(publicKeyPath(keyFile), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const publicKey = createPublicKey(pem);
  return {
    keyId: keyId(publicKey),
    verify: (head, sig) => verify(null, Buffer.from(head, 'utf8'), publicKey, Buffer.from(sig, 'base64')),
  };
}
