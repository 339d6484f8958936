/**
 * What a parsed MySQL statement touches: relations read and written, functions called,
 * nested statement kinds, whether a stored function makes its effects opaque. One generic
 * walk over node-sql-parser's AST: every `{ db, table }` is a relation, read unless it is
 * the statement's own target; every `function` / `aggr_func` node is a call.
 */
import type { RelationRef, StatementKind } from '../types.js';
import { BUILTIN_FUNCTIONS } from './builtins.js';
import { unboundedWrite } from './bounds.js';
import { arr, asNode, fold, functionName, ident, isNode, tableRef, type Node } from './node.js';

export interface Effects {
  kinds: StatementKind[];
  reads: Map<string, RelationRef>;
  writes: Map<string, RelationRef>;
  functions: Set<string>;
  withoutWhere: boolean;
  opaque: boolean;
}

export const emptyEffects = (): Effects => ({ kinds: [], reads: new Map(), writes: new Map(), functions: new Set(), withoutWhere: false, opaque: false });

const refKey = (r: RelationRef): string => `${r.schema ?? ''}\u0000${r.name}`;
export const addKind = (fx: Effects, k: StatementKind): void => { if (!fx.kinds.includes(k)) fx.kinds.push(k); };
export const addRead = (fx: Effects, r: RelationRef): void => { fx.reads.set(refKey(r), r); };
export const addWrite = (fx: Effects, r: RelationRef): void => { fx.writes.set(refKey(r), r); };

/** Statement node types → kind; MySQL-only types map to the kinds STATEMENT_KINDS names. */
const KIND_OF_TYPE: Readonly<Record<string, StatementKind>> = {
  select: 'select', insert: 'insert', replace: 'replace', update: 'update', delete: 'delete',
  create: 'create', alter: 'alter', drop: 'drop', truncate: 'truncate', rename: 'alter',
  grant: 'grant', revoke: 'revoke', set: 'set', show: 'show', use: 'use', desc: 'describe',
  explain: 'explain', call: 'call', load_data: 'load_data', lock: 'lock', unlock: 'lock',
  transaction: 'transaction',
};

export const kindOfType = (type: unknown): StatementKind => (typeof type === 'string' ? KIND_OF_TYPE[type] ?? 'other' : 'other');

const SKIP_KEYS = new Set(['tableList', 'columnList', 'parentheses', 'loc']);

/**
 * The WITH clause of `n`, walked with each definition in its own scope (as the server resolves
 * names): the names visible around `n`, the CTEs defined before it, and under WITH RECURSIVE
 * itself — a non-recursive `WITH v AS (SELECT * FROM v)` reads the relation v. Returns the
 * scope of the rest of `n`: every name the clause defines. A name defined in a subquery does
 * not hide a relation of that name outside it.
 */
function walkWith(n: Node, fx: Effects, ctes: ReadonlySet<string>, own: ReadonlySet<unknown>): Set<string> {
  const list = arr(n.with);
  const names = list.map((c) => { const name = ident(asNode(c)?.name); return name === null ? null : fold(name); });
  const recursive = list.some((c) => asNode(c)?.recursive === true);
  list.forEach((c, i) => {
    const inner = new Set(ctes);
    for (const name of names.slice(0, i)) if (name !== null) inner.add(name);
    const self = names[i];
    if (recursive && self !== null && self !== undefined) inner.add(self);
    walk(c, fx, inner, false, own);
  });
  const scope = new Set(ctes);
  for (const name of names) if (name !== null) scope.add(name);
  return scope;
}

/** Relations that are the statement's own target (written), by node type. */
function targets(stmt: Node): unknown[] {
  switch (stmt.type) {
    case 'insert': case 'replace': case 'update': case 'delete': case 'load_data': return arr(stmt.table);
    case 'drop': case 'truncate': return [...arr(stmt.name), ...arr(stmt.table)];
    case 'create': case 'alter': {
      // CREATE VIEW names its view `{ db, view }`.
      const view = asNode(stmt.view);
      return [...arr(stmt.table), ...(view === null ? [] : [{ db: view.db ?? null, table: view.view ?? view.table }])];
    }
    case 'rename': return arr(stmt.table).flatMap((p) => arr(p));
    default: return [];
  }
}

