/**
 * Whether a PostgreSQL write is bounded: whether the text itself pins the rows it changes,
 * or it may change every row of its target (an "unbounded" write, `without_where`).
 *
 * A write is bounded only when airlock can see the bound; whatever it cannot tell is
 * unbounded (fail closed). The bound is a column of the target pinned to given values, as
 * MySQL's sql_safe_updates asks for a key: `col = v`, `col IN (v, …)`, `col = ANY(v)` where
 * v depends on no row (constants, parameters, casts, operators and stable built-ins of them)
 * or only on columns of relations pinned the same way (a join chain `o.id = 1 AND u.id =
 * o.uid`), in a conjunct of the WHERE or an inner join's ON (each arm of an OR must pin). Only
 * a table is pinned by a predicate; a subquery, CTE or function is pinned when its own query is
 * bounded (a VALUES list, say). Whether the pinned column is a key is not known here.
 */
import { isObject, list, names, str, unwrap, type JsonObject } from './node.js';

/** How the target can be named in a column reference, and whether other relations are in scope. */
export interface Target {
  /** The alias if there is one (then the table name no longer names it), else the relation name. */
  exposed: string;
  /** Another relation (FROM, USING, a MERGE source, `excluded`) is in scope: an unqualified column may be its. */
  others: boolean;
}

export function targetOf(relation: unknown, others: boolean): Target | null {
  const rv = isObject(relation) ? (unwrap(relation)?.fields ?? relation) : null;
  if (rv === null) return null;
  const alias = isObject(rv.alias) ? str(rv.alias.aliasname) : null;
  const name = alias ?? str(rv.relname);
  return name === null ? null : { exposed: name, others };
}

/** A ColumnRef that surely names a column of the target. */
function isTargetColumn(value: unknown, t: Target): boolean {
  const node = unwrap(value);
  if (node?.type !== 'ColumnRef') return false;
  const parts = names(node.fields.fields);
  if (parts.includes('*')) return false;
  if (parts.length === 1) return !t.others;
  // t.col or schema.t.col: the exposed name is unique among the relations in scope.
  return parts.length <= 3 && parts[parts.length - 2] === t.exposed;
}

/** Node types a value that depends on no row may be built from. */
const ROW_INDEPENDENT = new Set([
  'A_Const', 'ParamRef', 'TypeCast', 'A_ArrayExpr', 'FuncCall', 'A_Expr', 'SQLValueFunction', 'CollateClause',
  'CoalesceExpr', 'MinMaxExpr', 'List', 'NullTest', 'BoolExpr',
]);

/**
 * Whether `value` depends on no row, except of the relations in `pinned` (their rows are
 * bounded already): a column may be used only qualified by one of those names.
 */
function independent(value: unknown, pinned: ReadonlySet<string>): boolean {
  if (Array.isArray(value)) return value.every((v) => independent(v, pinned));
  const node = unwrap(value);
  if (node === null) return false;
  const f = node.fields;
  if (node.type === 'ColumnRef') {
    const parts = names(f.fields);
    return parts.length >= 2 && !parts.includes('*') && pinned.has(parts[parts.length - 2] ?? '');
  }
  if (!ROW_INDEPENDENT.has(node.type)) return false;
  switch (node.type) {
    case 'TypeCast': case 'CollateClause': case 'NullTest': return independent(f.arg, pinned);
    case 'A_ArrayExpr': return independent(list(f.elements), pinned);
    case 'CoalesceExpr': case 'MinMaxExpr': case 'BoolExpr': return independent(list(f.args), pinned);
    case 'List': return independent(list(f.items), pinned);
    case 'A_Expr': return (f.lexpr === undefined || independent(f.lexpr, pinned)) && independent(f.rexpr, pinned);
    // A stable built-in of independent values has one value per statement; a volatile one
    // (nextval, random) is evaluated per row and can equal each row in turn.
    case 'FuncCall': return stableCall(names(f.funcname)) && f.agg_star !== true && f.over === undefined && f.agg_filter === undefined && independent(list(f.args), pinned);
    default: return true;
  }
}

