/**
 * Password literals never reach the audit log. A small SQL lexer finds the literal after
 * PASSWORD / IDENTIFIED BY / SET PASSWORD … = (in any string form: '…', E'…', N'…',
 * _charset'…', $tag$…$tag$, MySQL "…") and replaces it with '***'; `password=` inside a
 * string (libpq / dblink connection strings) is cut too. A naive second pass covers a
 * lexer thrown off by dialect differences (MySQL `--x` is not a comment): over-scrubbing
 * a statement's text is acceptable, leaking a password is not.
 *
 * Every recorded string is also cut of every written form (src/masking/secret-forms.ts) of
 * the credentials that open sessions inject upstream: whatever path a key takes into an
 * event (an echoed body, a header, an error text), it does not reach the log or exporters.
 */
import { SecretForms } from '../masking/secret-forms.js';

type TokenKind = 'word' | 'string' | 'comment' | 'space' | 'punct';

interface Token {
  kind: TokenKind;
  start: number;
  end: number;
  /** For strings: where the literal's body (with its quotes) starts, after a prefix such as E or _utf8. */
  bodyStart?: number;
}

const REPLACEMENT = "'***'";
const WORD = /[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/y;
const DOLLAR_TAG = /\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;
const STRING_PREFIX = /^(?:[EeNnBbXx]|[Uu]&|_[A-Za-z0-9]+)$/;

/** Index just past a quoted run starting at `i` (the opening quote); backslash escapes and doubled quotes both continue it. */
function quotedEnd(text: string, i: number, quote: string): number {
  let j = i + 1;
  while (j < text.length) {
    const c = text[j];
    if (c === '\\') j += 2;
    else if (c === quote) {
      if (text[j + 1] === quote) j += 2;
      else return j + 1;
    } else j++;
  }
  return text.length;
}

function lex(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] ?? '';
    const start = i;
    if (/\s/.test(c)) {
      while (i < text.length && /\s/.test(text[i] ?? '')) i++;
      tokens.push({ kind: 'space', start, end: i });
    } else if (c === '-' && text[i + 1] === '-') {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl;
      tokens.push({ kind: 'comment', start, end: i });
    } else if (c === '/' && text[i + 1] === '*') {
      const close = text.indexOf('*/', i + 2);
      i = close < 0 ? text.length : close + 2;
      tokens.push({ kind: 'comment', start, end: i });
    } else if (c === "'" || c === '"') {
      i = quotedEnd(text, i, c);
      tokens.push({ kind: 'string', start, end: i, bodyStart: start });
    } else if (c === '`') {
      const close = text.indexOf('`', i + 1);
      i = close < 0 ? text.length : close + 1;
      tokens.push({ kind: 'word', start, end: i });
    } else if (c === '$' && (DOLLAR_TAG.lastIndex = i, DOLLAR_TAG.test(text))) {
      const tag = text.slice(i, DOLLAR_TAG.lastIndex);
      const close = text.indexOf(tag, DOLLAR_TAG.lastIndex);
      i = close < 0 ? text.length : close + tag.length;
      tokens.push({ kind: 'string', start, end: i, bodyStart: start });
    } else if ((WORD.lastIndex = i, WORD.test(text))) {
      i = WORD.lastIndex;
      // A prefixed string: E'…', N'…', U&'…', _utf8mb4'…'.
      const word = text.slice(start, i);
      const amp = text[i] === '&' ? 1 : 0;
      const q = text[i + amp];
      if ((q === "'" || q === '"') && STRING_PREFIX.test(word + (amp ? '&' : ''))) {
        const bodyStart = i + amp;
        i = quotedEnd(text, bodyStart, q);
        tokens.push({ kind: 'string', start, end: i, bodyStart });
      } else {
        tokens.push({ kind: 'word', start, end: i });
      }
    } else {
      i++;
      tokens.push({ kind: 'punct', start, end: i });
    }
  }
  return tokens;
}

/**
 * Finds the password literal following a trigger keyword at tokens[k] and returns its
 * index, or -1. Grammar after PASSWORD: [FOR user…] [=] [PASSWORD] [(] string; after
 * IDENTIFIED: [WITH plugin] (BY|AS) [PASSWORD] [(] string.
 */
