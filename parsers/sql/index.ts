/**
 * SQL statement analysis for policy and masking. PostgreSQL text is parsed with
 * libpg-query (the server's own grammar compiled to WASM); see postgres/ for the parts.
 */
import { loadModule } from 'libpg-query';
import { ParserError } from '../errors.js';
import { parseStatements } from './postgres/analyze.js';
import { AnalysisCache } from './postgres/cache.js';
import { withinDepth } from './depth.js';
import type { SqlAnalysis, SqlSessionSettings, StatementAnalysis } from './types.js';

export { AnalysisCache, fastNormalize } from './postgres/cache.js';
export { resolveRelation, parseSearchPath } from './search-path.js';
export type * from './types.js';

let loaded: Promise<void> | null = null;
let ready = false;

/** Loads the parser's WASM module once; later calls return the same promise. */
export function loadSqlParsers(): Promise<void> {
  loaded ??= loadModule().then(() => { ready = true; });
  return loaded;
}

const defaultCache = new AnalysisCache(10_000);

/**
 * Analyses a PostgreSQL query string (one Query message, or one Parse) as the server will
 * read it under `settings`. Never throws on bad SQL: text the parser rejects is one statement
 * marked `unparsed` (and `opaque`). Pass `cache: null` to bypass the shared cache.
 */
export function analyzePostgres(
  text: string,
  settings: SqlSessionSettings,
  cache: AnalysisCache | null = defaultCache,
): SqlAnalysis {
  if (!ready) throw new ParserError('AIRLOCK_INTERNAL', 'analyzePostgres called before loadSqlParsers() resolved');
  const exactKey = cache?.exactKey(text, settings) ?? null;
  if (cache !== null && exactKey !== null) {
    const hit = cache.lookupExact(exactKey);
    if (hit !== null) return { dialect: 'postgres', statements: hit };
  }
  // Plain texts that differ from an analysed one only in integer constants: no parser call.
  const fastKey = cache?.fastKeyFor(text, settings) ?? null;
  if (cache !== null && fastKey !== null) {
    const hit = cache.lookupFast(fastKey, text);
    if (hit !== null) return { dialect: 'postgres', statements: [hit] };
  }
  const key = cache?.keyFor(text, settings) ?? null;
  let statements: StatementAnalysis[] | null = null;
  if (cache !== null && key !== null) {
    const hit = cache.lookup(key, text);
    if (hit !== null) statements = [hit];
  }
  if (statements === null) {
    const parsed = withinDepth(() => parseStatements(text, settings));
    if (cache !== null && key !== null) cache.store(key, parsed);
    statements = parsed.map((p) => p.analysis);
  }
  if (cache !== null && key !== null) cache.promote(key, fastKey);
  // Texts without literals (parameterised: $1 …) are the ones that come back verbatim.
  if (cache !== null && exactKey !== null && key !== null && key.endsWith(`\u0000${text}`)) cache.storeExact(exactKey, statements);
  return { dialect: 'postgres', statements };
}

/**
 * Whether `text` reads differently under standard_conforming_strings on and off (a plain
 * string literal holds a backslash). An adapter that cannot be sure of the setting in force
 * (a SET still in flight in a pipeline) should treat such text as unparsed.
 */
export { rewriteForStandardStrings } from './postgres/quoting.js';
