/**
 * Whether a MySQL/MariaDB write is bounded (see parsers/sql/postgres/bounds.ts for the
 * definition both dialects share): a write is bounded only when its text pins the rows it
 * changes — a column of each written table equal to values that depend on no row (`col = v`,
 * `col IN (v, …)`) or only on relations pinned the same way (join chains), in a conjunct of
 * the WHERE or an inner join's ON. Whatever airlock cannot tell is unbounded.
 */
import { arr, asNode, fold, functionName, ident, type Node } from './node.js';

interface Target {
  /** The alias if there is one, else the table name (folded). */
  exposed: string;
  /** More than one relation in scope: an unqualified column may be another's. */
  others: boolean;
}

function isTargetColumn(v: unknown, t: Target): boolean {
  const n = asNode(v);
  if (n?.type !== 'column_ref') return false;
  const column = ident(n.column);
  if (column === null || column === '*') return false;
  const table = ident(n.table);
  if (table === null || table === '') return !t.others;
  return fold(table) === t.exposed;
}

/**
 * String built-ins with one value per statement. Nothing numeric: MySQL compares a string
 * column with a number numerically, and every non-numeric string is 0 — `name = 0` (or
 * `= FALSE`, `= LENGTH('')`, `= CAST('0' AS SIGNED)`, `= @zero`, `= 1 - 1`) matches them all.
 * RAND(), UUID(), NEXTVAL(s), SYSDATE() and stored functions may differ from row to row.
 */
const STRING_FUNCTIONS = new Set([
  'lower', 'upper', 'lcase', 'ucase', 'concat', 'concat_ws', 'trim', 'ltrim', 'rtrim', 'substr', 'substring',
  'replace', 'md5', 'sha1', 'sha2', 'left', 'right', 'lpad', 'rpad', 'date_format', 'json_unquote',
]);

/** Node types of values that depend on no row and are never numeric zero. */
const CONSTANT_TYPES = new Set([
  // (Hex and bit literals are numbers in a numeric context: not here.)
  'single_quote_string', 'double_quote_string', 'natural_string', 'null', 'param', 'date', 'time', 'timestamp', 'datetime', 'string',
]);

/** Whether `v` depends on no row, except of relations already pinned (named by a qualified column). */
function independent(v: unknown, pinned: ReadonlySet<string>): boolean {
  if (Array.isArray(v)) return v.every((x) => independent(x, pinned));
  const n = asNode(v);
  if (n === null) return false;
  const type = typeof n.type === 'string' ? n.type : '';
  if (CONSTANT_TYPES.has(type)) return true;
  switch (type) {
    case 'number': { const x = Number(n.value); return Number.isFinite(x) && x !== 0; }
    case 'bool': return n.value === true;
    case 'column_ref': {
      const table = ident(n.table);
      return table !== null && table !== '' && ident(n.column) !== '*' && pinned.has(fold(table));
    }
    // A `?` is bound later: its value (a 0 for a string column) is not seen here; see the README.
    case 'origin': return n.value === '?';
    case 'expr_list': return independent(arr(n.value), pinned);
    case 'unary_expr': return n.operator === '-' && independent(n.expr, pinned);
    case 'function': {
      const name = functionName(n);
      return name !== null && STRING_FUNCTIONS.has(name) && (n.over === null || n.over === undefined) && (n.args === null || n.args === undefined || independent(n.args, pinned));
    }
    // Logical operators are never values here: node-sql-parser binds `||`, XOR and NOT tighter
    // than the server does (`id = 1 || 1` is `(id = 1) OR 1` to MariaDB). Arithmetic may be 0.
    default: return false;
  }
}

/** Whether predicate `where` pins the rows of `t`, given the relations already pinned. */
function pins(where: unknown, t: Target, pinned: ReadonlySet<string>): boolean {
  const n = asNode(where);
  if (n?.type !== 'binary_expr') return false;
  const op = typeof n.operator === 'string' ? n.operator.toUpperCase() : '';
  if (op === 'AND' || op === '&&') return pins(n.left, t, pinned) || pins(n.right, t, pinned);
  if (op === 'OR' || op === '||') return pins(n.left, t, pinned) && pins(n.right, t, pinned);
  if (op === '=') return (isTargetColumn(n.left, t) && independent(n.right, pinned)) || (isTargetColumn(n.right, t) && independent(n.left, pinned));
  if (op === 'IN') return isTargetColumn(n.left, t) && asNode(n.right)?.type === 'expr_list' && independent(n.right, pinned);
  return false;
}

const exposedName = (item: unknown): string | null => {
  const n = asNode(item);
  if (n === null) return null;
  const name = ident(n.as) ?? ident(n.table);
  return name === null || name === '' ? null : fold(name);
};

/**
 * node-sql-parser reads `||` as concatenation and binds it (and XOR) tighter than `=`, where
 * MariaDB's default sql_mode reads `id = 1 && 1 || 1` as `(id = 1 AND 1) OR 1`: a predicate
 * holding either is not grouped as the server groups it, so it pins nothing.
 */
function misgrouped(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(misgrouped);
  const n = asNode(v);
  if (n === null) return false;
  if (n.type === 'binary_expr' && typeof n.operator === 'string' && (n.operator === '||' || n.operator.toUpperCase() === 'XOR')) return true;
  return Object.values(n).some((x) => typeof x === 'object' && x !== null && misgrouped(x));
}

/** Joins whose ON filters both sides as a WHERE would. */
const INNER_JOIN = /^(?:(?:INNER|CROSS)\s+)?JOIN$|^STRAIGHT_JOIN$/i;

