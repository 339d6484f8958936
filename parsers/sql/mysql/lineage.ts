/**
 * Output-column lineage and predicate columns of one MySQL statement (node-sql-parser AST),
 * for masking. Same contract as postgres/lineage.ts: over-approximate; an expression not
 * modelled depends on every column reference inside it; a stored function, a user variable
 * (`@v`, which may hold anything an earlier statement put there) or an unknown construct
 * makes the output `unknown`.
 */
import type { OutputLineage, RelationRef } from '../types.js';
import { BUILTIN_FUNCTIONS } from './builtins.js';
import { arr, asNode, fold, functionName, ident, isNode, tableRef, type Node } from './node.js';

type Source = { relation: RelationRef; column: string };
interface Deps { sources: Source[]; unknown: boolean }

interface RangeEntry {
  alias: string;
  relation: RelationRef | null;
  columns: Map<string, Deps> | null;
  whole: Deps;
}

interface Scope { entries: RangeEntry[]; parent: Scope | null; ctes: ReadonlyMap<string, OutputLineage[]> }
interface Ctx { predicates: Map<string, Source>; written: Deps | null }

export interface StatementLineage {
  outputs: OutputLineage[] | null;
  predicateColumns: Source[];
  written: Deps | null;
}

const none = (): Deps => ({ sources: [], unknown: false });
const unknown = (): Deps => ({ sources: [], unknown: true });
const sourceKey = (s: Source): string => `${s.relation.schema ?? ''}\u0000${s.relation.name}\u0000${s.column}`;

function merge(into: Deps, from: Deps): Deps {
  const seen = new Set(into.sources.map(sourceKey));
  for (const s of from.sources) if (!seen.has(sourceKey(s))) { seen.add(sourceKey(s)); into.sources.push(s); }
  into.unknown = into.unknown || from.unknown;
  return into;
}

function lineageDeps(outputs: readonly OutputLineage[]): Deps {
  const d = none();
  for (const o of outputs) merge(d, { sources: [...o.sources], unknown: o.unknown });
  return d;
}

const predicate = (ctx: Ctx, d: Deps): void => { for (const s of d.sources) ctx.predicates.set(sourceKey(s), s); };
const wrote = (ctx: Ctx, d: Deps): void => { ctx.written = merge(ctx.written ?? none(), d); };

function findEntry(scope: Scope | null, alias: string, schema: string | null): RangeEntry | null {
  for (let s = scope; s !== null; s = s.parent) {
    for (const e of s.entries) {
      if (e.alias === alias && (schema === null || e.relation?.schema === schema || e.relation?.schema === null)) return e;
    }
  }
  return null;
}

function entryColumn(e: RangeEntry, column: string): Deps {
  if (e.relation !== null) return { sources: [{ relation: e.relation, column }], unknown: false };
  const known = e.columns?.get(column);
  return merge(none(), known ?? e.whole);
}

/** MySQL column names are case-insensitive: compare folded. */
function resolveColumn(table: string | null, schema: string | null, column: string, scope: Scope | null): Deps {
  const col = fold(column);
  if (table === null) {
    if (col === '*') {
      const d = none();
      for (const e of scope?.entries ?? []) merge(d, e.whole);
      return d;
    }
    for (let s = scope; s !== null; s = s.parent) {
      const d = none();
      let found = false;
      for (const e of s.entries) {
        if (e.relation !== null || e.columns === null || e.columns.has(col)) { merge(d, entryColumn(e, col)); found = true; }
      }
      if (found) return d;
    }
    return unknown();
  }
  const e = findEntry(scope, fold(table), schema === null ? null : fold(schema));
  if (e === null) return unknown();
  return col === '*' ? merge(none(), e.whole) : entryColumn(e, col);
}

function columnRef(n: Node, scope: Scope | null): Deps {
  const column = ident(n.column);
  if (column === null) return unknown();
  return resolveColumn(ident(n.table), ident(n.db) ?? ident(n.schema), column, scope);
}

