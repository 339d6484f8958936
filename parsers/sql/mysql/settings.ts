/**
 * Which session settings that change how the server reads later text a statement assigns:
 * sql_mode (NO_BACKSLASH_ESCAPES, ANSI_QUOTES) and the client character set (SET NAMES,
 * SET CHARACTER SET, character_set_client). Read from the statement's tokens, so that
 * `SET @saved = @@character_set_client` (which reads a setting into a user variable) is not
 * taken for a change, and `SET NAMES koi8r` tells which character set follows.
 *
 * Sources: MariaDB "SET", "SET NAMES", "SET CHARACTER SET"; MySQL 8.0 reference 13.7.6.1
 * "SET Syntax for Variable Assignment".
 */
import type { StatementAnalysis } from '../types.js';
import { lexMysql, type Token } from './lexer.js';

export interface SettingChanges {
  /** The statement assigns sql_mode (or may: its effects are unknown). */
  sqlMode: boolean;
  /**
   * The client character set after the statement, lower-cased: undefined when the statement
   * does not set it, null when it sets it to something the text does not tell (a variable,
   * DEFAULT, an expression, a GLOBAL assignment beside it, or a statement whose effects are unknown).
   */
  clientCharset: string | null | undefined;
  /**
   * `SET character_set_client = @v`: the user variable the character set comes from (clientCharset
   * is then null unless the caller knows what @v holds). Lower-cased, without the @.
   */
  clientCharsetFrom?: string;
  /** User variables assigned the session's character set as it is (`SET @saved = @@character_set_client`, as mysqldump writes). */
  savesCharsetTo: string[];
}

const NONE: SettingChanges = { sqlMode: false, clientCharset: undefined, savesCharsetTo: [] };
const MENTIONS_MODE = /sql_mode|@@|\ball\b/i;
const MENTIONS_CHARSET = /character_set_client|character\s+set|charset|\bnames\b|@@|\ball\b/i;
const SCOPES = new Set(['GLOBAL', 'SESSION', 'LOCAL', 'PERSIST', 'PERSIST_ONLY']);

export function mysqlSettingChanges(s: StatementAnalysis): SettingChanges {
  if (s.unparsed || s.opaque) {
    // What such a statement sets cannot be read; whether it may is judged by its words.
    return { sqlMode: MENTIONS_MODE.test(s.text), clientCharset: MENTIONS_CHARSET.test(s.text) ? null : undefined, savesCharsetTo: [] };
  }
  if (!s.kinds.includes('set')) return NONE;
  // Where a string ends depends on NO_BACKSLASH_ESCAPES and ANSI_QUOTES (`SET @x = 'a\', character_set_client = …`):
  // read under every mode; readings that disagree on the character set leave it unknown.
  const readings = [false, true].flatMap((noBackslashEscapes) => [false, true].map((ansiQuotes) => changesIn(s.text, noBackslashEscapes, ansiQuotes)));
  const first = readings[0] as SettingChanges;
  const agree = readings.every((r) => JSON.stringify(r) === JSON.stringify(first));
  if (agree) return first;
  return {
    sqlMode: readings.some((r) => r.sqlMode),
    clientCharset: readings.every((r) => r.clientCharset === undefined) ? undefined : null,
    savesCharsetTo: [],
  };
}

/**
 * The user variables a statement names (so may write: `SELECT @v := …`, `… INTO @v`, `SET @v`),
 * lower-cased without the @; 'any' when its effects are unknown, it writes rows (a trigger
 * may assign any user variable; DDL fires none) or it reads a relation (a view may call a
 * stored function that does).
 */
export function userVariablesTouched(s: StatementAnalysis): Set<string> | 'any' {
  // A relation read may be a view that calls a stored function, which may assign any variable.
  if (s.unparsed || s.opaque || s.reads.length > 0 || s.kinds.some((k) => FIRES_TRIGGERS.has(k))) return 'any';
  if (!s.text.includes('@')) return new Set();
  // `SET character_set_client = @v` only reads @v: the one mention of a restore's source is no write.
  const restoredFrom = mysqlSettingChanges(s).clientCharsetFrom;
  const names = new Set<string>();
  for (const noBackslashEscapes of [false, true]) {
    for (const ansiQuotes of [false, true]) {
      const tokens = lexMysql(s.text, { noBackslashEscapes, ansiQuotes, assumeVersioned: 'run' }).flatMap((st) => st.tokens);
      const mentions = tokens.map((_t, i) => userVariableAt(tokens, i)).filter((n): n is string => n !== null);
      for (const name of mentions) {
        if (name !== restoredFrom || mentions.filter((m) => m === name).length > 1) names.add(name);
      }
    }
  }
  return names;
}

/** Kinds that add, change or remove rows (and so may fire a trigger), or run stored code. */
const FIRES_TRIGGERS = new Set(['insert', 'update', 'delete', 'replace', 'merge', 'load_data', 'load_data_local', 'call', 'do', 'execute']);

