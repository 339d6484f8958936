/**
 * MySQL/MariaDB statement analysis for policy and masking (see analyze.ts for how a text is
 * read). ANSI_QUOTES changes what `"x"` means and airlock may not know the session's
 * sql_mode: unless the settings say, a text with a double-quote is read both ways and what
 * policy sees is the union (any kind, table or function either reading has); lineage that
 * differs is unknown; either reading unparsed makes the statement unparsed.
 */
import type { SqlAnalysis, SqlSessionSettings, StatementAnalysis } from '../types.js';
import { analyzeText, bothReadings, unparsedStatement } from './analyze.js';
import { withinDepth } from '../depth.js';

export { unparsedStatement as unparsedMysql } from './analyze.js';

const CACHE_MAX = 5_000;
const CACHE_TEXT_MAX = 8 * 1024;
/** Whole texts, exactly: drivers send the same text again and again. */
const cache = new Map<string, StatementAnalysis[]>();

export function analyzeMysql(text: string, settings: SqlSessionSettings): SqlAnalysis {
  const key = text.length <= CACHE_TEXT_MAX
    ? `${settings.standardConformingStrings ? 1 : 0}${settings.ansiQuotes === undefined ? '?' : settings.ansiQuotes ? 1 : 0}${settings.serverVersion ?? ''}\u0000${text}`
    : null;
  const hit = key === null ? undefined : cache.get(key);
  if (hit !== undefined) {
    cache.delete(key as string);
    cache.set(key as string, hit);
    return { dialect: 'mysql', statements: hit };
  }
  let statements: StatementAnalysis[];
  if (settings.ansiQuotes === undefined && text.includes('"')) {
    const a = withinDepth(() => analyzeText(text, { ...settings, ansiQuotes: false }));
    const b = withinDepth(() => analyzeText(text, { ...settings, ansiQuotes: true }));
    // Different statement boundaries under the two readings: nothing can be trusted.
    statements = a.length === b.length ? a.map((s, i) => bothReadings(s, b[i] as StatementAnalysis)) : [unparsedStatement(text.trim())];
  } else {
    statements = withinDepth(() => analyzeText(text, { ...settings, ansiQuotes: settings.ansiQuotes ?? false }));
  }
  if (key !== null) {
    cache.set(key, statements);
    if (cache.size > CACHE_MAX) {
      const oldest = cache.keys().next();
      if (oldest.done !== true) cache.delete(oldest.value);
    }
  }
  return { dialect: 'mysql', statements };
}
