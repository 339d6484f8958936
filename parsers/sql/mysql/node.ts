/**
 * Reading node-sql-parser's AST (MySQL/MariaDB grammar) without trusting its shape: every
 * access is checked, so an unexpected node becomes "unknown", never an exception.
 */
import type { RelationRef } from '../types.js';

export type Node = Record<string, unknown>;

export const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);
export const asNode = (v: unknown): Node | null => (isNode(v) ? v : null);
export const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === null || v === undefined ? [] : [v]);

/**
 * An identifier as node-sql-parser leaves it: a string, or `{ expr: { value } }`, or
 * `{ value }`. Backtick-quoted names keep their doubled backticks; they are undone here.
 */
export function ident(v: unknown): string | null {
  if (typeof v === 'string') return v.replace(/``/g, '`');
  const n = asNode(v);
  if (n === null) return null;
  if (typeof n.value === 'string') return n.value.replace(/``/g, '`');
  if (n.expr !== undefined) return ident(n.expr);
  return null;
}

/**
 * Names compare in lower case. MariaDB on Linux (lower_case_table_names=0) keeps table and
 * database names case-sensitive, so `Customers` and `customers` can be two tables: folding
 * makes a rule on one also match the other, which over-approximates (never misses) — rules
 * and masks are written in lower case.
 */
export const fold = (s: string): string => s.toLowerCase();

/** A table reference in a FROM list, a DML target or a DDL name list: `{ db, table }`. */
export function tableRef(v: unknown): RelationRef | null {
  const n = asNode(v);
  if (n === null || !('table' in n) || 'column' in n || n.type === 'column_ref') return null;
  const name = ident(n.table);
  if (name === null || name === '') return null;
  const db = ident(n.db) ?? ident(n.schema);
  return { schema: db === null || db === '' ? null : fold(db), name: fold(name) };
}

/** A function node's qualified, lower-cased name (`function` and `aggr_func` nodes). */
export function functionName(n: Node): string | null {
  if (n.type === 'aggr_func') return typeof n.name === 'string' ? fold(n.name) : null;
  if (n.type !== 'function') return null;
  const name = asNode(n.name);
  if (typeof n.name === 'string') return fold(n.name);
  if (name === null) return null;
  const parts = arr(name.name).map(ident).filter((p): p is string => p !== null);
  const schema = ident(name.schema);
  if (parts.length === 0) return null;
  return fold([...(schema === null ? [] : [schema]), ...parts].join('.'));
}
