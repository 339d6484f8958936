/**
 * The escape families a client decodes, read in place: JSON string escapes (RFC 8259 §7),
 * percent-escapes (RFC 3986 §2.1, either hex case), HTML character references (numeric, and
 * the named ones for ASCII punctuation), and the folding that makes case and `+`/space one
 * character. Shared by the forms (secret-forms.ts) and the scanners (secret-scanner.ts).
 */

/** RFC 8259 §7 two-character escapes, by the character after the backslash. */
const JSON_ESCAPES = new Int32Array(128).fill(-1);
for (const [c, code] of Object.entries({ '"': 0x22, '\\': 0x5c, '/': 0x2f, b: 0x08, f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09 })) JSON_ESCAPES[c.charCodeAt(0)] = code;

/** HTML named references for ASCII punctuation (HTML Living Standard, named character references). */
const HTML_NAMED: ReadonlyMap<string, number> = new Map(Object.entries({
  amp: 0x26, lt: 0x3c, gt: 0x3e, quot: 0x22, apos: 0x27, sol: 0x2f, bsol: 0x5c, colon: 0x3a, semi: 0x3b, equals: 0x3d,
  plus: 0x2b, percnt: 0x25, lowbar: 0x5f, hyphen: 0x2d, dash: 0x2d, period: 0x2e, comma: 0x2c, num: 0x23, excl: 0x21,
  dollar: 0x24, lpar: 0x28, rpar: 0x29, ast: 0x2a, midast: 0x2a, quest: 0x3f, commat: 0x40, lsqb: 0x5b, lbrack: 0x5b,
  rsqb: 0x5d, rbrack: 0x5d, hat: 0x5e, grave: 0x60, lcub: 0x7b, lbrace: 0x7b, rcub: 0x7d, rbrace: 0x7d, verbar: 0x7c,
  vert: 0x7c, tilde: 0x7e, nbsp: 0xa0, tab: 0x09, newline: 0x0a,
}));

const hexValue = (c: number): number => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1);
const isAlpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);

/** The canonical character: ASCII lower case, and `+` is a space (form encoding). */
export const fold = (c: number): number => (c >= 0x41 && c <= 0x5a ? c + 32 : c === 0x2b ? 0x20 : c);

/** escapeAt: not an escape, the lead character stands for itself. */
export const ESCAPE_LITERAL = -1;
/** escapeAt: the input ends before the escape can be told. */
export const ESCAPE_MORE = -2;
/** Digits in a numeric character reference, letters in a named one. */
const MAX_REF_DIGITS = 7;
const MAX_REF_LETTERS = 8;

/**
 * The escape that starts at s[i] (a `\`, `%` or `&`): the decoded code unit * 16 + the
 * escape's length, ESCAPE_LITERAL, or ESCAPE_MORE. JSON `\X` and `\uXXXX` (RFC 8259 §7),
 * `%XX` in either case (RFC 3986 §2.1), `&#NNN;` `&#xHH;` (semicolon optional) and the
 * named references of HTML_NAMED. No allocation on the common paths.
 */
export function escapeAt(s: string, i: number): number {
  const n = s.length;
  if (i + 1 >= n) return ESCAPE_MORE;
  const lead = s.charCodeAt(i);
  const c1 = s.charCodeAt(i + 1);
  if (lead === 0x5c) {
    if (c1 !== 0x75) {
      const code = c1 < 128 ? (JSON_ESCAPES[c1] ?? -1) : -1;
      return code < 0 ? ESCAPE_LITERAL : code * 16 + 2;
    }
    let v = 0;
    for (let k = 2; k < 6; k++) {
      if (i + k >= n) return ESCAPE_MORE;
      const h = hexValue(s.charCodeAt(i + k));
      if (h < 0) return ESCAPE_LITERAL;
      v = v * 16 + h;
    }
    return v * 16 + 6;
  }
  if (lead === 0x25) {
    const h1 = hexValue(c1);
    if (h1 < 0) return ESCAPE_LITERAL;
    if (i + 2 >= n) return ESCAPE_MORE;
    const h2 = hexValue(s.charCodeAt(i + 2));
    return h2 < 0 ? ESCAPE_LITERAL : (h1 * 16 + h2) * 16 + 3;
  }
  if (c1 === 0x23) {
    if (i + 2 >= n) return ESCAPE_MORE;
    const x = s.charCodeAt(i + 2);
    const hex = x === 0x78 || x === 0x58;
    const first = i + (hex ? 3 : 2);
    let k = first;
    let v = 0;
    for (;;) {
      if (k - first > MAX_REF_DIGITS) return ESCAPE_LITERAL;
      if (k >= n) return ESCAPE_MORE;
      const c = s.charCodeAt(k);
      const d = hex ? hexValue(c) : c >= 0x30 && c <= 0x39 ? c - 0x30 : -1;
      if (d < 0) break;
      v = v * (hex ? 16 : 10) + d;
      k++;
    }
    if (k === first || v > 0xffff) return ESCAPE_LITERAL;
    return v * 16 + (s.charCodeAt(k) === 0x3b ? k + 1 : k) - i;
  }
  let k = i + 1;
  while (k < n && isAlpha(s.charCodeAt(k))) {
    k++;
    if (k - i - 1 > MAX_REF_LETTERS) return ESCAPE_LITERAL;
  }
  if (k >= n) return ESCAPE_MORE;
  if (s.charCodeAt(k) !== 0x3b || k === i + 1) return ESCAPE_LITERAL;
  const code = HTML_NAMED.get(s.slice(i + 1, k).toLowerCase());
  return code === undefined ? ESCAPE_LITERAL : code * 16 + k + 1 - i;
}

/** The escape at s[i] when nothing follows s: one read past the end settles it (a numeric reference needs no `;`). */
export function escapeAtEnd(s: string, i: number): number {
  const r = escapeAt(`${s}\u0000`, i);
  return r >= 0 && i + (r & 15) > s.length ? ESCAPE_LITERAL : r;
}

/** The canonical (decoded, unfolded) text of a whole string: how a form is written down. */
export function decodeEscapes(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; ) {
    const c = text.charCodeAt(i);
    const r = c === 0x5c || c === 0x25 || c === 0x26 ? escapeAtEnd(text, i) : ESCAPE_LITERAL;
    if (r >= 0) {
      out += String.fromCharCode(r >> 4);
      i += r & 15;
    } else {
      out += text[i] ?? '';
      i++;
    }
  }
  return out;
}
