/**
 * MySQL/MariaDB text as the server reads it: statements split at top-level `;`, comments
 * removed, executable comments (`/*! … *\/`, `/*!50000 … *\/`, `/*M! … *\/`) kept as the SQL
 * they are. Quoting follows the session: backslash escapes in strings unless
 * NO_BACKSLASH_ESCAPES, `"…"` a string unless ANSI_QUOTES makes it an identifier.
 *
 * Sources: MySQL 8.0 reference 11.7 "Comments", 11.1.1 "String Literals"; MariaDB
 * "Comment Syntax" (executable comments, `/*M!`, six-digit versions).
 */

export interface MysqlLexOptions {
  noBackslashEscapes: boolean;
  ansiQuotes: boolean;
  /** Server version as executable comments compare it (10.11.6 → 101106). */
  serverVersion?: number;
  /** With no serverVersion: whether versioned comments (`/*!50700 …*\/`) are read as run or as skipped. */
  assumeVersioned?: 'run' | 'skip';
}

export type TokenKind = 'word' | 'ident' | 'string' | 'number' | 'symbol' | 'variable';

export interface Token {
  kind: TokenKind;
  /** Words upper-cased; identifiers unquoted; strings decoded (their value, without quotes). */
  value: string;
}

export interface LexedStatement {
  /** The statement's own text, a slice of the query string. */
  text: string;
  /** Where `text` starts in the query string. */
  offset: number;
  /**
   * What the parser is given: comments blanked, executable comments' markers blanked and their
   * content kept, strings replaced by '?', quoted identifiers in backticks.
   */
  clean: string;
  /** A versioned executable comment was read by `assumeVersioned`, not by a known server version. */
  versionDependent: boolean;
  tokens: Token[];
  /** Why the text cannot be read with certainty (unterminated quote or comment, `;` inside an executable comment …). */
  problem: string | null;
  /** The problem is one the server rejects too (ER_PARSE_ERROR): the statement can never run as written. */
  syntaxError: boolean;
}

/** MySQL 8.0 reference 11.1.1 table 11.1; any other escaped character stands for itself. */
const BACKSLASH_ESCAPES: Readonly<Record<string, string>> = { '0': '\0', "'": "'", '"': '"', b: '\b', n: '\n', r: '\r', t: '\t', Z: '\x1a', '\\': '\\' };

/** MariaDB 10.11 / MySQL 8.0 character set names (SHOW CHARACTER SET), as `_name` introducers. */
const CHARSETS: ReadonlySet<string> = new Set(['armscii8', 'ascii', 'big5', 'binary', 'cp1250', 'cp1251', 'cp1256', 'cp1257', 'cp850', 'cp852', 'cp866', 'cp932', 'dec8', 'eucjpms', 'euckr', 'gb18030', 'gb2312', 'gbk', 'geostd8', 'greek', 'hebrew', 'hp8', 'keybcs2', 'koi8r', 'koi8u', 'latin1', 'latin2', 'latin5', 'latin7', 'macce', 'macroman', 'sjis', 'swe7', 'tis620', 'ucs2', 'ujis', 'utf16', 'utf16le', 'utf32', 'utf8', 'utf8mb3', 'utf8mb4']);

const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';
const isWordStart = (c: string): boolean => /[A-Za-z_$\u0080-\uffff]/.test(c);
const isWordChar = (c: string): boolean => /[A-Za-z0-9_$\u0080-\uffff]/.test(c);
const isDigit = (c: string): boolean => c >= '0' && c <= '9';

