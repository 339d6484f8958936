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
  private readonly exact = new Map<string, StatementAnalysis[]>();
  hits = 0;
  misses = 0;

  constructor(private readonly maxEntries: number) {}

  /** Key of the exact-text cache, or null when the text is too long to keep. */
  exactKey(text: string, settings: SqlSessionSettings): string | null {
    if (text.length > MAX_EXACT_TEXT || this.maxEntries <= 0) return null;
    return `${settings.standardConformingStrings ? 'on' : 'off'}\u0000${settings.searchPath.join('\u0001')}\u0000${settings.user ?? ''}\u0000${text}`;
  }

  lookupExact(key: string): StatementAnalysis[] | null {
    const hit = this.exact.get(key);
    if (hit === undefined) return null;
    this.exact.delete(key);
    this.exact.set(key, hit);
    this.hits++;
    return hit;
  }

  /** Any analysis of exactly this text (parsing is deterministic for a text and its settings). */
  storeExact(key: string, statements: StatementAnalysis[]): void {
    this.exact.set(key, deepFreeze(statements));
    const max = Math.min(this.maxEntries, MAX_EXACT_ENTRIES);
    while (this.exact.size > max) {
      const oldest = this.exact.keys().next();
      if (oldest.done === true) break;
      this.exact.delete(oldest.value);
    }
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
    const scs = settings.standardConformingStrings ? 'on' : 'off';
    return `${scs}\u0000${settings.searchPath.join('\u0001')}\u0000${settings.user ?? ''}\u0000${normalized}`;
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

  clear(): void { this.entries.clear(); }
}
