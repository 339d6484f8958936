/** postgres.js scenarios: its pipelining, prepared statements, cursors, COPY streams, LISTEN and cancel. */
import postgres from 'postgres';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import { errorJson, type Scenario, type Target } from './differential.js';

type Sql = postgres.Sql<Record<string, postgres.PostgresType>>;

async function withSql<T>(t: Target, fn: (sql: Sql, notices: string[]) => Promise<T>, extra: postgres.Options<Record<string, postgres.PostgresType>> = {}): Promise<T> {
  const notices: string[] = [];
  const sql = postgres({
    host: t.host, port: t.port, user: t.user, password: t.password, database: t.database, max: 4,
    onnotice: (n) => notices.push(`${String(n.code)} ${String(n.message)}`),
    ...extra,
  });
  try {
    return await fn(sql, notices);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

const settle = (p: Promise<unknown>): Promise<unknown> => p.then((v) => ({ ok: v }), (e: unknown) => ({ err: errorJson(e) }));
const plain = <T>(rows: T[]): T[] => [...rows];

export const postgresJsScenarios: Scenario[] = [
  {
    driver: 'postgres.js', name: 'tagged template with parameters of many types',
    run: (t) => withSql(t, async (sql) => plain(await sql`SELECT ${42}::int AS a, ${'é 日本'}::text AS b, ${Buffer.from([0, 255])}::bytea AS c,
      ${new Date('2024-05-06T07:08:09.010Z')}::timestamptz AS d, ${JSON.stringify({ k: [1, 'two'] })}::jsonb AS e, ${'123.450'}::numeric AS f,
      ${true}::bool AS g, ${['x', 'y z']}::text[] AS h, ${'9007199254740993'}::int8 AS i, ${null}::text AS j`)),
  },
  {
    driver: 'postgres.js', name: 'rows of a table with types (prepared, binary-capable)',
    run: (t) => withSql(t, async (sql) => {
      const r = await sql`SELECT id, name, price, tags, doc, created, data FROM items WHERE id <= ${5} ORDER BY id`;
      return { rows: plain(r), columns: r.columns.map((c) => [c.name, c.type]), count: r.count, command: r.command };
    }),
  },
  {
    driver: 'postgres.js', name: 'unprepared and simple (multi-statement) queries',
    run: (t) => withSql(t, async (sql) => ({
      unprepared: plain(await sql.unsafe('SELECT $1::int + 1 AS v', [1], { prepare: false })),
      simple: (await sql.unsafe('SELECT 1 AS a; SELECT 2 AS b, 3 AS c').simple() as unknown as postgres.Row[][]).map((r) => plain(r)),
    }), { prepare: true }),
  },
  {
    driver: 'postgres.js', name: 'pipelining: 100 queries on few connections',
    run: (t) => withSql(t, async (sql) => Promise.all(Array.from({ length: 100 }, (_, i) => (i % 9 === 4 ? sql`SELECT 1/0 AS x` : sql`SELECT ${i}::int * 3 AS v`).then((r) => r[0], (e: unknown) => errorJson(e))))),
  },
  {
    driver: 'postgres.js', name: 'transactions: begin, savepoint, rollback on error',
    run: (t) => withSql(t, async (sql) => {
      await sql`CREATE TABLE IF NOT EXISTS pgjs_tx_${sql.unsafe(t.via)} (a int)`;
      const table = sql(`pgjs_tx_${t.via}`);
      await sql`TRUNCATE ${table}`;
      const r = await settle(sql.begin(async (tx) => {
        await tx`INSERT INTO ${table} VALUES (1)`;
        await settle(tx.savepoint(async (sp) => { await sp`INSERT INTO ${table} VALUES (1/0)`; }));
        await tx`INSERT INTO ${table} VALUES (2)`;
        return 'committed';
      }));
      const failed = await settle(sql.begin(async (tx) => {
        await tx`INSERT INTO ${table} VALUES (3)`;
        await tx`SELECT no_such_column FROM ${table}`;
      }));
      const rows = plain(await sql`SELECT array_agg(a ORDER BY a) AS a FROM ${table}`);
      await sql`DROP TABLE ${table}`;
      return { r, failed, rows };
    }),
  },
  {
    driver: 'postgres.js', name: 'COPY FROM STDIN (writable) and COPY TO STDOUT (readable)',
    run: (t) => withSql(t, async (sql) => sql.begin(async (tx) => {
      await tx`CREATE TEMP TABLE cp (id int, name text) ON COMMIT DROP`;
      await pipeline(Readable.from(Array.from({ length: 3000 }, (_, i) => `${i}\tname ${i}\n`)), await tx`COPY cp FROM STDIN`.writable());
      const chunks: Buffer[] = [];
      await pipeline(await tx`COPY (SELECT * FROM cp ORDER BY id DESC) TO STDOUT`.readable(), new Writable({ write(c: Buffer, _e, cb) { chunks.push(c); cb(); } }));
      const text = Buffer.concat(chunks).toString();
      return { bytes: text.length, head: text.slice(0, 30) };
    })),
  },
  {
    driver: 'postgres.js', name: 'LISTEN / NOTIFY',
    run: (t) => withSql(t, async (sql) => {
      const got: string[] = [];
      let done: () => void = () => undefined;
      const all = new Promise<void>((r) => { done = r; });
      const sub = await sql.listen('pgjs_chan', (payload) => {
        got.push(payload);
        if (got.length === 2) done();
      });
      await sql.notify('pgjs_chan', 'first');
      await sql`SELECT pg_notify('pgjs_chan', 'second é')`;
      await all;
      await sub.unlisten();
      return got;
    }),
  },
  {
    driver: 'postgres.js', name: 'cursor in batches and forEach',
    run: (t) => withSql(t, async (sql) => {
      const batches: number[] = [];
      let sum = 0;
      await sql`SELECT id FROM big WHERE id <= 1234 ORDER BY id`.cursor(100, (rows) => {
        batches.push(rows.length);
        for (const r of rows) sum += Number(r.id);
      });
      let n = 0;
      await sql`SELECT id FROM big ORDER BY id`.forEach(() => { n++; });
      return { batches, sum, n };
    }),
  },
  {
    driver: 'postgres.js', name: 'cancel a running query (CancelRequest) and go on',
    run: (t) => withSql(t, async (sql) => {
      const q = sql`SELECT pg_sleep(30) AS cancel_me`.execute();
      // Cancel once the server runs it (asked of the server, not timed).
      while (Number((await sql`SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30) AS cancel_me%' AND state = 'active'`)[0]?.n) === 0) await new Promise((r) => setTimeout(r, 20));
      q.cancel();
      const r = await settle(q);
      return { r, after: plain(await sql`SELECT 2 AS v`) };
    }, { max: 2 }),
  },
  {
    driver: 'postgres.js', name: 'describe a statement',
    run: (t) => withSql(t, async (sql) => {
      const d = await sql`SELECT id, name FROM items WHERE id = ${1} AND name <> ${'x'}`.describe();
      return { types: d.types, columns: d.columns.map((c) => [c.name, c.type]) };
    }),
  },
  {
    driver: 'postgres.js', name: 'a syntax error',
    run: (t) => withSql(t, async (sql) => [await settle(sql`SELEC 1`), plain(await sql`SELECT 1 AS after`)]),
  },
  {
    driver: 'postgres.js', name: 'errors carry their fields',
    run: (t) => withSql(t, async (sql) => [
      await settle(sql`SELECT * FROM items WHERE id = ${'abc'}`),
      await settle(sql`INSERT INTO items (id, name) VALUES (1, 'dup')`),
      await settle(sql`SELECT 1/0`.simple()),
    ]),
  },
  {
    driver: 'postgres.js', name: 'connection parameters (search_path, timezone, application_name)',
    run: (t) => withSql(t, async (sql) => plain(await sql`SELECT current_setting('search_path') AS sp, current_setting('TimeZone') AS tz, current_setting('application_name') AS app, current_setting('statement_timeout') AS st`),
      { connection: { application_name: 'pgjs-compat', search_path: 'public', TimeZone: 'Europe/Paris', statement_timeout: 5000 } }),
  },
  {
    driver: 'postgres.js', name: 'quick connect and disconnect (20 times)',
    run: async (t) => {
      let n = 0;
      for (let i = 0; i < 20; i++) n += await withSql(t, async (sql) => Number((await sql`SELECT 1 AS x`)[0]?.x), { max: 1 });
      return n;
    },
  },
  {
    driver: 'postgres.js', name: 'server-side terminate: the pool reconnects',
    run: (t) => withSql(t, async (sql) => {
      const pid = Number((await sql`SELECT pg_backend_pid() AS pid`)[0]?.pid);
      const killed = await settle(sql`SELECT pg_terminate_backend(pg_backend_pid())`);
      const after = plain(await sql`SELECT 42 AS v`);
      const newPid = Number((await sql`SELECT pg_backend_pid() AS pid`)[0]?.pid);
      return { killed, after, reconnected: newPid !== pid };
    }, { max: 1 }),
  },
  {
    driver: 'postgres.js', name: 'large result (5000 rows) and big values',
    run: (t) => withSql(t, async (sql) => {
      const r = await sql`SELECT id, v FROM big ORDER BY id`;
      const big = await sql`SELECT repeat('x', 3000000) AS s`;
      return { n: r.length, last: r[r.length - 1], bigLength: String(big[0]?.s).length };
    }),
  },
];
