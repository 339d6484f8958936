/**
 * Pipelined write-ahead (issue 17) on the MySQL wire, real MariaDB, the real daemon and
 * mysql2. A COM_QUERY of one effect-free SELECT of base tables is forwarded while its audit
 * record syncs, but no byte of its answer reaches the client before the record is durable;
 * if the sync fails the client gets ERR 1105 (HY000) and no row, and the session goes on.
 * Anything with an effect or a doubt — INSERT, UPDATE, SLEEP, a stored function, a view (it
 * may call one), NEXTVAL, FOR UPDATE, a SELECT behind another statement — is never forwarded
 * before its record is durable. What reached the server is read from its general log
 * (mysql.general_log). The daemon's test hooks hold (gate file) or fail (fail file) every sync.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { freePort } from '../harness/ports.js';

let maria: LocalMaria;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let token = '';
let port = 0;
let aliasPort = 0;
let gate = '';
let fail = '';

beforeAll(async () => {
  issuer = await createTestIssuer();
  maria = await startLocalMaria({
    password: 'pipelined-Upstream-pw-17',
    args: ['--general-log=1', '--log-output=TABLE'],
    // appdb.customers comes with the harness: 1 Ann, 2 Bob, 3 Cy.
    setupSql: `CREATE TABLE hits (n int);
      CREATE SEQUENCE ticket;
      DELIMITER //
      CREATE FUNCTION touch() RETURNS int MODIFIES SQL DATA BEGIN INSERT INTO hits VALUES (99); RETURN 1; END//
      DELIMITER ;
      CREATE VIEW touched AS SELECT touch() AS t;
      DELIMITER //
      CREATE FUNCTION any_value(x int) RETURNS int MODIFIES SQL DATA BEGIN INSERT INTO hits VALUES (x); RETURN x; END//
      CREATE FUNCTION regexp_like(x int) RETURNS int MODIFIES SQL DATA BEGIN INSERT INTO hits VALUES (x); RETURN x; END//
      CREATE FUNCTION \`count\`(x int) RETURNS int MODIFIES SQL DATA BEGIN INSERT INTO hits VALUES (x); RETURN x; END//
      CREATE FUNCTION \`max\`(x int) RETURNS int MODIFIES SQL DATA BEGIN INSERT INTO hits VALUES (x); RETURN x; END//
      CREATE FUNCTION \`trim\`(x int) RETURNS int MODIFIES SQL DATA BEGIN INSERT INTO hits VALUES (x); RETURN x; END//
      DELIMITER ;`,
  });
  gate = join(maria.dir, 'hold-syncs');
  fail = join(maria.dir, 'fail-syncs');
  port = await freePort();
  aliasPort = await freePort();
  process.env.AIRLOCK_TEST_AUDIT_SYNC_GATE = gate;
  process.env.AIRLOCK_TEST_AUDIT_SYNC_FAIL = fail;
  try {
    airlock = await startAirlock({
      state_dir: join(maria.dir, 'state'),
      auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
      connections: [maria.connection('maria', port, { allow_groups: ['dba'] }), maria.connection('maria-alias', aliasPort, { allow_groups: ['dba'] })],
    });
  } finally {
    delete process.env.AIRLOCK_TEST_AUDIT_SYNC_GATE;
    delete process.env.AIRLOCK_TEST_AUDIT_SYNC_FAIL;
  }
  token = await issuer.token({ sub: 'alice', groups: ['dba'] }, { ttlSeconds: 600 });
}, 180_000);

afterAll(async () => {
  rmSync(gate, { force: true });
  rmSync(fail, { force: true });
  await airlock?.stop();
  await maria?.stop();
});

const connected = (via = port): Promise<mysql.Connection> =>
  mysql.createConnection({ host: '127.0.0.1', port: via, user: 'alice', password: token, database: 'appdb', enableCleartextPlugin: true });

const direct = async (sql: string): Promise<string> => (await maria.sql(sql, 'appdb')).trim();
const quoted = (text: string): string => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
/** How many times the server received exactly this statement text. */
const received = (text: string): Promise<string> => direct(`SELECT COUNT(*) FROM mysql.general_log WHERE command_type = 'Query' AND argument = ${quoted(text)}`);

async function untilReceived(text: string): Promise<void> {
  while ((await received(text)) === '0') await new Promise((r) => setTimeout(r, 50));
}