/** `@name`, `@'name'`, @`name`, @"name" at tokens[i] (not `@@system`): the name, lower-cased. */
function userVariableAt(tokens: readonly Token[], i: number): string | null {
  const t = tokens[i];
  if (t?.kind !== 'variable' || t.value.startsWith('@@')) return null;
  if (t.value !== '@') return t.value.slice(1).toLowerCase();
  const next = tokens[i + 1];
  return next !== undefined && (next.kind === 'string' || next.kind === 'ident') ? next.value.toLowerCase() : '';
}

function changesIn(text: string, noBackslashEscapes: boolean, ansiQuotes: boolean): SettingChanges {
  const tokens = lexMysql(text, { noBackslashEscapes, ansiQuotes, assumeVersioned: 'run' })[0]?.tokens ?? [];
  if (tokens[0]?.kind !== 'word' || tokens[0].value !== 'SET') return NONE;
  const out: SettingChanges = { sqlMode: false, clientCharset: undefined, savesCharsetTo: [] };
  let global = false;
  for (const item of assignments(tokens.slice(1))) {
    let i = 0;
    const head = item[0];
    if (head?.kind === 'word' && SCOPES.has(head.value)) {
      if (head.value !== 'SESSION' && head.value !== 'LOCAL') global = true;
      i++;
    }
    const first = item[i];
    if (first === undefined) continue;
    if (first.kind === 'word' && (first.value === 'NAMES' || first.value === 'CHARSET' || (first.value === 'CHARACTER' && item[i + 1]?.value === 'SET'))) {
      const at = first.value === 'CHARACTER' ? i + 2 : i + 1;
      const rest = item.slice(at);
      // SET NAMES cs [COLLATE coll]
      const plain = rest.length === 1 || (first.value === 'NAMES' && rest.length === 3 && rest[1]?.kind === 'word' && rest[1].value === 'COLLATE');
      out.clientCharset = plain ? charsetName(rest[0]) : null;
      continue;
    }
    const saved = userVariableAt(item, i);
    if (saved !== null) {
      // @v = @@character_set_client | @@session.character_set_client, and nothing else
      const at = item[i]?.value === '@' ? i + 2 : i + 1;
      const rhs = item.slice(item[at]?.value === ':' ? at + 2 : at + 1);
      if ((item[at]?.value === '=' || item[at]?.value === ':') && rhs.length === 1 && rhs[0]?.kind === 'variable' && /^@@(?:session\.|local\.)?character_set_client$/i.test(rhs[0].value)) out.savesCharsetTo.push(saved);
      continue;
    }
    let name: string | null = null;
    if (first.kind === 'variable' && first.value.startsWith('@@')) {
      // @@name, @@session.name, @@local.name, @@global.name
      const parts = first.value.slice(2).toLowerCase().split('.');
      if (parts.length === 2 && parts[0] !== 'session' && parts[0] !== 'local') global = true;
      name = parts[parts.length - 1] ?? null;
    } else if (first.kind === 'word' || first.kind === 'ident') {
      name = first.value.toLowerCase();
    }
    if (name === 'sql_mode') out.sqlMode = true;
    if (name === 'character_set_client') {
      const value = item.slice(i + 1);
      const eq = value[0]?.kind === 'symbol' && (value[0].value === '=' || value[0].value === ':');
      const rhs = value.slice(value[0]?.value === ':' ? 2 : 1);
      out.clientCharset = eq && rhs.length === 1 ? charsetName(rhs[0]) : null;
      const from = eq ? userVariableAt(rhs, 0) : null;
      if (from !== null && rhs.length === (rhs[0]?.value === '@' ? 2 : 1)) out.clientCharsetFrom = from;
      else delete out.clientCharsetFrom;
    }
  }
  // A GLOBAL scope in the list may carry over to a later assignment: the session's value is not known.
  if (global && out.clientCharset !== undefined) {
    out.clientCharset = null;
    delete out.clientCharsetFrom;
  }
  // Saved beside a change in one statement, the variable may hold either set.
  if (global || out.clientCharset !== undefined) out.savesCharsetTo = [];
  return out;
}

/** The top-level comma-separated items of a SET list. */
function assignments(tokens: readonly Token[]): Token[][] {
  const out: Token[][] = [[]];
  let depth = 0;
  for (const t of tokens) {
    if (t.kind === 'symbol' && t.value === '(') depth++;
    if (t.kind === 'symbol' && t.value === ')') depth--;
    if (depth === 0 && t.kind === 'symbol' && t.value === ',') out.push([]);
    else out[out.length - 1]?.push(t);
  }
  return out;
}

function charsetName(t: Token | undefined): string | null {
  if (t === undefined || (t.kind !== 'word' && t.kind !== 'ident' && t.kind !== 'string')) return null;
  if (t.kind === 'word' && t.value === 'DEFAULT') return null;
  return /^[a-z0-9_]+$/i.test(t.value) ? t.value.toLowerCase() : null;
}
