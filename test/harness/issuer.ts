/** A test OIDC issuer: its own key pair, a JWKS file on disk, and tokens with any claims. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose';

export interface TestIssuer {
  issuer: string;
  audience: string;
  jwksFile: string;
  publicJwk: JWK;
  /** A token for sub with groups; override any claim or header. */
  token(claims?: JWTPayload & { groups?: string[] }, opts?: { ttlSeconds?: number; kid?: string; alg?: string; key?: CryptoKey; notBefore?: number }): Promise<string>;
}

export async function createTestIssuer(issuer = 'https://idp.test.invalid', audience = 'airlock'): Promise<TestIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };
  const dir = mkdtempSync(join(tmpdir(), 'airlock-issuer-'));
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [publicJwk] }));
  return {
    issuer,
    audience,
    jwksFile,
    publicJwk,
    async token(claims = {}, opts = {}) {
      const now = Math.floor(Date.now() / 1000);
      const jwt = new SignJWT({ groups: ['dba'], ...claims })
        .setProtectedHeader({ alg: opts.alg ?? 'RS256', kid: opts.kid ?? 'test-key-1', typ: 'JWT' })
        .setIssuedAt(now);
      if (claims.iss === undefined) jwt.setIssuer(issuer);
      if (claims.aud === undefined) jwt.setAudience(audience);
      if (claims.sub === undefined) jwt.setSubject('alice');
      if (claims.exp === undefined) jwt.setExpirationTime(now + (opts.ttlSeconds ?? 600));
      if (opts.notBefore !== undefined) jwt.setNotBefore(opts.notBefore);
      return jwt.sign(opts.key ?? privateKey);
    },
  };
}