describe('pipelined write-ahead, mysql COM_QUERY', () => {
  it('an effect-free SELECT runs upstream while its record syncs, and the client gets rows only once it is durable', async () => {
    const c = await connected();
    try {
      // The first SELECT learns that customers is a base table (the view look-up), so the held one does not wait for it.
      await c.query('SELECT name FROM customers WHERE id = 2');
      writeFileSync(gate, '');
      const text = 'SELECT name FROM customers WHERE id = 1';
      let delivered = false;
      const q = c.query(text).then(([rows]) => {
        delivered = true;
        return rows;
      });
      await untilReceived(text);
      // The server has the statement, the record is not durable: nothing of the answer has been delivered.
      await new Promise((r) => setTimeout(r, 300));
      expect(delivered).toBe(false);
      rmSync(gate);
      expect(await q).toEqual([{ name: 'Ann' }]);
    } finally {
      rmSync(gate, { force: true });
      await c.end();
    }
  });

  it('a large answer held for its record: airlock stops reading, the server waits to send it (backpressure), then all of it arrives', async () => {
    const c = await connected();
    try {
      // 64 rows of 1 MB: far more than the sockets' buffers hold.
      const text = "SELECT seq, REPEAT('x', 1048576) AS pad FROM seq_1_to_64";
      await c.query(`${text} WHERE seq = 0`);
      writeFileSync(gate, '');
      const q = c.query(text);
      await untilReceived(text);
      await new Promise((r) => setTimeout(r, 500));
      // Still sending on the server's side: airlock read one chunk and paused.
      expect(await direct(`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND = 'Query' AND INFO = ${quoted(text)}`)).toBe('1');
      rmSync(gate);
      const [rows] = await q;
      expect((rows as unknown[]).length).toBe(64);
    } finally {
      rmSync(gate, { force: true });
      await c.end();
    }
  });

  it('an effect-free SELECT whose record cannot be synced: ERR 1105 and no row; the session goes on', async () => {
    const c = await connected();
    try {
      // Held first, so the SELECT is surely forwarded before its sync fails (a fast failure may otherwise come
      // before the forward: safe, but it would show nothing about the dropped answer).
      writeFileSync(gate, '');
      writeFileSync(fail, '');
      const text = "SELECT name FROM customers WHERE name = 'Bob'";
      const pending = c.query(text).then(
        () => null,
        (e: unknown) => e as { errno?: number; sqlState?: string; message?: string },
      );
      await untilReceived(text);
      rmSync(gate);
      const err = await pending;
      expect(err?.errno).toBe(1105);
      expect(err?.sqlState).toBe('HY000');
      expect(err?.message).toMatch(/audit/);
      // It was pipelined: the server ran it, its answer was dropped.
      expect(await received(text)).toBe('1');
      rmSync(fail);
      const [rows] = await c.query(text);
      expect(rows).toEqual([{ name: 'Bob' }]);
    } finally {
      rmSync(gate, { force: true });
      rmSync(fail, { force: true });
      await c.end();
    }
  });

  for (const [what, sql, effect] of [
    ['INSERT', 'INSERT INTO hits VALUES (1)', 'SELECT COUNT(*) FROM hits WHERE n = 1'],
    ['UPDATE', "UPDATE customers SET name = 'Grace' WHERE id = 2", "SELECT COUNT(*) FROM customers WHERE name = 'Grace'"],
    ['SELECT SLEEP(0)', 'SELECT SLEEP(0)', null],
    ['SELECT of a stored function that writes', 'SELECT touch()', 'SELECT COUNT(*) FROM hits WHERE n = 99'],
    ['SELECT of a view that calls a stored function', 'SELECT t FROM touched', 'SELECT COUNT(*) FROM hits WHERE n = 99'],
    ['SELECT NEXTVAL(...)', 'SELECT NEXTVAL(ticket)', 'SELECT next_not_cached_value FROM ticket'],
    ['SELECT ... FOR UPDATE', 'SELECT name FROM customers WHERE id = 1 FOR UPDATE', null],
    ['a SELECT followed by an INSERT in one query', 'SELECT 1; INSERT INTO hits VALUES (8)', 'SELECT COUNT(*) FROM hits WHERE n = 8'],
    // Red team: a built-in's name that reaches a stored function. MariaDB has no ANY_VALUE or
    // REGEXP_LIKE (MySQL 8 has): the name resolves to a stored function of the database.
    ['a MySQL-only built-in name on MariaDB (a stored any_value)', 'SELECT any_value(120)', 'SELECT COUNT(*) FROM hits WHERE n = 120'],
    ['another (a stored regexp_like)', 'SELECT regexp_like(121)', 'SELECT COUNT(*) FROM hits WHERE n = 121'],
    // The grammar's own functions (COUNT, MAX, TRIM …) are built-ins only when the name touches its
    // parenthesis: a space, a comment, a newline or backquotes make it a stored function's name.
    ['COUNT with a space before its parenthesis', 'SELECT count (122)', 'SELECT COUNT(*) FROM hits WHERE n = 122'],
    ['COUNT with a comment before its parenthesis', 'SELECT count/**/(123)', 'SELECT COUNT(*) FROM hits WHERE n = 123'],
    ['COUNT in an executable comment', 'SELECT /*!count*/(124)', 'SELECT COUNT(*) FROM hits WHERE n = 124'],
    ['TRIM backquoted', 'SELECT `trim`(125)', 'SELECT COUNT(*) FROM hits WHERE n = 125'],
    ['MAX with a newline before its parenthesis', 'SELECT max\n(126)', 'SELECT COUNT(*) FROM hits WHERE n = 126'],
    // Red team: a CTE's name hid a view of that name where the server reads the view.
    ['a view named beside a derived table whose CTE has its name', 'SELECT * FROM (WITH touched AS (SELECT 1 AS t) SELECT * FROM touched) a, touched', 'SELECT COUNT(*) FROM hits WHERE n = 99'],
    ['a non-recursive CTE reading the view of its own name', 'WITH touched AS (SELECT * FROM touched) SELECT * FROM touched', 'SELECT COUNT(*) FROM hits WHERE n = 99'],
    ['a CTE reading a view named like a later CTE', 'WITH a AS (SELECT * FROM touched), touched AS (SELECT 5) SELECT * FROM a', 'SELECT COUNT(*) FROM hits WHERE n = 99'],
    // Red team: a locking read whose words a comment separates (the server reads FOR UPDATE).
    ['FOR UPDATE split by a comment', 'SELECT name FROM customers WHERE id = 1 FOR/**/UPDATE', null],
    ['FOR UPDATE split by a line comment', 'SELECT name FROM customers WHERE id = 1 FOR -- x\nUPDATE', null],
    ['FOR in an executable comment, UPDATE after it', 'SELECT name FROM customers WHERE id = 1 /*!FOR*/ UPDATE', null],
    ['UPDATE in a versioned comment after FOR', 'SELECT name FROM customers WHERE id = 1 FOR /*!50000 UPDATE */', null],
    ['LOCK IN SHARE MODE split by comments', 'SELECT name FROM customers WHERE id = 1 LOCK/**/IN/**/SHARE/**/MODE', null],
    // Red team, held: other ways to a stored function, a sequence or a lock.
    ['HANDLER', 'HANDLER customers OPEN', null],
    ['TABLE t', 'TABLE touched', 'SELECT COUNT(*) FROM hits WHERE n = 99'],
    ['VALUES', 'VALUES (touch())', 'SELECT COUNT(*) FROM hits WHERE n = 99'],
    ['DO f()', 'DO touch()', 'SELECT COUNT(*) FROM hits WHERE n = 99'],
    ['a schema-qualified stored function', 'SELECT appdb.touch()', 'SELECT COUNT(*) FROM hits WHERE n = 99'],
    ['a backquoted stored function', 'SELECT `appdb`.`touch`()', 'SELECT COUNT(*) FROM hits WHERE n = 99'],
    ['a stored function in an executable comment', 'SELECT /*!50000 touch() */', 'SELECT COUNT(*) FROM hits WHERE n = 99'],
    ['a stored function with a space before its parenthesis', 'SELECT touch ()', 'SELECT COUNT(*) FROM hits WHERE n = 99'],
    ['a stored function in WHERE', 'SELECT id FROM customers WHERE touch() = 1', 'SELECT COUNT(*) FROM hits WHERE n = 99'],
    ['a stored function in a derived table', 'SELECT * FROM (SELECT touch()) x', 'SELECT COUNT(*) FROM hits WHERE n = 99'],
    ['SELECT ... INTO @var', 'SELECT touch() INTO @x', 'SELECT COUNT(*) FROM hits WHERE n = 99'],
    ['a user variable assignment', 'SELECT @x := 1', null],
    ['NEXT VALUE FOR', 'SELECT NEXT VALUE FOR ticket', 'SELECT next_not_cached_value FROM ticket'],
    ['SETVAL', 'SELECT SETVAL(ticket, 500)', 'SELECT next_not_cached_value FROM ticket'],
    ['GET_LOCK', "SELECT GET_LOCK('rt', 0)", null],
    ['SET in the same packet', 'SET @rt = 1; SELECT 1', null],
    ['PROCEDURE ANALYSE', 'SELECT id FROM customers PROCEDURE ANALYSE()', null],
  ] as const) {
    it(`${what} is never forwarded before its record is durable: the sync fails, the upstream never sees it`, async () => {
      const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'alice', password: token, database: 'appdb', enableCleartextPlugin: true, multipleStatements: true });
      try {
        // The view look-up has been done: only the audit decides.
        await c.query('SELECT t FROM touched LIMIT 0');
        const before = effect === null ? null : await direct(effect);
        writeFileSync(fail, '');
        const err = await c.query(sql).then(
          () => null,
          (e: unknown) => e as { errno?: number },
        );
        expect(err?.errno).toBe(1105);
        rmSync(fail);
        expect(await received(sql)).toBe('0');
        if (effect !== null) expect(await direct(effect)).toBe(before);
      } finally {
        rmSync(fail, { force: true });
        await c.end();
      }
    });
  }

  it('an INSERT waits for its sync before it is forwarded (held sync: not received; released: in the table)', async () => {
    const c = await connected();
    try {
      writeFileSync(gate, '');
      const sql = 'INSERT INTO hits VALUES (7)';
      const q = c.query(sql);
      await new Promise((r) => setTimeout(r, 300));
      expect(await received(sql)).toBe('0');
      rmSync(gate);
      await q;
      expect(await direct('SELECT COUNT(*) FROM hits WHERE n = 7')).toBe('1');
    } finally {
      rmSync(gate, { force: true });
      await c.end();
    }
  });

  it("a sequence stepped by Oracle mode's seq.nextval is never forwarded before its record is durable", async () => {
    const c = await connected();
    try {
      await c.query("SET sql_mode = 'ORACLE'");
      const before = await direct('SELECT next_not_cached_value FROM ticket');
      writeFileSync(fail, '');
      const sql = 'SELECT ticket.nextval FROM dual';
      const err = await c.query(sql).then(
        () => null,
        (e: unknown) => e as { errno?: number },
      );
      expect(err?.errno).toBe(1105);
      rmSync(fail);
      expect(await received(sql)).toBe('0');
      expect(await direct('SELECT next_not_cached_value FROM ticket')).toBe(before);
    } finally {
      rmSync(fail, { force: true });
      await c.end();
    }
  });

  it('a table replaced by a view through another listener of the daemon is not taken for a base table', async () => {
    const a = await connected();
    const b = await connected(aliasPort);
    try {
      await direct('CREATE TABLE later3 (t int); INSERT INTO later3 VALUES (1)');
      // The other listener learns that later3 is a base table.
      await b.query('SELECT t FROM later3');
      await a.query('RENAME TABLE later3 TO later3_table');
      await a.query('CREATE VIEW later3 AS SELECT touch() AS t');
      const before = await direct('SELECT COUNT(*) FROM hits WHERE n = 99');
      writeFileSync(fail, '');
      const sql = 'SELECT t FROM later3 WHERE t = 1';
      const err = await b.query(sql).then(
        () => null,
        (e: unknown) => e as { errno?: number },
      );
      expect(err?.errno).toBe(1105);
      rmSync(fail);
      expect(await received(sql)).toBe('0');
      expect(await direct('SELECT COUNT(*) FROM hits WHERE n = 99')).toBe(before);
    } finally {
      rmSync(fail, { force: true });
      await a.end();
      await b.end();
    }
  });

  it('a view created through airlock after its name was looked up is not taken for a base table', async () => {
    const c = await connected();
    try {
      // Looked up while it does not exist (the statement fails): "not a view" is cached.
      await c.query('SELECT n FROM later').catch(() => undefined);
      // (A view over a stored function would make the CREATE opaque, which forgets everything anyway.)
      await c.query('CREATE VIEW later AS SELECT n FROM hits');
      writeFileSync(fail, '');
      const sql = 'SELECT n FROM later WHERE n = 1';
      const err = await c.query(sql).then(
        () => null,
        (e: unknown) => e as { errno?: number },
      );
      expect(err?.errno).toBe(1105);
      rmSync(fail);
      expect(await received(sql)).toBe('0');
    } finally {
      rmSync(fail, { force: true });
      await c.end();
    }
  });
});