/** Built-ins whose value does not change from row to row within a statement (immutable or stable). */
const STABLE_FUNCTIONS = new Set([
  'lower', 'upper', 'now', 'concat', 'concat_ws', 'length', 'trim', 'btrim', 'ltrim', 'rtrim', 'substr', 'substring',
  'replace', 'md5', 'round', 'abs', 'floor', 'ceil', 'to_char', 'to_date', 'to_timestamp', 'to_number', 'date_trunc',
  'make_date', 'make_timestamp', 'format', 'left', 'right', 'lpad', 'rpad', 'split_part', 'nullif', 'extract',
  'current_setting', 'timezone', 'transaction_timestamp', 'statement_timestamp', 'array_length', 'string_to_array',
]);

function stableCall(parts: readonly string[]): boolean {
  const name = parts[parts.length - 1] ?? '';
  return (parts.length === 1 || (parts.length === 2 && parts[0] === 'pg_catalog')) && STABLE_FUNCTIONS.has(name);
}

const NONE: ReadonlySet<string> = new Set();

/** Whether predicate `where` pins the rows of `t`, given the relations already pinned. */
export function pinsTarget(where: unknown, t: Target, pinned: ReadonlySet<string> = NONE): boolean {
  const node = unwrap(where);
  if (node === null) return false;
  const f = node.fields;
  switch (node.type) {
    case 'CurrentOfExpr': return true; // WHERE CURRENT OF: the cursor's one row
    case 'BoolExpr': {
      const args = list(f.args);
      if (f.boolop === 'AND_EXPR') return args.some((a) => pinsTarget(a, t, pinned));
      if (f.boolop === 'OR_EXPR') return args.length > 0 && args.every((a) => pinsTarget(a, t, pinned));
      return false;
    }
    case 'A_Expr': {
      const op = names(f.name);
      if (op.length !== 1 || op[0] !== '=') return false;
      if (f.kind === 'AEXPR_OP') {
        return (isTargetColumn(f.lexpr, t) && independent(f.rexpr, pinned))
          || (isTargetColumn(f.rexpr, t) && independent(f.lexpr, pinned));
      }
      if (f.kind === 'AEXPR_IN' || f.kind === 'AEXPR_OP_ANY') return isTargetColumn(f.lexpr, t) && independent(f.rexpr, pinned);
      return false;
    }
    default: return false;
  }
}

/**
 * The CTEs visible where a query runs: name → its query (with the CTEs it sees), or null when
 * it cannot be followed (RECURSIVE, or defined outside the statement being judged).
 */
export type Ctes = ReadonlyMap<string, { query: unknown; ctes: Ctes } | null>;

export function ctesOf(withClause: unknown, outer: Ctes): Ctes {
  if (!isObject(withClause)) return outer;
  const out = new Map(outer);
  for (const c of list(withClause.ctes)) {
    const cte = unwrap(c)?.fields ?? null;
    const name = cte === null ? null : str(cte.ctename);
    if (cte === null || name === null) continue;
    // Without RECURSIVE a CTE sees only those before it (a later name is a table to it).
    out.set(name, withClause.recursive === true ? null : { query: cte.ctequery, ctes: new Map(out) });
  }
  return out;
}

/**
 * The relations of a FROM list and the ON conditions of inner joins. Only a table can be pinned
 * by a predicate: a CTE, subquery or function makes its own rows (`SELECT 1 AS k FROM
 * generate_series(1, 1e6)` has a million rows with k = 1), so it is pinned only when its query
 * is bounded.
 */
interface FromScope { relations: Array<{ exposed: string; pinned: boolean; table: boolean }>; quals: unknown[]; known: boolean }

