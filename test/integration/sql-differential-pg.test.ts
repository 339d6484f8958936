/**
 * Differential test of airlock's PostgreSQL reading against the real server (issue 23): generated
 * texts (test/harness/sql-gen.ts) with plain, E'…', U&'…' (UESCAPE), dollar-quoted (tagged),
 * B'…'/X'…' literals, nested block comments, line comments and quoted / U&"…" identifiers, `;`
 * inside all of them, run as one simple Query under standard_conforming_strings on and off. The
 * server's results say how many statements ran and which inserted a row; airlock must see the same.
 * Seeded: AIRLOCK_FUZZ_SEED / AIRLOCK_FUZZ_RUNS (see README "Fuzzing").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import pg from 'pg';
import { findPgBinDir, startPostgres, type PgServer } from '../harness/postgres.js';
import { FUZZ_SEED, fuzzRuns, pgText, type Expected, type PgMode } from '../harness/sql-gen.js';
import { analyzePostgres, loadSqlParsers } from '../../parsers/sql/index.js';
import type { StatementAnalysis } from '../../parsers/sql/types.js';

let server: PgServer;
let client: pg.Client;

beforeAll(async () => {
  if (findPgBinDir() === null) throw new Error('PostgreSQL is not installed');
  await loadSqlParsers();
  server = await startPostgres();
  await server.psql('CREATE TABLE t1 (v text); INSERT INTO t1 VALUES (1); CREATE TABLE t2 (v text);');
  client = new pg.Client({ host: server.host, port: server.port, user: server.superuser, password: server.superPassword, database: 'postgres' });
  await client.connect();
  client.on('notice', () => undefined);
}, 180_000);

afterAll(async () => {
  await client?.end();
  await server?.stop();
});

type ServerResult = { ok: true; statements: string[] } | { ok: false; error: string };

async function onServer(text: string): Promise<ServerResult> {
  try {
    const res = (await client.query(text)) as unknown as pg.QueryResult | pg.QueryResult[];
    const list = Array.isArray(res) ? res : [res];
    return { ok: true, statements: list.map((r) => (r.command === 'INSERT' ? 'insert' : r.command === 'SELECT' ? 'select' : String(r.command))) };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

function compare(expected: Expected[], server: ServerResult, read: StatementAnalysis[]): string | null {
  if (!server.ok) return read.some((s) => s.unparsed) ? null : `server refused (${server.error}) but airlock read ${read.length} statement(s)`;
  if (server.statements.length !== expected.length || server.statements.some((k, i) => k !== expected[i]?.kind)) return `generator: server ran ${server.statements.join(',')}`;
  const live = read.filter((s) => !s.kinds.every((k) => k === 'empty'));
  if (live.some((s) => s.unparsed)) return 'refused: unparsed';
  if (live.length !== expected.length) return `airlock read ${live.length} statement(s), the server ran ${expected.length}`;
  for (const [i, e] of expected.entries()) {
    const s = live[i] as StatementAnalysis;
    if (s.opaque) return `statement ${i + 1} read as opaque`;
    if (s.kinds[0] !== e.kind) return `statement ${i + 1}: airlock ${s.kinds.join(',')}, server ${e.kind}`;
    const tables = (e.kind === 'insert' ? s.writes : s.reads).map((r) => r.name.toLowerCase());
    if (e.table !== null && !tables.includes(e.table)) return `statement ${i + 1}: airlock tables [${tables.join(',')}], server ${e.table}`;
    if (e.kind === 'select' && s.writes.length > 0) return `statement ${i + 1}: airlock sees a write in a SELECT`;
  }
  return null;
}

const MODES: PgMode[] = [{ standardConformingStrings: true }, { standardConformingStrings: false }];
const RUNS = fuzzRuns(3000);

describe('PostgreSQL reading agrees with the server', () => {
  for (const [mi, mode] of MODES.entries()) {
    const scs = mode.standardConformingStrings ? 'on' : 'off';
    it(`standard_conforming_strings ${scs}: ${Math.ceil(RUNS / MODES.length)} texts`, async () => {
      await client.query(`SET standard_conforming_strings = ${scs}; SET escape_string_warning = off`);
      const cases = fc.sample(pgText(mode), { seed: FUZZ_SEED + 10 + mi, numRuns: Math.ceil(RUNS / MODES.length) });
      const disagreements: string[] = [];
      const started = process.hrtime.bigint();
      for (const c of cases) {
        const server = await onServer(c.text);
        const read = analyzePostgres(c.text, { standardConformingStrings: mode.standardConformingStrings, searchPath: ['public'] }, null).statements;
        const why = compare(c.statements, server, read);
        if (why !== null) disagreements.push(`${why}\n    ${JSON.stringify(c.text)}`);
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      console.log(`pg differential [standard_conforming_strings ${scs}] seed ${FUZZ_SEED + 10 + mi}: ${cases.length} texts, ${(cases.length / seconds).toFixed(0)} cases/s, ${disagreements.length} disagreements`);
      expect(disagreements.slice(0, 15)).toEqual([]);
    }, 600_000);
  }
});