/** A subquery wherever it sits: `{ ast }` wrappers and bare select nodes. */
function subquery(n: Node): Node | null {
  const ast = asNode(n.ast);
  if (ast !== null && typeof ast.type === 'string') return ast;
  if (n.type === 'select') return n;
  return null;
}

function exprDeps(value: unknown, scope: Scope | null, ctx: Ctx): Deps {
  if (Array.isArray(value)) { const d = none(); for (const v of value) merge(d, exprDeps(v, scope, ctx)); return d; }
  const n = asNode(value);
  if (n === null) return none();
  const sub = subquery(n);
  if (sub !== null) return lineageDeps(selectOutputs(sub, scope, ctx));
  switch (n.type) {
    case 'column_ref': return columnRef(n, scope);
    case 'var':
      // @@system variables hold settings; @user variables hold whatever was put there.
      return n.prefix === '@@' ? none() : unknown();
    case 'function': case 'aggr_func': {
      const d = none();
      for (const k of Object.keys(n)) if (k !== 'name') merge(d, exprDeps(n[k], scope, ctx));
      const name = functionName(n);
      if (name === null || !BUILTIN_FUNCTIONS.has(name)) d.unknown = true;
      return d;
    }
    default: {
      const d = none();
      for (const k of Object.keys(n)) if (k !== 'tableList' && k !== 'columnList') merge(d, exprDeps(n[k], scope, ctx));
      return d;
    }
  }
}

function derivedEntry(alias: string, outputs: readonly OutputLineage[]): RangeEntry {
  const columns = new Map<string, Deps>();
  let complete = true;
  for (const o of outputs) {
    if (o.expansion === true) complete = false;
    if (complete && o.name !== null) columns.set(fold(o.name), { sources: [...o.sources], unknown: o.unknown });
  }
  return { alias, relation: null, columns: complete ? columns : null, whole: lineageDeps(outputs) };
}

function addFromItem(item: unknown, scope: Scope, ctx: Ctx): void {
  const n = asNode(item);
  if (n === null) return;
  const alias = ident(n.as);
  const expr = asNode(n.expr);
  const sub = expr === null ? null : subquery(expr);
  if (sub !== null) {
    // A derived table sees the outer query's scope only when LATERAL (MySQL 8.0.14+).
    const outer: Scope = n.lateral === true ? scope : { entries: [], parent: scope.parent, ctes: scope.ctes };
    scope.entries.push(derivedEntry(fold(alias ?? ''), selectOutputs(sub, outer, ctx)));
  } else {
    const ref = tableRef(n);
    if (ref !== null) {
      const cte = ref.schema === null ? findCte(scope, ref.name) : undefined;
      if (cte !== undefined) scope.entries.push(derivedEntry(fold(alias ?? ref.name), cte));
      else scope.entries.push({ alias: fold(alias ?? ref.name), relation: ref, columns: null, whole: { sources: [{ relation: ref, column: '*' }], unknown: false } });
    } else {
      // JSON_TABLE, VALUES, anything else in FROM: every column depends on everything inside.
      scope.entries.push({ alias: fold(alias ?? ''), relation: null, columns: null, whole: merge(exprDeps(n, scope, ctx), { sources: [], unknown: true }) });
    }
  }
  predicate(ctx, exprDeps(n.on, scope, ctx));
  for (const u of arr(n.using)) { const c = ident(u); if (c !== null) predicate(ctx, resolveColumn(null, null, c, { ...scope, parent: null })); }
}

function findCte(scope: Scope | null, name: string): OutputLineage[] | undefined {
  for (let s = scope; s !== null; s = s.parent) { const c = s.ctes.get(name); if (c !== undefined) return c; }
  return undefined;
}

