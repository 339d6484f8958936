/**
 * One COM_QUERY text → one StatementAnalysis per statement the server will run.
 *
 * The text is split and cleaned by lexer.ts the way the server reads it (quotes, comments,
 * executable comments kept as SQL). Each statement's kind comes first from its leading
 * keywords; node-sql-parser (MariaDB grammar) must then parse the cleaned text to a node of
 * that same kind, or the statement is `unparsed`. A few statements the parser does not
 * know but whose whole shape is a handful of tokens (KILL, FLUSH, HANDLER, PREPARE, EXECUTE,
 * SHOW, transaction control, SET NAMES …) are read from their tokens, strictly. Stored
 * programs and compound statements (BEGIN NOT ATOMIC, IF …) swallow the rest of the text,
 * as the server's parser does, and are opaque.
 */
import nsp from 'node-sql-parser';
import type { RelationRef, SqlSessionSettings, StatementAnalysis, StatementKind } from '../types.js';
import { lexMysql, type LexedStatement, type MysqlLexOptions, type Token } from './lexer.js';
import { addKind, addRead, addWrite, collectEffects, emptyEffects, kindOfType, type Effects } from './effects.js';
import { statementLineage } from './lineage.js';
import { asNode, fold, type Node } from './node.js';
import { isDepthError, tooDeep } from '../depth.js';

const parser = new nsp.Parser();
const PARSE_OPTIONS = { database: 'MariaDB' } as const;

export function unparsedStatement(text: string, syntaxError?: string): StatementAnalysis {
  return { text, kinds: ['other'], reads: [], writes: [], functions: [], withoutWhere: false, opaque: true, unparsed: true, outputs: null, predicateColumns: [], ...(syntaxError === undefined ? {} : { syntaxError }) };
}

function emptyStatement(text: string): StatementAnalysis {
  return { text, kinds: ['empty'], reads: [], writes: [], functions: [], withoutWhere: false, opaque: false, unparsed: false, outputs: [], predicateColumns: [] };
}

function fromEffects(text: string, fx: Effects, extra: Partial<StatementAnalysis> = {}): StatementAnalysis {
  return {
    text, kinds: fx.kinds.length > 0 ? fx.kinds : ['other'], reads: [...fx.reads.values()], writes: [...fx.writes.values()],
    functions: [...fx.functions], withoutWhere: fx.withoutWhere, opaque: fx.opaque, unparsed: false, outputs: null, predicateColumns: [],
    ...extra,
  };
}

export function lexOptions(settings: SqlSessionSettings): MysqlLexOptions {
  return {
    // The MySQL adapter reports NO_BACKSLASH_ESCAPES as standard_conforming_strings = on.
    noBackslashEscapes: settings.standardConformingStrings,
    ansiQuotes: settings.ansiQuotes ?? false,
    ...(settings.serverVersion === undefined ? {} : { serverVersion: settings.serverVersion }),
  };
}

const words = (tokens: readonly Token[]): string[] => tokens.map((t) => (t.kind === 'word' ? t.value : t.kind === 'symbol' ? t.value : `\u0000${t.kind}`));
const onlyPlainTokens = (tokens: readonly Token[]): boolean =>
  tokens.every((t) => t.kind !== 'symbol' || t.value === ',' || t.value === '.' || t.value === '=' || t.value === '@');

/** Where a statement opens a compound body that the server reads to its END, `;`s and all. */
function opensCompound(tokens: readonly Token[]): boolean {
  const w = words(tokens);
  let i = 0;
  // `label: BEGIN …`
  if ((tokens[0]?.kind === 'word' || tokens[0]?.kind === 'ident') && w[1] === ':') i = 2;
  const first = w[i];
  if (first === 'BEGIN' && w[i + 1] === 'NOT') return true;
  if (i === 2 && first !== undefined) return true;
  if (first === 'IF' || first === 'WHILE' || first === 'LOOP' || first === 'REPEAT' || first === 'CASE' || first === 'FOR' || first === 'DECLARE') return true;
  return isStoredProgram(tokens);
}

/** CREATE/ALTER … PROCEDURE | FUNCTION | TRIGGER | EVENT | PACKAGE (before any parenthesis). */
function isStoredProgram(tokens: readonly Token[]): boolean {
  const w = words(tokens);
  if (w[0] !== 'CREATE' && w[0] !== 'ALTER') return false;
  const paren = w.indexOf('(');
  const head = paren < 0 ? w.slice(0, 16) : w.slice(0, paren);
  // ALTER PROCEDURE/FUNCTION only change characteristics; ALTER EVENT … DO has a body.
  if (w[0] === 'ALTER') return head.includes('EVENT');
  return head.some((x) => x === 'PROCEDURE' || x === 'FUNCTION' || x === 'TRIGGER' || x === 'EVENT' || x === 'PACKAGE');
}

