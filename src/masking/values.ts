/**
 * Masking one result cell so that what replaces it is still a valid value of its column's
 * type in its wire format (Postgres text/binary, MySQL text/binary protocol), or SQL NULL.
 *
 * family   types                                       redact     partial    hash                  null  email       fixed
 * text     pg text varchar bpchar name unknown citext;  [redacted] ***-6789   h:<24 hex>            NULL  ***@domain  the text
 *          mysql VARCHAR VAR_STRING STRING *BLOB ENUM SET
 * json     pg json jsonb; mysql JSON                    "[redacted]" as a JSON string, the text method applied to the string's
 *                                                       content (or to the raw JSON when it is not a string)           NULL / JSON string
 * uuid     pg uuid                                      NULL       NULL       HMAC-derived uuid v8  NULL  NULL        the text if a uuid, else NULL
 * integer  pg int2 int4 int8; mysql TINY SHORT INT24    NULL       NULL       HMAC-derived value ≥0 NULL  NULL        the text if an in-range integer, else NULL
 *          LONG LONGLONG                                                      in the type's range
 * bytea    pg bytea                                     NULL       NULL       32 HMAC bytes         NULL  NULL        the text's UTF-8 bytes
 * other    everything else (numeric, dates, arrays …)   NULL       NULL       NULL                  NULL  NULL        NULL
 *
 * Hash inputs are canonical text (decimal for integers, lower-case hyphenated for uuids, the
 * string content of a JSON string), so a value hashes the same in text and binary format and
 * in json and text columns: joins on pseudonyms still work across them.
 * Text cells are assumed UTF-8 (client_encoding UTF8 / utf8mb4).
 */
import type { MaskMethod } from '../core/types.js';
import { type MaskOptions, hmac, maskString } from './methods.js';
import type { DetectorRules } from './text.js';
import { maskText } from './text.js';

export interface ColumnType {
  /** Postgres type oid. */
  oid?: number;
  /** MySQL column type (protocol::ColumnType). */
  mysqlType?: number;
  /** The type's name when the oid is not a built-in one (e.g. "citext" from pg_type). */
  typname?: string;
  format: 'text' | 'binary';
}

export type TypeFamily = 'text' | 'json' | 'jsonb' | 'uuid' | 'integer' | 'bytea' | 'other';

/** Postgres built-in type oids (pg_type.dat). */
const PG_FAMILY: ReadonlyMap<number, TypeFamily> = new Map<number, TypeFamily>([
  [25, 'text'], [1043, 'text'], [1042, 'text'], [19, 'text'], [705, 'text'],
  [114, 'json'], [3802, 'jsonb'], [2950, 'uuid'], [21, 'integer'], [23, 'integer'], [20, 'integer'], [17, 'bytea'],
]);

/** MySQL protocol column types (include/field_types.h). */
const MYSQL_FAMILY: ReadonlyMap<number, TypeFamily> = new Map<number, TypeFamily>([
  [15, 'text'], [253, 'text'], [254, 'text'], [249, 'text'], [250, 'text'], [251, 'text'], [252, 'text'],
  [247, 'text'], [248, 'text'], [245, 'json'], [1, 'integer'], [2, 'integer'], [9, 'integer'], [3, 'integer'], [8, 'integer'],
]);

const TEXT_TYPNAMES = new Set(['citext', 'text', 'varchar', 'bpchar', 'name']);

export function typeFamily(type: ColumnType): TypeFamily {
  if (type.oid !== undefined) {
    const f = PG_FAMILY.get(type.oid);
    if (f !== undefined) return f;
  }
  if (type.mysqlType !== undefined) return MYSQL_FAMILY.get(type.mysqlType) ?? 'other';
  if (type.typname !== undefined && TEXT_TYPNAMES.has(type.typname)) return 'text';
  return 'other';
}

interface IntegerShape {
  /** Bytes in the binary format. */
  width: number;
  littleEndian: boolean;
  /** Largest value a pseudonym may take (non-negative, so it fits signed and unsigned columns). */
  max: bigint;
}

