/** node-postgres (`pg`) scenarios: each returns what the driver reported, compared direct vs through airlock. */
import pg from 'pg';
import { readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { errorJson, type Scenario, type Target } from './differential.js';

const config = (t: Target, extra: Partial<pg.ClientConfig> = {}): pg.ClientConfig => ({
  host: t.host, port: t.port, user: t.user, password: t.password, database: t.database, ...extra,
});

/** Connects, runs fn, ends; 'error' events are part of the outcome. */
async function withClient<T>(t: Target, fn: (c: pg.Client, events: string[]) => Promise<T>, extra: Partial<pg.ClientConfig> = {}): Promise<{ result: T; events: string[] }> {
  const c = new pg.Client(config(t, extra));
  const events: string[] = [];
  c.on('error', (e: Error & { code?: string }) => events.push(`error ${e.code ?? ''} ${e.message}`));
  c.on('notice', (n) => events.push(`notice ${n.code ?? ''} ${n.message ?? ''}`));
  await c.connect();
  try {
    return { result: await fn(c, events), events };
  } finally {
    await c.end().catch(() => undefined);
  }
}

const rowsAndFields = (r: pg.QueryResult): unknown => ({
  command: r.command,
  rowCount: r.rowCount,
  fields: r.fields.map((f) => [f.name, f.dataTypeID, f.format]),
  rows: r.rows,
});

const settle = (p: Promise<unknown>): Promise<unknown> => p.then((v) => ({ ok: v }), (e: unknown) => ({ err: errorJson(e) }));

const TYPES_SQL = `SELECT 1::int2 AS i2, 2::int4 AS i4, 9007199254740993::int8 AS i8, 1.5::float4 AS f4, 2.25::float8 AS f8,
  123.4500::numeric AS num, true AS b, 'text é 日本' AS t, 'c'::char(3) AS ch, '\\x00ff'::bytea AS by,
  DATE '2024-02-29' AS d, TIME '12:34:56.789' AS tm, TIMESTAMP '2024-02-29 01:02:03.456' AS ts,
  TIMESTAMPTZ '2024-02-29 01:02:03+02' AS tstz, INTERVAL '1 day 02:03:04' AS iv, '4b0a3a7e-0c56-4b62-9f7e-5b3f3d3a1b2c'::uuid AS u,
  '{"a":[1,2,{"b":null}]}'::json AS j, '{"b":2,"a":1}'::jsonb AS jb, ARRAY[1,2,NULL]::int[] AS arr, ARRAY['a','b,c']::text[] AS tarr,
  '192.168.0.1/24'::inet AS ip, NULL::text AS nul, 'NaN'::float8 AS nan, '(1,2)'::point AS pt, 'a=>1'::text AS kv, B'1010'::bit(4) AS bits,
  '[1,5)'::int4range AS rng, 12.34::money AS money, 'x'::name AS nm, 'items'::regclass::oid::int > 0 AS has_oid`;

export const pgScenarios: Scenario[] = [
  {
    driver: 'pg', name: 'simple query: many types, text results',
    run: async (t) => withClient(t, async (c) => rowsAndFields(await c.query(TYPES_SQL))),
  },
  {
    driver: 'pg', name: 'extended query: parameters of many types',
    run: async (t) => withClient(t, async (c) => rowsAndFields(await c.query(
      'SELECT $1::int AS a, $2::text AS b, $3::bytea AS c, $4::timestamptz AS d, $5::jsonb AS e, $6::numeric AS f, $7::bool AS g, $8::text[] AS h, $9::int8 AS i, $10::text AS j',
      [42, 'é', Buffer.from([0, 1, 254, 255]), new Date('2024-05-06T07:08:09.010Z'), { k: [1, 'two'] }, '99999999999999999999.5', false, ['x', 'y z', null], '-9223372036854775808', null],
    ))),
  },
  {
    driver: 'pg', name: 'named prepared statement executed many times',
    run: async (t) => withClient(t, async (c) => {
      const out: unknown[] = [];
      for (let i = 1; i <= 5; i++) out.push((await c.query({ name: 'by-id', text: 'SELECT id, name, price, tags FROM items WHERE id = $1', values: [i] })).rows);
      return out;
    }),
  },
  {
    driver: 'pg', name: 'binary result format',
    run: async (t) => withClient(t, async (c) => rowsAndFields(await c.query({ text: 'SELECT id, price, created, data, doc FROM items WHERE id <= $1 ORDER BY id', values: [3] })), { binary: true } as Partial<pg.ClientConfig>),
  },
  {
    driver: 'pg', name: 'multi-statement simple query (several results)',
    run: async (t) => withClient(t, async (c) => {
      const r = (await c.query('SELECT 1 AS one; CREATE TEMP TABLE m (a int); INSERT INTO m VALUES (1),(2); SELECT count(*) FROM m')) as unknown as pg.QueryResult[];
      return r.map(rowsAndFields);
    }),
  },
  {
    driver: 'pg', name: 'pipelining: 50 queries in flight',
    run: async (t) => withClient(t, async (c) => {
      const ps = Array.from({ length: 50 }, (_, i) => c.query(i % 7 === 3 ? 'SELECT 1/0' : 'SELECT $1::int * 2 AS v', i % 7 === 3 ? [] : [i]).then((r) => r.rows[0], (e: unknown) => errorJson(e)));
      return Promise.all(ps);
    }),
  },
  {
    driver: 'pg', name: 'a syntax error',
    run: async (t) => withClient(t, async (c) => [await settle(c.query('SELEC 1')), (await c.query('SELECT 1 AS after')).rows]),
  },
  {
    driver: 'pg', name: 'errors: division by zero, aborted transaction, unknown table, bad parameter',
    run: async (t) => withClient(t, async (c) => [
      await settle(c.query('SELECT 1/0')),
      await settle(c.query('SELECT * FROM no_such_table')),
      await settle(c.query('BEGIN')),
      await settle(c.query('SELECT x FROM items')),
      await settle(c.query('SELECT 1')),
      await settle(c.query('ROLLBACK')),
      await settle(c.query('SELECT $1::int', ['not a number'])),
    ]),
  },
  {
    driver: 'pg', name: 'transactions and savepoints',
    run: async (t) => withClient(t, async (c) => {
      await c.query('CREATE TEMP TABLE tx (a int)');
      await c.query('BEGIN');
      await c.query('INSERT INTO tx VALUES (1)');
      await c.query('SAVEPOINT s');
      await settle(c.query('INSERT INTO tx VALUES (1/0)'));
      await c.query('ROLLBACK TO SAVEPOINT s');
      await c.query('INSERT INTO tx VALUES (2)');
      await c.query('COMMIT');
      return (await c.query('SELECT array_agg(a ORDER BY a) FROM tx')).rows;
    }),
  },
  {
    driver: 'pg', name: 'COPY FROM STDIN and COPY TO STDOUT (pg-copy-streams)',
    run: async (t) => withClient(t, async (c) => {
      await c.query('CREATE TEMP TABLE cp (id int, name text)');
      const lines = Array.from({ length: 2000 }, (_, i) => `${i}\tname ${i}\n`);
      await pipeline(Readable.from(lines), c.query(copyFrom('COPY cp FROM STDIN')));
      const chunks: Buffer[] = [];
      await pipeline(c.query(copyTo('COPY (SELECT * FROM cp ORDER BY id) TO STDOUT WITH (FORMAT csv)')), new Writable({ write(ch: Buffer, _e, cb) { chunks.push(ch); cb(); } }));
      const text = Buffer.concat(chunks).toString();
      const bad = await settle(pipeline(Readable.from(['1\tok\n', 'x\ty\n']), c.query(copyFrom('COPY cp FROM STDIN'))));
      return { lines: text.split('\n').length, head: text.slice(0, 40), bad, after: (await c.query('SELECT count(*) FROM cp')).rows };
    }),
  },
  {
    driver: 'pg', name: 'LISTEN / NOTIFY between two sessions',
    run: async (t) => withClient(t, async (listener) => {
      const got: unknown[] = [];
      const done = new Promise<void>((resolve) => listener.on('notification', (n) => {
        got.push({ channel: n.channel, payload: n.payload });
        if (got.length === 3) resolve();
      }));
      await listener.query('LISTEN compat_chan');
      await withClient(t, async (sender) => {
        await sender.query("NOTIFY compat_chan, 'one'");
        await sender.query("SELECT pg_notify('compat_chan', 'two é')");
        await sender.query('BEGIN');
        await sender.query("NOTIFY compat_chan, 'three'");
        await sender.query('COMMIT');
      });
      await done;
      await listener.query('UNLISTEN *');
      return got;
    }),
  },
  {
    driver: 'pg', name: 'cursors: DECLARE / FETCH / MOVE / CLOSE',
    run: async (t) => withClient(t, async (c) => {
      await c.query('BEGIN');
      await c.query('DECLARE cur SCROLL CURSOR FOR SELECT id, v FROM big ORDER BY id');
      const a = (await c.query('FETCH 3 FROM cur')).rows;
      await c.query('MOVE FORWARD 1000 IN cur');
      const b = (await c.query('FETCH 2 FROM cur')).rows;
      const back = (await c.query('FETCH BACKWARD 1 FROM cur')).rows;
      await c.query('CLOSE cur');
      await c.query('COMMIT');
      return { a, b, back };
    }),
  },
  {
    driver: 'pg', name: 'statement_timeout cancels with 57014; the session goes on',
    run: async (t) => withClient(t, async (c) => {
      await c.query("SET statement_timeout = '50ms'");
      const r = await settle(c.query('SELECT pg_sleep(5)'));
      await c.query('RESET statement_timeout');
      return { r, after: (await c.query('SELECT 1 AS ok')).rows };
    }),
  },
  {
    driver: 'pg', name: 'statement_timeout as a connection option',
    run: async (t) => withClient(t, async (c) => [await settle(c.query('SELECT pg_sleep(5)')), (await c.query('SHOW statement_timeout')).rows], { statement_timeout: 100 }),
  },
  {
    driver: 'pg', name: 'connection options: application_name, options -c search_path and isolation',
    run: async (t) => withClient(t, async (c) => (await c.query("SELECT current_setting('application_name') AS app, current_setting('search_path') AS sp, current_setting('default_transaction_isolation') AS iso")).rows,
      { application_name: 'compat-suite', options: '-c search_path=pg_catalog,public -c default_transaction_isolation=repeatable\\ read' }),
  },
  {
    driver: 'pg', name: 'options naming a setting off the allowed list',
    run: async (t) => withClient(t, async (c) => (await c.query('SHOW row_security')).rows, { options: '-c row_security=off' }).catch((e: unknown) => ({ refused: errorJson(e) })),
  },
  {
    driver: 'pg', name: 'a listed setting with a value the server rejects',
    run: async (t) => withClient(t, async () => 'connected', { options: '-c statement_timeout=soon' }).catch((e: Error & { code?: string; severity?: string }) => ({ code: e.code, severity: e.severity })),
  },
  {
    driver: 'pg', name: 'TLS (ssl with the CA verified)',
    run: async (t) => withClient(t, async (c) => (await c.query('SELECT count(*) AS n FROM items')).rows, { ssl: { ca: readFileSync(t.tlsCa ?? ''), servername: 'localhost' } }),
  },
  {
    driver: 'pg', name: 'client encoding and non-ASCII text',
    run: async (t) => withClient(t, async (c) => {
      const a = (await c.query("SELECT 'é' AS e, '日本語' AS j, length('😀') AS l, $1::text AS p", ['Ωmega'])).rows;
      const enc = (await c.query('SHOW client_encoding')).rows;
      return { a, enc };
    }),
  },
  {
    driver: 'pg', name: 'server parameters seen by the driver',
    run: async (t) => withClient(t, async (c) => {
      const params = (c as unknown as { connection: { parameters?: Record<string, string> } }).connection.parameters ?? {};
      const r = (await c.query('SELECT current_user AS cu, session_user AS su, current_database() AS db')).rows;
      return { keys: Object.keys(params).sort(), r };
    }),
  },
  {
    driver: 'pg', name: 'quick connect and disconnect (30 times)',
    run: async (t) => {
      let n = 0;
      for (let i = 0; i < 30; i++) {
        const c = new pg.Client(config(t));
        await c.connect();
        if (i % 3 === 0) n += Number((await c.query('SELECT 1 AS x')).rows[0]?.x);
        await c.end();
      }
      return n;
    },
  },
  {
    driver: 'pg', name: 'end() during connect (Terminate before the startup packet)',
    run: async (t) => {
      const c = new pg.Client(config(t));
      const errors: string[] = [];
      c.on('error', (e: Error) => errors.push(e.message));
      c.connect().catch((e: Error) => errors.push(`connect: ${e.message}`));
      const end = await settle(c.end());
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      return { end, errors };
    },
  },
  {
    driver: 'pg', name: 'server-side terminate: one FATAL, queued query fails, pool recovers',
    run: async (t) => {
      const pool = new pg.Pool({ ...config(t), max: 2 });
      const events: string[] = [];
      pool.on('error', (e: Error & { code?: string }) => events.push(`pool error ${e.code ?? e.message}`));
      const victim = await pool.connect();
      const victimEvents: string[] = [];
      victim.on('error', (e: Error & { code?: string }) => victimEvents.push(`client error ${e.code ?? ''} ${e.message}`));
      const pid = Number((await victim.query('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
      const queued = settle(victim.query('SELECT pg_sleep(30)'));
      const queued2 = settle(victim.query('SELECT 2'));
      // Terminate once the sleep runs (asked of the server, not timed).
      while (Number((await pool.query("SELECT count(*) AS n FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [pid])).rows[0]?.n) === 0) await new Promise((r) => setTimeout(r, 20));
      const killed = (await pool.query('SELECT pg_terminate_backend($1) AS k', [pid])).rows;
      const results = [await queued, await queued2];
      victim.release(true);
      const after = (await pool.query('SELECT 42 AS v')).rows;
      await pool.end();
      return { killed, results, victimEvents, events, after };
    },
  },
  {
    driver: 'pg', name: 'authentication with a wrong password',
    run: async (t) => withClient({ ...t, password: 'wrong' }, async () => 'connected').catch((e: Error & { code?: string; severity?: string }) => ({ code: e.code, severity: e.severity })),
  },
  {
    driver: 'pg', name: 'startup user other than the credential user',
    run: async (t) => withClient({ ...t, user: 'someone_else' }, async (c) => (await c.query('SELECT current_user AS u')).rows).catch((e: Error & { code?: string }) => ({ code: e.code })),
  },
];
