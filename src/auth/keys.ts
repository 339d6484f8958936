import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, importPKCS8, type JWK, type CryptoKey } from 'jose';
import { AirlockError } from '../util/errors.js';
import type { SecretResolver } from '../secrets/index.js';

export interface SigningKey {
  kid: string;
  alg: 'EdDSA';
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/**
 * A signing key kept in state_dir (mode 0600), made once and reused. Ed25519 keeps
 * tokens short — short enough for an ssh password prompt.
 */
export async function loadOrCreateSigningKey(stateDir: string, name: string): Promise<SigningKey> {
  const file = join(stateDir, `${name}.jwk`);
  let jwk: JWK;
  if (existsSync(file)) {
    jwk = JSON.parse(readFileSync(file, 'utf8')) as JWK;
  } else {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    jwk = { ...(await exportJWK(privateKey)), kid: randomBytes(8).toString('hex'), alg: 'EdDSA' };
    writeFileSync(file, JSON.stringify(jwk), { mode: 0o600, flag: 'wx' });
  }
  const privateKey = (await importJWK(jwk, 'EdDSA')) as CryptoKey;
  const { d: _d, ...publicJwk } = jwk;
  return { kid: jwk.kid ?? 'dev', alg: 'EdDSA', privateKey, publicJwk: { ...publicJwk, use: 'sig' } };
}

/**
 * A configured signing key (auth.token_signing_key / auth.dev_issuer_key): the resolved text is an
 * Ed25519 private key as a JWK (OKP, crv Ed25519, with d) or a PKCS#8 PEM. Its kid is the JWK's own
 * kid, else the RFC 7638 thumbprint of the public key, so every node holding the same key names it
 * alike. Errors name the setting, never the key.
 */
export async function signingKeyFromText(text: string, setting: string): Promise<SigningKey> {
  const bad = (): AirlockError => new AirlockError('AIRLOCK_CONFIG_INVALID', `${setting}: expected an Ed25519 private key (a JWK with "d", or a PKCS#8 PEM)`);
  let jwk: JWK;
  try {
    const trimmed = text.trim();
    if (trimmed.startsWith('-----BEGIN')) {
      const key = await importPKCS8(trimmed, 'EdDSA', { extractable: true });
      jwk = await exportJWK(key);
    } else {
      jwk = JSON.parse(trimmed) as JWK;
    }
  } catch {
    throw bad();
  }
  if (typeof jwk !== 'object' || jwk === null || jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string' || typeof jwk.x !== 'string') throw bad();
  let privateKey: CryptoKey;
  try {
    privateKey = (await importJWK({ kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d }, 'EdDSA')) as CryptoKey;
  } catch {
    throw bad();
  }
  const publicOnly: JWK = { kty: 'OKP', crv: 'Ed25519', x: jwk.x };
  const kid = typeof jwk.kid === 'string' && jwk.kid !== '' ? jwk.kid : await calculateJwkThumbprint(publicOnly);
  return { kid, alg: 'EdDSA', privateKey, publicJwk: { ...publicOnly, kid, alg: 'EdDSA', use: 'sig' } };
}

/** The configured key when `ref` is set (a secret reference, resolved now), else the per-node key in state_dir. */
export async function loadSigningKey(
  stateDir: string,
  name: string,
  ref: string | undefined,
  setting: string,
  secrets: SecretResolver,
): Promise<SigningKey> {
  if (ref === undefined) return loadOrCreateSigningKey(stateDir, name);
  return signingKeyFromText((await secrets.resolve(ref)).reveal(), setting);
}
