/** MariaDB Connector/Node.js scenarios: pipelining, binary execute, batch, extended metadata, streams, LOAD DATA LOCAL, KILL. */
import * as mariadb from 'mariadb';
import { readFileSync } from 'node:fs';
import { errorJson, type Scenario, type Target } from './differential.js';
import { mysqlFiles } from './mysql2.scenarios.js';

type Conn = mariadb.Connection;

const config = (t: Target, extra: Partial<mariadb.ConnectionConfig> = {}): mariadb.ConnectionConfig => ({
  host: t.host, port: t.port, user: t.user, password: t.password, database: t.database, connectTimeout: 10_000,
  ...(t.tlsCa === undefined ? {} : { ssl: { ca: readFileSync(t.tlsCa) } }), ...extra,
});

async function withConn<T>(t: Target, fn: (c: Conn) => Promise<T>, extra: Partial<mariadb.ConnectionConfig> = {}): Promise<T> {
  const c = await mariadb.createConnection(config(t, extra));
  c.on('error', () => undefined);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => c.destroy());
  }
}

const settle = (p: Promise<unknown>): Promise<unknown> => p.then((v) => ({ ok: v }), (e: unknown) => ({ err: errorJson(e) }));

/** Rows plus the column metadata a caller reads (the connector hangs it on the result as `meta`). */
function withMeta(r: unknown): unknown {
  const meta = (r as { meta?: Array<{ name(): string; type: string; columnType: number; collation: { name: string; charset: string }; scale: number; dataTypeName?: string; dataTypeFormat?: string }> }).meta;
  const rows = Array.isArray(r) ? [...(r as unknown[])] : r;
  return meta === undefined ? { rows } : { rows, meta: meta.map((m) => [m.name(), m.type, m.columnType, m.collation?.charset, m.scale, m.dataTypeName ?? '', m.dataTypeFormat ?? '']) };
}
const q = (c: Conn | mariadb.Pool, sql: string | mariadb.QueryOptions, values?: unknown): Promise<unknown> => settle(c.query(sql, values).then(withMeta));
const x = (c: Conn, sql: string, values?: unknown): Promise<unknown> => settle(c.execute(sql, values).then(withMeta));

