/**
 * One query string → one StatementAnalysis per statement, split by the parser itself.
 * A string the parser rejects is rejected whole by the server too (exec_simple_query
 * parses the entire string before running any of it), so it becomes one `unparsed` entry.
 */
import { parseSync } from 'libpg-query';
import type { StatementAnalysis, SqlSessionSettings } from '../types.js';
import { analyzeRoutineBody } from './body.js';
import { collectStatement, emptyEffects, setBodyAnalyzer } from './effects.js';
import { statementLineage } from './lineage.js';
import { isObject, list } from './node.js';
import { rewriteForStandardStrings } from './quoting.js';
import { isDepthError, tooDeep } from '../depth.js';

setBodyAnalyzer(analyzeRoutineBody);

/** A statement's analysis plus what the cache needs to reuse it for another text. */
export interface ParsedStatement {
  analysis: StatementAnalysis;
  /** Char offset of the statement in the query string, and chars after its end. */
  start: number;
  suffix: number;
  /** Depends on a literal's value: must not be shared between texts with the same fingerprint. */
  literalDependent: boolean;
}

export function unparsedStatement(text: string, syntaxError?: string): StatementAnalysis {
  return {
    text, kinds: ['other'], reads: [], writes: [], functions: [], withoutWhere: false,
    opaque: true, unparsed: true, outputs: null, predicateColumns: [],
    ...(syntaxError === undefined ? {} : { syntaxError }),
  };
}

/**
 * libpg-query's reason for rejecting the text, as PostgreSQL words a syntax error ("syntax
 * error at or near "SELEC" at character 1"); undefined when the error says nothing usable.
 */
function syntaxErrorOf(e: unknown, text: string): string | undefined {
  const details = (e as { sqlDetails?: { message?: unknown; cursorPosition?: unknown } } | null)?.sqlDetails;
  const message = typeof details?.message === 'string' ? details.message : e instanceof Error ? e.message : undefined;
  if (message === undefined || message === '') return undefined;
  const at = typeof details?.cursorPosition === 'number' ? byteToCharOffsets(text)(details.cursorPosition) + 1 : null;
  return at === null ? message : `${message} at character ${at}`;
}

function emptyStatement(text: string): StatementAnalysis {
  return {
    text, kinds: ['empty'], reads: [], writes: [], functions: [], withoutWhere: false,
    opaque: false, unparsed: false, outputs: [], predicateColumns: [],
  };
}

/** Maps libpg-query's UTF-8 byte offsets to string offsets. */
function byteToCharOffsets(text: string): (byte: number) => number {
  if (Buffer.byteLength(text, 'utf8') === text.length) return (b) => b;
  const bytes = Buffer.from(text, 'utf8');
  return (b) => bytes.subarray(0, Math.min(b, bytes.length)).toString('utf8').length;
}

/** The text libpg-query must see for the server's reading of `text` under `settings`. */
export function parserText(text: string, settings: SqlSessionSettings): { text: string; quotingMatters: boolean } {
  // libpg-query reads text as the server does with the setting on: nothing to rewrite.
  if (settings.standardConformingStrings) return { text, quotingMatters: false };
  return rewriteForStandardStrings(text, false);
}

export function parseStatements(text: string, settings: SqlSessionSettings): ParsedStatement[] {
  const source = parserText(text, settings);
  let stmts: unknown[];
  try {
    stmts = list(parseSync(source.text).stmts);
  } catch (e) {
    if (isDepthError(e)) throw tooDeep();
    if (text.trim() === '') return [{ analysis: emptyStatement(text), start: 0, suffix: 0, literalDependent: false }];
    return [{ analysis: unparsedStatement(text, syntaxErrorOf(e, source.text)), start: 0, suffix: 0, literalDependent: true }];
  }
  if (stmts.length === 0) return [{ analysis: emptyStatement(text), start: 0, suffix: 0, literalDependent: false }];

  const toChar = byteToCharOffsets(text);
  const totalBytes = Buffer.byteLength(text, 'utf8');
  const out: ParsedStatement[] = [];
  for (const raw of stmts) {
    if (!isObject(raw)) continue;
    const startByte = typeof raw.stmt_location === 'number' ? raw.stmt_location : 0;
    const lenBytes = typeof raw.stmt_len === 'number' && raw.stmt_len > 0 ? raw.stmt_len : totalBytes - startByte;
    const start = toChar(startByte);
    const end = toChar(startByte + lenBytes);
    const fx = emptyEffects();
    collectStatement(raw.stmt, fx);
    // Under standard_conforming_strings = off, literal values with backslashes are not the
    // server's (see quoting.ts): an analysis of a routine body built from them is not trusted.
    if (fx.literalDependent && !settings.standardConformingStrings && source.quotingMatters) fx.opaque = true;
    const lineage = statementLineage(raw.stmt);
    out.push({
      analysis: {
        text: text.slice(start, end),
        kinds: fx.kinds.length > 0 ? fx.kinds : ['other'],
        reads: [...fx.reads.values()],
        writes: [...fx.writes.values()],
        functions: [...fx.functions],
        withoutWhere: fx.withoutWhere,
        opaque: fx.opaque,
        unparsed: false,
        outputs: lineage.outputs,
        predicateColumns: lineage.predicateColumns,
        // Every write must have been followed; a write kind with nothing followed is unknown.
        ...(fx.writes.size === 0 ? {} : { writeSources: lineage.written ?? { sources: [], unknown: true } }),
      },
      start,
      suffix: text.length - end,
      literalDependent: fx.literalDependent,
    });
  }
  return out;
}
