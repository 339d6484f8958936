/**
 * Caller identity from a token: OIDC JWTs from configured issuers, the dev issuer,
 * and tokens airlock issued itself. The only place that trusts a token.
 */
import { readFileSync } from 'node:fs';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
  type JWTVerifyGetKey,
  type JSONWebKeySet,
} from 'jose';
import { AirlockError, type ErrorCode } from '../util/errors.js';
import type { Config, IssuerConfig } from '../config/index.js';
import type { Identity, IdentityKind } from '../core/types.js';
import { identityFrom } from './claims.js';
import { loadSigningKey, type SigningKey } from './keys.js';
import { SecretResolver } from '../secrets/index.js';

/** Only asymmetric algorithms: an HS256 token "signed" with a public key must never verify. */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA',
] as const;

/** Tokens longer than this are refused before any parsing. */
export const MAX_TOKEN_BYTES = 16 * 1024;

export const DEV_ISSUER = 'airlock-dev';
export const GATEWAY_ISSUER = 'airlock';
export const AIRLOCK_AUDIENCE = 'airlock';

interface TrustedIssuer {
  issuer: string;
  audience: string | string[];
  keys: JWTVerifyGetKey;
  algorithms: string[];
  groupsClaim: string;
  kindClaim: string;
  defaultKind: IdentityKind;
}

function keysFor(cfg: IssuerConfig): JWTVerifyGetKey {
  if (/^https?:\/\//.test(cfg.jwks)) {
    return createRemoteJWKSet(new URL(cfg.jwks), { cooldownDuration: 30_000, cacheMaxAge: 600_000 });
  }
  let jwks: JSONWebKeySet;
  try {
    jwks = JSON.parse(readFileSync(cfg.jwks, 'utf8')) as JSONWebKeySet;
  } catch {
    throw new AirlockError('AIRLOCK_CONFIG_INVALID', `JWKS file ${cfg.jwks} for issuer ${cfg.issuer} cannot be read`);
  }
  return createLocalJWKSet(jwks);
}

function mapJoseError(e: unknown): AirlockError {
  if (e instanceof AirlockError) return e;
  let code: ErrorCode = 'AIRLOCK_AUTH_INVALID';
  if (e instanceof joseErrors.JWTExpired) code = 'AIRLOCK_AUTH_EXPIRED';
  else if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') code = 'AIRLOCK_AUTH_AUDIENCE';
    else if (e.claim === 'iss') code = 'AIRLOCK_AUTH_ISSUER';
    else if (e.claim === 'nbf' || e.claim === 'iat') code = 'AIRLOCK_AUTH_NOT_YET_VALID';
  } else if (
    e instanceof joseErrors.JWSSignatureVerificationFailed ||
    e instanceof joseErrors.JWKSNoMatchingKey ||
    e instanceof joseErrors.JOSEAlgNotAllowed
  ) {
    code = 'AIRLOCK_AUTH_SIGNATURE';
  }
  // The message is the stable text for the code: never which claim value or key was presented.
  return new AirlockError(code, undefined, { cause: e });
}

export class TokenVerifier {
  private readonly issuers = new Map<string, TrustedIssuer>();
  private readonly clockToleranceSec: number;
  private gatewayKey: SigningKey | null = null;
  private devKey: SigningKey | null = null;

  private constructor(clockToleranceMs: number) {
    this.clockToleranceSec = Math.ceil(clockToleranceMs / 1000);
  }

  static async create(config: Config, secrets: SecretResolver = new SecretResolver()): Promise<TokenVerifier> {
    const v = new TokenVerifier(config.auth.clock_tolerance);
    for (const cfg of config.auth.issuers) {
      v.issuers.set(cfg.issuer, {
        issuer: cfg.issuer,
        audience: cfg.audience,
        keys: keysFor(cfg),
        algorithms: cfg.algorithms ?? [...ASYMMETRIC_ALGORITHMS],
        groupsClaim: cfg.groups_claim,
        kindClaim: cfg.kind_claim,
        defaultKind: cfg.default_kind,
      });
    }
    v.gatewayKey = await loadSigningKey(config.state_dir, 'gateway-token', config.auth.token_signing_key, 'auth.token_signing_key', secrets);
    v.addOwnIssuer(GATEWAY_ISSUER, v.gatewayKey);
    if (config.auth.dev_issuer) {
      v.devKey = await devIssuerKey(config, secrets);
      v.addOwnIssuer(DEV_ISSUER, v.devKey);
    }
    return v;
  }

  private addOwnIssuer(issuer: string, key: SigningKey): void {
    this.issuers.set(issuer, {
      issuer,
      audience: AIRLOCK_AUDIENCE,
      keys: createLocalJWKSet({ keys: [key.publicJwk] }),
      algorithms: ['EdDSA'],
      groupsClaim: 'groups',
      kindClaim: 'airlock_kind',
      defaultKind: 'human',
    });
  }