export const mariadbScenarios: Scenario[] = [
  {
    driver: 'mariadb', name: 'text protocol: table rows and literal types',
    run: (t) => withConn(t, async (c) => [
      await q(c, 'SELECT id, name, price, created, data, flag, ratio FROM items WHERE id <= 3 ORDER BY id'),
      await q(c, "SELECT 1 AS i, 9223372036854775807 AS big, 1.5 AS d, 'é' AS s, NULL AS n, DATE'2024-02-29' AS dt, TIME'12:34:56' AS tm, X'00ff' AS hx"),
    ]),
  },
  {
    driver: 'mariadb', name: 'connection collation (column metadata and session)',
    // airlock greets with the upstream's collation once a first login has shown it (README
    // "MySQL and MariaDB"): one session first, so the outcome does not hang on the scenario order.
    run: async (t) => (await withConn(t, async (c) => c.ping()), withConn(t, async (c) => {
      const r = (await c.query("SELECT 'x' AS s, @@collation_connection AS cc")) as unknown as { meta: Array<{ collation: { name: string } }> } & Array<{ cc: string }>;
      return { column: r.meta.map((m) => m.collation.name), session: r[0]?.cc };
    })),
  },
  {
    driver: 'mariadb', name: 'binary protocol: execute with many parameter types',
    run: (t) => withConn(t, async (c) => [
      await x(c, 'SELECT ? AS a, ? AS b, ? AS c, ? AS d, ? AS e, ? AS f', [42, 'é 日本', Buffer.from([0, 1, 254, 255]), new Date('2024-05-06T07:08:09.010Z'), null, 1.25]),
      await x(c, 'SELECT id, name, price, created, data, ratio FROM items WHERE id = ?', [2]),
      await x(c, 'SELECT id, name, price, created, data, ratio FROM items WHERE id = ?', [3]),
    ]),
  },
  {
    driver: 'mariadb', name: 'JSON column and extended metadata',
    run: (t) => withConn(t, async (c) => [await q(c, 'SELECT id, doc FROM items WHERE id <= 2 ORDER BY id'), await x(c, 'SELECT doc FROM items WHERE id = ?', [1])]),
  },
  {
    driver: 'mariadb', name: 'batch insert (bulk)',
    run: (t) => withConn(t, async (c) => {
      await c.query('CREATE TEMPORARY TABLE bt (id int, name varchar(20))');
      const r = await settle(c.batch('INSERT INTO bt VALUES (?, ?)', Array.from({ length: 200 }, (_, i) => [i, `n${i}`])));
      return { r, rows: await q(c, 'SELECT count(*) AS n, sum(id) AS s FROM bt') };
    }),
  },
  {
    driver: 'mariadb', name: 'multiple statements',
    run: (t) => withConn(t, async (c) => q(c, 'SELECT 1 AS a; DO 1; SELECT 2 AS b'), { multipleStatements: true }),
  },
  {
    driver: 'mariadb', name: 'pipelining: 60 queries in flight',
    run: (t) => withConn(t, async (c) => Promise.all(Array.from({ length: 60 }, (_, i) => (i % 13 === 6 ? c.query('SELECT * FROM nope') : c.query('SELECT ? * 2 AS v', [i])).then((r: unknown) => [...(r as unknown[])], (e: unknown) => errorJson(e)))), { pipelining: true }),
  },
  {
    driver: 'mariadb', name: 'queryStream over 5000 rows',
    run: (t) => withConn(t, async (c) => {
      let n = 0;
      let sum = 0;
      for await (const row of c.queryStream('SELECT id, v FROM big ORDER BY id') as AsyncIterable<{ id: number }>) {
        n++;
        sum += row.id;
      }
      return { n, sum };
    }),
  },
  {
    driver: 'mariadb', name: 'charset: SET NAMES utf8mb4, non-ASCII text, koi8r connection',
    run: async (t) => [
      await withConn(t, async (c) => [await q(c, 'SET NAMES utf8mb4'), await q(c, "SELECT 'é' AS e, '😀' AS emoji, '日本語' AS j")]),
      await withConn(t, (c) => q(c, "SELECT 'привет' AS p, @@character_set_client AS cs"), { collation: 'KOI8R_GENERAL_CI' }),
    ],
  },
  {
    driver: 'mariadb', name: 'errors: syntax, unknown table, duplicate key',
    run: (t) => withConn(t, async (c) => [await q(c, 'SELEC 1'), await q(c, 'SELECT * FROM no_such_table'), await q(c, "INSERT INTO items (id, name) VALUES (1, 'dup')")]),
  },
  {
    driver: 'mariadb', name: 'LOAD DATA LOCAL INFILE',
    run: (t) => withConn(t, async (c) => {
      await c.query('CREATE TEMPORARY TABLE ld (id int, name varchar(40))');
      const r = await q(c, `LOAD DATA LOCAL INFILE '${mysqlFiles.csv}' INTO TABLE ld FIELDS TERMINATED BY ','`);
      return { r, rows: await q(c, 'SELECT count(*) AS n, max(name) AS m FROM ld') };
    }, { permitLocalInfile: true }),
  },
  {
    driver: 'mariadb', name: 'KILL QUERY of a running query from another session',
    run: (t) => withConn(t, async (killer) => {
      const victim = await mariadb.createConnection(config(t));
      const serverId = Number(((await victim.query('SELECT CONNECTION_ID() AS id')) as Array<{ id: bigint | number }>)[0]?.id);
      const running = settle(victim.query('SELECT SLEEP(30) AS s'));
      // KILL once the sleep runs (asked of the server, not timed).
      while (Number(((await killer.query("SELECT count(*) AS n FROM information_schema.processlist WHERE id = ? AND info LIKE 'SELECT SLEEP%'", [serverId])) as Array<{ n: bigint | number }>)[0]?.n) === 0) await new Promise((r) => setTimeout(r, 20));
      const killed = await q(killer, `KILL QUERY ${victim.threadId}`);
      const r = await running;
      const after = await q(victim, 'SELECT 1 AS ok');
      await victim.end();
      return { killed, r, after };
    }),
  },
  {
    driver: 'mariadb', name: 'queryTimeout (server-side max_statement_time)',
    run: (t) => withConn(t, async (c) => [await q(c, { sql: 'SELECT SLEEP(3)', timeout: 100 }), await q(c, 'SELECT 1 AS ok')]),
  },
  {
    driver: 'mariadb', name: 'pool: a killed connection is replaced',
    run: async (t) => {
      const pool = mariadb.createPool({ ...config(t), connectionLimit: 1 });
      const conn = await pool.getConnection();
      const killed = await settle(conn.query(`KILL ${conn.threadId}`));
      await conn.release().catch(() => undefined);
      const after = await q(pool, 'SELECT 42 AS v');
      await pool.end();
      return { killed, after };
    },
  },
  {
    driver: 'mariadb', name: 'changeUser (COM_CHANGE_USER)',
    run: (t) => withConn(t, async (c) => [await settle(c.changeUser({ user: t.user, password: t.password }).then(() => 'changed')), await q(c, 'SELECT 1 AS v')]),
  },
  {
    driver: 'mariadb', name: 'ping and reset (COM_RESET_CONNECTION)',
    run: (t) => withConn(t, async (c) => {
      await c.query('SET @v = 5');
      const ping = await settle(c.ping().then(() => 'pong'));
      const reset = await settle(c.reset().then(() => 'reset'));
      return { ping, reset, after: await q(c, 'SELECT @v AS v') };
    }),
  },
  {
    driver: 'mariadb', name: 'quick connect and disconnect (20 times)',
    run: async (t) => {
      let n = 0;
      for (let i = 0; i < 20; i++) n += await withConn(t, async (c) => Number(((await c.query('SELECT 1 AS x')) as Array<{ x: number }>)[0]?.x));
      return n;
    },
  },
  {
    driver: 'mariadb', name: 'authentication with a wrong password',
    run: (t) => withConn({ ...t, password: 'wrong' }, async () => 'connected').catch((e: Error & { code?: string; errno?: number; sqlState?: string }) => ({ code: e.code, errno: e.errno, sqlState: e.sqlState })),
  },
];
