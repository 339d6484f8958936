/**
 * The one serialisation the chain is computed over: JSON with object keys sorted by
 * UTF-16 code unit order at every depth, no whitespace, and JSON.stringify's own string
 * and number forms. A record line on disk is this form, so a verifier can demand that a
 * line re-serialises to exactly itself (any edit, even of whitespace, is caught).
 */
import * as crypto from 'node:crypto';
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
 * canonicalJson(scrub-every-string(toPlainJson(value))) in one walk, without the two
 * intermediate copies: toJSON() runs (a Secret becomes "[secret]"), undefined, functions
 * and symbols vanish from objects and are null in arrays, non-finite numbers are null,
 * every string value (never a key) goes through `scrub`, keys are sorted. Throws on cycles
 * and BigInt, as JSON.stringify does. This runs for every audited statement, so it is the
 * audit log's hot path; a unit test holds it to the composition it replaces.
 */
export function canonicalScrubbedJson(value: unknown, scrub: (s: string) => string): string {
  const out = canonicalWalk(value, '', scrub, []);
  return out === undefined ? 'null' : out;
}

/** Event keys come from a small vocabulary: their JSON forms are kept (bounded). */
const quotedKeys = new Map<string, string>();

function quotedKey(k: string): string {
  let q = quotedKeys.get(k);
  if (q === undefined) {
    q = JSON.stringify(k);
    if (quotedKeys.size < 4096) quotedKeys.set(k, q);
  }
  return q;
}

/** Already in sort()'s order (UTF-16 code units): most small objects are, or are short. */
function sorted(keys: string[]): boolean {
  for (let i = 1; i < keys.length; i++) if ((keys[i - 1] as string) > (keys[i] as string)) return false;
  return true;
}

function canonicalWalk(input: unknown, key: string, scrub: (s: string) => string, stack: object[]): string | undefined {
  let value = input;
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: (k: string) => unknown }).toJSON(key);
  }
  switch (typeof value) {
    case 'string':
      return JSON.stringify(scrub(value));
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      throw new TypeError('Do not know how to serialize a BigInt');
    case 'object':
      break;
    default:
      return undefined; // undefined, function, symbol
  }
  if (value === null) return 'null';
  if (value instanceof Number || value instanceof String || value instanceof Boolean) return canonicalWalk(value.valueOf(), key, scrub, stack);
  if (stack.includes(value)) throw new TypeError('Converting circular structure to JSON');
  stack.push(value);
  let out: string;
  if (Array.isArray(value)) {
    out = '[';
    for (let i = 0; i < value.length; i++) out += `${i === 0 ? '' : ','}${canonicalWalk(value[i], String(i), scrub, stack) ?? 'null'}`;
    out += ']';
  } else {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (!sorted(keys)) keys.sort();
    out = '{';
    let first = true;
    for (const k of keys) {
      const v = canonicalWalk(obj[k], k, scrub, stack);
      if (v === undefined) continue;
      out += `${first ? '' : ','}${quotedKey(k)}:${v}`;
      first = false;
    }
    out += '}';
  }
  stack.pop();
  return out;
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
  return recordHashOf(r, eventJson);
}

/** The same hash from the event's canonical JSON alone. */
export function recordHashOf(r: Omit<Unhashed, 'event'>, eventJson: string): string {
  // Keys in sorted order, so this is exactly canonicalJson of the whole object.
  const body = `{"event":${eventJson},"node":${JSON.stringify(r.node)},"prev":${JSON.stringify(r.prev)},"seq":${r.seq},"ts":${JSON.stringify(r.ts)}}`;
  return sha256Hex(body);
}

/**
 * SHA-256 of a string, hex. crypto.hash (Node ≥ 20.12) is the one-shot form: no Hash object
 * per record, a third of createHash().update().digest()'s time on the writer thread, the same digest.
 */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;
const sha256Hex: (s: string) => string =
  typeof oneShot === 'function' ? (s) => oneShot('sha256', s, 'hex') : (s) => crypto.createHash('sha256').update(s).digest('hex');

/** The line as written: fixed key order for readability, the event in canonical form. */
export function recordLine(r: AuditRecord, eventJson = canonicalJson(r.event)): string {
  return (
    `{"seq":${r.seq},"ts":${JSON.stringify(r.ts)},"node":${JSON.stringify(r.node)},` +
    `"prev":${JSON.stringify(r.prev)},"hash":${JSON.stringify(r.hash)},"event":${eventJson}}`
  );
}
