/**
 * One MySQL/MariaDB statement → StatementAnalysis. The statement's kind comes from its
 * leading keywords (our own lexer, so comments and quoting are read as the server reads
 * them); tables, columns, functions and lineage come from node-sql-parser's AST of the
 * cleaned text. Text the parser rejects is `unparsed` unless it is a session statement
 * whose effect the keywords alone tell (SET NAMES, KILL, SHOW, transaction control).
 */
import nodeSqlParser from 'node-sql-parser';
import type { OutputLineage, RelationRef, StatementAnalysis, StatementKind } from '../types.js';
import type { LexedStatement, Token } from './lexer.js';

const parser = new nodeSqlParser.Parser();

type Source = { relation: RelationRef; column: string };

export function unparsedMysql(text: string): StatementAnalysis {
  return { text, kinds: ['other'], reads: [], writes: [], functions: [], withoutWhere: false, opaque: true, unparsed: true, outputs: null, predicateColumns: [] };
}

/** Leading keyword(s) → kinds, and whether the statement's effect is opaque to the text. */
function classify(tokens: Token[]): { kinds: StatementKind[]; opaque: boolean } {
  const words = tokens.filter((t) => t.kind === 'word').map((t) => t.value);
  const w0 = tokens[0]?.kind === 'word' ? tokens[0].value : tokens[0]?.value === '(' ? 'SELECT' : '';
  const w1 = words[1] ?? '';
  const has = (w: string): boolean => words.includes(w);
  const k = (kinds: StatementKind[], opaque = false): { kinds: StatementKind[]; opaque: boolean } => ({ kinds, opaque });
  switch (w0) {
    case 'SELECT': case 'VALUES': case 'TABLE': case 'WITH': {
      const kinds: StatementKind[] = ['select'];
      if (w0 === 'WITH') {
        for (const w of ['INSERT', 'UPDATE', 'DELETE', 'REPLACE'] as const) if (has(w)) kinds.push(w.toLowerCase() as StatementKind);
      }
      const into = tokens.findIndex((t, i) => t.kind === 'word' && t.value === 'INTO' && tokens[i + 1]?.kind === 'word' && (tokens[i + 1]?.value === 'OUTFILE' || tokens[i + 1]?.value === 'DUMPFILE'));
      if (into >= 0) kinds.push('into_outfile');
      return k(kinds);
    }
    case 'INSERT': return k(['insert']);
    case 'REPLACE': return k(['replace', 'insert']);
    case 'UPDATE': return k(['update']);
    case 'DELETE': return k(['delete']);
    case 'CREATE': {
      const routine = ['PROCEDURE', 'FUNCTION', 'TRIGGER', 'EVENT'].some(has);
      return k(['create'], routine);
    }
    case 'ALTER': return k(['alter'], ['PROCEDURE', 'FUNCTION', 'EVENT'].some(has));
    case 'RENAME': return k(['alter']);
    case 'DROP': return w1 === 'PREPARE' ? k(['deallocate']) : k(['drop']);
    case 'TRUNCATE': return k(['truncate']);
    case 'GRANT': return k(['grant']);
    case 'REVOKE': return k(['revoke']);
    case 'SET': return w1 === 'PASSWORD' ? k(['set', 'alter']) : k(['set']);
    case 'SHOW': return k(['show']);
    case 'USE': return k(['use']);
    case 'DESCRIBE': case 'DESC': return k(['describe']);
    case 'EXPLAIN': {
      // EXPLAIN tbl is DESCRIBE; EXPLAIN ANALYZE / ANALYZE FORMAT=JSON run the statement.
      return k(has('ANALYZE') ? ['explain', ...innerKinds(words.slice(1))] : ['explain']);
    }
    case 'ANALYZE': return w1 === 'TABLE' ? k(['analyze']) : k(['analyze', ...innerKinds(words.slice(1))]);
    case 'BEGIN': case 'START': case 'COMMIT': case 'ROLLBACK': case 'SAVEPOINT': case 'RELEASE': case 'XA':
      return w0 === 'START' && w1 !== 'TRANSACTION' ? k(['other']) : k(['transaction']);
    case 'LOCK': case 'UNLOCK': return k(['lock']);
    case 'CALL': return k(['call'], true);
    case 'PREPARE': return k(['prepare'], true);
    case 'EXECUTE': return k(['execute'], true);
    case 'DEALLOCATE': return k(['deallocate']);
    case 'HANDLER': return k(['handler'], true);
    case 'LOAD': return w1 === 'DATA' || w1 === 'XML' ? k(['load_data']) : k(['other']);
    case 'KILL': return k(['kill']);
    case 'FLUSH': return k(['flush']);
    case 'DO': return k(['do'], true);
    case 'BINLOG': case 'INSTALL': case 'UNINSTALL': return k(['other'], true);
    case 'RESET': return k(['reset']);
    default: return k(['other']);
  }
}