function fromScope(items: readonly unknown[], ctes: Ctes, into: FromScope = { relations: [], quals: [], known: true }): FromScope {
  for (const item of items) {
    const node = unwrap(item);
    const f = node?.fields ?? {};
    const alias = isObject(f.alias) ? str(f.alias.aliasname) : null;
    switch (node?.type) {
      case 'RangeVar': {
        const name = str(f.relname) ?? '';
        const cte = f.schemaname === undefined ? ctes.get(name) : undefined;
        if (cte === undefined) into.relations.push({ exposed: alias ?? name, pinned: false, table: true });
        else into.relations.push({ exposed: alias ?? name, pinned: cte !== null && boundedQuery(cte.query, cte.ctes), table: false });
        break;
      }
      case 'RangeSubselect': into.relations.push({ exposed: alias ?? '', pinned: boundedQuery(f.subquery, ctes), table: false }); break;
      case 'JoinExpr':
        // An aliased join hides its members' names; USING/NATURAL joins are not followed.
        if (alias !== null) into.known = false;
        fromScope([f.larg, f.rarg], ctes, into);
        // Only an inner join's ON filters both sides as a WHERE would.
        if (f.jointype === 'JOIN_INNER' && f.quals !== undefined) into.quals.push(f.quals);
        break;
      default: into.relations.push({ exposed: alias ?? '', pinned: false, table: false });
    }
  }
  return into;
}

/**
 * Pins relations until nothing changes: one is pinned by a conjunct equating its column with
 * constants or with columns of relations pinned before it. Whether `target` ends up pinned
 * (or, with no target, every relation of the FROM list).
 */
function pinnedBy(where: unknown, from: readonly unknown[], target: Target | null, ctes: Ctes): boolean {
  const scope = fromScope(from, ctes);
  if (!scope.known) return false;
  const conjuncts = [where, ...scope.quals].filter((c) => c !== undefined);
  const predicate = { BoolExpr: { boolop: 'AND_EXPR', args: conjuncts } };
  const others = scope.relations.length + (target === null ? 0 : 1) > 1;
  const pinned = new Set(scope.relations.filter((r) => r.pinned).map((r) => r.exposed));
  const all = [...scope.relations.filter((r) => r.table).map((r) => r.exposed), ...(target === null ? [] : [target.exposed])];
  for (let changed = true; changed;) {
    changed = false;
    for (const name of all) {
      if (name === '' || pinned.has(name) || !pinsTarget(predicate, { exposed: name, others }, pinned)) continue;
      pinned.add(name);
      changed = true;
    }
  }
  if (target !== null) return pinned.has(target.exposed);
  return scope.relations.every((r) => r.pinned || pinned.has(r.exposed));
}

/**
 * Scalar built-ins a source query may call in its select list without multiplying its rows
 * (a set-returning function such as generate_series or unnest would). Anything else: unknown.
 */
const SCALAR_FUNCTIONS = new Set([
  'lower', 'upper', 'now', 'concat', 'concat_ws', 'length', 'trim', 'btrim', 'ltrim', 'rtrim', 'substr', 'substring',
  'replace', 'md5', 'round', 'abs', 'floor', 'ceil', 'to_char', 'to_date', 'to_timestamp', 'date_trunc', 'make_date',
  'gen_random_uuid', 'nextval', 'format', 'left', 'right', 'lpad', 'rpad', 'split_part', 'extract', 'nullif',
  'jsonb_build_object', 'json_build_object', 'to_json', 'to_jsonb', 'random', 'clock_timestamp', 'timezone',
  'count', 'sum', 'min', 'max', 'avg', 'array_agg', 'string_agg', 'json_agg', 'jsonb_agg', 'bool_and', 'bool_or',
]);

