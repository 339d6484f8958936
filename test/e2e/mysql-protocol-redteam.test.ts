/**
 * MySQL protocol-level paths a determined caller would try (issue 25's red-team pass):
 * COM_RESET_CONNECTION, COM_CHANGE_USER, COM_STMT_SEND_LONG_DATA and the binary protocol,
 * through the real daemon with mysql2 against a real MariaDB; each is checked by the
 * upstream's own state, not by what airlock says.
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
const UPSTREAM_PW = 'protocol-Redteam-pw-25';

beforeAll(async () => {
  issuer = await createTestIssuer();
  maria = await startLocalMaria({
    password: UPSTREAM_PW,
    setupSql: `CREATE TABLE victims (id int primary key, note varchar(50));
      INSERT INTO victims VALUES (1, 'keep'), (2, 'keep');`,
  });
  port = await freePort();
  airlock = await startAirlock({
    state_dir: join(maria.dir, 'state'),
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [maria.connection('maria', port, { allow_groups: ['dev'] })],
    rules: [
      { name: 'no-drop', when: { statements: ['drop', 'truncate', 'delete'] }, effect: 'deny' },
      { name: 'mask-ssn', when: { groups: ['dev'] }, effect: 'mask', columns: ['appdb.customers.ssn'], method: 'redact' },
    ],
  });
  token = await issuer.token({ sub: 'mallory', groups: ['dev'] });
}, 180_000);

afterAll(async () => {
  await airlock?.stop();
  await maria?.stop();
});

const driver = (): Promise<mysql.Connection> =>
  mysql.createConnection({ host: '127.0.0.1', port, user: 'mallory', password: token, database: 'appdb', enableCleartextPlugin: true, multipleStatements: true });

const victims = async (): Promise<string> => (await maria.sql('SELECT COUNT(*) FROM victims', 'appdb')).trim();

/** mysql2's COM_RESET_CONNECTION, as a promise. */
function reset(c: mysql.Connection): Promise<void> {
  const raw = (c as unknown as { connection: { reset(cb: (err: Error | null) => void): void } }).connection;
  return new Promise((resolve, reject) => raw.reset((err) => (err === null || err === undefined ? resolve() : reject(err))));
}

describe('COM_RESET_CONNECTION', () => {
  it('after SET sql_mode=NO_BACKSLASH_ESCAPES and a reset, airlock reads backslashes as the server then does (no hidden DROP)', async () => {
    const c = await driver();
    try {
      await c.query("SET sql_mode = 'NO_BACKSLASH_ESCAPES'");
      await reset(c);
      // Read with backslash escapes (the server after the reset): one string, then DELETE.
      // Read without them (a stale reading): two strings, harmless.
      const sneaky = "SELECT 'x\\' , ' ; DELETE FROM victims; -- '";
      await expect(c.query(sneaky)).rejects.toMatchObject({ errno: 1142 });
      expect(await victims()).toBe('2');
      const [rows] = await c.query("SELECT 'a\\'b' AS v");
      expect((rows as Array<{ v: string }>)[0]?.v).toBe("a'b");
    } finally {
      await c.end();
    }
  });
});

describe('SET STATEMENT … FOR (review red team)', () => {
  it('the inner statement is judged: a DELETE behind harmless settings is denied; a sql_mode setting hiding one is not read as harmless', async () => {
    const c = await driver();
    try {
      await expect(c.query('SET STATEMENT max_statement_time=10 FOR DELETE FROM victims')).rejects.toMatchObject({ errno: 1142 });
      await expect(c.query("SET STATEMENT sql_mode='NO_BACKSLASH_ESCAPES' FOR SELECT 'x\\' , ' ; DELETE FROM victims; -- '")).rejects.toMatchObject({ errno: 1142 });
      await expect(c.query('SET STATEMENT max_statement_time=10 FOR SELECT 1; DELETE FROM victims')).rejects.toMatchObject({ errno: 1142 });
      expect(await victims()).toBe('2');
      const [rows] = await c.query('SET STATEMENT max_statement_time=10 FOR SELECT 41 + 1 AS v');
      expect((rows as Array<{ v: number }>)[0]?.v).toBe(42);
    } finally {
      await c.end();
    }
  });
});

describe('COM_CHANGE_USER', () => {
  it('is refused with an error naming why; the session keeps its identity and goes on', async () => {
    const c = await driver();
    try {
      await expect(c.changeUser({ user: 'root', password: UPSTREAM_PW })).rejects.toMatchObject({ message: expect.stringMatching(/COM_CHANGE_USER is refused/) as unknown });
    } finally {
      c.destroy();
    }
    expect(airlock.output()).not.toContain(UPSTREAM_PW);
  });
});

describe('binary protocol and COM_STMT_SEND_LONG_DATA', () => {
  it('a prepared DELETE is judged at prepare; a prepared SELECT of a masked column is masked in binary rows', async () => {
    const c = await driver();
    try {
      await expect(c.prepare('DELETE FROM victims WHERE id = ?')).rejects.toMatchObject({ errno: 1142 });
      const [rows] = await c.execute('SELECT ssn, id FROM customers WHERE id = ?', [1]);
      expect(JSON.stringify(rows)).not.toContain('123-45-6789');
      expect(await victims()).toBe('2');
    } finally {
      await c.end();
    }
  });

  it('a long-data parameter (a Buffer sent in COM_STMT_SEND_LONG_DATA) is a value, never SQL', async () => {
    const c = await driver();
    try {
      const long = Buffer.from("'; DELETE FROM victims; -- ".repeat(4000));
      const [rows] = await c.execute('SELECT LENGTH(?) AS n', [long]);
      expect((rows as Array<{ n: number }>)[0]?.n).toBe(long.length);
      expect(await victims()).toBe('2');
    } finally {
      await c.end();
    }
  });
});
