/**
 * Rules match effects, not syntax (issue 25, item 4), on the MySQL wire: an upsert from an
 * unbounded SELECT, REPLACE … SELECT, a constant WHERE and a multi-table DELETE without WHERE
 * are denied by a `without_where` rule (ERR 1142), a LOAD DATA / REPLACE into a table is held
 * by the rule about its inserts and deletes, and bounded writes still run — checked by the
 * upstream's own state, through the real daemon with the mariadb client and mysql2.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { freePort } from '../harness/ports.js';
import { run, type RunResult } from '../harness/clients.js';

let maria: LocalMaria;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let port = 0;
let adminUrl = '';
const tokens: Record<string, string> = {};

beforeAll(async () => {
  issuer = await createTestIssuer();
  maria = await startLocalMaria({
    password: 'effects-Upstream-pw-25',
    setupSql: `CREATE TABLE clients (id int primary key, notes varchar(50));
      INSERT INTO clients VALUES (1, 'orig'), (2, 'orig'), (3, 'orig'), (4, 'orig'), (5, 'orig');
      CREATE TABLE purchases (id int primary key, cid int, amount int);
      INSERT INTO purchases VALUES (1, 1, 10), (2, 2, 20);
      CREATE TABLE imports (id int primary key, name varchar(50));`,
  });
  port = await freePort();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  airlock = await startAirlock({
    state_dir: join(maria.dir, 'state'),
    admin: { listen: `127.0.0.1:${adminPort}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [maria.connection('maria', port, { allow_groups: ['dev', 'dba'] })],
    rules: [
      { name: 'no-unbounded-writes', when: { statements: ['update', 'delete'], unbounded: true }, effect: 'deny' },
      { name: 'local-files-may-be-loaded', when: { statements: ['load_data_local'] }, effect: 'allow' },
      { name: 'imports-are-read-only', when: { statements: ['insert'], tables: ['appdb.imports'] }, effect: 'deny', reason: 'imports is filled by the nightly job' },
      { name: 'purchases-deletes-need-a-dba', when: { statements: ['delete'], tables: ['appdb.purchases'], groups: ['dev'] }, effect: 'approve', approvers: ['dba'], timeout: '60s' },
    ],
  });
  for (const [sub, group] of [['alice', 'dev'], ['bob', 'dba']] as const) tokens[sub] = await issuer.token({ sub, groups: [group] });
}, 180_000);

afterAll(async () => {
  await airlock?.stop();
  await maria?.stop();
});

function mariadb(sub: string, args: string[]): Promise<RunResult> {
  return run('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(port), '-u', sub, '--connect-timeout=10', '-N', '-B', 'appdb', ...args], { env: { MYSQL_PWD: tokens[sub] ?? '' } });
}

const driver = (sub: string): Promise<mysql.Connection> =>
  mysql.createConnection({ host: '127.0.0.1', port, user: sub, password: tokens[sub] ?? '', database: 'appdb', enableCleartextPlugin: true });

const rewritten = async (): Promise<string> => (await maria.sql("SELECT COUNT(*) FROM clients WHERE notes <> 'orig'", 'appdb')).trim();
const count = async (table: string): Promise<string> => (await maria.sql(`SELECT COUNT(*) FROM ${table}`, 'appdb')).trim();

describe('unbounded writes are denied', () => {
  const statements: Array<[string, string]> = [
    ['INSERT … SELECT … ON DUPLICATE KEY UPDATE', "INSERT INTO clients SELECT * FROM clients ON DUPLICATE KEY UPDATE notes = 'x'"],
    ['REPLACE … SELECT', "REPLACE INTO clients SELECT id, 'x' FROM clients"],
    ['UPDATE … WHERE 1', "UPDATE clients SET notes = 'x' WHERE 1"],
    ["UPDATE … WHERE 'a' = 'a'", "UPDATE clients SET notes = 'x' WHERE 'a' = 'a'"],
    ['DELETE … WHERE id = 1 || 1 (|| is OR to the server)', 'DELETE FROM clients WHERE id = 1 || 1'],
    ['multi-table DELETE without WHERE', 'DELETE c FROM clients c JOIN purchases o ON o.cid = c.id'],
    ['multi-table UPDATE without WHERE', "UPDATE clients c JOIN purchases o ON o.cid = c.id SET c.notes = 'x'"],
    ['TRUNCATE', 'TRUNCATE clients'],
    ['a string column = 0 (MariaDB compares numerically: every non-numeric string is 0)', 'DELETE FROM clients WHERE notes = 0'],
  ];
  for (const [name, sql] of statements) {
    it(`mariadb client: ${name}`, async () => {
      const r = await mariadb('alice', ['-e', sql]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/ERROR 1142 \(42000\).*denied by rule no-unbounded-writes: an unbounded/);
      expect(await rewritten()).toBe('0');
      expect(await count('clients')).toBe('5');
    });
  }

  it('mysql2 (prepared and plain): the upsert and the REPLACE answer ERR 1142, the session goes on', async () => {
    const c = await driver('alice');
    try {
      await expect(c.execute('INSERT INTO clients SELECT * FROM clients ON DUPLICATE KEY UPDATE notes = ?', ['x'])).rejects.toMatchObject({ errno: 1142, sqlState: '42000' });
      await expect(c.query("REPLACE INTO clients SELECT id, 'x' FROM clients")).rejects.toMatchObject({ errno: 1142 });
      const [rows] = await c.query('SELECT COUNT(*) AS n FROM clients');
      expect((rows as Array<{ n: number }>)[0]?.n).toBe(5);
    } finally {
      await c.end();
    }
    expect(await rewritten()).toBe('0');
  });
});

describe('bounded writes still run', () => {
  it('UPDATE … WHERE id = 1, an upsert of VALUES, REPLACE of VALUES, a join pinned to one row', async () => {
    const r = await mariadb('alice', ['-e', [
      "UPDATE clients SET notes = 'one' WHERE id = 1",
      "INSERT INTO clients VALUES (2, 'two'), (6, 'six') ON DUPLICATE KEY UPDATE notes = VALUES(notes)",
      "REPLACE INTO clients VALUES (3, 'three')",
      "UPDATE clients c JOIN purchases o ON o.cid = c.id SET c.notes = 'four' WHERE o.id = 2 AND c.id = 2",
    ].join('; ')]);
    expect(r.code, r.stderr).toBe(0);
    expect((await maria.sql("SELECT GROUP_CONCAT(CONCAT(id, '=', notes) ORDER BY id) FROM clients WHERE notes <> 'orig'", 'appdb')).trim()).toBe('1=one,2=four,3=three,6=six');
    await maria.sql("UPDATE clients SET notes = 'orig'; DELETE FROM clients WHERE id = 6", 'appdb');
  });
});

describe("REPLACE's deletes", () => {
  it('REPLACE INTO purchases is held by the rule about deletes from appdb.purchases, and runs nothing when denied', async () => {
    const replace = mariadb('alice', ['-e', 'REPLACE INTO purchases VALUES (1, 1, 99)']);
    let id: string | undefined;
    for (let i = 0; i < 200 && id === undefined; i++) {
      const res = await fetch(`${adminUrl}/v1/approvals`, { headers: { authorization: `Bearer ${tokens.bob ?? ''}` } });
      const body = (await res.json()) as { approvals: Array<{ id: string; requester: { subject: string } }> };
      id = body.approvals.find((a) => a.requester.subject === 'alice')?.id;
      if (id === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(id).toBeDefined();
    const d = await fetch(`${adminUrl}/v1/approvals/${id ?? ''}/deny`, { method: 'POST', headers: { authorization: `Bearer ${tokens.bob ?? ''}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'not today' }) });
    expect(d.status).toBe(200);
    const r = await replace;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/denied by rule purchases-deletes-need-a-dba: not today/);
    expect((await maria.sql('SELECT amount FROM purchases WHERE id = 1', 'appdb')).trim()).toBe('10');
  });
});

describe('LOAD DATA is an insert', () => {
  it('LOAD DATA LOCAL INTO imports is denied by the rule about inserts into appdb.imports, and loads nothing', async () => {
    const file = join(maria.dir, 'rows.csv');
    writeFileSync(file, '1,a\n2,b\n');
    const r = await run('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(port), '-u', 'alice', '--connect-timeout=10', '--local-infile=1', 'appdb',
      '-e', `LOAD DATA LOCAL INFILE '${file}' INTO TABLE imports FIELDS TERMINATED BY ','`], { env: { MYSQL_PWD: tokens.alice ?? '' } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERROR 1142 \(42000\).*denied by rule imports-are-read-only: imports is filled by the nightly job/);
    expect(await count('imports')).toBe('0');
  });
});