function integerShape(type: ColumnType): IntegerShape {
  if (type.oid === 21) return { width: 2, littleEndian: false, max: 0x7fffn };
  if (type.oid === 23) return { width: 4, littleEndian: false, max: 0x7fffffffn };
  if (type.oid === 20) return { width: 8, littleEndian: false, max: 0x7fffffffffffffffn };
  switch (type.mysqlType) {
    case 1: return { width: 1, littleEndian: true, max: 0x7fn };
    case 2: return { width: 2, littleEndian: true, max: 0x7fffn };
    case 9: return { width: 4, littleEndian: true, max: 0x7fffffn };
    case 3: return { width: 4, littleEndian: true, max: 0x7fffffffn };
    default: return { width: 8, littleEndian: true, max: 0x7fffffffffffffffn };
  }
}

function decodeInteger(value: Buffer, shape: IntegerShape, format: 'text' | 'binary'): bigint | null {
  if (format === 'text') {
    const s = value.toString('latin1').trim();
    return /^-?\d{1,20}$/.test(s) ? BigInt(s) : null;
  }
  if (value.length !== shape.width) return null;
  let n = 0n;
  for (let i = 0; i < shape.width; i++) {
    const b = value[shape.littleEndian ? shape.width - 1 - i : i] ?? 0;
    n = (n << 8n) | BigInt(b);
  }
  const bits = BigInt(shape.width * 8);
  return n >= 1n << (bits - 1n) ? n - (1n << bits) : n;
}

