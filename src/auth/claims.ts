import type { JWTPayload } from 'jose';
import type { Identity, IdentityKind } from '../core/types.js';
import { AirlockError } from '../util/errors.js';

/** Follows a dot path ("realm_access.roles") into the claims. */
export function claimAt(payload: JWTPayload, path: string): unknown {
  let cur: unknown = payload;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Groups may be an array of strings, or one space/comma separated string. */
export function groupsFrom(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((g): g is string => typeof g === 'string' && g !== '');
  if (typeof value === 'string') return value.split(/[\s,]+/).filter((g) => g !== '');
  return [];
}

const KINDS: readonly IdentityKind[] = ['human', 'machine', 'agent'];

export function identityFrom(
  payload: JWTPayload,
  opts: { groupsClaim: string; kindClaim: string; defaultKind: IdentityKind },
): Identity {
  if (typeof payload.sub !== 'string' || payload.sub === '') {
    throw new AirlockError('AIRLOCK_AUTH_INVALID');
  }
  if (typeof payload.exp !== 'number') {
    throw new AirlockError('AIRLOCK_AUTH_INVALID');
  }
  const kindClaim = claimAt(payload, opts.kindClaim);
  const kind = KINDS.find((k) => k === kindClaim) ?? opts.defaultKind;
  return {
    subject: payload.sub,
    issuer: typeof payload.iss === 'string' ? payload.iss : '',
    groups: groupsFrom(claimAt(payload, opts.groupsClaim)),
    kind,
    expiresAt: payload.exp * 1000,
  };
}