function withCtes(withClause: unknown, scope: Scope, ctx: Ctx): Map<string, OutputLineage[]> {
  const ctes = new Map<string, OutputLineage[]>();
  for (const c of arr(withClause)) {
    const cte = asNode(c);
    if (cte === null) continue;
    const name = ident(cte.name);
    const stmt = asNode(cte.stmt);
    const query = stmt === null ? null : (subquery(stmt) ?? stmt);
    if (name === null || query === null) continue;
    const colnames = arr(cte.columns).map(ident);
    // Recursive CTEs read themselves: iterate until the lineage stops growing.
    let outputs: OutputLineage[] = [{ name: null, sources: [], unknown: false, expansion: true }];
    for (let round = 0; round < 8; round++) {
      ctes.set(fold(name), outputs);
      const next = selectOutputs(query, { entries: [], parent: scope, ctes }, ctx).map((o, i) => ({ ...o, name: colnames[i] ?? o.name }));
      const same = JSON.stringify(next) === JSON.stringify(outputs);
      outputs = next;
      if (same) break;
      if (round === 7) outputs = outputs.map((o) => ({ ...o, unknown: true }));
    }
    ctes.set(fold(name), outputs);
  }
  return ctes;
}

function outputName(col: Node): string | null {
  const as = ident(col.as);
  if (as !== null) return as;
  const e = asNode(col.expr);
  if (e?.type === 'column_ref') return ident(e.column);
  return null;
}

function targetOutputs(columns: unknown, scope: Scope, ctx: Ctx): OutputLineage[] {
  const out: OutputLineage[] = [];
  const list = columns === '*' ? [{ expr: { type: 'column_ref', table: null, column: '*' } }] : arr(columns);
  for (const c of list) {
    const col = asNode(c);
    if (col === null) { out.push({ name: null, sources: [], unknown: true }); continue; }
    const e = asNode(col.expr);
    if (e?.type === 'column_ref' && ident(e.column) === '*') {
      const table = ident(e.table);
      const entries = table === null ? scope.entries : [findEntry(scope, fold(table), null)];
      for (const en of entries) {
        if (en === null) { out.push({ name: null, sources: [], unknown: true, expansion: true }); continue; }
        if (en.columns !== null) for (const [name, d] of en.columns) out.push({ name, sources: [...d.sources], unknown: d.unknown });
        else out.push({ name: null, sources: [...en.whole.sources], unknown: en.whole.unknown, expansion: true });
      }
      continue;
    }
    const d = exprDeps(col.expr, scope, ctx);
    out.push({ name: outputName(col), sources: d.sources, unknown: d.unknown });
  }
  return out;
}

function sortPredicates(clauses: unknown, scope: Scope, outputs: readonly OutputLineage[], ctx: Ctx): void {
  const node = asNode(clauses);
  const items = node !== null && 'columns' in node ? arr(node.columns) : arr(clauses);
  for (const c of items) {
    const item = asNode(c);
    const expr = item !== null && 'expr' in item && item.type !== 'column_ref' ? item.expr : c;
    const e = asNode(expr);
    // ORDER BY 2: an output position; count every output.
    if (e?.type === 'number') { predicate(ctx, lineageDeps(outputs)); continue; }
    const byName = e?.type === 'column_ref' && ident(e.table) === null ? outputs.filter((o) => o.name !== null && fold(o.name) === fold(ident(e.column) ?? '')) : [];
    predicate(ctx, merge(exprDeps(expr, scope, ctx), lineageDeps(byName)));
  }
}

