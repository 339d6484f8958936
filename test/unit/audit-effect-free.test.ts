/**
 * Which PostgreSQL statements may be forwarded while their audit record syncs (pipelined
 * write-ahead, issue 17): only what the analysis proves effect-free; any doubt is synced first.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { analyzePostgres, loadSqlParsers } from '../../parsers/sql/index.js';
import { isEffectFree } from '../../src/audit/effect-free.js';

const settings = { standardConformingStrings: true, searchPath: ['"$user"', 'public'] };

beforeAll(async () => {
  await loadSqlParsers();
});

function effectFree(sql: string): boolean[] {
  return analyzePostgres(sql, settings, null).statements.map(isEffectFree);
}

describe('effect-free statements', () => {
  it.each([
    'SELECT abalance FROM pgbench_accounts WHERE aid = 42',
    'SELECT 1 AS reader, 2 AS n',
    'SELECT a.id, b.name FROM a JOIN b ON a.id = b.id WHERE a.x > 3 ORDER BY 1 LIMIT 10',
    'WITH r AS (SELECT id FROM a) SELECT * FROM r',
  ])('%s: pipelined', (sql) => {
    expect(effectFree(sql)).toEqual([true]);
  });

  it.each([
    ['an INSERT', 'INSERT INTO t VALUES (1)'],
    ['an UPDATE', 'UPDATE t SET a = 1 WHERE id = 2'],
    ['nextval', "SELECT nextval('ticket')"],
    ['a function the analyser cannot vouch for', 'SELECT touch()'],
    ['a built-in function (a caller may shadow it)', 'SELECT count(*) FROM t'],
    ['a function in WHERE', 'SELECT id FROM t WHERE f(id)'],
    ['FOR UPDATE', 'SELECT * FROM t WHERE id = 1 FOR UPDATE'],
    ['FOR NO KEY UPDATE', 'SELECT * FROM t FOR NO KEY UPDATE'],
    ['FOR SHARE', 'SELECT * FROM t FOR SHARE'],
    ['FOR KEY SHARE', 'SELECT * FROM t FOR KEY SHARE'],
    ['SELECT INTO (creates a table)', 'SELECT * INTO copy FROM t'],
    ['a data-modifying CTE', 'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d'],
    ['unparsed text', 'SELEKT 1'],
    ['SET', 'SET search_path = evil'],
    ['DO', "DO $$ BEGIN PERFORM 1; END $$"],
    ['EXPLAIN ANALYZE (runs the statement)', 'EXPLAIN ANALYZE DELETE FROM t'],
    ['a cursor declaration', 'DECLARE c CURSOR FOR SELECT 1'],
    ['LOCK', 'LOCK TABLE t'],
  ])('%s: synced before forwarding', (_what, sql) => {
    expect(effectFree(sql)).not.toContain(true);
  });
});
