/**
 * standard_conforming_strings = off. libpg-query always lexes as if it were on, where a
 * backslash in '...' is an ordinary character; with it off, the server reads '...' like
 * E'...', so `'\'; DROP TABLE t; --'` is one string to libpg-query but a string, a DROP and
 * a comment to the server. Before parsing such text we rewrite, in every plain '...' (and
 * N'...') literal, each `\'` into `''`. Both spellings keep the quote inside the literal
 * under both lexers, the length is unchanged (so parse offsets stay valid for the original
 * text), and every token boundary then falls where the server's lexer puts it. Literal
 * values with other escapes (\n, \\) differ, which no effect analysis depends on.
 *
 * The lexer below follows PostgreSQL's scan.l states: comments (nested), "..." and
 * U&"..." identifiers, '...', E'...', N'...', B'...', X'...', U&'...', dollar quotes and
 * the newline continuation of string literals.
 */

export interface StandardStringsRewrite {
  /** The text to hand to libpg-query. */
  text: string;
  /** A plain string literal holds a backslash: the two settings read this text differently. */
  quotingMatters: boolean;
}

type StringMode = 'escape' | 'plain' | 'bits' | 'unicode';

const isIdentStart = (c: string): boolean => /[A-Za-z_]/.test(c) || c.charCodeAt(0) >= 0x80;
const isIdentCont = (c: string): boolean => /[A-Za-z_0-9$]/.test(c) || c.charCodeAt(0) >= 0x80;
const isDollarTagStart = (c: string): boolean => /[A-Za-z_]/.test(c) || c.charCodeAt(0) >= 0x80;
const isDollarTagCont = (c: string): boolean => /[A-Za-z_0-9]/.test(c) || c.charCodeAt(0) >= 0x80;

/**
 * `standardConformingStrings`: the value of standard_conforming_strings. With `true` the text is returned as is,
 * but `quotingMatters` still tells whether the other setting would read it differently.
 */
export function rewriteForStandardStrings(text: string, standardConformingStrings: boolean): StandardStringsRewrite {
  // Without a backslash both settings read the text alike.
  if (!text.includes('\\')) return { text, quotingMatters: false };
  const out: string[] = [];
  let quotingMatters = false;
  let i = 0;
  let copied = 0;
  const n = text.length;

  const skipLineComment = (at: number): number => {
    let j = at;
    while (j < n && text[j] !== '\n' && text[j] !== '\r') j++;
    return j;
  };

  /** After a closing quote: the index of the `'` that continues the literal, or -1 (scan.l xqcat). */
  const continuation = (at: number): number => {
    let j = at;
    while (j < n && (text[j] === ' ' || text[j] === '\t' || text[j] === '\f')) j++;
    if (j >= n || (text[j] !== '\n' && text[j] !== '\r')) return -1;
    for (;;) {
      if (j < n && /[ \t\n\r\f\v]/.test(text[j] ?? '')) j++;
      else if (text.startsWith('--', j)) j = skipLineComment(j);
      else break;
    }
    return text[j] === "'" ? j : -1;
  };

  /** `start` is the index of the opening quote; returns the index after the literal. */
  const scanString = (start: number, mode: StringMode, rewrite: boolean): number => {
    let j = start + 1;
    for (;;) {
      if (j >= n) return n;
      const c = text[j];
      if (c === '\\' && mode === 'escape') {
        if (text[j + 1] === "'" && rewrite) {
          out.push(text.slice(copied, j), "''");
          copied = j + 2;
        }
        if (rewrite) quotingMatters = true;
        j += 2;
        continue;
      }
      if (c === '\\' && mode === 'plain' && standardConformingStrings) quotingMatters = true;
      if (c === "'") {
        if (mode !== 'bits' && text[j + 1] === "'") { j += 2; continue; }
        const next = continuation(j + 1);
        if (next < 0) return j + 1;
        j = next + 1;
        continue;
      }
      j++;
    }
  };

  const plainMode: StringMode = standardConformingStrings ? 'plain' : 'escape';
  while (i < n) {
    const c = text[i] ?? '';
    if (c === '-' && text[i + 1] === '-') { i = skipLineComment(i); continue; }
    if (c === '/' && text[i + 1] === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (text[i] === '/' && text[i + 1] === '*') { depth++; i += 2; }
        else if (text[i] === '*' && text[i + 1] === '/') { depth--; i += 2; }
        else i++;
      }
      continue;
    }
    if (c === '"') {
      i++;
      while (i < n) {
        if (text[i] === '"') { if (text[i + 1] === '"') { i += 2; continue; } i++; break; }
        i++;
      }
      continue;
    }
    if (c === "'") { i = scanString(i, plainMode, !standardConformingStrings); continue; }
    if (c === '$') {
      let j = i + 1;
      if (j < n && /[0-9]/.test(text[j] ?? '')) { while (j < n && /[0-9]/.test(text[j] ?? '')) j++; i = j; continue; }
      if (j < n && isDollarTagStart(text[j] ?? '')) { while (j < n && isDollarTagCont(text[j] ?? '')) j++; }
      if (text[j] === '$') {
        const delimiter = text.slice(i, j + 1);
        const end = text.indexOf(delimiter, j + 1);
        i = end < 0 ? n : end + delimiter.length;
        continue;
      }
      i = i + 1;
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentCont(text[j] ?? '')) j++;
      const word = text.slice(i, j);
      const lower = word.toLowerCase();
      if (text[j] === "'" && word.length === 1) {
        if (lower === 'e') { i = scanString(j, 'escape', false); continue; }
        if (lower === 'n') { i = scanString(j, plainMode, !standardConformingStrings); continue; }
        if (lower === 'b' || lower === 'x') { i = scanString(j, 'bits', false); continue; }
      }
      if (lower === 'u' && text[j] === '&' && text[j + 1] === "'") { i = scanString(j + 1, 'unicode', false); continue; }
      // U&"..." is a quoted identifier; the '"' branch takes it from the quote.
      if (lower === 'u' && text[j] === '&' && text[j + 1] === '"') { i = j + 1; continue; }
      i = j;
      continue;
    }
    if (/[0-9]/.test(c)) { let j = i + 1; while (j < n && /[0-9._]/.test(text[j] ?? '')) j++; i = j; continue; }
    i++;
  }
  if (copied === 0) return { text, quotingMatters };
  out.push(text.slice(copied));
  return { text: out.join(''), quotingMatters };
}