function selectOutputs(sel: Node, parent: Scope | null, ctx: Ctx): OutputLineage[] {
  if (sel.type !== 'select') {
    if (sel.type === 'values') {
      const columns: Deps[] = [];
      for (const row of arr(sel.values)) arr(asNode(row)?.value).forEach((v, i) => { columns[i] = merge(columns[i] ?? none(), exprDeps(v, parent, ctx)); });
      return columns.map((d) => ({ name: null, sources: d.sources, unknown: d.unknown }));
    }
    return [{ name: null, sources: [], unknown: true, expansion: true }];
  }
  const scope: Scope = { entries: [], parent, ctes: new Map() };
  scope.ctes = withCtes(sel.with, scope, ctx);
  for (const item of arr(sel.from)) addFromItem(item, scope, ctx);
  const outputs = targetOutputs(sel.columns, scope, ctx);
  predicate(ctx, exprDeps(sel.where, scope, ctx));
  predicate(ctx, exprDeps(sel.having, scope, ctx));
  predicate(ctx, exprDeps(sel.window, scope, ctx));
  sortPredicates(sel.groupby, scope, outputs, ctx);
  sortPredicates(sel.orderby, scope, outputs, ctx);
  const next = asNode(sel._next);
  if (next === null) return outputs;
  // UNION / INTERSECT / EXCEPT: column i of the result is column i of every branch.
  const r = selectOutputs({ ...next, with: null }, { entries: [], parent, ctes: scope.ctes }, ctx);
  if (outputs.some((o) => o.expansion === true) || r.some((o) => o.expansion === true) || outputs.length !== r.length) {
    const d = merge(lineageDeps(outputs), lineageDeps(r));
    return [{ name: null, sources: d.sources, unknown: d.unknown, expansion: true }];
  }
  return outputs.map((o, i) => {
    const d = merge({ sources: [...o.sources], unknown: o.unknown }, { sources: r[i]?.sources ?? [], unknown: r[i]?.unknown ?? true });
    return { name: o.name, sources: d.sources, unknown: d.unknown };
  });
}

/** SELECT … INTO (@var, OUTFILE, DUMPFILE) returns no rows to the client. */
function selectsInto(sel: Node): boolean {
  const into = asNode(sel.into);
  return into !== null && (into.keyword !== undefined && into.keyword !== null);
}

function dmlOutputs(stmt: Node, ctx: Ctx): OutputLineage[] | null {
  const scope: Scope = { entries: [], parent: null, ctes: new Map() };
  scope.ctes = withCtes(stmt.with, scope, ctx);
  for (const t of arr(stmt.table)) if (stmt.type !== 'delete' || arr(stmt.from).length === 0) addFromItem(t, scope, ctx);
  for (const item of arr(stmt.from)) addFromItem(item, scope, ctx);
  predicate(ctx, exprDeps(stmt.where, scope, ctx));
  sortPredicates(stmt.orderby, scope, [], ctx);
  switch (stmt.type) {
    case 'delete': wrote(ctx, none()); break;
    case 'update': for (const s of arr(stmt.set)) wrote(ctx, exprDeps(asNode(s)?.value, scope, ctx)); break;
    default: {
      const values = asNode(stmt.values);
      const sub = values === null ? null : subquery(values);
      if (sub !== null && sub.type === 'select') wrote(ctx, lineageDeps(selectOutputs(sub, scope, ctx)));
      else if (values !== null) wrote(ctx, lineageDeps(selectOutputs(values, scope, ctx)));
      else wrote(ctx, exprDeps(stmt.set, scope, ctx));
      const dup = asNode(stmt.on_duplicate_update);
      if (dup !== null) for (const s of arr(dup.set)) wrote(ctx, exprDeps(asNode(s)?.value, scope, ctx));
    }
  }
  const returning = asNode(stmt.returning);
  if (returning === null) return null;
  return targetOutputs(returning.columns, scope, ctx);
}

export function statementLineage(stmt: Node): StatementLineage {
  const ctx: Ctx = { predicates: new Map(), written: null };
  let outputs: OutputLineage[] | null = null;
  try {
    switch (stmt.type) {
      case 'select': outputs = selectsInto(stmt) ? (selectOutputs(stmt, null, ctx), null) : selectOutputs(stmt, null, ctx); break;
      case 'insert': case 'replace': case 'update': case 'delete': outputs = dmlOutputs(stmt, ctx); break;
      case 'load_data': wrote(ctx, none()); break;
      default:
        // CREATE TABLE … SELECT and the like: what is written is unknown here.
        if (isNode(stmt)) exprDeps(stmt, null, ctx);
    }
  } catch {
    outputs = [{ name: null, sources: [], unknown: true, expansion: true }];
    ctx.written = unknown();
  }
  return { outputs, predicateColumns: [...ctx.predicates.values()], written: ctx.written };
}
