/** mysql2 scenarios: text and binary protocol, multi-results, charsets, LOAD DATA LOCAL, KILL, pools. */
import mysql from 'mysql2/promise';
import { createReadStream } from 'node:fs';
import { errorJson, type Scenario, type Target } from './differential.js';

/** Set by the suite: the CSV file LOAD DATA LOCAL sends. */
export const mysqlFiles = { csv: '' };

const options = (t: Target, extra: Partial<mysql.ConnectionOptions> = {}): mysql.ConnectionOptions => ({
  host: t.host, port: t.port, user: t.user, password: t.password, database: t.database, enableCleartextPlugin: true, ...extra,
});

async function withConn<T>(t: Target, fn: (c: mysql.Connection) => Promise<T>, extra: Partial<mysql.ConnectionOptions> = {}): Promise<T> {
  const c = await mysql.createConnection(options(t, extra));
  c.on('error', () => undefined);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => c.destroy());
  }
}

const settle = (p: Promise<unknown>): Promise<unknown> => p.then((v) => ({ ok: v }), (e: unknown) => ({ err: errorJson(e) }));
/** Rows and the column definitions a caller reads (name, type, flags, charset, decimals). */
const field = (f: mysql.FieldPacket): unknown => [f.name, f.orgName, f.table, f.orgTable, f.type, f.columnType, f.characterSet, f.decimals, f.flags];
/** One result, or one per statement of a multi-statement query (fields then come as one list per result). */
const result = ([rows, fields]: [unknown, Array<mysql.FieldPacket | mysql.FieldPacket[] | undefined> | undefined]): unknown => ({
  rows,
  fields: (fields ?? []).map((f) => (f === undefined ? null : Array.isArray(f) ? f.map(field) : field(f))),
});
const q = (c: mysql.Connection | mysql.Pool | mysql.PoolConnection, sql: string, values?: unknown[]): Promise<unknown> => settle(c.query(sql, values).then((r) => result(r as [unknown, mysql.FieldPacket[]])));

