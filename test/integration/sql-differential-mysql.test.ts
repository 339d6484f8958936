/**
 * Differential test of airlock's MySQL reading against the real MariaDB (issue 23): generated
 * texts (test/harness/sql-gen.ts) with every literal, comment and quoted-identifier form, `;`
 * inside all of them, are run on the server under each sql_mode (ANSI_QUOTES and
 * NO_BACKSLASH_ESCAPES on and off) and read by airlock with that mode known, and with
 * ANSI_QUOTES unknown (what the daemon sees). The server's results say how many statements ran
 * and which wrote a row; airlock must see the same statements, kinds and tables. With ANSI_QUOTES
 * unknown, airlock may see more (the union of both readings) but never less, and never refuse.
 * Seeded: AIRLOCK_FUZZ_SEED / AIRLOCK_FUZZ_RUNS (see README "Fuzzing").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import mysql from 'mysql2/promise';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { FUZZ_SEED, fuzzRuns, mysqlText, type Expected, type MysqlMode } from '../harness/sql-gen.js';
import { analyzeMysql } from '../../parsers/sql/mysql/index.js';
import type { StatementAnalysis } from '../../parsers/sql/types.js';

const PASSWORD = 'differential-Upstream-pw-23';
let maria: LocalMaria;
let conn: mysql.Connection;
let serverVersion = 0;

beforeAll(async () => {
  maria = await startLocalMaria({
    password: PASSWORD,
    setupSql: 'CREATE TABLE t1 (v varbinary(200)); INSERT INTO t1 VALUES (1); CREATE TABLE t2 (v varbinary(200));',
  });
  conn = await mysql.createConnection({ host: '127.0.0.1', port: maria.port, user: 'app', password: PASSWORD, database: 'appdb', multipleStatements: true });
  const [rows] = await conn.query('SELECT VERSION() AS v');
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(String((rows as Array<{ v: string }>)[0]?.v)) ?? ['', '10', '0', '0'];
  serverVersion = Number(m[1]) * 10_000 + Number(m[2]) * 100 + Number(m[3]);
}, 180_000);

afterAll(async () => {
  await conn?.end();
  await maria?.stop();
});

type ServerResult = { ok: true; statements: Array<'select' | 'insert'> } | { ok: false; error: string };

async function onServer(text: string): Promise<ServerResult> {
  try {
    const [res] = await conn.query({ sql: text, rowsAsArray: true });
    const isHeader = (r: unknown): boolean => typeof r === 'object' && r !== null && !Array.isArray(r) && 'affectedRows' in r;
    if (isHeader(res)) return { ok: true, statements: ['insert'] };
    // One SELECT comes back as its rows (each an array of values: rowsAsArray, and every generated
    // SELECT returns one row); several statements as a list of row lists and OK headers.
    const first: unknown = Array.isArray(res) ? res[0] : undefined;
    const multi = isHeader(first) || (Array.isArray(first) && Array.isArray(first[0]));
    const results: unknown[] = multi ? (res as unknown[]) : [res];
    return { ok: true, statements: results.map((r) => (isHeader(r) ? 'insert' : 'select')) };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

const names = (refs: StatementAnalysis['reads']): string[] => refs.map((r) => r.name.toLowerCase());

/**
 * Texts airlock refuses on purpose, with a reason that says what to change: a comment inside a
 * skipped versioned comment (MariaDB nests it, see lexer.ts), and — with ANSI_QUOTES unknown — a
 * double-quoted token whose two readings differ (write strings in single quotes).
 */
const refusable = (text: string, exact: boolean): boolean =>
  /\/\*M?!\d{5,6}(?:(?!\*\/)[\s\S])*?\/\*/.test(text) || (!exact && text.includes('"'));

