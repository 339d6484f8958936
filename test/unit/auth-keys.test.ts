import { describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { signingKeyFromText } from '../../src/auth/keys.js';
import { AirlockError } from '../../src/util/errors.js';

describe('signingKeyFromText (auth.token_signing_key)', () => {
  it('reads an Ed25519 key as PKCS#8 PEM or private JWK, and names it alike (public thumbprint) on every node', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const jwk = JSON.stringify(privateKey.export({ format: 'jwk' }));
    const [a, b] = await Promise.all([signingKeyFromText(pem, 'auth.token_signing_key'), signingKeyFromText(jwk, 'auth.token_signing_key')]);
    expect(a.kid).toBe(b.kid);
    expect(a.publicJwk).toEqual(b.publicJwk);
    expect(a.publicJwk.d).toBeUndefined();
  });

  it('refuses other keys with an error that names the setting, never the key', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const pub = JSON.stringify({ ...generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }) });
    for (const text of [rsa, pub, 'not a key at all']) {
      const err = await signingKeyFromText(text, 'auth.token_signing_key').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AirlockError);
      expect((err as AirlockError).code).toBe('AIRLOCK_CONFIG_INVALID');
      expect((err as AirlockError).message).toContain('auth.token_signing_key');
      expect((err as AirlockError).message).not.toContain(text.slice(0, 40).split('\n')[1] ?? text.slice(0, 12));
    }
  });
});