/** Every call in a select list (outside scalar subqueries) is a known scalar built-in. */
function scalarList(value: unknown): boolean {
  if (Array.isArray(value)) return value.every(scalarList);
  if (!isObject(value)) return true;
  const node = unwrap(value);
  if (node === null) return Object.values(value).every(scalarList);
  // A sublink yields one value per row (scalar, ARRAY(…), EXISTS): it cannot multiply rows.
  if (node.type === 'SubLink') return true;
  if (node.type === 'FuncCall') {
    const parts = names(node.fields.funcname);
    const name = parts[parts.length - 1] ?? '';
    const schema = parts.length > 1 ? parts[parts.length - 2] : 'pg_catalog';
    if (schema !== 'pg_catalog' || parts.length > 2 || !SCALAR_FUNCTIONS.has(name)) return false;
    return scalarList(node.fields.args);
  }
  return Object.values(node.fields).every(scalarList);
}

/** Whether a query (an INSERT's or MERGE's source) yields rows the text bounds. */
export function boundedQuery(value: unknown, outer: Ctes): boolean {
  const node = unwrap(value);
  if (node?.type !== 'SelectStmt') return false;
  const f = node.fields;
  const ctes = ctesOf(f.withClause, outer);
  const op = str(f.op);
  if (op !== null && op !== 'SETOP_NONE') {
    const l = boundedQuery({ SelectStmt: f.larg }, ctes), r = boundedQuery({ SelectStmt: f.rarg }, ctes);
    return op === 'SETOP_UNION' ? l && r : op === 'SETOP_INTERSECT' ? l || r : l;
  }
  if (f.valuesLists !== undefined) return true;
  if (!scalarList([f.targetList, f.sortClause, f.groupClause])) return false;
  const from = list(f.fromClause);
  // No FROM: one row. Otherwise every relation of the FROM list must be pinned.
  return from.length === 0 || pinnedBy(f.whereClause, from, null, ctes);
}

/**
 * Whether one INSERT / UPDATE / DELETE / MERGE node may change rows the text does not bound:
 * UPDATE/DELETE whose WHERE (with inner joins' ON) does not pin the target; INSERT … ON CONFLICT DO UPDATE from an
 * unbounded source (unless its DO UPDATE WHERE pins the target); MERGE that updates or deletes
 * by a WHEN NOT MATCHED BY SOURCE clause, or by WHEN MATCHED unless its ON pins the target
 * (to constants, or to the columns of a bounded source query).
 */
export function unboundedWrite(kind: 'insert' | 'update' | 'delete' | 'merge', f: JsonObject, outerCtes: ReadonlySet<string>): boolean {
  const ctes = ctesOf(f.withClause, new Map([...outerCtes].map((n) => [n, null])));
  switch (kind) {
    case 'update': case 'delete': {
      const from = list(kind === 'update' ? f.fromClause : f.usingClause);
      const t = targetOf(f.relation, from.length > 0);
      return t === null || !(pinsTarget(f.whereClause, t) || pinnedBy(f.whereClause, from, t, ctes));
    }
    case 'insert': {
      const conflict = isObject(f.onConflictClause) ? f.onConflictClause : null;
      if (conflict === null || conflict.action !== 'ONCONFLICT_UPDATE') return false;
      if (f.selectStmt === undefined || boundedQuery(f.selectStmt, ctes)) return false;
      // `excluded` is in scope: only a qualified column names the target.
      const t = targetOf(f.relation, true);
      return t === null || !pinsTarget(conflict.whereClause, t);
    }
    case 'merge': {
      let changes = false;
      for (const w of list(f.mergeWhenClauses)) {
        const c = unwrap(w)?.fields ?? null;
        if (c === null) return true;
        if (c.commandType !== 'CMD_UPDATE' && c.commandType !== 'CMD_DELETE') continue;
        if (c.matchKind !== 'MERGE_WHEN_MATCHED') return true;
        changes = true;
      }
      if (!changes) return false;
      const t = targetOf(f.relation, true);
      return t === null || !pinnedBy(f.joinCondition, [f.sourceRelation], t, ctes);
    }
  }
}
