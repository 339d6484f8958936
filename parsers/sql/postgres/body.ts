/**
 * Routine bodies given as text: `DO '…'`, `CREATE FUNCTION … AS '…'`. Their statements are
 * analysed so that the effects they would have are reported (a DO that deletes is a delete),
 * but a DO stays opaque: control flow, dynamic EXECUTE and called routines are not followed.
 */
import { parsePlPgSQLSync, parseSync } from 'libpg-query';
import { collectStatement, type Effects } from './effects.js';
import { isObject, list, str } from './node.js';

const MAX_DEPTH = 4;
let depth = 0;

function analyzeSqlText(sql: string, fx: Effects): boolean {
  try {
    const result = parseSync(sql);
    for (const raw of list(result.stmts)) if (isObject(raw)) collectStatement(raw.stmt, fx);
    return true;
  } catch {
    return false;
  }
}

/** Every `PLpgSQL_expr.query` in a PL/pgSQL parse tree, and whether dynamic SQL appears. */
function plpgsqlQueries(value: unknown, out: { queries: string[]; dynamic: boolean }): void {
  if (Array.isArray(value)) { for (const v of value) plpgsqlQueries(v, out); return; }
  if (!isObject(value)) return;
  for (const key of Object.keys(value)) {
    if (key === 'PLpgSQL_stmt_dynexecute' || key === 'PLpgSQL_stmt_dynfors') out.dynamic = true;
    const inner = value[key];
    if (key === 'PLpgSQL_expr' && isObject(inner)) {
      const q = str(inner.query);
      if (q !== null) out.queries.push(q);
    }
    plpgsqlQueries(inner, out);
  }
}

function dollarQuote(body: string): string {
  let tag = 'airlock';
  while (body.includes(`$${tag}$`)) tag += '_';
  return `$${tag}$${body}$${tag}$`;
}

function analyzePlpgsql(body: string, fx: Effects): void {
  let tree: unknown;
  try {
    tree = parsePlPgSQLSync(`CREATE FUNCTION airlock_body() RETURNS void LANGUAGE plpgsql AS ${dollarQuote(body)}`);
  } catch {
    fx.opaque = true;
    return;
  }
  const found = { queries: [] as string[], dynamic: false };
  plpgsqlQueries(tree, found);
  if (found.dynamic) fx.opaque = true;
  for (const q of found.queries) {
    // Expressions and assignments (`x := …`) are SQL once given a SELECT.
    const assigned = /^\s*[\w."]+(\s*\[[^\]]*\])?\s*:?=/.exec(q);
    const candidates = [q, `SELECT ${q}`];
    if (assigned !== null) candidates.push(`SELECT ${q.slice(assigned[0].length)}`);
    if (!candidates.some((c) => analyzeSqlText(c, fx))) fx.opaque = true;
  }
}

export function analyzeRoutineBody(body: string, language: string, fx: Effects): void {
  if (depth >= MAX_DEPTH) { fx.opaque = true; return; }
  depth++;
  try {
    if (language === 'sql') { if (!analyzeSqlText(body, fx)) fx.opaque = true; }
    else if (language === 'plpgsql') analyzePlpgsql(body, fx);
    else fx.opaque = true;
  } finally {
    depth--;
  }
}
