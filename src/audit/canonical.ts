/**
 * The one serialisation the chain is computed over: JSON with object keys sorted by
 * UTF-16 code unit order at every depth, no whitespace, and JSON.stringify's own string
 * and number forms. A record line on disk is this form, so a verifier can demand that a
 * line re-serialises to exactly itself (any edit, even of whitespace, is caught).
 */
import { createHash } from 'node:crypto';
import type { AuditEventBody, AuditRecord } from './types.js';

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const s = JSON.stringify(value);
    // undefined, functions and symbols have no JSON form; inside objects they are dropped before we get here.
    return s === undefined ? 'null' : s;
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.keys(value)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

/**
 * Reduces an event to plain JSON data: toJSON() runs (a Secret becomes "[secret]"),
 * undefined members vanish, non-finite numbers become null. Throws on cycles and BigInt.
 */
export function toPlainJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

type Unhashed = { seq: number; ts: string; node: string; prev: string; event: AuditEventBody };

/** SHA-256 over canonicalJson({ event, node, prev, seq, ts }); `eventJson` when the caller has it already. */
export function recordHash(r: Unhashed, eventJson = canonicalJson(r.event)): string {
  // Keys in sorted order, so this is exactly canonicalJson of the whole object.
  const body = `{"event":${eventJson},"node":${JSON.stringify(r.node)},"prev":${JSON.stringify(r.prev)},"seq":${r.seq},"ts":${JSON.stringify(r.ts)}}`;
  return createHash('sha256').update(body).digest('hex');
}

/** The line as written: fixed key order for readability, the event in canonical form. */
export function recordLine(r: AuditRecord, eventJson = canonicalJson(r.event)): string {
  return (
    `{"seq":${r.seq},"ts":${JSON.stringify(r.ts)},"node":${JSON.stringify(r.node)},` +
    `"prev":${JSON.stringify(r.prev)},"hash":${JSON.stringify(r.hash)},"event":${eventJson}}`
  );
}