function innerKinds(words: string[]): StatementKind[] {
  for (const w of words) {
    if (w === 'SELECT') return ['select'];
    if (w === 'INSERT' || w === 'UPDATE' || w === 'DELETE') return [w.toLowerCase() as StatementKind];
    if (w === 'REPLACE') return ['replace', 'insert'];
  }
  return [];
}

/** Statements whose effect the keywords tell even when the parser does not know them. */
function keywordOnly(kinds: StatementKind[], tokens: Token[]): boolean {
  const words = tokens.filter((t) => t.kind === 'word').map((t) => t.value);
  if (words.includes('SELECT')) return false;
  const only = kinds[0];
  return only === 'transaction' || only === 'kill' || only === 'show' || only === 'use' || only === 'describe' || (only === 'set' && kinds.length === 1) || only === 'flush' || only === 'reset' || only === 'lock';
}

/** A relation as written; unqualified names are resolved by the caller against the current database. */
function relation(db: unknown, table: unknown): RelationRef | null {
  if (typeof table !== 'string' || table === '' || table === 'null') return null;
  return { schema: typeof db === 'string' && db !== '' && db !== 'null' ? db : null, name: table };
}

function uniqueRefs(refs: RelationRef[]): RelationRef[] {
  const seen = new Set<string>();
  return refs.filter((r) => {
    const key = `${r.schema ?? ''}\u0000${r.name}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

type Node = Record<string, unknown>;
const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);

interface FromEntry {
  alias: string;
  relation: RelationRef | null;
  /** A derived table: every source its columns read. */
  derived: Source[] | null;
}

/** Walks any AST value; calls `visit` for each object node. */
function walk(value: unknown, visit: (n: Node) => void): void {
  if (Array.isArray(value)) {
    for (const v of value) walk(v, visit);
    return;
  }
  if (!isNode(value)) return;
  visit(value);
  for (const v of Object.values(value)) walk(v, visit);
}

function functionName(n: Node): string | null {
  if (n.type === 'aggr_func' && typeof n.name === 'string') return n.name.toLowerCase();
  if (n.type === 'function') {
    const name = n.name;
    if (typeof name === 'string') return name.toLowerCase();
    if (isNode(name) && Array.isArray(name.name)) {
      return name.name.map((p: unknown) => (isNode(p) && typeof p.value === 'string' ? p.value : '')).join('.').toLowerCase();
    }
  }
  return null;
}

function fromEntries(from: unknown): FromEntry[] {
  const out: FromEntry[] = [];
  if (!Array.isArray(from)) return out;
  for (const f of from) {
    if (!isNode(f)) continue;
    const alias = typeof f.as === 'string' ? f.as : typeof f.table === 'string' ? f.table : '';
    if (isNode(f.expr) && isNode(f.expr.ast)) {
      out.push({ alias, relation: null, derived: allSources(f.expr.ast) });
      continue;
    }
    out.push({ alias, relation: relation(f.db, f.table), derived: null });
  }
  return out;
}

/** Every column reference under a node, resolved against its own FROM clauses (over-approximation). */
function allSources(ast: unknown): Source[] {
  const out: Source[] = [];
  walk(ast, (n) => {
    if (Array.isArray(n.from)) {
      const entries = fromEntries(n.from);
      walk([n.columns, n.where, n.having, n.groupby, n.orderby], (m) => {
        if (m.type === 'column_ref') out.push(...resolveColumn(m, entries).sources);
      });
    }
  });
  return out;
}

function resolveColumn(ref: Node, entries: FromEntry[]): { sources: Source[]; unknown: boolean } {
  const column = typeof ref.column === 'string' ? ref.column : isNode(ref.column) && isNode(ref.column.expr) && typeof ref.column.expr.value === 'string' ? ref.column.expr.value : null;
  if (column === null) return { sources: [], unknown: true };
  const table = typeof ref.table === 'string' ? ref.table : null;
  const candidates = table === null ? entries : entries.filter((e) => e.alias.toLowerCase() === table.toLowerCase() || e.relation?.name.toLowerCase() === table.toLowerCase());
  if (candidates.length === 0) return { sources: [], unknown: true };
  const sources: Source[] = [];
  for (const e of candidates) {
    if (e.relation !== null) sources.push({ relation: e.relation, column: column === '*' ? '*' : column });
    else sources.push(...(e.derived ?? []));
  }
  return { sources, unknown: candidates.some((e) => e.relation === null && e.derived === null) };
}

/** Built-in functions whose result depends only on their arguments (anything else: unknown lineage). */
const KNOWN_FUNCTIONS = new Set([
  'concat', 'concat_ws', 'upper', 'lower', 'ucase', 'lcase', 'substr', 'substring', 'left', 'right', 'trim', 'ltrim', 'rtrim', 'replace', 'reverse',
  'lpad', 'rpad', 'length', 'char_length', 'hex', 'unhex', 'md5', 'sha1', 'sha2', 'to_base64', 'from_base64', 'cast', 'convert', 'coalesce', 'ifnull',
  'nullif', 'if', 'greatest', 'least', 'abs', 'round', 'floor', 'ceil', 'ceiling', 'json_object', 'json_array', 'json_extract', 'json_quote',
  'group_concat', 'count', 'sum', 'avg', 'min', 'max', 'json_arrayagg', 'json_objectagg', 'date_format', 'now', 'curdate', 'database', 'version',
  'insert', 'instr', 'locate', 'format', 'elt', 'field', 'quote', 'soundex', 'ascii', 'ord', 'char', 'bin', 'oct', 'conv', 'crc32', 'aes_encrypt',
  'compress', 'weight_string', 'regexp_replace', 'regexp_substr', 'mid', 'strcmp', 'repeat', 'space', 'year', 'month', 'day', 'date', 'time', 'str_to_date',
]);

function exprLineage(expr: unknown, entries: FromEntry[]): { sources: Source[]; unknown: boolean } {
  const sources: Source[] = [];
  let unknown = false;
  walk(expr, (n) => {
    if (n.type === 'column_ref') {
      const r = resolveColumn(n, entries);
      sources.push(...r.sources);
      unknown ||= r.unknown;
    } else if (n.type === 'select' || (n.ast !== undefined && isNode(n.ast))) {
      sources.push(...allSources(n.type === 'select' ? n : n.ast));
    } else {
      const f = functionName(n);
      if (f !== null && !KNOWN_FUNCTIONS.has(f)) unknown = true;
    }
  });
  return { sources, unknown };
}

function selectOutputs(ast: Node): OutputLineage[] | null {
  if (!Array.isArray(ast.columns)) return null;
  const entries = fromEntries(ast.from);
  const out: OutputLineage[] = [];
  for (const c of ast.columns) {
    if (!isNode(c)) continue;
    const expr = c.expr;
    const name = typeof c.as === 'string' ? c.as : isNode(expr) && typeof expr.column === 'string' ? expr.column : null;
    if (isNode(expr) && expr.type === 'column_ref' && expr.column === '*') {
      const r = resolveColumn(expr, entries);
      out.push({ name: null, sources: r.sources, unknown: r.unknown, expansion: true });
      continue;
    }
    const r = exprLineage(expr, entries);
    out.push({ name, sources: r.sources, unknown: r.unknown });
  }
  // UNION: the outputs of every arm at the same position.
  if (isNode(ast._next)) {
    const next = selectOutputs(ast._next);
    if (next === null || next.length !== out.length) return out.map((o) => ({ ...o, unknown: true }));
    return out.map((o, i) => ({ ...o, sources: [...o.sources, ...(next[i]?.sources ?? [])], unknown: o.unknown || (next[i]?.unknown ?? true) }));
  }
  return out;
}

function predicateColumns(ast: Node): Source[] {
  const out: Source[] = [];
  walk(ast, (n) => {
    if (!Array.isArray(n.from) && n.type !== 'update' && n.type !== 'delete') return;
    const entries = fromEntries(n.from ?? n.table);
    const on = Array.isArray(n.from) ? n.from.map((f: unknown) => (isNode(f) ? f.on : null)) : [];
    walk([n.where, n.having, n.groupby, n.orderby, on], (m) => {
      if (m.type === 'column_ref') out.push(...resolveColumn(m, entries).sources);
    });
  });
  return out;
}

/** `db.table`, `table`, or quoted forms at tokens[i]. */
function tableAt(tokens: Token[], i: number): RelationRef | null {
  const a = tokens[i];
  if (a === undefined || (a.kind !== 'word' && a.kind !== 'ident')) return null;
  const nameOf = (t: Token): string => (t.kind === 'word' ? t.value.toLowerCase() : t.value);
  const b = tokens[i + 2];
  if (tokens[i + 1]?.value === '.' && b !== undefined && (b.kind === 'word' || b.kind === 'ident')) return { schema: nameOf(a), name: nameOf(b) };
  return { schema: null, name: nameOf(a) };
}

/** node-sql-parser's statement type → the kind our keyword reading must have found. */
const AST_KIND: Readonly<Record<string, StatementKind>> = {
  select: 'select', insert: 'insert', replace: 'replace', update: 'update', delete: 'delete', create: 'create', alter: 'alter',
  drop: 'drop', truncate: 'truncate', rename: 'alter', grant: 'grant', revoke: 'revoke', set: 'set', show: 'show', use: 'use', desc: 'describe',
  explain: 'explain', transaction: 'transaction', lock: 'lock', unlock: 'lock', call: 'call', load_data: 'load_data',
};

/** Analyses one lexed statement. */
export function analyzeMysqlStatement(st: LexedStatement): StatementAnalysis {
  if (st.problem !== null) return unparsedMysql(st.text);
  if (st.tokens.length === 0) return { text: st.text, kinds: ['empty'], reads: [], writes: [], functions: [], withoutWhere: false, opaque: false, unparsed: false, outputs: null, predicateColumns: [] };
  const { kinds, opaque } = classify(st.tokens);
  let parsed: { tableList: string[]; ast: unknown };
  try {
    parsed = parser.parse(st.clean, { database: 'MariaDB' }) as { tableList: string[]; ast: unknown };
  } catch {
    if (keywordOnly(kinds, st.tokens)) {
      const functions = st.tokens.flatMap((t, i) => (t.kind === 'word' && st.tokens[i + 1]?.value === '(' ? [t.value.toLowerCase()] : []));
      return { text: st.text, kinds, reads: [], writes: [], functions, withoutWhere: false, opaque, unparsed: false, outputs: null, predicateColumns: [] };
    }
    // Unparsed (denied unless a rule admits it), but what its keywords say stays visible to deny rules.
    return { ...unparsedMysql(st.text), kinds: [...kinds, 'other'] };
  }
  const ast = Array.isArray(parsed.ast) ? (parsed.ast.length === 1 ? parsed.ast[0] : null) : parsed.ast;
  if (!isNode(ast)) return unparsedMysql(st.text);
  const reads: RelationRef[] = [];
  const writes: RelationRef[] = [];
  for (const entry of parsed.tableList) {
    const [op, db, table] = entry.split('::');
    const ref = relation(db, table);
    if (ref === null) continue;
    if ((op ?? '').toLowerCase() === 'select') reads.push(ref);
    else {
      writes.push(ref);
      // UPDATE and DELETE read the rows they change.
      if (op === 'update' || op === 'delete') reads.push(ref);
    }
  }
  const functions = new Set<string>();
  walk(ast, (n) => {
    const f = functionName(n);
    if (f !== null) functions.add(f);
  });
  const type = typeof ast.type === 'string' ? ast.type : '';
  // Our keywords and the parser must agree on what the statement is; otherwise neither is trusted.
  const expected = AST_KIND[type];
  if (expected === undefined || !kinds.includes(expected)) return unparsedMysql(st.text);
  const withoutWhere = (type === 'update' || type === 'delete') && ast.where === null;
  let outputs = type === 'select' && !kinds.includes('into_outfile') ? selectOutputs(ast) : null;
  // Columns read through a CTE are not followed by name: unknown (masked when a masked table is read).
  if (outputs !== null && ast.with !== null && ast.with !== undefined) outputs = outputs.map((o) => ({ ...o, unknown: true }));
  // LOAD DATA … INTO TABLE t writes t (the parser's table list may not say so).
  if (kinds.includes('load_data')) {
    const at = st.tokens.findIndex((t, i) => t.kind === 'word' && t.value === 'INTO' && st.tokens[i + 1]?.value === 'TABLE');
    const name = at >= 0 ? tableAt(st.tokens, at + 2) : null;
    if (name !== null) writes.push(name);
  }
  return {
    text: st.text,
    kinds,
    reads: uniqueRefs(reads),
    writes: uniqueRefs(writes),
    functions: [...functions],
    withoutWhere,
    opaque,
    unparsed: false,
    outputs,
    predicateColumns: predicateColumns(ast),
  };
}
