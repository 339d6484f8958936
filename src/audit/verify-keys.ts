/**
 * The public keys `airlock audit verify` checks checkpoint signatures against; each checkpoint
 * names its key by id (signing.ts keyId), and is checked with that key.
 *
 * Beside the log (the default): `audit-signing.pub` and the keys it held before a key change
 * (`audit-signing.<id>.pub`). They sit where the log sits, so whoever can rewrite the log can
 * rewrite them with a key of their own: they prove the log is consistent, not who wrote it.
 *
 * Pinned (`--public-key FILE`, repeatable; a file may hold several keys): keys the verifier holds
 * apart from the log. Every checkpoint must be signed by one of them, which proves the records up
 * to the last checkpoint were written by a holder of the private key. Several keys: a rotation,
 * the old key for older checkpoints and the new one for newer.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { AirlockError } from '../util/errors.js';
import { keyId, publicKeyPath } from './signing.js';

export interface CheckpointKeys {
  /** True when the keys came from the verifier, not from beside the log. */
  pinned: boolean;
  /** Where they came from, for messages. */
  source: string;
  ids: string[];
  /** null: none of these keys has this id. */
  verify(keyId: string, head: string, sig: string): boolean | null;
}

function keyring(keys: KeyObject[], pinned: boolean, source: string): CheckpointKeys {
  const byId = new Map(keys.map((k) => [keyId(k), k]));
  return {
    pinned,
    source,
    ids: [...byId.keys()],
    verify: (id, head, sig) => {
      const key = byId.get(id);
      if (key === undefined) return null;
      return verify(null, Buffer.from(head, 'utf8'), key, Buffer.from(sig, 'base64'));
    },
  };
}

async function readIfThere(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** `audit-signing.pub` beside the log and the retired ones beside it; null when there is no current one. */
export async function keysBesideLog(keyFile: string): Promise<CheckpointKeys | null> {
  const current = publicKeyPath(keyFile);
  const pem = await readIfThere(current);
  if (pem === null) return null;
  const keys = [createPublicKey(pem)];
  const retired = new RegExp(`^${basename(current).slice(0, -4).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.[0-9a-f]{16}\\.pub$`);
  for (const name of (await readdir(dirname(current))).filter((n) => retired.test(n)).sort()) {
    const text = await readIfThere(join(dirname(current), name));
    if (text === null) continue;
    try {
      keys.push(createPublicKey(text));
    } catch {
      // Not a key: it vouches for nothing.
    }
  }
  return keyring(keys, false, current);
}

const PUBLIC_PEM = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g;

/** `--public-key FILE…`: every SPKI PEM public key in the files; a private key or anything not Ed25519 is refused. */
export async function pinnedKeys(files: string[]): Promise<CheckpointKeys> {
  const keys: KeyObject[] = [];
  for (const file of files) {
    const bad = (what: string): AirlockError => new AirlockError('AIRLOCK_CONFIG_INVALID', `--public-key ${file}: ${what}`);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw bad(`cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    // Never echo it: a private key handed here by mistake must not reach a terminal or a CI log.
    if (/PRIVATE KEY/.test(text)) throw bad('holds a private key; give its public half (the .pub file "airlock audit keygen" wrote)');
    const blocks = text.match(PUBLIC_PEM) ?? [];
    if (blocks.length === 0) throw bad('no PEM public key (-----BEGIN PUBLIC KEY-----) in it');
    for (const block of blocks) {
      let key: KeyObject;
      try {
        key = createPublicKey(block);
      } catch {
        throw bad('a public key in it cannot be read');
      }
      if (key.asymmetricKeyType !== 'ed25519') throw bad(`holds a ${key.asymmetricKeyType ?? 'non-asymmetric'} key; checkpoints are signed with Ed25519`);
      keys.push(key);
    }
  }
  if (keys.length === 0) throw new AirlockError('AIRLOCK_CONFIG_INVALID', '--public-key: no file given');
  return keyring(keys, true, files.join(', '));
}
