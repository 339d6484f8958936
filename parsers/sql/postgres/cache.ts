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

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export class AnalysisCache {
  private readonly entries = new Map<string, Entry>();
  hits = 0;
  misses = 0;

  constructor(private readonly maxEntries: number) {}

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
