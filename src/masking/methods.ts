/**
 * The masking methods applied to a piece of text (a detector finding or a text cell).
 *
 *   redact   "[redacted]"
 *   partial  every letter and digit replaced by "*" except the last `keep` (default 4),
 *            never more than half of them; separators stay ("***-**-6789")
 *   hash     "h:" + 24 hex digits of HMAC-SHA256(key, value): equal values give equal
 *            pseudonyms, so joins and GROUP BY still work. Without a key: redact (an
 *            unkeyed hash of a small space such as SSNs is reversible by enumeration)
 *   null     "" (a whole cell becomes SQL NULL instead; see values.ts)
 *   email    "***@" + the domain when the value is an address, else redact
 *   fixed    the configured text (default "[redacted]")
 */
import { createHmac, hkdfSync } from 'node:crypto';
import type { MaskMethod } from '../core/types.js';

export const REDACTED = '[redacted]';
const DEFAULT_KEEP = 4;
const HASH_HEX_DIGITS = 24;

export interface MaskOptions {
  keep?: number;
  fixed?: string;
  key?: Buffer;
}

/** Most destructive first: when several rules apply, the one earliest here wins. */
export const METHOD_STRENGTH: readonly MaskMethod[] = ['null', 'redact', 'hash', 'fixed', 'partial', 'email'];

export function strongerMethod(a: MaskMethod, b: MaskMethod): boolean {
  return METHOD_STRENGTH.indexOf(a) < METHOD_STRENGTH.indexOf(b);
}

/** The rule whose method is strongest; the first of equals (config order) on a tie. */
export function strongest<T extends { method: MaskMethod }>(rules: Iterable<T>): T | null {
  let best: T | null = null;
  for (const r of rules) if (best === null || strongerMethod(r.method, best.method)) best = r;
  return best;
}

/**
 * The HMAC key from the configured secret material (`masking.hash_key`, resolved from its
 * secret reference). HKDF-SHA256 with a fixed info string, so the same material used
 * elsewhere never yields the same key.
 */
export function keyFromSecret(material: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(material, 'utf8'), Buffer.alloc(0), 'airlock masking hash v1', 32));
}

export function hmac(key: Buffer, value: string | Buffer): Buffer {
  return createHmac('sha256', key).update(value).digest();
}

export function pseudonym(key: Buffer, value: string | Buffer): string {
  return `h:${hmac(key, value).toString('hex').slice(0, HASH_HEX_DIGITS)}`;
}

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c > 127;
}

export function partial(value: string, keep: number | undefined): string {
  const chars = Array.from(value);
  const alnum = chars.filter((c) => isAlnum(c.codePointAt(0) ?? 0)).length;
  // Revealing more than half of a short value would reveal the value.
  let reveal = Math.min(Math.max(0, keep ?? DEFAULT_KEEP), Math.floor(alnum / 2));
  const out: string[] = new Array<string>(chars.length);
  for (let i = chars.length - 1; i >= 0; i--) {
    const c = chars[i] ?? '';
    if (!isAlnum(c.codePointAt(0) ?? 0)) out[i] = c;
    else if (reveal > 0) {
      out[i] = c;
      reveal--;
    } else out[i] = '*';
  }
  return out.join('');
}

const ADDRESS = /^[^\s@]+@([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)$/;

export function emailMask(value: string): string | null {
  const m = ADDRESS.exec(value.trim());
  return m === null ? null : `***@${m[1] ?? ''}`;
}

/** Masks one piece of text; never returns any part of it except what `partial`/`email` keep by design. */
export function maskString(value: string, method: MaskMethod, opts: MaskOptions = {}): string {
  switch (method) {
    case 'redact':
      return REDACTED;
    case 'null':
      return '';
    case 'fixed':
      return opts.fixed ?? REDACTED;
    case 'partial':
      return partial(value, opts.keep);
    case 'email':
      return emailMask(value) ?? REDACTED;
    case 'hash':
      return opts.key === undefined ? REDACTED : pseudonym(opts.key, value);
  }
}