function walk(value: unknown, fx: Effects, ctes: ReadonlySet<string>, top: boolean, own: ReadonlySet<unknown>): void {
  if (Array.isArray(value)) { for (const v of value) walk(v, fx, ctes, false, own); return; }
  const n = asNode(value);
  if (n === null || own.has(n)) return;
  if (!top && typeof n.type === 'string' && n.type in KIND_OF_TYPE && n.type !== 'set' && ('columns' in n || 'table' in n)) {
    // A nested statement (a subquery, INSERT … SELECT): its kind counts too.
    addKind(fx, kindOfType(n.type));
  }
  const scope = 'with' in n ? walkWith(n, fx, ctes, own) : ctes;
  const ref = tableRef(n);
  if (ref !== null && !(ref.schema === null && scope.has(ref.name))) addRead(fx, ref);
  if (n.type === 'function' || n.type === 'aggr_func') {
    const name = functionName(n);
    if (name !== null) {
      fx.functions.add(name);
      if (!BUILTIN_FUNCTIONS.has(name)) fx.opaque = true;
    } else {
      fx.opaque = true;
    }
  }
  for (const k of Object.keys(n)) if (k !== 'with' && !SKIP_KEYS.has(k) && (isNode(n[k]) || Array.isArray(n[k]))) walk(n[k], fx, scope, false, own);
}

/** A multi-table DELETE names its targets as FROM names them: `DELETE x FROM a AS x` deletes from a. */
function deleteTarget(stmt: Node, target: unknown): RelationRef | null {
  const t = asNode(target);
  if (stmt.type !== 'delete' || t === null || (t.db !== null && t.db !== undefined && t.db !== '')) return null;
  const name = ident(t.table);
  if (name === null) return null;
  for (const f of arr(stmt.from)) {
    const alias = ident(asNode(f)?.as);
    if (alias !== null && fold(alias) === fold(name)) return tableRef(f);
  }
  return null;
}

/** Effects of one statement node (top-level kind first). */
export function collectEffects(stmt: Node, fx: Effects): void {
  addKind(fx, kindOfType(stmt.type));
  const ownNodes = targets(stmt);
  const own = ownNodes.map((t) => deleteTarget(stmt, t) ?? tableRef(t)).filter((r): r is RelationRef => r !== null);
  for (const r of own) addWrite(fx, r);
  // The target is written, not read; DELETE lists its targets again in FROM.
  const skip = new Set<unknown>(ownNodes);
  if (stmt.type === 'delete') {
    const keys = new Set(own.map(refKey));
    for (const f of arr(stmt.from)) { const t = tableRef(f); if (t !== null && keys.has(refKey(t)) && asNode(f)?.on === undefined) skip.add(f); }
  }
  walk(stmt, fx, new Set<string>(), true, skip);
  // UPDATE and DELETE read the rows they change.
  if (stmt.type === 'update' || stmt.type === 'delete') for (const r of own) addRead(fx, r);
  if (unboundedWrite(stmt)) fx.withoutWhere = true;
  // Rules match effects: each way rows get added, changed or removed has its kind too.
  switch (stmt.type) {
    case 'replace':
      // REPLACE deletes the rows whose keys collide, then inserts.
      addKind(fx, 'insert');
      addKind(fx, 'delete');
      break;
    case 'insert':
      if (asNode(stmt.on_duplicate_update) !== null) addKind(fx, 'update');
      break;
    case 'truncate':
      // TRUNCATE removes every row: a delete, and an unbounded one.
      addKind(fx, 'delete');
      fx.withoutWhere = true;
      break;
    case 'load_data':
      addKind(fx, 'insert');
      if (stmt.replace_ignore === 'replace') addKind(fx, 'delete');
      break;
    case 'select': {
      const into = asNode(stmt.into);
      const keyword = typeof into?.keyword === 'string' ? into.keyword.toUpperCase() : '';
      if (keyword === 'OUTFILE' || keyword === 'DUMPFILE') addKind(fx, 'into_outfile');
      break;
    }
    default:
  }
}
