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