/** The CTEs visible where a query runs: name → its query (and the CTEs it sees), or null (RECURSIVE). */
type Ctes = ReadonlyMap<string, { query: unknown; ctes: Ctes } | null>;

function ctesOf(withList: unknown, outer: Ctes): Ctes {
  const entries = arr(withList).map(asNode).filter((c): c is Node => c !== null);
  if (entries.length === 0) return outer;
  const recursive = entries.some((c) => c.recursive === true);
  const out = new Map(outer);
  for (const c of entries) {
    const name = ident(c.name);
    // Without RECURSIVE a CTE sees only those before it.
    if (name !== null) out.set(fold(name), recursive ? null : { query: asNode(c.stmt)?.ast, ctes: new Map(out) });
  }
  return out;
}

/**
 * Pins the relations of a FROM (or multi-table UPDATE) list until nothing changes: a table is
 * pinned by a conjunct of the WHERE or an inner join's ON equating its column with constants or
 * with columns of relations pinned before it. A derived table or CTE makes its own rows (`SELECT
 * 1 AS k FROM seq_1_to_1000000` has a million with k = 1): it is pinned only when its query is
 * bounded. Returns the pinned names, or null when an item is not understood.
 */
function pinnedIn(items: readonly unknown[], where: unknown, ctes: Ctes): Set<string> | null {
  const tables: string[] = [];
  const pinned = new Set<string>();
  let predicate: unknown = where;
  let count = 0;
  for (const item of items) {
    const n = asNode(item);
    if (n === null || n.type === 'dual') continue;
    const name = exposedName(n);
    if (name === null) return null;
    count++;
    const sub = asNode(asNode(n.expr)?.ast);
    const table = ident(n.table);
    const cte = sub === null && table !== null && (n.db === null || n.db === undefined || n.db === '') ? ctes.get(fold(table)) : undefined;
    if (sub !== null) {
      if (boundedQuery(sub, ctes)) pinned.add(name);
    } else if (n.expr !== undefined) {
      return null;
    } else if (cte !== undefined) {
      if (cte !== null && boundedQuery(cte.query, cte.ctes)) pinned.add(name);
    } else {
      tables.push(name);
    }
    if (typeof n.join === 'string' && INNER_JOIN.test(n.join) && n.on !== undefined && n.on !== null) {
      predicate = predicate === null || predicate === undefined ? n.on : { type: 'binary_expr', operator: 'AND', left: predicate, right: n.on };
    }
  }
  if (misgrouped(predicate)) return null;
  const others = count > 1;
  for (let changed = true; changed;) {
    changed = false;
    for (const name of tables) {
      if (pinned.has(name) || !pins(predicate, { exposed: name, others }, pinned)) continue;
      pinned.add(name);
      changed = true;
    }
  }
  return pinned;
}

/** Whether a source query (INSERT/REPLACE … SELECT, a derived table) yields rows the text bounds. */
function boundedQuery(q: unknown, outer: Ctes): boolean {
  const n = asNode(q);
  if (n === null) return false;
  if (n.type === 'values') return true;
  if (n.type !== 'select') return false;
  const ctes = ctesOf(n.with, outer);
  if (n._next !== undefined && n._next !== null && !boundedQuery(n._next, ctes)) return false;
  const from = arr(n.from).filter((f) => asNode(f)?.type !== 'dual');
  if (from.length === 0) return true;
  const pinned = pinnedIn(from, n.where, ctes);
  return pinned !== null && from.every((f) => { const e = exposedName(f); return e !== null && pinned.has(e); });
}

const written = (refs: readonly unknown[]): Array<string | null> => refs.map((x) => { const t = ident(asNode(x)?.table); return t === null || t === '' ? null : fold(t); });

/**
 * Whether an UPDATE / DELETE / INSERT … ON DUPLICATE KEY UPDATE / REPLACE / LOAD DATA node may
 * change rows its text does not bound. Multi-table UPDATE and DELETE: each written table must be
 * pinned. An upsert or REPLACE from a bounded source (VALUES, SET, a pinned SELECT) is bounded;
 * LOAD DATA … REPLACE replaces whatever rows the file's keys hit: unbounded.
 */
export function unboundedWrite(stmt: Node): boolean {
  const ctes = ctesOf(stmt.with, new Map());
  switch (stmt.type) {
    case 'update': {
      const tables = arr(stmt.table);
      // Written: the tables SET names; an unqualified SET column may be any table's.
      const named = written(arr(stmt.set));
      const targets = named.includes(null) || named.length === 0 ? tables.map(exposedName) : named;
      const pinned = pinnedIn(tables, stmt.where, ctes);
      return pinned === null || targets.length === 0 || targets.some((e) => e === null || !pinned.has(e));
    }
    case 'delete': {
      const from = arr(stmt.from);
      const listed = arr(stmt.table);
      const single = listed.length === 1 && asNode(listed[0])?.addition === true;
      const targets = single ? from.map(exposedName) : written(listed);
      const pinned = pinnedIn(from, stmt.where, ctes);
      return pinned === null || targets.length === 0 || targets.some((e) => e === null || !pinned.has(e));
    }
    case 'insert': case 'replace': {
      if (stmt.type === 'insert' && asNode(stmt.on_duplicate_update) === null) return false;
      // INSERT … SET: one row. Otherwise the source must be bounded.
      if (stmt.values === undefined || stmt.values === null) return !Array.isArray(stmt.set);
      return !boundedQuery(stmt.values, ctes);
    }
    case 'load_data': return stmt.replace_ignore === 'replace';
    default: return false;
  }
}
