/**
 * Issue 23, the reported false positive: under the default sql_mode MariaDB reads
 * `SELECT "a\"b"` as one string literal; airlock, which does not know whether the session has
 * ANSI_QUOTES, used to read it both ways and refuse it as opaque. Under ANSI_QUOTES the text does
 * not even tokenize (an identifier, then an unterminated quote), so only the string reading can
 * run. The converse stays refused: text that tokenizes only under ANSI_QUOTES is read that way.
 * Through the real daemon and MariaDB, with mysql2 sending each text as one COM_QUERY.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { freePort } from '../harness/ports.js';

let maria: LocalMaria;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let port = 0;
let token = '';

beforeAll(async () => {
  issuer = await createTestIssuer();
  maria = await startLocalMaria({ password: 'quoting-Upstream-pw-23', setupSql: 'CREATE TABLE keepme (id int primary key); INSERT INTO keepme VALUES (1);' });
  port = await freePort();
  airlock = await startAirlock({
    state_dir: join(maria.dir, 'state'),
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [maria.connection('maria', port, { allow_groups: ['dev'] })],
    rules: [
      { name: 'no-opaque', when: { opaque: true }, effect: 'deny' },
      { name: 'no-drops', when: { statements: ['drop'] }, effect: 'deny' },
    ],
  });
  token = await issuer.token({ sub: 'alice', groups: ['dev'] });
}, 180_000);

afterAll(async () => {
  await airlock?.stop();
  await maria?.stop();
});

const connect = (): Promise<mysql.Connection> =>
  mysql.createConnection({ host: '127.0.0.1', port, user: 'alice', password: token, database: 'appdb', enableCleartextPlugin: true, multipleStatements: true });

describe('double-quoted strings with backslash-escaped quotes (default sql_mode)', () => {
  const cases: Array<[string, string]> = [
    ['SELECT "a\\"b" AS v', 'a"b'],
    ['SELECT "\\"" AS v', '"'],
    ['SELECT "it\\"s; not a boundary" AS v', 'it"s; not a boundary'],
    ["SELECT \"a\\\"b\" AS v -- trailing comment", 'a"b'],
  ];
  for (const [sql, value] of cases) {
    it(`${sql} reads as a string and passes a no-opaque rule`, async () => {
      const c = await connect();
      try {
        const [rows] = await c.query(sql);
        expect(rows).toEqual([{ v: value }]);
      } finally {
        await c.end();
      }
    });
  }

  it('text that only tokenizes under ANSI_QUOTES is read that way: the DROP it hides is denied', async () => {
    const c = await connect();
    try {
      await c.query('SET SESSION sql_mode = CONCAT(@@sql_mode, ",ANSI_QUOTES")').catch(() => undefined);
      // default sql_mode: one string, then an unterminated quote (a syntax error);
      // ANSI_QUOTES: SELECT "a\" (a column), DROP TABLE keepme, SELECT "b" (a column).
      await expect(c.query('SELECT "a\\"; DROP TABLE keepme; SELECT "b"')).rejects.toThrow(/no-drops|denied|policy/i);
    } finally {
      await c.end();
    }
    expect((await maria.sql('SELECT COUNT(*) FROM keepme', 'appdb')).trim()).toBe('1');
  });
});

// Review of issue 17 (the COM_QUERY path now looks at the text's tail only when a statement changes
// how text reads): a change of sql_mode that is not the last statement of its text is refused whole —
// what follows it would be read by the server in the new mode, not as airlock analysed it.
describe('a sql_mode change followed by more text in one query', () => {
  const refused: Array<[string, RegExp]> = [
    // NO_BACKSLASH_ESCAPES: the server then reads 'a\' as a whole string and runs the DROP.
    ["SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'; SELECT 'a\\'; DROP TABLE keepme; -- '", /must be the last in its query/],
    // Under the mode in force the rest does not tokenize at all: refused earlier, as opaque.
    ["SET/**/sql_mode='ANSI_QUOTES'; SELECT \"a\\\"; DROP TABLE keepme; SELECT \"b\"", /no-opaque/],
    ["SET @@session.sql_mode := 'NO_BACKSLASH_ESCAPES'  ;  SELECT 1", /must be the last in its query/],
  ];
  for (const [sql, why] of refused) {
    it(`refused: ${sql}`, async () => {
      const c = await connect();
      try {
        await expect(c.query(sql)).rejects.toThrow(why);
        // The session survives, and its sql_mode was not changed.
        const [rows] = await c.query('SELECT @@SESSION.sql_mode LIKE "%NO_BACKSLASH_ESCAPES%" AS nbe, @@SESSION.sql_mode LIKE "%ANSI_QUOTES%" AS aq');
        expect(rows).toEqual([{ nbe: 0, aq: 0 }]);
      } finally {
        await c.end();
      }
      expect((await maria.sql('SELECT COUNT(*) FROM keepme', 'appdb')).trim()).toBe('1');
    });
  }

  it('allowed when the change comes last (trailing spaces and semicolons too)', async () => {
    const c = await connect();
    try {
      await c.query("SELECT 1; SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES' ;  ");
      const [rows] = await c.query('SELECT @@SESSION.sql_mode LIKE "%NO_BACKSLASH_ESCAPES%" AS nbe');
      expect(rows).toEqual([{ nbe: 1 }]);
    } finally {
      await c.end();
    }
  });
});
