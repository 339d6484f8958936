import { describe, expect, it, beforeAll } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHmac, createPublicKey } from 'node:crypto';
import { generateKeyPair } from 'jose';
import { type Config } from '../../src/config/index.js';
import { validateConfig } from '../../app/config.js';
import { TokenVerifier, mintDevToken } from '../../src/auth/verifier.js';
import { AirlockError } from '../../src/util/errors.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';

let issuer: TestIssuer;
let verifier: TokenVerifier;
let config: Config;

function b64url(s: string | Buffer): string {
  return Buffer.from(s).toString('base64url');
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (e) {
    return e instanceof AirlockError ? e.code : `thrown:${String(e)}`;
  }
}

beforeAll(async () => {
  issuer = await createTestIssuer();
  const r = validateConfig({
    state_dir: mkdtempSync(join(tmpdir(), 'airlock-auth-')),
    auth: { dev_issuer: true, issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile, groups_claim: 'groups' }] },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  config = r.config;
  verifier = await TokenVerifier.create(config);
});

describe('token verification', () => {
  it('accepts a valid token and reads subject, groups and expiry', async () => {
    const id = await verifier.verify(await issuer.token({ sub: 'alice', groups: ['dba', 'ci'] }));
    expect(id.subject).toBe('alice');
    expect(id.groups).toEqual(['dba', 'ci']);
    expect(id.issuer).toBe(issuer.issuer);
    expect(id.kind).toBe('human');
    expect(id.expiresAt).toBeGreaterThan(Date.now());
  });

  it('reads groups from a nested dot path and a space-separated string', async () => {
    const r = validateConfig({
      state_dir: config.state_dir,
      auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile, groups_claim: 'realm.roles' }] },
    });
    if (!r.ok) throw new Error('config');
    const v = await TokenVerifier.create(r.config);
    expect((await v.verify(await issuer.token({ realm: { roles: 'a b' } }))).groups).toEqual(['a', 'b']);
  });

  const cases: Array<[string, () => Promise<string>, string]> = [
    ['garbage', async () => 'not-a-token', 'AIRLOCK_AUTH_INVALID'],
    ['empty', async () => '', 'AIRLOCK_AUTH_MISSING'],
    ['three dots of junk', async () => 'a.b.c', 'AIRLOCK_AUTH_INVALID'],
    ['alg none', async () => `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify({ iss: issuer.issuer, aud: 'airlock', sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 600 }))}.`, 'AIRLOCK_AUTH_SIGNATURE'],
    ['HS256 signed with the public key', async () => {
      const pem = createPublicKey({ key: issuer.publicJwk as import('node:crypto').JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'test-key-1' }));
      const body = b64url(JSON.stringify({ iss: issuer.issuer, aud: 'airlock', sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 600 }));
      const sig = createHmac('sha256', pem).update(`${head}.${body}`).digest('base64url');
      return `${head}.${body}.${sig}`;
    }, 'AIRLOCK_AUTH_SIGNATURE'],
    ['expired', async () => issuer.token({ exp: Math.floor(Date.now() / 1000) - 120 }), 'AIRLOCK_AUTH_EXPIRED'],
    ['not yet valid', async () => issuer.token({}, { notBefore: Math.floor(Date.now() / 1000) + 600 }), 'AIRLOCK_AUTH_NOT_YET_VALID'],
    ['wrong issuer', async () => issuer.token({ iss: 'https://evil.invalid' }), 'AIRLOCK_AUTH_ISSUER'],
    ['wrong audience', async () => issuer.token({ aud: 'someone-else' }), 'AIRLOCK_AUTH_AUDIENCE'],
    ['unknown key id', async () => issuer.token({}, { kid: 'nope' }), 'AIRLOCK_AUTH_SIGNATURE'],
    ['signed by another key with our kid', async () => {
      const { privateKey } = await generateKeyPair('RS256');
      return issuer.token({}, { key: privateKey });
    }, 'AIRLOCK_AUTH_SIGNATURE'],
    ['tampered claims', async () => {
      const t = await issuer.token({ groups: ['dev'] });
      const [h, , s] = t.split('.');
      const body = b64url(JSON.stringify({ iss: issuer.issuer, aud: 'airlock', sub: 'alice', groups: ['dba'], exp: Math.floor(Date.now() / 1000) + 600 }));
      return `${h}.${body}.${s}`;
    }, 'AIRLOCK_AUTH_SIGNATURE'],
    ['an empty subject', async () => issuer.token({ sub: '' }), 'AIRLOCK_AUTH_INVALID'],
    ['a 1 MB password', async () => 'x'.repeat(1024 * 1024), 'AIRLOCK_AUTH_INVALID'],
  ];
  for (const [name, make, code] of cases) {
    it(`refuses ${name}`, async () => {
      expect(await codeOf(verifier.verify(await make()))).toBe(code);
    });
  }

  it('never puts the token into the error message', async () => {
    const t = await issuer.token({ aud: 'someone-else' });
    const e = await verifier.verify(t).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AirlockError);
    expect(JSON.stringify(e)).not.toContain(t.slice(0, 40));
    expect((e as Error).message).toBe('the token has the wrong audience');
  });

  it('mints dev tokens only when the dev issuer is on, and verifies them', async () => {
    const t = await mintDevToken(config, 'bob', ['agents'], 'agent', 60_000);
    const id = await verifier.verify(t);
    expect(id).toMatchObject({ subject: 'bob', groups: ['agents'], kind: 'agent', issuer: 'airlock-dev' });
    const off = validateConfig({ state_dir: config.state_dir });
    if (!off.ok) throw new Error('config');
    expect(await codeOf(mintDevToken(off.config, 'bob', [], 'human', 60_000))).toBe('AIRLOCK_FORBIDDEN');
    // A daemon without the dev issuer does not trust dev tokens even with the key on disk.
    const v2 = await TokenVerifier.create(off.config);
    expect(await codeOf(v2.verify(t))).toBe('AIRLOCK_AUTH_ISSUER');
  });

  it('issues short gateway tokens bounded by the caller token expiry', async () => {
    const id = await verifier.verify(await issuer.token({ sub: 'carol', groups: ['ci'] }, { ttlSeconds: 120 }));
    const short = await verifier.issueGatewayToken(id, 3_600_000);
    expect(short.length).toBeLessThan(1023);
    const again = await verifier.verify(short);
    expect(again).toMatchObject({ subject: 'carol', groups: ['ci'], issuer: 'airlock' });
    expect(again.expiresAt).toBeLessThanOrEqual(id.expiresAt);
  });
});