function encodeInteger(n: bigint, shape: IntegerShape, format: 'text' | 'binary'): Buffer {
  if (format === 'text') return Buffer.from(n.toString(), 'latin1');
  const out = Buffer.alloc(shape.width);
  let v = BigInt.asUintN(shape.width * 8, n);
  for (let i = 0; i < shape.width; i++) {
    out[shape.littleEndian ? i : shape.width - 1 - i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

const UUID_TEXT = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

function uuidText(bytes: Buffer): string {
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function uuidCanonical(value: Buffer, format: 'text' | 'binary'): string | null {
  if (format === 'binary') return value.length === 16 ? uuidText(value) : null;
  const s = value.toString('latin1').trim().replace(/^\{|\}$/g, '');
  return UUID_TEXT.test(s) ? uuidText(Buffer.from(s.replace(/-/g, ''), 'hex')) : null;
}

function encodeUuid(text: string, format: 'text' | 'binary'): Buffer {
  return format === 'text' ? Buffer.from(text, 'latin1') : Buffer.from(text.replace(/-/g, ''), 'hex');
}

/** RFC 9562 version 8 (custom) uuid from an HMAC, so it is a well-formed uuid yet reveals nothing. */
function uuidPseudonym(key: Buffer, canonical: string): string {
  const b = hmac(key, canonical).subarray(0, 16);
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x80;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  return uuidText(b);
}

function jsonText(value: Buffer, family: TypeFamily, format: 'text' | 'binary'): string {
  // jsonb binary format: a version byte (1) and then the JSON text.
  const body = family === 'jsonb' && format === 'binary' && value[0] === 1 ? value.subarray(1) : value;
  return body.toString('utf8');
}

function encodeJson(text: string, family: TypeFamily, format: 'text' | 'binary'): Buffer {
  const body = Buffer.from(text, 'utf8');
  return family === 'jsonb' && format === 'binary' ? Buffer.concat([Buffer.from([1]), body]) : body;
}

/** The content of a JSON string value, or null when the JSON is not a string. */
function jsonStringContent(json: string): string | null {
  const t = json.trim();
  if (!t.startsWith('"')) return null;
  try {
    const v: unknown = JSON.parse(t);
    return typeof v === 'string' ? v : null;
  } catch {
    return null;
  }
}

function byteaBytes(value: Buffer, format: 'text' | 'binary'): Buffer {
  if (format === 'binary') return value;
  const s = value.toString('latin1');
  // Only the hex output form (bytea_output = hex, the default since 9.0) is decoded; escape form hashes as written.
  return s.startsWith('\\x') ? Buffer.from(s.slice(2), 'hex') : value;
}

function encodeBytea(bytes: Buffer, format: 'text' | 'binary'): Buffer {
  return format === 'binary' ? bytes : Buffer.from(`\\x${bytes.toString('hex')}`, 'latin1');
}

/** Masks one cell. `null` in is SQL NULL and stays NULL; a `null` result means send SQL NULL. */
export function maskValue(value: Buffer | null, type: ColumnType, method: MaskMethod, opts: MaskOptions = {}): Buffer | null {
  if (value === null || method === 'null') return null;
  const family = typeFamily(type);
  const { format } = type;
  switch (family) {
    case 'text':
      return Buffer.from(maskString(value.toString('utf8'), method, opts), 'utf8');
    case 'json':
    case 'jsonb': {
      const raw = jsonText(value, family, format);
      const masked = maskString(jsonStringContent(raw) ?? raw, method, opts);
      return encodeJson(JSON.stringify(masked), family, format);
    }
    case 'uuid': {
      if (method === 'fixed') {
        const fixed = opts.fixed === undefined ? null : uuidCanonical(Buffer.from(opts.fixed, 'latin1'), 'text');
        return fixed === null ? null : encodeUuid(fixed, format);
      }
      if (method !== 'hash' || opts.key === undefined) return null;
      const canonical = uuidCanonical(value, format);
      return canonical === null ? null : encodeUuid(uuidPseudonym(opts.key, canonical), format);
    }
    case 'integer': {
      const shape = integerShape(type);
      if (method === 'fixed') {
        const fixed = opts.fixed === undefined ? null : decodeInteger(Buffer.from(opts.fixed, 'latin1'), shape, 'text');
        return fixed === null || fixed < -shape.max - 1n || fixed > shape.max ? null : encodeInteger(fixed, shape, format);
      }
      if (method !== 'hash' || opts.key === undefined) return null;
      const n = decodeInteger(value, shape, format);
      if (n === null) return null;
      const digest = hmac(opts.key, n.toString()).readBigUInt64BE(0);
      return encodeInteger(digest % (shape.max + 1n), shape, format);
    }
    case 'bytea':
      if (method === 'fixed') return opts.fixed === undefined ? null : encodeBytea(Buffer.from(opts.fixed, 'utf8'), format);
      if (method !== 'hash' || opts.key === undefined) return null;
      return encodeBytea(hmac(opts.key, byteaBytes(value, format)), format);
    case 'other':
      return null;
  }
}

/**
 * Detector masking of one cell. Text and JSON cells get their findings replaced (JSON text
 * stays valid: replacements are JSON-escaped); a cell of any other type whose text holds a
 * finding (a card number in a bigint) becomes NULL, as no masked text would be a valid value.
 */
export function maskValueByDetectors(
  value: Buffer | null,
  type: ColumnType,
  rules: DetectorRules,
  key?: Buffer,
): { value: Buffer | null; findings: number } {
  if (value === null || rules.empty) return { value, findings: 0 };
  const family = typeFamily(type);
  if (family === 'text') {
    const r = maskText(value.toString('utf8'), rules, key);
    return r.findings === 0 ? { value, findings: 0 } : { value: Buffer.from(r.text, 'utf8'), findings: r.findings };
  }
  if (family === 'json' || family === 'jsonb') {
    const raw = jsonText(value, family, type.format);
    const r = maskJsonText(raw, rules, key);
    return r.findings === 0 ? { value, findings: 0 } : { value: encodeJson(r.text, family, type.format), findings: r.findings };
  }
  const text =
    family === 'integer' && type.format === 'binary'
      ? (decodeInteger(value, integerShape(type), 'binary') ?? '').toString()
      : type.format === 'text'
        ? value.toString('utf8')
        : '';
  const r = maskText(text, rules, key);
  return r.findings === 0 ? { value, findings: 0 } : { value: null, findings: r.findings };
}

/**
 * Masks inside the string literals and numbers of a JSON text. A literal that changed is
 * re-serialised; a number that held a finding ({"card": 4111111111111111}) becomes a string.
 */
function maskJsonText(json: string, rules: DetectorRules, key: Buffer | undefined): { text: string; findings: number } {
  let findings = 0;
  // A JSON string literal (escapes are two characters or \uXXXX), or a number.
  const text = json.replace(/"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*/g, (token) => {
    let content: unknown = token;
    if (token.startsWith('"')) {
      try {
        content = JSON.parse(token);
      } catch {
        return token;
      }
    }
    if (typeof content !== 'string') return token;
    const r = maskText(content, rules, key);
    findings += r.findings;
    return r.findings === 0 ? token : JSON.stringify(r.text);
  });
  return { text, findings };
}
