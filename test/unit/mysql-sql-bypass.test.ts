/**
 * The MySQL bypass corpus (test/unit/corpus/mysql-bypass.ts): each text's analysis, then
 * the same text on a real MariaDB as the oracle — whatever the server did to `t` must be
 * visible in the analysis, and a text the analysis split into N parsed statements must be
 * N statements to the server too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import { analyzeMysql } from '../../parsers/sql/mysql/index.js';
import type { SqlSessionSettings, StatementAnalysis } from '../../parsers/sql/types.js';
import { mysqlBypassCorpus, type MysqlBypassCase } from './corpus/mysql-bypass.js';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb.js';

let maria: MariaDbServer;

beforeAll(async () => {
  maria = await startMariaDb();
}, 120_000);

afterAll(async () => {
  await maria?.stop();
});

function analyse(c: MysqlBypassCase): StatementAnalysis[] {
  const settings: SqlSessionSettings = {
    standardConformingStrings: c.noBackslashEscapes === true,
    searchPath: ['bypass'],
    ...(c.ansiQuotes === undefined ? {} : { ansiQuotes: c.ansiQuotes }),
    ...(c.serverVersion === undefined ? {} : { serverVersion: c.serverVersion }),
  };
  return analyzeMysql(c.sql, settings).statements;
}

const refs = (rs: StatementAnalysis['reads']): string[] => rs.map((r) => `${r.schema ?? ''}.${r.name}`);

function checkAnalysis(c: MysqlBypassCase, all: StatementAnalysis[]): void {
  const stmts = all.filter((s) => !s.kinds.includes('empty'));
  const kinds = new Set(stmts.flatMap((s) => s.kinds));
  const anyUnparsed = stmts.some((s) => s.unparsed);
  const label = JSON.stringify({ sql: c.sql, stmts: stmts.map((s) => ({ text: s.text, kinds: s.kinds, unparsed: s.unparsed })) });
  for (const k of c.kinds ?? []) {
    if (c.orUnparsed === true && anyUnparsed) continue;
    expect(kinds.has(k as never), `${label} lacks kind ${k}`).toBe(true);
  }
  for (const k of c.kindsAbsent ?? []) expect(kinds.has(k as never), `${label} has kind ${k}`).toBe(false);
  if (c.statements !== undefined) expect(stmts.length, label).toBe(c.statements);
  if (c.unparsed !== undefined) expect(anyUnparsed, label).toBe(c.unparsed);
  if (c.opaque !== undefined) expect(stmts.some((s) => s.opaque), label).toBe(c.opaque);
  if (c.withoutWhere !== undefined) expect(stmts.some((s) => s.withoutWhere), label).toBe(c.withoutWhere);
  for (const r of c.reads ?? []) expect(refs(stmts.flatMap((s) => s.reads)), label).toContain(r);
  for (const w of c.writes ?? []) expect(refs(stmts.flatMap((s) => s.writes)), label).toContain(w);
}

interface TableState { exists: boolean; rows: number }

async function state(conn: mysql.Connection): Promise<TableState> {
  const [t] = await conn.query("SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = 'bypass' AND table_name = 't'");
  const exists = Number((t as Array<{ n: number }>)[0]?.n ?? 0) > 0;
  if (!exists) return { exists, rows: 0 };
  const [r] = await conn.query('SELECT COUNT(*) AS n FROM bypass.t');
  return { exists, rows: Number((r as Array<{ n: number }>)[0]?.n ?? 0) };
}

/** Runs the text on a fresh `bypass` database; returns what happened to t and how many results came back. */
async function oracle(c: MysqlBypassCase): Promise<{ before: TableState; after: TableState; results: number | null }> {
  const admin = await mysql.createConnection({ socketPath: maria.socket, user: maria.admin.username, password: maria.admin.password, multipleStatements: true });
  await admin.query("DROP DATABASE IF EXISTS bypass; CREATE DATABASE bypass; CREATE TABLE bypass.t (a int PRIMARY KEY, b varchar(20)); INSERT INTO bypass.t VALUES (1, 'x'), (2, 'y'), (3, 'z'); DROP PROCEDURE IF EXISTS bypass.p");
  const before = await state(admin);
  const conn = await mysql.createConnection({ socketPath: maria.socket, user: maria.admin.username, password: maria.admin.password, multipleStatements: true, database: 'bypass' });
  const modes = [...(c.noBackslashEscapes === true ? ['NO_BACKSLASH_ESCAPES'] : []), ...(c.ansiQuotes === true ? ['ANSI_QUOTES'] : [])];
  if (modes.length > 0) await conn.query(`SET SESSION sql_mode = CONCAT(@@sql_mode, ',${modes.join(',')}')`);
  let results: number | null = null;
  try {
    const [res] = await conn.query(c.sql);
    const isHeader = (r: unknown): boolean => typeof r === 'object' && r !== null && r.constructor.name === 'ResultSetHeader';
    results = Array.isArray(res) && res.length > 1 && res.every((r) => Array.isArray(r) || isHeader(r)) ? res.length : 1;
    // MariaDB answers CALL and compound statements with an extra OK.
  } catch {
    results = null;
  }
  await conn.end().catch(() => undefined);
  const after = await state(admin);
  await admin.end();
  return { before, after, results };
}

describe('MySQL bypass corpus', () => {
  for (const [klass, cases] of Object.entries(mysqlBypassCorpus)) {
    describe(klass, () => {
      for (const c of cases) {
        const mode = [c.noBackslashEscapes === true ? 'NO_BACKSLASH_ESCAPES' : '', c.ansiQuotes === true ? 'ANSI_QUOTES' : '', c.serverVersion !== undefined ? `v${c.serverVersion}` : ''].filter((x) => x !== '').join(',');
        it(`${JSON.stringify(c.sql)}${mode === '' ? '' : ` [${mode}]`}`, async () => {
          const all = analyse(c);
          checkAnalysis(c, all);
          const stmts = all.filter((s) => !s.kinds.includes('empty'));
          if (c.noOracle === true) return;
          const { before, after, results } = await oracle(c);
          const kinds = new Set<string>(stmts.flatMap((s) => s.kinds));
          const unparsed = stmts.some((s) => s.unparsed);
          const why = `${c.sql}: server ${JSON.stringify({ before, after, results })}, analysis ${JSON.stringify(stmts.map((s) => [s.kinds, s.unparsed]))}`;
          // Opaque: the analysis says it cannot know (PREPARE FROM @var; EXECUTE).
          const opaque = stmts.some((s) => s.opaque);
          if (before.exists && !after.exists) expect(unparsed || opaque || kinds.has('drop') || kinds.has('alter'), why).toBe(true);
          if (after.exists && after.rows < before.rows) expect(unparsed || opaque || ['delete', 'truncate', 'replace'].some((k) => kinds.has(k)), why).toBe(true);
          if (after.rows > before.rows) expect(unparsed || opaque || kinds.has('insert') || kinds.has('replace'), why).toBe(true);
          // Splitting: where every statement parsed and the server ran the text, the counts agree
          // (a comment-only piece after a ";" is an empty statement to the server as well).
          if (!unparsed && results !== null && !kinds.has('call')) expect(results, why).toBe(all.length);
        });
      }
    });
  }
});
