/**
 * Masking through the catalog on the MySQL wire (issue 25 items 2 and 3, issue 27 item 6),
 * through the real daemon with the mariadb client and mysql2 against a real MariaDB:
 * statistics (mysql.column_stats), other sessions' statement text (information_schema
 * .processlist, performance_schema), and errors and warnings of a statement that reads a
 * masked column. None of the seeded values may reach an identity under a column mask rule.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { freePort } from '../harness/ports.js';
import { run, type RunResult } from '../harness/clients.js';

const UPSTREAM_PASSWORD = 'catalog-Upstream-pw-27';
const SSNS = ['123-45-6789', '987-65-4321'];
const RAW = [...SSNS, '123456789', '987654321'];

let maria: LocalMaria;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let port = 0;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  issuer = await createTestIssuer();
  maria = await startLocalMaria({
    password: UPSTREAM_PASSWORD,
    args: ['--performance-schema=ON'],
    setupSql: `CREATE TABLE users (id int primary key, name varchar(50), ssn varchar(20));
      INSERT INTO users VALUES (1, 'ann', '${SSNS[0]}'), (2, 'bob', '${SSNS[1]}');
      CREATE TABLE taken (ssn varchar(20) primary key);
      INSERT INTO taken VALUES ('${SSNS[0]}');
      CREATE VIEW people AS SELECT id, ssn AS tax_id FROM users;
      ANALYZE TABLE users PERSISTENT FOR ALL;`,
  });
  await maria.sql("UPDATE performance_schema.setup_consumers SET enabled = 'YES' WHERE name LIKE 'events_statements%'");
  await maria.sql("GRANT PROCESS ON *.* TO 'app'@'%'; GRANT SELECT ON performance_schema.* TO 'app'@'%'; GRANT SELECT ON mysql.column_stats TO 'app'@'%'");
  port = await freePort();
  airlock = await startAirlock({
    state_dir: join(maria.dir, 'state'),
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [maria.connection('maria', port, { allow_groups: ['dba', 'dev'] })],
    rules: [{ name: 'mask-ssn', when: { groups: ['dev'] }, effect: 'mask', columns: ['appdb.users.ssn', 'appdb.taken.ssn'], method: 'redact' }],
  });
  for (const [sub, group] of [['bob', 'dba'], ['dave', 'dev']] as const) tokens[sub] = await issuer.token({ sub, groups: [group] });
}, 180_000);

afterAll(async () => {
  await airlock?.stop();
  await maria?.stop();
});

function mariadb(sub: string, args: string[]): Promise<RunResult> {
  return run('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(port), '-u', sub, '--connect-timeout=10', '-N', '-B', 'appdb', ...args], { env: { MYSQL_PWD: tokens[sub] ?? '' } });
}

function expectNoRaw(text: string, what: string): void {
  for (const v of RAW) expect(text, `${what} leaked ${v}`).not.toContain(v);
}

describe('statistics', () => {
  it('an unmasked identity sees raw values in mysql.column_stats (the leak is real)', async () => {
    const r = await mariadb('bob', ['-e', "SELECT min_value, max_value FROM mysql.column_stats WHERE table_name = 'users' AND column_name = 'ssn'"]);
    expect(r.stdout).toContain(SSNS[0]);
  });

  for (const sql of [
    "SELECT min_value, max_value, histogram FROM mysql.column_stats WHERE table_name = 'users'",
    "SELECT * FROM mysql.column_stats WHERE table_name = 'users'",
    "SELECT CONCAT(min_value, '/', max_value) FROM mysql.column_stats WHERE table_name = 'users'",
    "SELECT x FROM (SELECT max_value AS x FROM mysql.column_stats) t",
  ]) {
    it(`masks: ${sql}`, async () => {
      const r = await mariadb('dave', ['-e', sql]);
      expect(r.stderr, sql).toBe('');
      expectNoRaw(r.stdout + r.stderr, sql);
    });
  }
});

describe("other sessions' statement text", () => {
  let other: mysql.Connection;
  let running: Promise<unknown>;
  let otherId = 0;

  beforeAll(async () => {
    // A direct session (not through airlock) runs a slow statement with a masked value in it.
    other = await maria.server.connect('app', UPSTREAM_PASSWORD, 'appdb');
    const [rows] = await other.query('SELECT CONNECTION_ID() AS id');
    otherId = Number((rows as Array<{ id: number }>)[0]?.id);
    // A finished statement (performance_schema history) and a running one (processlist, current).
    await other.query(`SELECT '${SSNS[1]}' AS done`);
    // A failed statement: its error text (performance_schema MESSAGE_TEXT) names what it failed on.
    await other.query('SELECT * FROM no_such_table_987654321').catch(() => undefined);
    running = other.query(`SELECT SLEEP(300), '${SSNS[0]}' AS probe`).catch(() => undefined);
    for (;;) {
      const seen = await maria.sql(`SELECT COUNT(*) FROM information_schema.processlist WHERE id = ${otherId} AND info LIKE '%SLEEP(300)%'`);
      if (seen.trim() === '1') break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 60_000);

  afterAll(async () => {
    await maria.sql(`KILL QUERY ${otherId}`);
    await running;
    await other.end();
  });

  it('an unmasked identity sees it (the leak is real)', async () => {
    const r = await mariadb('bob', ['-e', 'SELECT info FROM information_schema.processlist']);
    expect(r.stdout).toContain(SSNS[0]);
  });

  for (const sql of [
    'SELECT info FROM information_schema.processlist',
    'SELECT * FROM information_schema.PROCESSLIST',
    'SELECT id, info_binary FROM information_schema.processlist',
    'SELECT UPPER(info) AS i FROM information_schema.processlist p',
    'SELECT sql_text, digest_text FROM performance_schema.events_statements_current',
    'SELECT * FROM performance_schema.events_statements_history',
    'SELECT sql_text FROM performance_schema.events_statements_history_long',
    'SELECT message_text FROM performance_schema.events_statements_history WHERE message_text IS NOT NULL',
    'SELECT processlist_info FROM performance_schema.threads',
    'SHOW FULL PROCESSLIST',
  ]) {
    it(`masks: ${sql}`, async () => {
      const r = await mariadb('dave', ['-e', sql]);
      expect(r.stderr, sql).toBe('');
      expect(r.stdout.length, sql).toBeGreaterThan(0);
      expectNoRaw(r.stdout + r.stderr, sql);
    });
  }

  it('masks it through mysql2 prepared statements (binary rows)', async () => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'dave', password: tokens.dave ?? '', database: 'appdb', enableCleartextPlugin: true });
    try {
      const [rows] = await c.execute('SELECT id, info FROM information_schema.processlist WHERE id = ?', [otherId]);
      expect((rows as unknown[]).length).toBe(1);
      expectNoRaw(JSON.stringify(rows), 'mysql2 execute');
    } finally {
      await c.end();
    }
  });
});

describe('errors and warnings of a statement that reads masked columns', () => {
  it('withholds an ERR whose text carries a masked value', async () => {
    // Strict mode: the comparison's conversion warning is an error naming the stored value.
    const r = await mariadb('dave', ['-e', 'UPDATE users SET name = name WHERE ssn = 0']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('ERROR 1292 (22007)');
    expect(r.stderr).toContain('details withheld: the statement reads masked columns');
    expectNoRaw(r.stderr, 'ERR');
  });

  it('withholds it through mysql2, keeping errno and SQLSTATE', async () => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'dave', password: tokens.dave ?? '', database: 'appdb', enableCleartextPlugin: true });
    try {
      const e = await c.execute('UPDATE users SET name = name WHERE ssn = ?', [0]).then(() => null, (err: unknown) => err as { errno?: number; sqlState?: string; message: string });
      expect(e).toMatchObject({ errno: 1292, sqlState: '22007' });
      expect(e?.message).toContain('details withheld');
      expectNoRaw(String(e?.message), 'mysql2 ERR');
    } finally {
      await c.end();
    }
  });

  it('keeps a safe template with its variable parts redacted', async () => {
    const r = await mariadb('dave', ['-e', 'SELECT nosuch FROM users']);
    expect(r.stderr).toMatch(/ERROR 1054 \(42S22\).*Unknown column '\[redacted\]' in '/);
  });

  it('an unmasked identity gets the warning text (the leak is real)', async () => {
    const r = await mariadb('bob', ['-e', 'SELECT CAST(ssn AS DATE) FROM users; SHOW WARNINGS']);
    expect(r.stdout).toContain(SSNS[0]);
  });

  for (const sql of [
    'SELECT CAST(ssn AS DATE) FROM users; SHOW WARNINGS',
    'SELECT CAST(ssn AS DATE) FROM users; SHOW ERRORS; SHOW WARNINGS LIMIT 5',
    'SELECT id FROM users WHERE CAST(ssn AS DATE) IS NULL; SELECT 1; SHOW WARNINGS',
    'SELECT CAST(tax_id AS DATE) FROM people; SHOW WARNINGS',
  ]) {
    it(`withholds warnings: ${sql}`, async () => {
      const r = await mariadb('dave', ['-e', sql]);
      expect(r.stderr, sql).toBe('');
      expect(r.stdout, sql).toContain('details withheld');
      expectNoRaw(r.stdout + r.stderr, sql);
    });
  }

  it('withholds warnings read through mysql2 too', async () => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'dave', password: tokens.dave ?? '', database: 'appdb', enableCleartextPlugin: true });
    try {
      await c.query('SELECT CAST(ssn AS DATE) FROM users');
      const [rows] = await c.query('SHOW WARNINGS');
      expect((rows as unknown[]).length).toBeGreaterThan(0);
      expect(JSON.stringify(rows)).toContain('details withheld');
      expectNoRaw(JSON.stringify(rows), 'SHOW WARNINGS');
    } finally {
      await c.end();
    }
  });

  it('leaves warnings of statements that read no masked column as they were', async () => {
    const r = await mariadb('dave', ['-e', "SELECT CAST('2024-13-45' AS DATE); SHOW WARNINGS"]);
    expect(r.stdout).toContain('2024-13-45');
  });
});