/** Why airlock's reading disagrees with what the server did, or null. */
function compare(text: string, expected: Expected[], server: ServerResult, read: StatementAnalysis[], exact: boolean): string | null {
  if (!server.ok) {
    // A text the server refuses: airlock must not read a harmless statement into it either.
    return read.some((s) => s.unparsed) ? null : `server refused (${server.error}) but airlock read ${read.length} statement(s)`;
  }
  // A text airlock refuses on purpose may run differently from how it was generated (a nested comment swallowed a statement).
  if (read.some((s) => s.unparsed) && refusable(text, exact)) return 'refused';
  if (server.statements.length !== expected.length || server.statements.some((k, i) => k !== expected[i]?.kind)) return `generator: server ran ${server.statements.join(',')}`;
  const live = read.filter((s) => !s.kinds.every((k) => k === 'empty'));
  if (live.some((s) => s.unparsed) && refusable(text, exact)) return 'refused';
  if (live.some((s) => s.unparsed)) return `refused: ${live.filter((s) => s.unparsed).map((s) => s.syntaxError ?? 'unparsed').join('; ')}`;
  if (live.length !== expected.length) return `airlock read ${live.length} statement(s), the server ran ${expected.length}`;
  for (const [i, e] of expected.entries()) {
    const s = live[i] as StatementAnalysis;
    if (s.opaque) return `statement ${i + 1} read as opaque`;
    if (exact ? s.kinds[0] !== e.kind : !s.kinds.includes(e.kind)) return `statement ${i + 1}: airlock ${s.kinds.join(',')}, server ${e.kind}`;
    const tables = e.kind === 'insert' ? names(s.writes) : names(s.reads);
    if (e.table !== null && !tables.includes(e.table)) return `statement ${i + 1}: airlock tables [${tables.join(',')}], server ${e.table}`;
    if (exact && e.kind === 'select' && s.writes.length > 0) return `statement ${i + 1}: airlock sees a write in a SELECT`;
  }
  return null;
}

const MODES: MysqlMode[] = [
  { ansiQuotes: false, noBackslashEscapes: false },
  { ansiQuotes: true, noBackslashEscapes: false },
  { ansiQuotes: false, noBackslashEscapes: true },
  { ansiQuotes: true, noBackslashEscapes: true },
];
const RUNS = fuzzRuns(3000);

describe('MySQL reading agrees with MariaDB', () => {
  for (const [mi, mode] of MODES.entries()) {
    const sqlMode = [mode.ansiQuotes ? 'ANSI_QUOTES' : '', mode.noBackslashEscapes ? 'NO_BACKSLASH_ESCAPES' : ''].filter((x) => x !== '').join(',');
    it(`sql_mode '${sqlMode}': ${Math.ceil(RUNS / MODES.length)} texts`, async () => {
      await conn.query(`SET SESSION sql_mode = '${sqlMode}'`);
      const cases = fc.sample(mysqlText(mode), { seed: FUZZ_SEED + mi, numRuns: Math.ceil(RUNS / MODES.length) });
      const disagreements: string[] = [];
      let refused = 0;
      const started = process.hrtime.bigint();
      for (const c of cases) {
        const server = await onServer(c.text);
        const base = { standardConformingStrings: mode.noBackslashEscapes, searchPath: ['appdb'], serverVersion };
        for (const exact of [true, false]) {
          const read = analyzeMysql(c.text, exact ? { ...base, ansiQuotes: mode.ansiQuotes } : base).statements;
          const why = compare(c.text, c.statements, server, read, exact);
          if (why === 'refused') refused++;
          else if (why !== null) disagreements.push(`${exact ? 'known' : 'unknown'} ANSI_QUOTES: ${why}\n    ${JSON.stringify(c.text)}`);
        }
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      console.log(`mysql differential [${sqlMode || 'default'}] seed ${FUZZ_SEED + mi}: ${cases.length} texts, ${(cases.length / seconds).toFixed(0)} cases/s, ${disagreements.length} disagreements, ${refused} readings refused with a reason`);
      expect(disagreements.slice(0, 15)).toEqual([]);
    }, 600_000);
  }
});