function parseOne(clean: string): Node | null {
  try {
    const ast: unknown = parser.astify(clean, PARSE_OPTIONS);
    const list = Array.isArray(ast) ? ast : [ast];
    // The lexer saw one statement; a parser that sees more (or none) read the text differently.
    if (list.length !== 1) return null;
    return asNode(list[0]);
  } catch (e) {
    if (isDepthError(e)) throw tooDeep();
    return null;
  }
}

/** DROP USER | ROLE | PROCEDURE | FUNCTION | EVENT | SERVER … [IF EXISTS] names: nothing but names. */
const ACCOUNTS_AND_ROUTINES = new Set(['USER', 'ROLE', 'PROCEDURE', 'FUNCTION', 'EVENT', 'SERVER', 'PACKAGE']);

/** Data type synonyms (MariaDB "Data Type Synonyms"; MySQL 13.9 "Using Data Types from Other Database Engines") the parser lacks. */
const TYPE_SYNONYMS: ReadonlyArray<[RegExp, string]> = [
  [/^LONG\s+VARBINARY$/i, 'MEDIUMBLOB'], [/^LONG(?:\s+(?:VARCHAR|CHAR\s+VARYING))?$/i, 'MEDIUMTEXT'],
  [/^INT1$/i, 'TINYINT'], [/^INT2$/i, 'SMALLINT'], [/^(?:INT3|MIDDLEINT)$/i, 'MEDIUMINT'], [/^INT4$/i, 'INT'], [/^INT8$/i, 'BIGINT'],
  [/^FLOAT4$/i, 'FLOAT'], [/^FLOAT8$/i, 'DOUBLE'],
];
const TYPE_SYNONYM = /`(?:[^`]|``)*`|'\?'|(?<![\w$@.\u0080-\uffff])(LONG\s+VARBINARY|LONG\s+VARCHAR|LONG\s+CHAR\s+VARYING|LONG|INT[1-48]|MIDDLEINT|FLOAT[48])(?![\w$\u0080-\uffff])/gi;
/** SERIAL as a column's type: `name SERIAL` before `,` or `)`. */
const SERIAL_TYPE = /`(?:[^`]|``)*`|'\?'|(?<=[(,]\s*(?:`(?:[^`]|``)*`|[\w$\u0080-\uffff]+)\s+)(SERIAL)(?=\s*[,)])/gi;
/** A parameter marker outside quotes (`?` is nothing else in MySQL). */
const PARAMETER_MARKER = /`(?:[^`]|``)*`|'\?'|(\?)/g;

/**
 * The cleaned text in a form the parser accepts, where a spelling it lacks means exactly what
 * the rewrite means for everything airlock reads from the tree: a column type's synonym in
 * CREATE/ALTER TABLE (types carry no effect and no lineage), a parameter marker as a SET value
 * (a value, like NULL). Quoted identifiers and strings are never rewritten.
 */
function readableClean(st: LexedStatement): string {
  const first = st.tokens[0]?.value;
  if ((first === 'CREATE' || first === 'ALTER') && st.tokens.some((t) => t.kind === 'word' && (t.value === 'TABLE'))) {
    return st.clean
      .replace(TYPE_SYNONYM, (m: string, word: string | undefined) => (word === undefined ? m : (TYPE_SYNONYMS.find(([re]) => re.test(word))?.[1] ?? m)))
      .replace(SERIAL_TYPE, (m: string, word: string | undefined) => (word === undefined ? m : 'BIGINT UNSIGNED NOT NULL AUTO_INCREMENT UNIQUE'));
  }
  if (first === 'SET') return st.clean.replace(PARAMETER_MARKER, (m: string, q: string | undefined) => (q === undefined ? m : 'NULL'));
  return st.clean;
}

/** A dotted name `a` or `a.b` at tokens[i]. */
function nameAt(tokens: readonly Token[], i: number): { ref: RelationRef; next: number } | null {
  const a = tokens[i];
  if (a === undefined || (a.kind !== 'word' && a.kind !== 'ident')) return null;
  const name = a.kind === 'word' ? a.value : a.value;
  if (tokens[i + 1]?.value === '.' && tokens[i + 1]?.kind === 'symbol') {
    const b = tokens[i + 2];
    if (b === undefined || (b.kind !== 'word' && b.kind !== 'ident')) return null;
    return { ref: { schema: fold(name), name: fold(b.value) }, next: i + 3 };
  }
  return { ref: { schema: null, name: fold(name) }, next: i + 1 };
}

/**
 * Statements read from their tokens alone. Returns null when the statement is not one of
 * them (the parser decides), or an unparsed analysis when it is one but malformed.
 */
function byTokens(st: LexedStatement, settings: SqlSessionSettings, depth: number): StatementAnalysis | null {
  const t = st.tokens;
  const w = words(t);
  const fx = emptyEffects();
  const simple = (kind: StatementKind, opaque = false): StatementAnalysis => { addKind(fx, kind); fx.opaque = opaque; return fromEffects(st.text, fx); };
  // Account and routine statements that name things and take literals, never an expression
  // (PASSWORD('…') is the one call their grammar has): no SELECT, nothing but names and literals.
  const nameOnly = (kind: StatementKind): StatementAnalysis => {
    const allowed = new Set([',', '.', '=', ...(w.includes('PASSWORD') ? ['(', ')'] : [])]);
    return t.every((x) => x.kind !== 'symbol' || allowed.has(x.value)) && !w.includes('SELECT') ? simple(kind) : unparsedStatement(st.text);
  };

  switch (w[0]) {
    case 'KILL': {
      // KILL [HARD | SOFT] [CONNECTION | QUERY] [ID] n | KILL … USER name
      let i = 1;
      if (w[i] === 'HARD' || w[i] === 'SOFT') i++;
      if (w[i] === 'CONNECTION' || w[i] === 'QUERY') i++;
      if (w[i] === 'ID') i++;
      const ok = (t[i]?.kind === 'number' && t.length === i + 1) || (w[i] === 'USER' && t.length >= i + 2 && onlyPlainTokens(t));
      return ok ? simple('kill') : unparsedStatement(st.text);
    }
    case 'FLUSH': case 'UNLOCK': {
      if (!onlyPlainTokens(t)) return unparsedStatement(st.text);
      if (w[0] === 'UNLOCK') return w[1] === 'TABLES' || w[1] === 'TABLE' ? simple('lock') : unparsedStatement(st.text);
      const at = w.findIndex((x) => x === 'TABLES' || x === 'TABLE');
      if (at > 0) for (let i = at + 1; i < t.length;) { const n = nameAt(t, i); if (n === null || w[i] === 'WITH' || w[i] === 'FOR') break; addRead(fx, n.ref); i = n.next; if (w[i] === ',') i++; }
      return simple('flush');
    }
    case 'LOCK': {
      if (!onlyPlainTokens(t) || (w[1] !== 'TABLES' && w[1] !== 'TABLE')) return unparsedStatement(st.text);
      for (let i = 2; i < t.length;) {
        const n = nameAt(t, i);
        if (n === null) return unparsedStatement(st.text);
        addRead(fx, n.ref);
        i = n.next;
        while (i < t.length && w[i] !== ',') i++;
        i++;
      }
      return simple('lock');
    }
    case 'HANDLER': {
      // HANDLER t OPEN [AS a] | HANDLER a READ … | HANDLER a CLOSE: reads rows outside SELECT.
      const n = nameAt(t, 1);
      if (n === null) return unparsedStatement(st.text);
      addRead(fx, n.ref);
      addKind(fx, 'handler');
      fx.opaque = true;
      const reads = w[n.next] === 'READ';
      return fromEffects(st.text, fx, { outputs: reads ? [{ name: null, sources: [{ relation: n.ref, column: '*' }], unknown: true, expansion: true }] : null });
    }
    case 'PREPARE': case 'EXECUTE': {
      // PREPARE s FROM 'text' | @var; EXECUTE s [USING …]; EXECUTE IMMEDIATE 'text' | @var.
      const from = w[0] === 'PREPARE' ? (w[2] === 'FROM' ? 3 : -1) : w[1] === 'IMMEDIATE' ? 2 : -1;
      addKind(fx, w[0] === 'PREPARE' ? 'prepare' : 'execute');
      fx.opaque = w[0] === 'EXECUTE';
      if (w[0] === 'PREPARE' && from < 0) return unparsedStatement(st.text);
      const src = from < 0 ? undefined : t[from];
      if (src?.kind === 'string' && t.length === from + 1 && depth < 3) {
        const inner = analyzeText(src.value, settings, depth + 1);
        if (inner.some((s) => s.unparsed)) return unparsedStatement(st.text);
        return mergeInto(st.text, fx, inner);
      }
      // Text from a variable, or EXECUTE of a prepared name: what runs is not in this text.
      fx.opaque = true;
      return fromEffects(st.text, fx, { outputs: w[0] === 'EXECUTE' ? [{ name: null, sources: [], unknown: true, expansion: true }] : null });
    }
    case 'DEALLOCATE':
      return w[1] === 'PREPARE' && t.length === 3 ? simple('deallocate') : unparsedStatement(st.text);
    case 'DROP':
      if (w[1] === 'PREPARE') return t.length === 3 ? simple('deallocate') : unparsedStatement(st.text);
      return ACCOUNTS_AND_ROUTINES.has(w[1] ?? '') ? nameOnly('drop') : null;
    case 'CREATE':
      // CREATE [OR REPLACE] USER | ROLE …: accounts, literals only (PROCEDURE & co. are stored programs, read elsewhere).
      return (w[1] === 'USER' || w[1] === 'ROLE' || (w[1] === 'OR' && w[2] === 'REPLACE' && (w[3] === 'USER' || w[3] === 'ROLE'))) ? nameOnly('create') : null;
    case 'RENAME':
      return w[1] === 'USER' ? nameOnly('alter') : null;
    case 'ALTER': {
      if (w[1] === 'USER') return nameOnly('alter');
      // mysqldump's ALTER TABLE t DISABLE KEYS / ENABLE KEYS.
      const n = w[1] === 'TABLE' ? nameAt(t, 2) : null;
      if (n !== null && t.length === n.next + 2 && (w[n.next] === 'DISABLE' || w[n.next] === 'ENABLE') && w[n.next + 1] === 'KEYS') {
        addWrite(fx, n.ref);
        return simple('alter');
      }
      return null;
    }
    case 'SHOW':
      // Without a parenthesis there is no subquery or function call in a SHOW's LIKE/WHERE.
      if (!t.every((x) => x.kind !== 'symbol' || x.value !== '(') || w.includes('SELECT')) return unparsedStatement(st.text);
      return simple('show');
    case 'DESCRIBE': case 'DESC': case 'EXPLAIN': {
      const n = nameAt(t, 1);
      // DESCRIBE t [col]: a table's definition, not its rows.
      if (n !== null && !STATEMENT_START.has(w[1] ?? '') && t.length <= n.next + 1 && onlyPlainTokens(t)) return simple('describe');
      return null;
    }
    case 'BEGIN': return t.length === 1 || (w[1] === 'WORK' && t.length === 2) ? simple('transaction') : unparsedStatement(st.text);
    case 'START': case 'COMMIT': case 'ROLLBACK': case 'SAVEPOINT': case 'RELEASE': case 'XA':
      if (w[0] === 'START' && w[1] !== 'TRANSACTION') return null;
      return onlyPlainTokens(t) && !w.includes('SELECT') ? simple('transaction') : unparsedStatement(st.text);
    case 'SET': {
      if (w[1] === 'STATEMENT') return setStatement(st, settings, depth);
      const parsed = parseOne(readableClean(st));
      if (parsed !== null && parsed.type === 'set') return null;
      // SET NAMES / CHARACTER SET / TRANSACTION / ROLE / DEFAULT ROLE / PASSWORD: no expressions.
      const what = w[1] === 'GLOBAL' || w[1] === 'SESSION' || w[1] === 'LOCAL' ? w[2] : w[1];
      const known = ['NAMES', 'CHARACTER', 'CHARSET', 'TRANSACTION', 'ROLE', 'DEFAULT', 'PASSWORD'];
      return known.includes(what ?? '') && onlyPlainTokens(t) ? simple('set') : unparsedStatement(st.text);
    }
    case 'USE':
      return t.length === 2 && (t[1]?.kind === 'word' || t[1]?.kind === 'ident') ? simple('use') : unparsedStatement(st.text);
    case 'GRANT': case 'REVOKE': {
      if (parseOne(st.clean) !== null) return null;
      // GRANT role TO user and other forms the parser lacks: no expression can hide in them.
      return onlyPlainTokens(t.filter((x) => x.kind !== 'symbol' || (x.value !== '(' && x.value !== ')' && x.value !== '*'))) && !w.includes('SELECT')
        ? simple(w[0] === 'GRANT' ? 'grant' : 'revoke') : unparsedStatement(st.text);
    }
    default:
      return null;
  }
}

/**
 * Settings MariaDB's `SET STATEMENT var=value[, …] FOR <statement>` may give its statement:
 * limits and buffer sizes that change neither how the server reads text (sql_mode, character
 * sets), nor who runs it, nor what it may reach. Any other setting leaves the statement unparsed.
 */
const HARMLESS_STATEMENT_SETTINGS = new Set([
  'max_statement_time', 'lock_wait_timeout', 'innodb_lock_wait_timeout', 'long_query_time',
  'sort_buffer_size', 'join_buffer_size', 'join_cache_level', 'read_buffer_size', 'read_rnd_buffer_size',
  'tmp_table_size', 'tmp_memory_table_size', 'max_heap_table_size', 'max_join_size', 'max_sort_length',
  'max_length_for_sort_data', 'max_recursive_iterations', 'optimizer_search_depth', 'optimizer_prune_level',
  'sql_select_limit', 'net_read_timeout', 'net_write_timeout',
]);

/** `SET STATEMENT` settings as written, before `FOR`: plain names given numbers or DEFAULT, nothing else (no comment, string or expression). */
const SET_STATEMENT = /^SET[ \t\r\n]+STATEMENT[ \t\r\n]+((?:[A-Za-z_][A-Za-z0-9_]*[ \t\r\n]*=[ \t\r\n]*(?:\d+(?:\.\d+)?|\.\d+|DEFAULT)[ \t\r\n]*,[ \t\r\n]*)*[A-Za-z_][A-Za-z0-9_]*[ \t\r\n]*=[ \t\r\n]*(?:\d+(?:\.\d+)?|\.\d+|DEFAULT))[ \t\r\n]+FOR[ \t\r\n]+/i;

/**
 * MariaDB's `SET STATEMENT var=value[, …] FOR <statement>` (the mariadb connector's `timeout`
 * sends it): read as the inner statement — judged, audited and masked as that statement — when
 * every setting is a harmless one (HARMLESS_STATEMENT_SETTINGS) given a number or DEFAULT.
 * Anything else — sql_mode or a character set (the inner text would be read otherwise), another
 * setting, an expression as a value, an inner statement that is itself a SET, USE or KILL, or
 * LOAD DATA LOCAL — stays unparsed (refused unless a rule allows unparsed text).
 * Source: MariaDB "SET STATEMENT".
 */
function setStatement(st: LexedStatement, settings: SqlSessionSettings, depth: number): StatementAnalysis {
  const text = st.text.replace(/^[ \t\r\n]+/, '');
  const m = SET_STATEMENT.exec(text);
  if (m === null || depth >= 3) return unparsedStatement(st.text);
  const names = (m[1] as string).split(',').map((a) => (a.split('=')[0] as string).trim().toLowerCase());
  if (!names.every((n) => HARMLESS_STATEMENT_SETTINGS.has(n))) return unparsedStatement(st.text);
  const inner = analyzeText(text.slice(m[0].length), settings, depth + 1);
  const only = inner[0];
  if (inner.length !== 1 || only === undefined || only.unparsed) return unparsedStatement(st.text);
  if (only.kinds.some((k) => k === 'empty' || k === 'set' || k === 'use' || k === 'kill' || k === 'load_data_local')) return unparsedStatement(st.text);
  return { ...only, text: st.text };
}

/**
 * Every word a MariaDB 10.11 / MySQL 8.0 statement can begin with (sql_yacc.yy `verb_clause`
 * and the compound-statement words). Another first word is a syntax error on the server too;
 * a statement airlock merely cannot read keeps the access-denied error. Only the error code
 * depends on this list, never what runs.
 */
const STATEMENT_KEYWORDS = new Set([
  'ALTER', 'ANALYZE', 'BACKUP', 'BEGIN', 'BINLOG', 'CACHE', 'CALL', 'CASE', 'CHANGE', 'CHECK', 'CHECKSUM', 'CLONE', 'CLOSE', 'COMMIT',
  'CREATE', 'DEALLOCATE', 'DECLARE', 'DELETE', 'DESC', 'DESCRIBE', 'DO', 'DROP', 'EXECUTE', 'EXPLAIN', 'FETCH', 'FLUSH', 'FOR', 'GET',
  'GRANT', 'HANDLER', 'HELP', 'IF', 'IMPORT', 'INSERT', 'INSTALL', 'ITERATE', 'KILL', 'LEAVE', 'LOAD', 'LOCK', 'LOOP', 'OPEN',
  'OPTIMIZE', 'PREPARE', 'PURGE', 'RELEASE', 'RENAME', 'REPAIR', 'REPEAT', 'REPLACE', 'RESET', 'RESIGNAL', 'RESTART', 'RETURN', 'REVOKE',
  'ROLLBACK', 'SAVEPOINT', 'SELECT', 'SET', 'SHOW', 'SHUTDOWN', 'SIGNAL', 'START', 'STOP', 'TABLE', 'TRUNCATE', 'UNINSTALL', 'UNLOCK',
  'UPDATE', 'USE', 'VALUES', 'WHILE', 'WITH', 'XA', '(',
]);

const STATEMENT_START = new Set(['SELECT', 'INSERT', 'REPLACE', 'UPDATE', 'DELETE', 'WITH', 'TABLE', 'VALUES', 'EXTENDED', 'PARTITIONS', 'FORMAT', 'ANALYZE', 'FOR']);

function mergeInto(text: string, fx: Effects, inner: readonly StatementAnalysis[]): StatementAnalysis {
  const base = fromEffects(text, fx);
  return {
    ...base,
    kinds: [...new Set([...base.kinds, ...inner.flatMap((s) => s.kinds)])],
    reads: dedupe([...base.reads, ...inner.flatMap((s) => s.reads)]),
    writes: dedupe([...base.writes, ...inner.flatMap((s) => s.writes)]),
    functions: [...new Set([...base.functions, ...inner.flatMap((s) => s.functions)])],
    withoutWhere: base.withoutWhere || inner.some((s) => s.withoutWhere),
    opaque: base.opaque || inner.some((s) => s.opaque),
    predicateColumns: inner.flatMap((s) => s.predicateColumns),
  };
}

function dedupe(refs: RelationRef[]): RelationRef[] {
  const m = new Map<string, RelationRef>();
  for (const r of refs) m.set(`${r.schema ?? ''}\u0000${r.name}`, r);
  return [...m.values()];
}

/** The leading keyword → the node type node-sql-parser must produce for it. */
const EXPECTED_TYPE: Readonly<Record<string, readonly string[]>> = {
  SELECT: ['select'], '(': ['select'], WITH: ['select', 'update', 'delete', 'insert'],
  INSERT: ['insert'], REPLACE: ['replace'], UPDATE: ['update'], DELETE: ['delete'], LOAD: ['load_data'],
  CREATE: ['create'], ALTER: ['alter'], DROP: ['drop'], TRUNCATE: ['truncate'], RENAME: ['rename'],
  GRANT: ['grant'], REVOKE: ['revoke'], SET: ['set'], CALL: ['call'],
};

/**
 * Analyses by token shape, every string and integer replaced by `?` (and whether it is a string,
 * a zero or another integer, on which bounds.ts depends): nothing else in an analysis depends
 * on a literal's value (kinds come from keywords; tables, columns and functions are never literals), so `… WHERE id = 7` and `… = 8` share one parse. PREPARE and EXECUTE
 * read their string (the statement text) and are never shared.
 */
const SHAPE_MAX = 5_000;
const shapes = new Map<string, StatementAnalysis>();

/** A plain integer is shared as zero or not; any other number (1e-5, 0x00, .0) only with its own text. */
const numberShape = (text: string): string => (/^\d+$/.test(text) ? (/^0+$/.test(text) ? ' ?0' : ' ?n') : ` n${text}`);

function shapeKey(st: LexedStatement, settings: SqlSessionSettings): string | null {
  const first = st.tokens[0]?.value;
  if (st.problem !== null || st.tokens.length > 2_000 || first === 'PREPARE' || first === 'EXECUTE') return null;
  let key = `${settings.standardConformingStrings ? 1 : 0}${settings.ansiQuotes === true ? 1 : 0}`;
  // Whether a write is bounded depends on a literal's type and on a number being zero (bounds.ts).
  for (const t of st.tokens) key += t.kind === 'string' ? ' ?s' : t.kind === 'number' ? numberShape(t.value) : ` ${t.kind[0] ?? ''}${t.value}`;
  return key;
}

function analyzeLexed(st: LexedStatement, settings: SqlSessionSettings, depth: number): StatementAnalysis {
  const key = shapeKey(st, settings);
  const hit = key === null ? undefined : shapes.get(key);
  if (hit !== undefined) return withLocalFile({ ...hit, text: st.text }, st.tokens);
  const analysis = analyzeFresh(st, settings, depth);
  if (key !== null) {
    shapes.set(key, deepFreeze(analysis));
    if (shapes.size > SHAPE_MAX) {
      const oldest = shapes.keys().next();
      if (oldest.done !== true) shapes.delete(oldest.value);
    }
  }
  return withLocalFile(analysis, st.tokens);
}

/**
 * Where `LOCAL INFILE` stands in a LOAD DATA statement (the index of INFILE), or null: LOAD
 * DATA, then only LOW_PRIORITY / CONCURRENT / LOCAL before INFILE.
 */
function localInfileAt(tokens: readonly Token[]): number | null {
  if (tokens[0]?.kind !== 'word' || tokens[0].value !== 'LOAD' || tokens[1]?.kind !== 'word' || tokens[1].value !== 'DATA') return null;
  let local = false;
  for (let i = 2; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    if (t.kind !== 'word') return null;
    if (t.value === 'INFILE') return local ? i : null;
    if (t.value === 'LOCAL') local = true;
    else if (t.value !== 'LOW_PRIORITY' && t.value !== 'CONCURRENT') return null;
  }
  return null;
}

/**
 * The file a LOAD DATA LOCAL statement names, from the tokens (strings decoded as the server
 * decodes them): it depends on the literal, so it is never part of a shared shape's analysis.
 */
function withLocalFile(a: StatementAnalysis, tokens: readonly Token[]): StatementAnalysis {
  if (!a.kinds.includes('load_data_local')) return a;
  const at = localInfileAt(tokens);
  const file = at === null ? undefined : tokens[at + 1];
  return file?.kind === 'string' ? { ...a, localFile: file.value } : a;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function analyzeFresh(st: LexedStatement, settings: SqlSessionSettings, depth: number): StatementAnalysis {
  if (st.problem !== null) return unparsedStatement(st.text, st.syntaxError ? st.problem : undefined);
  if (st.tokens.length === 0) return emptyStatement(st.text);
  const first = words(st.tokens)[0] ?? '';
  if (!STATEMENT_KEYWORDS.has(first) && !(st.tokens[1]?.kind === 'symbol' && st.tokens[1].value === ':')) {
    return unparsedStatement(st.text, `no statement starts with ${st.tokens[0]?.kind === 'word' ? first : `a ${st.tokens[0]?.kind ?? 'symbol'}`}`);
  }
  const fromTokens = byTokens(st, settings, depth);
  if (fromTokens !== null) return fromTokens;
  if (first === 'DO') {
    // DO expr, … evaluates like SELECT and returns nothing.
    const ast = parseOne(st.clean.replace(/^DO\b/i, 'SELECT'));
    if (ast === null || ast.type !== 'select') return unparsedStatement(st.text);
    const fx = emptyEffects();
    addKind(fx, 'do');
    collectEffects(ast, fx);
    fx.kinds = fx.kinds.filter((k, i) => k !== 'select' || i > 1);
    // Evaluated only for its side effects (SLEEP, GET_LOCK, a stored function): opaque.
    fx.opaque = true;
    return fromEffects(st.text, fx);
  }
  const planOf = /^(?:(ANALYZE|EXPLAIN\s+ANALYZE)|EXPLAIN(?:\s+EXTENDED|\s+PARTITIONS)?)(?:\s+FORMAT\s*=\s*\w+)?\s+(?=[\w(])/i.exec(st.clean);
  if (planOf !== null && !/^ANALYZE\s+(?:NO_WRITE_TO_BINLOG\s+|LOCAL\s+)?TABLES?\b/i.test(st.clean) && /^(?:SELECT|INSERT|REPLACE|UPDATE|DELETE|WITH|\()/i.test(st.clean.slice(planOf[0].length))) {
    // MariaDB's ANALYZE <statement> and MySQL's EXPLAIN ANALYZE run the statement and report
    // its plan; EXPLAIN alone does not run it, and still lists what it would do.
    const inner = parseOne(st.clean.slice(planOf[0].length));
    if (inner === null) return unparsedStatement(st.text);
    const fx = emptyEffects();
    addKind(fx, planOf[1] === undefined ? 'explain' : 'analyze');
    collectEffects(inner, fx);
    return fromEffects(st.text, fx);
  }
  const expected = EXPECTED_TYPE[first];
  if (expected === undefined) return unparsedStatement(st.text);
  const ast = parseOne(readableClean(st));
  if (ast === null || typeof ast.type !== 'string' || !expected.includes(ast.type)) return unparsedStatement(st.text);
  const fx = emptyEffects();
  collectEffects(ast, fx);
  // A token scan as well as the tree: INTO OUTFILE/DUMPFILE anywhere writes a file.
  const w = words(st.tokens);
  if (w.some((x, i) => x === 'INTO' && (w[i + 1] === 'OUTFILE' || w[i + 1] === 'DUMPFILE'))) addKind(fx, 'into_outfile');
  if (ast.type === 'call') fx.opaque = true;
  if (ast.type === 'load_data' && fx.kinds[0] !== 'load_data') fx.kinds.unshift('load_data');
  // LOAD DATA [LOW_PRIORITY | CONCURRENT] LOCAL INFILE: the server will ask the client for a file
  // from its disk (LOCAL may come from an executable comment, whose content the tokens keep).
  if (ast.type === 'load_data' && localInfileAt(st.tokens) !== null) addKind(fx, 'load_data_local');
  const lineage = statementLineage(ast);
  return fromEffects(st.text, fx, {
    outputs: ast.type === 'select' || ast.type === 'call' || lineage.outputs !== null ? (ast.type === 'call' ? [{ name: null, sources: [], unknown: true, expansion: true }] : lineage.outputs) : null,
    predicateColumns: lineage.predicateColumns,
    ...(fx.writes.size === 0 ? {} : { writeSources: lineage.written ?? { sources: [], unknown: true } }),
  });
}

/** Two readings of one statement (a versioned comment run or skipped): everything either could do. */
export function bothReadings(a: StatementAnalysis, b: StatementAnalysis): StatementAnalysis {
  if (JSON.stringify(a) === JSON.stringify(b)) return a;
  // One reading runs nothing (`/*!50000 DROP TABLE t */` on an older server): the other is what may run.
  if (b.kinds.includes('empty')) return { ...a, text: a.text };
  if (a.kinds.includes('empty')) return { ...b, text: a.text };
  if (a.unparsed || b.unparsed) return unparsedStatement(a.text, a.syntaxError !== undefined && b.syntaxError !== undefined ? a.syntaxError : undefined);
  const same = JSON.stringify(a.outputs) === JSON.stringify(b.outputs);
  const merged = mergeInto(a.text, { ...emptyEffects(), kinds: [...a.kinds] }, [a, b]);
  // The file either reading would let the server ask for; none when they name different ones.
  const files = [a, b].filter((s) => s.kinds.includes('load_data_local')).map((s) => s.localFile);
  const localFile = files[0] !== undefined && files.every((f) => f === files[0]) ? files[0] : undefined;
  return {
    ...merged,
    ...(localFile === undefined ? {} : { localFile }),
    kinds: [...new Set([...a.kinds, ...b.kinds])],
    outputs: same ? a.outputs : [{ name: null, sources: [...(a.outputs ?? []), ...(b.outputs ?? [])].flatMap((o) => o.sources), unknown: true, expansion: true }],
    ...(a.writeSources === undefined && b.writeSources === undefined ? {} : { writeSources: { sources: [...(a.writeSources?.sources ?? []), ...(b.writeSources?.sources ?? [])], unknown: true } }),
  };
}

export function analyzeText(text: string, settings: SqlSessionSettings, depth = 0): StatementAnalysis[] {
  const opts = lexOptions(settings);
  const run = lexMysql(text, { ...opts, assumeVersioned: 'run' });
  const versioned = run.some((s) => s.versionDependent);
  const skip = versioned ? lexMysql(text, { ...opts, assumeVersioned: 'skip' }) : null;
  if (skip !== null && skip.length !== run.length) return [unparsedStatement(text.trim())];
  const out: StatementAnalysis[] = [];
  for (let i = 0; i < run.length; i++) {
    const st = run[i] as LexedStatement;
    if (st.problem === null && opensCompound(st.tokens)) {
      // The server reads a compound statement to its END: the rest of the text is one statement.
      const rest = text.slice(st.offset).trim();
      const stored = isStoredProgram(st.tokens);
      out.push(stored
        ? { ...unparsedStatement(rest), kinds: [kindOfType(words(st.tokens)[0] === 'ALTER' ? 'alter' : 'create')], unparsed: false }
        : unparsedStatement(rest));
      break;
    }
    const a = analyzeLexed(st, settings, depth);
    const other = skip?.[i];
    out.push(other === undefined ? a : bothReadings(a, analyzeLexed(other, settings, depth)));
  }
  if (out.length === 0) out.push(emptyStatement(text));
  return out;
}

export type { StatementKind };
