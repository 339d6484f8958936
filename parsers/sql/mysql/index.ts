/**
 * MySQL/MariaDB statement analysis for policy and masking. Our lexer reads the text as the
 * server does (comments, executable comments, quoting under the session's sql_mode) and
 * splits it; node-sql-parser supplies tables, columns and lineage of each statement.
 *
 * ANSI_QUOTES changes what `"x"` means and airlock may not know the session's sql_mode: a
 * text with a double-quoted token is read both ways, and what policy sees is the union
 * (any kind, table or function either reading has); lineage that differs is unknown.
 */
import type { SqlAnalysis, SqlSessionSettings, StatementAnalysis } from '../types.js';
import { lexMysql, type LexedStatement, type MysqlLexOptions } from './lexer.js';
import { analyzeMysqlStatement, unparsedMysql } from './analyze.js';

const CACHE_MAX = 5_000;
const CACHE_TEXT_MAX = 8 * 1024;
const cache = new Map<string, StatementAnalysis[]>();

/**
 * Analyses of statements by their token stream with every string and number replaced by `?`:
 * no part of an analysis depends on a literal's value (kinds come from keywords; tables,
 * columns and functions are never literals), so `SELECT c FROM t WHERE id = 7` and `… = 8`
 * share one parse. The statement's own text is put back on each hit.
 */
const shapes = new Map<string, StatementAnalysis>();

function shapeKey(st: LexedStatement, opts: MysqlLexOptions): string | null {
  if (st.problem !== null || st.tokens.length > 2_000) return null;
  let key = `${opts.ansiQuotes ? 1 : 0}${opts.serverVersion ?? ''}`;
  for (const t of st.tokens) key += t.kind === 'string' || t.kind === 'number' ? ' ?' : ` ${t.kind[0]}${t.value}`;
  return key;
}

function analyzeStatement(st: LexedStatement, opts: MysqlLexOptions): StatementAnalysis {
  const key = shapeKey(st, opts);
  const hit = key === null ? undefined : shapes.get(key);
  if (hit !== undefined) return { ...hit, text: st.text };
  const analysis = analyzeMysqlStatement(st);
  if (key !== null) {
    shapes.set(key, analysis);
    if (shapes.size > CACHE_MAX) {
      const oldest = shapes.keys().next();
      if (oldest.done !== true) shapes.delete(oldest.value);
    }
  }
  return analysis;
}

function analyzeWith(text: string, opts: MysqlLexOptions): StatementAnalysis[] {
  const lexed = lexMysql(text, opts);
  if (lexed.length === 0) return [{ text, kinds: ['empty'], reads: [], writes: [], functions: [], withoutWhere: false, opaque: false, unparsed: false, outputs: null, predicateColumns: [] }];
  return lexed.map((st) => analyzeStatement(st, opts));
}

function union<T>(a: readonly T[], b: readonly T[], key: (x: T) => string): T[] {
  const seen = new Set(a.map(key));
  return [...a, ...b.filter((x) => !seen.has(key(x)))];
}

const refKey = (r: { schema: string | null; name: string }): string => `${r.schema ?? ''}\u0000${r.name}`;

/** Both readings of one statement as one: what either reading could do. */
function merged(a: StatementAnalysis, b: StatementAnalysis): StatementAnalysis {
  if (a.unparsed) return b.unparsed ? a : { ...b, text: a.text };
  if (b.unparsed) return a;
  const sameLineage = JSON.stringify(a.outputs) === JSON.stringify(b.outputs);
  return {
    text: a.text,
    kinds: union(a.kinds, b.kinds, (k) => k),
    reads: union(a.reads, b.reads, refKey),
    writes: union(a.writes, b.writes, refKey),
    functions: union(a.functions, b.functions, (f) => f),
    withoutWhere: a.withoutWhere || b.withoutWhere,
    opaque: a.opaque || b.opaque,
    unparsed: false,
    outputs: sameLineage ? a.outputs : (a.outputs?.map((o) => ({ ...o, unknown: true })) ?? null),
    predicateColumns: union(a.predicateColumns, b.predicateColumns, (p) => `${refKey(p.relation)}\u0000${p.column}`),
  };
}

export function analyzeMysql(text: string, settings: SqlSessionSettings): SqlAnalysis {
  const opts: MysqlLexOptions = {
    noBackslashEscapes: settings.standardConformingStrings,
    ansiQuotes: settings.ansiQuotes ?? false,
    ...(settings.serverVersion === undefined ? {} : { serverVersion: settings.serverVersion }),
  };
  const key = text.length <= CACHE_TEXT_MAX ? `${opts.noBackslashEscapes ? 1 : 0}${opts.ansiQuotes ? 1 : 0}${opts.serverVersion ?? ''}\u0000${text}` : null;
  const hit = key === null ? undefined : cache.get(key);
  if (hit !== undefined) return { dialect: 'mysql', statements: hit };
  let statements = analyzeWith(text, opts);
  if (text.includes('"')) {
    const other = analyzeWith(text, { ...opts, ansiQuotes: !opts.ansiQuotes });
    // Different statement boundaries under the two readings: nothing can be trusted.
    statements = other.length === statements.length ? statements.map((s, i) => merged(s, other[i] as StatementAnalysis)) : [unparsedMysql(text)];
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
