/**
 * A bounded LRU of analyses keyed by the statement with its literals normalised away
 * (libpg-query's normalize: each constant becomes $n) plus the settings that change how
 * text is read. Only single-statement texts whose analysis never looked at a literal's
 * value are stored, so a hit is exactly what a fresh parse would give, except the text,
 * which is sliced from the new query string: the parts around the statement hold no
 * literal, so its offset and the length after it are the same for every text with the key.
 */
import { normalizeSync } from 'libpg-query';
import type { SqlSessionSettings, StatementAnalysis } from '../types.js';
import type { ParsedStatement } from './analyze.js';
import { parserText } from './analyze.js';
import { GenerationalCache } from '../generational-cache.js';

/** Texts longer than this are not cached: the key would cost as much memory as the analysis. */
const MAX_CACHED_TEXT = 16 * 1024;

interface Entry { analysis: StatementAnalysis; start: number; suffix: number }

/** The exact-text cache keeps short texts only, and fewer of them. */
const MAX_EXACT_TEXT = 4 * 1024;
const MAX_EXACT_ENTRIES = 2_000;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export class AnalysisCache {
  private readonly entries = new Map<string, Entry>();
  /**
   * In front of the normalised cache: the very same text under the same settings (drivers
   * re-Parse one text per execution) is answered without normalising it again.
   */
  private readonly exact: GenerationalCache<StatementAnalysis[]>;
  hits = 0;
  misses = 0;

  constructor(private readonly maxEntries: number) {
    this.exact = new GenerationalCache(Math.min(maxEntries, MAX_EXACT_ENTRIES));
    this.fast = new GenerationalCache(maxEntries);
  }

  /** Key of the exact-text cache, or null when the text is too long to keep. */
  exactKey(text: string, settings: SqlSessionSettings): string | null {
    if (text.length > MAX_EXACT_TEXT || this.maxEntries <= 0) return null;
    return `${settings.standardConformingStrings ? 'on' : 'off'}\u0000${settings.searchPath.join('\u0001')}\u0000${settings.user ?? ''}\u0000${text}`;
  }

  lookupExact(key: string): StatementAnalysis[] | null {
    const hit = this.exact.get(key);
    if (hit === undefined) return null;
    this.hits++;
    return hit;
  }

  /** Any analysis of exactly this text (parsing is deterministic for a text and its settings). */
  storeExact(key: string, statements: StatementAnalysis[]): void {
    this.exact.set(key, deepFreeze(statements));
  }

  get size(): number { return this.entries.size; }

  /** The cache key for `text`, or null when it must not be cached. */
  keyFor(text: string, settings: SqlSessionSettings): string | null {
    if (text.length > MAX_CACHED_TEXT || this.maxEntries <= 0) return null;
    let normalized: string;
    try {
      normalized = normalizeSync(parserText(text, settings).text);
    } catch {
      return null;
    }
    return settingsPrefix(settings) + normalized;
  }

  /**
   * Entries under a key built without the parser (see fastNormalize), each stored only after
   * the parser's own key for that very text was found to be the same string. Kept apart from
   * `entries`: a fast key may equal a parser key of a text that reads otherwise (`ORDER BY 1`
   * is a column position the parser keeps, `ORDER BY 'x'` a constant it replaces).
   */
  private readonly fast: GenerationalCache<Entry>;

  /** The parser-free key for `text`, or null when its text is not of the plain kind fastNormalize reads. */
  fastKeyFor(text: string, settings: SqlSessionSettings): string | null {
    if (text.length > MAX_EXACT_TEXT || this.maxEntries <= 0) return null;
    const body = fastNormalize(text);
    return body === null ? null : settingsPrefix(settings) + body;
  }

  lookupFast(fastKey: string, text: string): StatementAnalysis | null {
    const entry = this.fast.get(fastKey);
    if (entry === undefined || entry.start + entry.suffix > text.length) return null;
    this.hits++;
    return { ...entry.analysis, text: text.slice(entry.start, text.length - entry.suffix) };
  }

  /**
   * After the parser's key `key` answered (or stored) an analysis: when the fast key of the
   * same text is that very string, the fast key is known to replace exactly the constants
   * the parser replaces in texts of this shape, and the entry is kept under it too.
   */
  promote(key: string, fastKey: string | null): void {
    if (fastKey === null || fastKey !== key) return;
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.fast.set(fastKey, entry);
  }

  lookup(key: string, text: string): StatementAnalysis | null {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.start + entry.suffix > text.length) { this.misses++; return null; }
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.hits++;
    return { ...entry.analysis, text: text.slice(entry.start, text.length - entry.suffix) };
  }

  store(key: string, parsed: readonly ParsedStatement[]): void {
    const only = parsed[0];
    if (parsed.length !== 1 || only === undefined || only.literalDependent || only.analysis.unparsed) return;
    this.entries.set(key, { analysis: deepFreeze(only.analysis), start: only.start, suffix: only.suffix });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }

  clear(): void {
    this.entries.clear();
    this.fast.clear();
  }
}

function settingsPrefix(settings: SqlSessionSettings): string {
  return `${settings.standardConformingStrings ? 'on' : 'off'}\u0000${settings.searchPath.join('\u0001')}\u0000${settings.user ?? ''}\u0000`;
}

/** Characters of the plain texts fastNormalize reads: no quotes, no $, no comments' slash, nothing non-ASCII. */
const PLAIN_TEXT = /^[A-Za-z0-9_ \t\r\n,.;:()=<>*+-]*$/;
const WORD_OR_DOT = /[A-Za-z0-9_.]/;

/**
 * libpg-query's normalize for the commonest shape of statement, without the parser: each
 * unsigned integer standing alone (not part of a name, a decimal or an exponent) becomes
 * $1, $2 … in order. Texts with quotes, dollar signs, comments or any other character are
 * not read (null). The result is trusted only where the parser produced the same string for
 * a text of the same shape (AnalysisCache.promote): digits the parser keeps (ORDER BY 1,
 * varchar(10)) make the strings differ, and such shapes are never served from the fast map.
 */
export function fastNormalize(text: string): string | null {
  if (!PLAIN_TEXT.test(text) || text.includes('--')) return null;
  let out = '';
  let n = 0;
  let last = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) continue;
    let j = i + 1;
    while (j < text.length && text.charCodeAt(j) >= 48 && text.charCodeAt(j) <= 57) j++;
    const before = i > 0 ? text[i - 1] ?? '' : '';
    const after = text[j] ?? '';
    if ((before === '' || !WORD_OR_DOT.test(before)) && (after === '' || !WORD_OR_DOT.test(after))) {
      out += `${text.slice(last, i)}$${++n}`;
      last = j;
    }
    i = j - 1;
  }
  return out + text.slice(last);
}