  /** The public keys of airlock's own issuers (JWKS endpoint). */
  publicJwks(): JSONWebKeySet {
    const keys = [this.gatewayKey, this.devKey].filter((k): k is SigningKey => k !== null).map((k) => k.publicJwk);
    return { keys };
  }

  async verify(token: string): Promise<Identity> {
    if (token.length === 0) throw new AirlockError('AIRLOCK_AUTH_MISSING');
    if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) {
      throw new AirlockError('AIRLOCK_AUTH_INVALID');
    }
    let iss: unknown;
    try {
      const header = decodeProtectedHeader(token);
      if (typeof header.alg !== 'string' || !(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(header.alg)) {
        throw new AirlockError('AIRLOCK_AUTH_SIGNATURE');
      }
      iss = decodeJwt(token).iss;
    } catch (e) {
      if (e instanceof AirlockError) throw e;
      throw new AirlockError('AIRLOCK_AUTH_INVALID');
    }
    const trusted = typeof iss === 'string' ? this.issuers.get(iss) : undefined;
    if (trusted === undefined) throw new AirlockError('AIRLOCK_AUTH_ISSUER');
    try {
      const { payload } = await jwtVerify(token, trusted.keys, {
        issuer: trusted.issuer,
        audience: trusted.audience,
        algorithms: trusted.algorithms,
        clockTolerance: this.clockToleranceSec,
        requiredClaims: ['exp', 'sub'],
      });
      return identityFrom(payload, {
        groupsClaim: trusted.groupsClaim,
        kindClaim: trusted.kindClaim,
        defaultKind: trusted.defaultKind,
      });
    } catch (e) {
      throw mapJoseError(e);
    }
  }

  /** A short airlock token for a verified identity (token exchange, ssh passwords). */
  async issueGatewayToken(identity: Identity, ttlMs: number): Promise<string> {
    if (this.gatewayKey === null) throw new AirlockError('AIRLOCK_INTERNAL', 'gateway key not loaded');
    const exp = Math.min(identity.expiresAt, Date.now() + ttlMs);
    return signToken(this.gatewayKey, GATEWAY_ISSUER, identity.subject, identity.groups, identity.kind, exp);
  }

  /**
   * A short-lived JWT for an upstream service that trusts airlock's JWKS (HTTP leases).
   * Its audience is the service's, never airlock's, so it cannot be replayed as an airlock token.
   */
  async signUpstreamJwt(claims: { identity: Identity; sessionId: string; audience: string; ttlMs: number }): Promise<string> {
    if (this.gatewayKey === null) throw new AirlockError('AIRLOCK_INTERNAL', 'gateway key not loaded');
    if (claims.audience === AIRLOCK_AUDIENCE) throw new AirlockError('AIRLOCK_CONFIG_INVALID', 'an upstream JWT may not use airlock\'s own audience');
    const key = this.gatewayKey;
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ groups: claims.identity.groups, airlock_kind: claims.identity.kind, sid: claims.sessionId })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setIssuer(GATEWAY_ISSUER)
      .setAudience(claims.audience)
      .setSubject(claims.identity.subject)
      .setIssuedAt(now)
      .setNotBefore(now - 5)
      .setExpirationTime(now + Math.max(1, Math.floor(claims.ttlMs / 1000)))
      .sign(key.privateKey);
  }
}

export async function signToken(
  key: SigningKey,
  issuer: string,
  subject: string,
  groups: string[],
  kind: IdentityKind,
  expiresAtMs: number,
): Promise<string> {
  return new SignJWT({ groups, airlock_kind: kind })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(issuer)
    .setAudience(AIRLOCK_AUDIENCE)
    .setSubject(subject)
    .setIssuedAt()
    .setNotBefore(Math.floor(Date.now() / 1000) - 5)
    .setExpirationTime(Math.floor(expiresAtMs / 1000))
    .sign(key.privateKey);
}

/** `airlock token mint`: a dev-issuer token. Refused unless auth.dev_issuer is true. */
export async function mintDevToken(
  config: Config,
  subject: string,
  groups: string[],
  kind: IdentityKind,
  ttlMs: number,
  secrets: SecretResolver = new SecretResolver(),
): Promise<string> {
  if (!config.auth.dev_issuer) {
    throw new AirlockError('AIRLOCK_FORBIDDEN', 'auth.dev_issuer is not enabled in this config');
  }
  const key = await devIssuerKey(config, secrets);
  return signToken(key, DEV_ISSUER, subject, groups, kind, Date.now() + ttlMs);
}

/** The dev issuer's key: auth.dev_issuer_key when set, else the per-node dev-issuer.jwk in state_dir. */
export function devIssuerKey(config: Config, secrets: SecretResolver = new SecretResolver()): Promise<SigningKey> {
  return loadSigningKey(config.state_dir, 'dev-issuer', config.auth.dev_issuer_key, 'auth.dev_issuer_key', secrets);
}
