/**
 * Ephemeral MySQL/MariaDB users against a real throwaway MariaDB (test/harness/mariadb.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb.js';

let maria: MariaDbServer;

beforeAll(async () => {
  maria = await startMariaDb();
}, 120_000);

afterAll(async () => {
  await maria?.stop();
});

describe('the MariaDB harness', () => {
  it('serves appdb.customers to the admin over TCP and splits multi-statement text server-side', async () => {
    expect(maria.port).not.toBe(3306);
    expect(maria.version).toBeGreaterThanOrEqual(100000);
    const c = await maria.connect(maria.admin.username, maria.admin.password, 'appdb');
    const [rows] = await c.query('SELECT name FROM customers ORDER BY id');
    await c.end();
    expect(rows).toEqual([{ name: 'Ann' }, { name: 'Bob' }, { name: 'Cy' }]);
    const results = await maria.rootResults('SELECT 1 AS a; SELECT 2 AS b');
    expect(results).toEqual([[{ a: 1 }], [{ b: 2 }]]);
    expect(await maria.rootQuery('SELECT 3 AS c')).toEqual([{ c: 3 }]);
    expect((await maria.cli('SELECT COUNT(*) FROM customers', 'appdb')).trim()).toBe('3');
  });

  it('creates users that log in over TCP', async () => {
    await maria.createUser('harness_u1', "pw'\\x");
    const c = await maria.connect('harness_u1', "pw'\\x");
    const [rows] = await c.query('SELECT CURRENT_USER() AS u');
    await c.end();
    expect(rows).toEqual([{ u: 'harness_u1@%' }]);
  });
});
