/**
 * Request targets as rules see them: the path normalised once, and that same path is what
 * goes upstream. RFC 3986 §6.2.2: percent-decoding of unreserved characters, `.` and `..`
 * segments removed; repeated slashes collapsed. What stays ambiguous between servers — an
 * encoded `/` or `\`, an encoded `%`, a malformed escape, a `..` above the root, a
 * backslash — is refused (400) rather than guessed. So is, once decoded, a segment that
 * some server reads as another: a `;` (Tomcat and Spring strip `;params`, so
 * `/public/..;/admin` is `/admin` there), NUL or another control character (C string ends),
 * a trailing `.` or space (Windows and IIS drop them: `/admin./x` is `/admin/x`), or bytes
 * that are not UTF-8 (overlong `%C0%AE` is `.` to some decoders).
 */
import { AirlockError } from '../../src/util/errors.js';

export interface Target {
  /** Normalised path, starting with `/`. */
  path: string;
  /** The query string without `?`, as sent (empty when none). */
  query: string;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;
const HEX = /^[0-9A-Fa-f]{2}$/;

function refuse(why: string): never {
  throw new AirlockError('AIRLOCK_PROTOCOL', `the request path is ambiguous: ${why}`);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The segment as a server that decodes it reads it; refuses what servers read differently. */
function checkDecoded(seg: string): void {
  let decoded: string;
  try {
    decoded = UTF8.decode(Buffer.from(seg.replace(/%([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1'));
  } catch {
    refuse('percent-escapes that are not UTF-8');
  }
  if (/[\u0000-\u001f\u007f]/.test(decoded)) refuse('a control character');
  if (decoded.includes(';')) refuse('a ";" in a segment (path parameters)');
  if (decoded !== '.' && decoded !== '..' && (decoded.endsWith('.') || decoded.endsWith(' '))) refuse('a segment ending in "." or a space');
}

/**
 * A segment of printable ASCII with no escape, backslash or `;`: it decodes to itself, so it
 * is its own normal form and passes checkDecoded unless it ends in `.` (handled below).
 */
const PLAIN_SEGMENT = /^[^%\\;\u0000-\u0020\u007f-\uffff]+$/;

function normaliseSegment(seg: string): string {
  if (PLAIN_SEGMENT.test(seg) && (!seg.endsWith('.') || seg === '.' || seg === '..')) return seg;
  let out = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i] as string;
    if (c === '%') {
      const hex = seg.slice(i + 1, i + 3);
      if (!HEX.test(hex)) refuse('a malformed percent-escape');
      const ch = String.fromCharCode(parseInt(hex, 16));
      if (ch === '/' || ch === '\\') refuse('an encoded slash');
      if (ch === '%') refuse('an encoded "%"');
      out += UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
      i += 2;
      continue;
    }
    if (c === '\\') refuse('a backslash');
    const code = c.charCodeAt(0);
    if (code < 0x21 || code === 0x7f) refuse('a control character or space');
    out += c;
  }
  checkDecoded(out);
  return out;
}

/** Parses an origin-form request target (`/a/b?x=1`). Absolute-form and `*` are refused. */
export function normaliseTarget(raw: string): Target {
  if (!raw.startsWith('/')) refuse('not an origin-form path');
  const q = raw.indexOf('?');
  const rawPath = q < 0 ? raw : raw.slice(0, q);
  const query = q < 0 ? '' : raw.slice(q + 1);
  const hash = rawPath.indexOf('#');
  if (hash >= 0) refuse('a fragment');
  const out: string[] = [];
  const segments = rawPath.split('/').slice(1);
  const trailing = rawPath.endsWith('/') && rawPath.length > 1;
  for (const s of segments) {
    if (s === '') continue;
    const seg = normaliseSegment(s);
    if (seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) refuse('".." above the root');
      out.pop();
      continue;
    }
    out.push(seg);
  }
  let path = `/${out.join('/')}`;
  const last = segments[segments.length - 1];
  if ((trailing || last === '.' || last === '..') && path !== '/') path += '/';
  return { path, query };
}

/**
 * Headers some servers read as the request's path instead of the request line's (IIS URL
 * Rewrite, Zend/Laminas, older Symfony): `GET /public` with `X-Original-URL: /admin/x`
 * is served as /admin/x there. Rules judge the request line's path, so these are refused.
 */
export const PATH_OVERRIDE_HEADERS: readonly string[] = ['x-original-url', 'x-rewrite-url'];

/** Throws (400) when the request carries a header that names another path. */
export function refusePathOverride(headers: Readonly<Record<string, string | string[] | undefined>>): void {
  // CGI and PHP read X_Original_URL as the same field (HTTP_X_ORIGINAL_URL).
  for (const [key, value] of Object.entries(headers)) {
    const name = key.toLowerCase().replace(/_/g, '-');
    if (value !== undefined && PATH_OVERRIDE_HEADERS.includes(name)) refuse(`the ${name} header names another path than the request line`);
  }
}
