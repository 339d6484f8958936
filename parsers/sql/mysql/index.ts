/**
 * MySQL/MariaDB statement analysis for policy and masking (see analyze.ts for how a text is
 * read). ANSI_QUOTES changes what `"x"` means and airlock may not know the session's
 * sql_mode: unless the settings say, a text with a double-quote is read both ways and what
 * policy sees is the union (any kind, table or function either reading has); lineage that
 * differs is unknown; either reading unparsed makes the statement unparsed.
 */
import type { SqlAnalysis, SqlSessionSettings, StatementAnalysis } from '../types.js';
import { analyzeText, bothReadings, lexOptions, unparsedStatement } from './analyze.js';
import { lexMysql } from './lexer.js';
import { withinDepth } from '../depth.js';
import { GenerationalCache } from '../generational-cache.js';

export { unparsedStatement as unparsedMysql } from './analyze.js';

const CACHE_MAX = 5_000;
const CACHE_TEXT_MAX = 8 * 1024;
/** Whole texts, exactly: drivers send the same text again and again. */
const cache = new GenerationalCache<StatementAnalysis[]>(CACHE_MAX);

export function analyzeMysql(text: string, settings: SqlSessionSettings): SqlAnalysis {
  const key = text.length <= CACHE_TEXT_MAX
    ? `${settings.standardConformingStrings ? 1 : 0}${settings.ansiQuotes === undefined ? '?' : settings.ansiQuotes ? 1 : 0}${settings.serverVersion ?? ''}\u0000${text}`
    : null;
  const hit = key === null ? undefined : cache.get(key);
  if (hit !== undefined) return { dialect: 'mysql', statements: hit };
  let statements: StatementAnalysis[];
  if (settings.ansiQuotes === undefined && text.includes('"')) {
    const a = withinDepth(() => analyzeText(text, { ...settings, ansiQuotes: false }));
    const b = withinDepth(() => analyzeText(text, { ...settings, ansiQuotes: true }));
    // The server runs statements one by one and stops at the first it cannot even tokenize (an
    // unterminated quote or comment, a malformed X'…'): under ANSI_QUOTES `SELECT "a\"b"` is an
    // identifier and then an unterminated quote, so nothing of it runs in that sql_mode and only
    // the string reading matters. Each reading is cut before its first such statement.
    const ra = a.slice(0, runnable(text, settings, false));
    const rb = b.slice(0, runnable(text, settings, true));
    if (rb.length === 0 && ra.length > 0) statements = a;
    else if (ra.length === 0 && rb.length > 0) statements = b;
    // Different statement boundaries under the two readings: nothing can be trusted.
    else statements = ra.length === rb.length && ra.length > 0
      ? [...ra.map((s, i) => bothReadings(s, rb[i] as StatementAnalysis)), ...a.slice(ra.length)]
      : a.length === b.length ? a.map((s, i) => bothReadings(s, b[i] as StatementAnalysis)) : [unparsedStatement(text.trim())];
  } else {
    statements = withinDepth(() => analyzeText(text, { ...settings, ansiQuotes: settings.ansiQuotes ?? false }));
  }
  if (key !== null) cache.set(key, statements);
  return { dialect: 'mysql', statements };
}

/**
 * How many statements of the text the server may run under this ANSI_QUOTES setting: those
 * before the first it rejects while tokenizing, whichever way a versioned executable comment is
 * read (the larger count).
 */
function runnable(text: string, settings: SqlSessionSettings, ansiQuotes: boolean): number {
  const opts = lexOptions({ ...settings, ansiQuotes });
  return Math.max(...(['run', 'skip'] as const).map((assumeVersioned) => {
    const lexed = lexMysql(text, { ...opts, assumeVersioned });
    const k = lexed.findIndex((st) => st.syntaxError);
    return k < 0 ? Number.POSITIVE_INFINITY : k;
  }));
}