export const mysql2Scenarios: Scenario[] = [
  {
    driver: 'mysql2', name: 'text protocol: table rows and literal types',
    run: (t) => withConn(t, async (c) => [
      await q(c, 'SELECT id, name, price, created, data, flag, ratio FROM items WHERE id <= 3 ORDER BY id'),
      await q(c, "SELECT 1 AS i, 9223372036854775807 AS big, 1.5 AS d, 1e3 AS f, 'é' AS s, NULL AS n, DATE'2024-02-29' AS dt, TIME'12:34:56' AS tm"),
    ]),
  },
  {
    driver: 'mysql2', name: 'JSON column (MariaDB extended metadata)',
    run: (t) => withConn(t, async (c) => [await q(c, 'SELECT id, doc FROM items WHERE id <= 2 ORDER BY id'), await q(c, "SELECT JSON_OBJECT('a', 1) AS j")]),
  },
  {
    driver: 'mysql2', name: 'binary protocol: execute with many parameter types',
    run: (t) => withConn(t, async (c) => {
      const out: unknown[] = [];
      out.push(result(await c.execute('SELECT ? AS a, ? AS b, ? AS c, ? AS d, ? AS e, ? AS f, ? AS g', [42, 'é 日本', Buffer.from([0, 1, 254, 255]), new Date('2024-05-06T07:08:09.010Z'), null, 1.25, true]) as [unknown, mysql.FieldPacket[]]));
      for (let i = 1; i <= 3; i++) out.push(result(await c.execute('SELECT id, name, price, created, data, ratio FROM items WHERE id = ?', [i]) as [unknown, mysql.FieldPacket[]]));
      return out;
    }),
  },
  {
    driver: 'mysql2', name: 'multiple statements: several results in one query',
    run: (t) => withConn(t, async (c) => q(c, 'SELECT 1 AS a; SET @x = 5; SELECT @x AS x, 2 AS b; DO 1'), { multipleStatements: true }),
  },
  {
    driver: 'mysql2', name: "hex literals: X'..' and _binary X'..'",
    run: (t) => withConn(t, async (c) => [await q(c, "SELECT X'0001feff' AS a, x'41' AS b"), await q(c, "SELECT _binary X'0001feff' AS c")]),
  },
  {
    driver: 'mysql2', name: 'query(sql, [Buffer]) (a Buffer becomes a hex literal)',
    run: (t) => withConn(t, async (c) => q(c, 'SELECT ? AS b, LENGTH(?) AS n', [Buffer.from([0, 1, 254, 255]), Buffer.from('xyz')])),
  },
  {
    driver: 'mysql2', name: 'empty string literal and SET sql_mode=""',
    run: (t) => withConn(t, async (c) => [await q(c, 'SELECT ""'), await q(c, "SELECT ''"), await q(c, 'SET sql_mode=""'), await q(c, 'SELECT @@sql_mode AS m')]),
  },
  {
    driver: 'mysql2', name: 'DROP USER / DROP PROCEDURE IF EXISTS, CREATE TEMPORARY TABLE with a long column',
    run: (t) => withConn(t, async (c) => [
      await q(c, "DROP USER IF EXISTS 'nobody_compat'@'%'"),
      await q(c, 'DROP PROCEDURE IF EXISTS no_such_proc'),
      await q(c, 'CREATE TEMPORARY TABLE tl (l long)'),
      await q(c, 'SHOW CREATE TABLE tl'),
    ]),
  },
  {
    driver: 'mysql2', name: 'prepared SET character_set_results = ?',
    run: (t) => withConn(t, async (c) => [await settle(c.execute('SET character_set_results = ?', ['utf8mb4']).then(() => 'ok')), await q(c, 'SELECT @@character_set_results AS r')]),
  },
  {
    driver: 'mysql2', name: "SET NAMES utf8mb4 then SELECT 'é'",
    run: (t) => withConn(t, async (c) => [await q(c, 'SET NAMES utf8mb4'), await q(c, "SELECT 'é' AS e, '日本語' AS j, '😀' AS emoji")]),
  },
  {
    driver: 'mysql2', name: 'connection charsets koi8r and cp1251',
    run: async (t) => [
      await withConn(t, (c) => q(c, "SELECT 'привет' AS p, @@character_set_client AS cs"), { charset: 'KOI8R_GENERAL_CI' }),
      await withConn(t, (c) => q(c, "SELECT 'привет' AS p, @@character_set_client AS cs"), { charset: 'CP1251_GENERAL_CI' }),
    ],
  },
  {
    driver: 'mysql2', name: 'errors: syntax 1064, unknown table 1146, duplicate key 1062',
    run: (t) => withConn(t, async (c) => [await q(c, 'SELEC 1'), await q(c, 'SELECT * FROM no_such_table'), await q(c, "INSERT INTO items (id, name) VALUES (1, 'dup')"), await q(c, 'SELECT 1 FROM items WHERE')]),
  },
  {
    driver: 'mysql2', name: 'SET @a = @@character_set_client; SELECT 1',
    run: (t) => withConn(t, async (c) => q(c, 'SET @a = @@character_set_client; SELECT 1 AS one, @a AS a'), { multipleStatements: true }),
  },
  {
    driver: 'mysql2', name: 'KILL ?; SELECT … of another session',
    run: (t) => withConn(t, async (killer) => {
      const victim = await mysql.createConnection(options(t));
      const events: string[] = [];
      victim.on('error', (e: Error & { code?: string }) => events.push(`error ${e.code ?? ''}`));
      const closed = new Promise<void>((r) => (victim as unknown as { connection: { stream: NodeJS.EventEmitter } }).connection.stream.once('close', () => r()));
      const killed = await q(killer, 'KILL ?; SELECT 7 AS after', [victim.threadId]);
      // Once killed, the victim's socket closes; then its next query fails the same way every time.
      const afterKill = (killed as { ok?: unknown }).ok === undefined ? 'not killed' : await closed.then(() => q(victim, 'SELECT 1'));
      victim.destroy();
      return { killed, afterKill, events };
    }, { multipleStatements: true }),
  },
  {
    driver: 'mysql2', name: 'LOAD DATA LOCAL INFILE',
    run: (t) => withConn(t, async (c) => {
      await c.query('CREATE TEMPORARY TABLE ld (id int, name varchar(40))');
      const r = await settle(c.query({ sql: `LOAD DATA LOCAL INFILE '${mysqlFiles.csv}' INTO TABLE ld FIELDS TERMINATED BY ','`, infileStreamFactory: () => createReadStream(mysqlFiles.csv) } as mysql.QueryOptions).then(([h]) => (h as mysql.ResultSetHeader).affectedRows));
      return { r, rows: await q(c, 'SELECT count(*) AS n, max(name) AS m FROM ld') };
    }),
  },
  {
    driver: 'mysql2', name: 'LOAD DATA LOCAL INFILE where no rule names it',
    run: (t) => withConn({ ...t, port: t.defaultPolicyPort ?? t.port }, async (c) => {
      await c.query('CREATE TEMPORARY TABLE ld (id int, name varchar(40))');
      const load = { sql: `LOAD DATA LOCAL INFILE '${mysqlFiles.csv}' INTO TABLE ld FIELDS TERMINATED BY ','`, infileStreamFactory: () => createReadStream(mysqlFiles.csv) } as mysql.QueryOptions;
      return settle(c.query(load).then(([h]) => (h as mysql.ResultSetHeader).affectedRows));
    }),
  },
  {
    driver: 'mysql2', name: 'pool: a killed connection is replaced',
    run: async (t) => {
      const pool = mysql.createPool({ ...options(t), connectionLimit: 1 });
      const conn = await pool.getConnection();
      conn.on('error', () => undefined);
      // The id the driver saw in the handshake (airlock's own id through airlock, README "KILL").
      const killed = await q(conn, `KILL ${conn.threadId}`);
      conn.release();
      const after = await q(pool, 'SELECT 42 AS v');
      const again = await q(pool, 'SELECT 43 AS v');
      await pool.end();
      return { killed, after, again };
    },
  },
  {
    driver: 'mysql2', name: 'changeUser (COM_CHANGE_USER)',
    run: (t) => withConn(t, async (c) => [await settle(c.changeUser({ user: t.user, password: t.password }).then(() => 'changed')), await q(c, 'SELECT 1 AS v')]),
  },
  {
    driver: 'mysql2', name: '50 queries queued on one connection',
    run: (t) => withConn(t, async (c) => Promise.all(Array.from({ length: 50 }, (_, i) => (i % 11 === 5 ? c.query('SELECT * FROM nope') : c.query('SELECT ? * 2 AS v', [i])).then(([r]) => r, (e: unknown) => errorJson(e))))),
  },
  {
    driver: 'mysql2', name: 'streamed rows (5000)',
    run: (t) => withConn(t, async (c) => {
      const raw = (c as unknown as { connection: { query(sql: string): { stream(): NodeJS.ReadableStream } } }).connection;
      let n = 0;
      let sum = 0;
      for await (const row of raw.query('SELECT id, v FROM big ORDER BY id').stream() as AsyncIterable<{ id: number }>) {
        n++;
        sum += row.id;
      }
      return { n, sum };
    }),
  },
  {
    driver: 'mysql2', name: 'query timeout (client side) ends the connection',
    run: (t) => withConn(t, async (c) => [await settle(c.query({ sql: 'SELECT SLEEP(3)', timeout: 100 })), await q(c, 'SELECT 1')]),
  },
  {
    driver: 'mysql2', name: 'quick connect and disconnect (20 times)',
    run: async (t) => {
      let n = 0;
      for (let i = 0; i < 20; i++) n += await withConn(t, async (c) => Number(((await c.query('SELECT 1 AS x'))[0] as Array<{ x: number }>)[0]?.x));
      return n;
    },
  },
  {
    driver: 'mysql2', name: 'session: database, current user, ping, reset',
    run: (t) => withConn(t, async (c) => {
      await c.ping();
      const a = await q(c, 'SELECT DATABASE() AS db, CURRENT_USER() AS cu, @@autocommit AS ac');
      await c.query('USE appdb');
      const b = await q(c, 'SELECT COUNT(*) AS n FROM items');
      return { a, b };
    }),
  },
  {
    driver: 'mysql2', name: 'authentication with a wrong password',
    run: (t) => withConn({ ...t, password: 'wrong' }, async () => 'connected').catch((e: Error & { code?: string; errno?: number; sqlState?: string }) => ({ code: e.code, errno: e.errno, sqlState: e.sqlState })),
  },
];
