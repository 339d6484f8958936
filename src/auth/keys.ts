import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type JWK, type CryptoKey } from 'jose';

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