function literalAfter(text: string, tokens: Token[], k: number): number {
  const upper = (t: Token | undefined): string => (t === undefined ? '' : text.slice(t.start, t.end).toUpperCase());
  const isPunct = (t: Token | undefined, p: string): boolean => t?.kind === 'punct' && text.slice(t.start, t.end) === p;
  let j = k + 1;
  const skip = (): void => {
    while (j < tokens.length && (tokens[j]?.kind === 'space' || tokens[j]?.kind === 'comment')) j++;
  };
  const trigger = upper(tokens[k]);
  skip();
  if (trigger === 'IDENTIFIED') {
    if (upper(tokens[j]) === 'WITH') {
      j++;
      skip();
      j++; // the plugin name, a word or a string
      skip();
    }
    if (upper(tokens[j]) !== 'BY' && upper(tokens[j]) !== 'AS') return -1;
    j++;
    skip();
    if (upper(tokens[j]) === 'PASSWORD') {
      j++;
      skip();
    }
  } else if (upper(tokens[j]) === 'FOR') {
    // SET PASSWORD FOR 'u'@'h' = …: the user is a few tokens, never far.
    const limit = j + 16;
    while (j < tokens.length && j < limit && !isPunct(tokens[j], '=')) j++;
    if (!isPunct(tokens[j], '=')) return -1;
  }
  if (isPunct(tokens[j], '=')) {
    j++;
    skip();
  }
  // A function around the literal: PASSWORD('x'), crypt('x', gen_salt('bf')), md5('x').
  if (tokens[j]?.kind === 'word') {
    const word = j;
    j++;
    skip();
    if (!isPunct(tokens[j], '(')) return -1;
    j = word + 1;
    skip();
  }
  if (isPunct(tokens[j], '(')) {
    j++;
    skip();
  }
  return tokens[j]?.kind === 'string' ? j : -1;
}

const CONNINFO_PASSWORD = /(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/gi;
const NAIVE = /((?:password|identified\s+(?:with\s+\S+\s+)?(?:by|as))(?:\s+|\s*[=(]\s*)(?:password\s*\(\s*)?)(?:[EeNn]|_[A-Za-z0-9]+)?(['"])/gi;

function naivePass(text: string): string {
  let out = '';
  let last = 0;
  NAIVE.lastIndex = 0;
  for (let m = NAIVE.exec(text); m !== null; m = NAIVE.exec(text)) {
    const quote = m[2] ?? "'";
    const open = m.index + m[0].length - 1;
    const close = quotedEnd(text, open, quote);
    out += text.slice(last, m.index) + (m[1] ?? '') + REPLACEMENT;
    last = close;
    NAIVE.lastIndex = Math.max(close, NAIVE.lastIndex);
  }
  return out + text.slice(last);
}

export function scrubStatement(text: string): string {
  if (!/password|identified/i.test(text)) return text;
  const tokens = lex(text);
  const replace = new Map<number, string>();
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k];
    if (t === undefined) continue;
    // A trigger is a bare word or a quoted name ("password", `password`).
    const quotedName = t.kind === 'string' && text[t.start] === '"';
    if (t.kind === 'word' || quotedName) {
      const w = text.slice(t.start, t.end).replace(/^[`"]|[`"]$/g, '').toUpperCase();
      // MASTER_PASSWORD, user_password: a suffix counts too.
      if (w === 'PASSWORD' || w.endsWith('_PASSWORD') || w === 'IDENTIFIED') {
        const lit = literalAfter(text, tokens, k);
        if (lit >= 0) replace.set(lit, REPLACEMENT);
      }
    }
    if (t.kind === 'string' && !replace.has(k)) {
      const s = text.slice(t.start, t.end);
      if (/password\s*=/i.test(s)) replace.set(k, s.replace(CONNINFO_PASSWORD, '$1***'));
    }
  }
  let out = '';
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k];
    if (t === undefined) continue;
    const r = replace.get(k);
    out += r === undefined ? text.slice(t.start, t.end) : r;
  }
  return naivePass(out);
}

/** Scrubs every string in an event body (statement text, approval summaries, nested actions). */
export function scrubDeep<T>(value: T): T {
  if (typeof value === 'string') return scrubStatement(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => scrubDeep(v)) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = scrubDeep(v);
    return out as T;
  }
  return value;
}

/** Injected secrets of open sessions, each counted by the sessions that hold it. */
const guarded = new Map<string, number>();
let guardForms: SecretForms | null = null;

/** Keeps every form of `values` out of every record until the returned function is called. */
export function guardSecrets(values: readonly string[]): () => void {
  for (const v of values) guarded.set(v, (guarded.get(v) ?? 0) + 1);
  guardForms = null;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    for (const v of values) {
      const n = (guarded.get(v) ?? 1) - 1;
      if (n <= 0) guarded.delete(v);
      else guarded.set(v, n);
    }
    guardForms = null;
  };
}

/** Every form of the guarded secrets cut from `text` (as it is when none is guarded). */
export function scrubGuarded(text: string): string {
  if (guarded.size === 0) return text;
  guardForms ??= SecretForms.of([...guarded.keys()]);
  return guardForms.scrub(text);
}

/** Whether any secret is guarded now: the logger's cheap test before it walks a line. */
export function guardingSecrets(): boolean {
  return guarded.size > 0;
}

/** What every string of an audit event goes through: password literals, then the guarded secrets' forms. */
export function scrubRecorded(text: string): string {
  return scrubGuarded(scrubStatement(text));
}