/** Splits a COM_QUERY text into statements. Never throws: what cannot be read carries a `problem`. */
export function lexMysql(text: string, opts: MysqlLexOptions): LexedStatement[] {
  const out: LexedStatement[] = [];
  let start = 0;
  let clean = '';
  let tokens: Token[] = [];
  let problem: string | null = null;
  let syntaxError = false;
  let versionDependent = false;
  /**
   * Inside an executable comment. Like the server's lexer, its end is the first `*\/` outside a
   * quote: `/*! '*\/' *\/` is one string, the comment ends at the second.
   */
  let inExec = false;
  const n = text.length;
  let i = 0;

  const finish = (end: number): void => {
    const slice = text.slice(start, end);
    const offset = start + (slice.length - slice.trimStart().length);
    if (slice.trim() !== '' || tokens.length > 0 || problem !== null) out.push({ text: slice.trim(), offset, clean: clean.trim(), tokens, problem, syntaxError: problem !== null && syntaxError, versionDependent });
    clean = '';
    tokens = [];
    problem = null;
    syntaxError = false;
    versionDependent = false;
  };

  while (i < n) {
    const c = text[i] as string;
    if (inExec && c === '*' && text[i + 1] === '/') {
      // the `*/` closing an executable comment
      clean += '  ';
      i += 2;
      inExec = false;
      continue;
    }
    if (isSpace(c)) {
      clean += c;
      i++;
      continue;
    }
    // Comments
    if (c === '#' || (c === '-' && text[i + 1] === '-' && (i + 2 >= n || isSpace(text[i + 2] as string) || (text.charCodeAt(i + 2) < 32)))) {
      let j = text.indexOf('\n', i);
      if (j < 0) j = n;
      if (inExec) problem ??= 'a line comment inside an executable comment';
      clean += ' '.repeat(j - i);
      i = j;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const close = text.indexOf('*/', i + 2);
      if (inExec) {
        problem ??= 'a comment inside an executable comment';
        i += 2;
        continue;
      }
      if (close < 0) {
        if (problem === null) syntaxError = true;
        problem ??= 'an unterminated comment';
        clean += ' '.repeat(n - i);
        i = n;
        continue;
      }
      const m = /^\/\*(M?)!(\d{5,6})?/.exec(text.slice(i, i + 10));
      if (m !== null) {
        const version = m[2] === undefined ? null : Number(m[2]);
        if (version !== null && opts.serverVersion === undefined) versionDependent = true;
        const runs = version === null || (opts.serverVersion === undefined ? opts.assumeVersioned !== 'skip' : version <= opts.serverVersion);
        if (runs) {
          // The content is SQL the server runs: keep it, blank the markers.
          clean += ' '.repeat(m[0].length);
          inExec = true;
          i += m[0].length;
          continue;
        }
        if (text.slice(i + 2, close + 1).includes('/*')) {
          // MariaDB nests a comment inside a skipped versioned comment (`/*!999999 /* *\/ ' *\/ , 2`
          // ends at the second `*\/`, and `, 2` runs): where it ends cannot be told safely, so
          // nothing after it is read as a statement of its own.
          problem ??= 'a comment inside a skipped versioned comment (/*!NNNNN … /* … */ … */); remove the inner comment';
          clean += ' '.repeat(n - i);
          i = n;
          continue;
        }
      }
      clean += ' '.repeat(close + 2 - i);
      i = close + 2;
      continue;
    }
    // A top-level `;` inside an executable comment (not one inside a string there): the server
    // may end the statement there; airlock cannot say which.
    if (c === ';' && inExec) problem ??= 'a ";" inside an executable comment';
    if (c === ';' && !inExec) {
      finish(i);
      i++;
      start = i;
      continue;
    }
    // Quoted: strings, identifiers
    if (c === "'" || c === '"' || c === '`') {
      const identifier = c === '`' || (c === '"' && opts.ansiQuotes);
      const backslash = !identifier && !opts.noBackslashEscapes;
      let j = i + 1;
      let value = '';
      let closed = false;
      while (j < n) {
        const d = text[j] as string;
        if (backslash && d === '\\') {
          const e = text[j + 1] ?? '';
          value += BACKSLASH_ESCAPES[e] ?? (e === '%' || e === '_' ? `\\${e}` : e);
          j += 2;
          continue;
        }
        if (d === c) {
          if (text[j + 1] === c) {
            value += c;
            j += 2;
            continue;
          }
          closed = true;
          break;
        }
        value += d;
        j++;
      }
      if (!closed) {
        if (problem === null) syntaxError = true;
        problem ??= `an unterminated ${identifier ? 'quoted identifier' : 'string'}`;
        clean += text.slice(i);
        i = n;
        continue;
      }
      tokens.push({ kind: identifier ? 'ident' : 'string', value });
      // The parser must see the server's boundaries, not re-read the quoting: an identifier goes
      // in backticks, a string becomes a neutral literal (no analysis of the parser's tree
      // depends on a string's value; PREPARE … FROM '…' reads the token's decoded value).
      // An empty quoted identifier (`""` under ANSI_QUOTES) names nothing that can exist (the
      // server answers "Unknown column ''"); the parser, which refuses it, is given a name no
      // object can have either (identifiers never end in a space).
      clean += identifier ? (value === '' ? '` `' : `\`${value.replace(/`/g, '``')}\``) : "'?'";
      i = j + 1;
      continue;
    }
    if (c === '@') {
      let j = i + 1;
      while (j < n && (isWordChar(text[j] as string) || text[j] === '@' || text[j] === '.')) j++;
      tokens.push({ kind: 'variable', value: text.slice(i, j) });
      clean += text.slice(i, j);
      i = j;
      continue;
    }
    if (isDigit(c) || (c === '.' && isDigit(text[i + 1] ?? ''))) {
      let j = i + 1;
      while (j < n && (isWordChar(text[j] as string) || text[j] === '.')) j++;
      tokens.push({ kind: 'number', value: text.slice(i, j) });
      // `.5` is 0.5 to the server; the parser wants the leading digit.
      clean += c === '.' ? `0${text.slice(i, j)}` : text.slice(i, j);
      i = j;
      continue;
    }
    if ((c === 'x' || c === 'X' || c === 'b' || c === 'B') && text[i + 1] === "'") {
      // X'4142' and B'0101' (11.1.4 "Hexadecimal Literals", 11.1.5 "Bit-Value Literals"): a
      // value, no escapes; anything but hex (or binary) digits before the quote is a syntax error.
      const close = text.indexOf("'", i + 2);
      const digits = close < 0 ? null : text.slice(i + 2, close);
      const hex = c === 'x' || c === 'X';
      if (digits === null || !(hex ? /^(?:[0-9a-fA-F]{2})*$/ : /^[01]*$/).test(digits)) {
        if (problem === null) syntaxError = true;
        problem ??= hex ? 'a malformed hexadecimal literal' : 'a malformed bit-value literal';
        clean += text.slice(i, close < 0 ? n : close + 1);
        i = close < 0 ? n : close + 1;
        continue;
      }
      tokens.push({ kind: 'number', value: text.slice(i, close + 1) });
      // Its value never matters to the analysis; a long one (a driver's Buffer parameter) need not be parsed.
      clean += hex ? "X'00'" : "b'0'";
      i = close + 1;
      continue;
    }
    if (isWordStart(c)) {
      let j = i + 1;
      while (j < n && isWordChar(text[j] as string)) j++;
      tokens.push({ kind: 'word', value: text.slice(i, j).toUpperCase() });
      // A character set introducer (`_utf8mb4'…'`, `_binary 'x'`) names no column: the server
      // reads it as part of the literal, the parser does not know every charset; it is blanked.
      const introducer = c === '_' && CHARSETS.has(text.slice(i + 1, j).toLowerCase()) && /^\s*['"]/.test(text.slice(j, j + 64));
      clean += introducer ? ' '.repeat(j - i) : text.slice(i, j);
      i = j;
      continue;
    }
    if (c === '\\') {
      // `\N` outside a string is NULL in MySQL; nothing else starts with a backslash there.
      const v = text.slice(i, i + 2);
      tokens.push({ kind: 'symbol', value: v });
      clean += v === '\\N' ? ' NULL ' : v;
      i += 2;
      continue;
    }
    tokens.push({ kind: 'symbol', value: c });
    clean += c;
    i++;
  }
  if (inExec) problem ??= 'an unterminated executable comment';
  finish(n);
  return out;
}
