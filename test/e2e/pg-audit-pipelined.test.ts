/**
 * Pipelined write-ahead (issue 17), PostgreSQL simple-query mode, real PostgreSQL and the
 * real daemon. An effect-free SELECT is forwarded while its audit record syncs, but no byte
 * of its result reaches the client before the record is durable; anything with an effect
 * (INSERT, nextval, a function the analyser cannot vouch for) is never forwarded before.
 * The daemon's test hooks hold (gate file) or fail (fail file) every audit sync.
 *
 * Effect-freedom is judged with the upstream's catalog too: a SELECT-shaped text that reaches
 * a writing function without calling one (a view, an operator, a cast, attribute notation, a
 * row-security policy, an operator shadowing `=` earlier on search_path, a table replaced by
 * a view since the catalog was read) is synced before it is forwarded. Each such statement
 * is run once first, so the catalog knows its names (a statement the catalog has never seen
 * is synced first anyway), then under a failing sync: the client gets 58030 and its effect
 * must not be in the database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPgCluster, freePort, type PgCluster } from '../../app/dev/pgcluster.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, airlockCommand, type RunningAirlock } from '../harness/airlock.js';
import { run } from '../harness/clients.js';
import { readEvents } from '../../src/audit/index.js';

let upstream: PgCluster;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let token: string;
let port = 0;
let aliasPort = 0;
const dir = mkdtempSync(join(tmpdir(), 'airlock-pipelined-'));
const gate = join(dir, 'hold-syncs');
const fail = join(dir, 'fail-syncs');
const crash = join(dir, 'crash-writer');
let adminUrl = '';
const appPassword = `app-pw-${Math.random().toString(36).slice(2)}`;

beforeAll(async () => {
  issuer = await createTestIssuer();
  upstream = await startPgCluster();
  await upstream.psql('CREATE DATABASE appdb');
  await upstream.psql(`CREATE ROLE app LOGIN PASSWORD '${appPassword}'`);
  await upstream.psql('ALTER DATABASE appdb OWNER TO app', { db: 'appdb' });
  await upstream.psql(
    "SET ROLE app; CREATE TABLE customers (id int primary key, name text); INSERT INTO customers VALUES (1,'Ada'),(2,'Alan'); " +
      'CREATE TABLE hits (n int); CREATE SEQUENCE ticket; ' +
      "CREATE FUNCTION touch() RETURNS int LANGUAGE sql AS 'INSERT INTO hits VALUES (99) RETURNING n'",
    { db: 'appdb' },
  );
  // Writing functions reached without a call in the statement's text.
  await upstream.psql(
    'SET ROLE app; ' +
      "CREATE FUNCTION mark(int) RETURNS int LANGUAGE sql AS 'INSERT INTO hits VALUES ($1) RETURNING $1'; " +
      'CREATE VIEW marked AS SELECT mark(101) AS n; ' +
      // An operator of a name the analyser knows (an unknown one, `###`, is opaque to it already).
      "CREATE FUNCTION mark_op(customers, int) RETURNS int LANGUAGE sql AS 'INSERT INTO hits VALUES (102) RETURNING $2'; " +
      'CREATE OPERATOR + (LEFTARG = customers, RIGHTARG = int, FUNCTION = mark_op); ' +
      'CREATE TYPE label AS (v int); ' +
      "CREATE FUNCTION mark_cast(int) RETURNS label LANGUAGE sql AS 'INSERT INTO hits VALUES (103) RETURNING ROW($1)::label'; " +
      'CREATE CAST (int AS label) WITH FUNCTION mark_cast(int); ' +
      "CREATE FUNCTION bump(customers) RETURNS int LANGUAGE sql AS 'INSERT INTO hits VALUES (104) RETURNING 1'; " +
      'CREATE TABLE guarded (id int); INSERT INTO guarded VALUES (1); ' +
      'ALTER TABLE guarded ENABLE ROW LEVEL SECURITY; ALTER TABLE guarded FORCE ROW LEVEL SECURITY; ' +
      'CREATE POLICY watch ON guarded USING (mark(105) > 0); ' +
      'CREATE TABLE later (n int); INSERT INTO later VALUES (1); CREATE TABLE later2 (n int); INSERT INTO later2 VALUES (1)',
    { db: 'appdb' },
  );
  // Red team: user code the server runs for a SELECT that names no function, operator or user
  // type — a table's row type whose column is a domain with a CHECK, and expressions the planner
  // folds (an IMMUTABLE-marked function with constant arguments runs at plan time: index
  // expressions and predicates, expression statistics, partition keys, CHECK constraints used
  // for constraint exclusion). plpgsql refuses writes in a non-volatile function but not in a
  // volatile one it calls.
  await upstream.psql(
    'SET ROLE app; ' +
      'CREATE FUNCTION mark_v(int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN INSERT INTO hits VALUES ($1); RETURN 1; END $$; ' +
      'CREATE FUNCTION mark_i(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN mark_v($1); END $$; ' +
      'CREATE DOMAIN checked AS int CHECK (mark(110) > 0); CREATE TABLE boxed (v checked); ' +
      'CREATE TABLE indexed (x int); CREATE INDEX ON indexed ((x + mark_i(111))); ' +
      'CREATE TABLE partial (x int); CREATE INDEX ON partial (x) WHERE x > mark_i(112); ' +
      'CREATE TABLE stats (x int, y int); CREATE STATISTICS stats_x ON (x + mark_i(113)), y FROM stats; ' +
      'CREATE TABLE family (x int); CREATE TABLE family_child (CHECK (x > mark_i(114))) INHERITS (family); ' +
      'CREATE TABLE keyed (x int) PARTITION BY RANGE ((x + mark_i(115))); CREATE TABLE keyed_all PARTITION OF keyed FOR VALUES FROM (MINVALUE) TO (MAXVALUE); ' +
      'CREATE TABLE limited (x int CHECK (x > mark_i(116)))',
    { db: 'appdb' },
  );
  // An operator class needs a superuser: a sort on its type calls its comparison function unwritten.
  await upstream.psql(
    'CREATE TYPE pt AS (v int); ' +
      ['lt <', 'le <=', 'eq =', 'ge >=', 'gt >'].map((x) => {
        const [name, op] = x.split(' ');
        return `CREATE FUNCTION pt_${name}(pt, pt) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT ($1).v ${op} ($2).v'; `;
      }).join('') +
      'CREATE OPERATOR <<< (LEFTARG = pt, RIGHTARG = pt, FUNCTION = pt_lt); CREATE OPERATOR <<= (LEFTARG = pt, RIGHTARG = pt, FUNCTION = pt_le); ' +
      'CREATE OPERATOR === (LEFTARG = pt, RIGHTARG = pt, FUNCTION = pt_eq); CREATE OPERATOR >>= (LEFTARG = pt, RIGHTARG = pt, FUNCTION = pt_ge); ' +
      'CREATE OPERATOR >>> (LEFTARG = pt, RIGHTARG = pt, FUNCTION = pt_gt); ' +
      "CREATE FUNCTION pt_cmp(pt, pt) RETURNS int LANGUAGE sql AS 'INSERT INTO public.hits VALUES (109); SELECT CASE WHEN ($1).v < ($2).v THEN -1 WHEN ($1).v > ($2).v THEN 1 ELSE 0 END'; " +
      'CREATE OPERATOR CLASS pt_ops DEFAULT FOR TYPE pt USING btree AS OPERATOR 1 <<<, OPERATOR 2 <<=, OPERATOR 3 ===, OPERATOR 4 >>=, OPERATOR 5 >>>, FUNCTION 1 pt_cmp(pt, pt); ' +
      'CREATE TABLE points (p pt); INSERT INTO points VALUES (ROW(2)), (ROW(1)); ALTER TABLE points OWNER TO app',
    { db: 'appdb' },
  );
  port = await freePort();
  aliasPort = await freePort();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  process.env.AIRLOCK_TEST_AUDIT_SYNC_GATE = gate;
  process.env.AIRLOCK_TEST_AUDIT_SYNC_FAIL = fail;
  process.env.AIRLOCK_TEST_AUDIT_WRITER_CRASH = crash;
  try {
    airlock = await startAirlock({
      state_dir: join(dir, 'state'),
      admin: { listen: `127.0.0.1:${adminPort}` },
      auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
      connections: [
        {
          name: 'appdb',
          protocol: 'postgres',
          listen: `127.0.0.1:${port}`,
          upstream: { host: '127.0.0.1', port: upstream.port, database: 'appdb' },
          credentials: { type: 'static', username: 'app', password: appPassword },
          allow_groups: ['dba'],
        },
        {
          // The same upstream database, its host spelled otherwise.
          name: 'appdb-alias',
          protocol: 'postgres',
          listen: `127.0.0.1:${aliasPort}`,
          upstream: { host: 'localhost', port: upstream.port, database: 'appdb' },
          credentials: { type: 'static', username: 'app', password: appPassword },
          allow_groups: ['dba'],
        },
      ],
    });
  } finally {
    delete process.env.AIRLOCK_TEST_AUDIT_SYNC_GATE;
    delete process.env.AIRLOCK_TEST_AUDIT_SYNC_FAIL;
    delete process.env.AIRLOCK_TEST_AUDIT_WRITER_CRASH;
  }
  token = await issuer.token({ sub: 'alice', groups: ['dba'] }, { ttlSeconds: 600 });
}, 120_000);

afterAll(async () => {
  rmSync(gate, { force: true });
  rmSync(fail, { force: true });
  rmSync(crash, { force: true });
  await airlock?.stop();
  await upstream?.stop();
});

async function connected(via = port): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: via, user: 'alice', database: 'appdb', password: token });
  await c.connect();
  return c;
}

/** The upstream backend of airlock's session has run `text` to the end (it is idle with it as its last query). */
async function upstreamFinished(text: string): Promise<void> {
  for (;;) {
    const out = await upstream.psql(`select count(*) from pg_stat_activity where usename = 'app' and state = 'idle' and query = '${text.replace(/'/g, "''")}'`, { db: 'appdb' });
    if (out.trim() === '1') return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const direct = async (sql: string): Promise<string> => (await upstream.psql(sql, { db: 'appdb' })).trim();

describe('pipelined write-ahead, postgres simple query', () => {
  it('an effect-free SELECT runs upstream while its record syncs, and the client gets rows only once it is durable', async () => {
    const c = await connected();
    try {
      const text = 'SELECT name FROM customers WHERE id = 1';
      // The first time its names are seen the catalog is looked up (while the record syncs).
      await c.query(text);
      writeFileSync(gate, '');
      let delivered = false;
      const q = c.query(text).then((r) => {
        delivered = true;
        return r;
      });
      await upstreamFinished(text);
      // The result is in airlock, the record is not durable: nothing of it has been delivered.
      await new Promise((r) => setTimeout(r, 300));
      expect(delivered).toBe(false);
      rmSync(gate);
      expect((await q).rows).toEqual([{ name: 'Ada' }]);
    } finally {
      rmSync(gate, { force: true });
      await c.end();
    }
  });

  it('an effect-free SELECT whose record cannot be synced: 58030 and no rows', async () => {
    const c = await connected();
    try {
      writeFileSync(fail, '');
      const err = await c.query('SELECT name FROM customers WHERE id = 2').then(
        () => null,
        (e: unknown) => e as { code?: string },
      );
      expect(err?.code).toBe('58030');
      rmSync(fail);
      expect((await c.query('SELECT name FROM customers WHERE id = 2')).rows).toEqual([{ name: 'Alan' }]);
    } finally {
      rmSync(fail, { force: true });
      await c.end();
    }
  });

  for (const [what, sql, effect] of [
    ['INSERT', 'INSERT INTO hits VALUES (1)', 'select count(*) from hits where n = 1'],
    ['SELECT nextval(...)', "SELECT nextval('ticket')", 'select last_value::text || is_called::text from ticket'],
    ['SELECT f() with a function the analyser cannot vouch for', 'SELECT touch()', 'select count(*) from hits where n = 99'],
    ['SELECT ... FOR UPDATE', 'SELECT name FROM customers WHERE id = 1 FOR UPDATE', null],
    // Review red team: an effect inside a SELECT-shaped text, and one behind a harmless first statement.
    ['a data-modifying CTE under a SELECT', 'WITH d AS (INSERT INTO hits VALUES (7) RETURNING n) SELECT * FROM d', 'select count(*) from hits where n = 7'],
    ['a SELECT followed by an INSERT in one Query', 'SELECT 1; INSERT INTO hits VALUES (8)', 'select count(*) from hits where n = 8'],
  ] as const) {
    it(`${what} is never forwarded before its record is durable: the sync fails, the upstream never sees it`, async () => {
      const c = await connected();
      const before = effect === null ? null : await direct(effect);
      try {
        writeFileSync(fail, '');
        const err = await c.query(sql).then(
          () => null,
          (e: unknown) => e as { code?: string },
        );
        expect(err?.code).toBe('58030');
        rmSync(fail);
        const seen = await direct(`select count(*) from pg_stat_activity where usename = 'app' and query = '${sql.replace(/'/g, "''")}'`);
        expect(seen).toBe('0');
        if (effect !== null) expect(await direct(effect)).toBe(before);
      } finally {
        rmSync(fail, { force: true });
        await c.end();
      }
    });
  }

  it('an INSERT waits for its sync before it is forwarded (held sync: not in the table; released: in it)', async () => {
    const c = await connected();
    try {
      writeFileSync(gate, '');
      const q = c.query('INSERT INTO hits VALUES (7)');
      // A SELECT on another connection would wait behind the held sync too; look directly.
      await new Promise((r) => setTimeout(r, 300));
      expect(await direct('select count(*) from hits where n = 7')).toBe('0');
      rmSync(gate);
      await q;
      expect(await direct('select count(*) from hits where n = 7')).toBe('1');
    } finally {
      rmSync(gate, { force: true });
      await c.end();
    }
  });
});

const failure = (e: unknown): { code?: string } => e as { code?: string };

describe('the audit writer thread dies', () => {
  it('fails closed (58030, nothing forwarded, no rows), says why, is not ready; a new writer continues the chain, which verifies', async () => {
    const c = await connected();
    try {
      const text = 'SELECT name FROM customers WHERE id = 2';
      await c.query(text);
      // From here every batch kills the writer thread at its sync (written, not synced).
      writeFileSync(crash, '');
      const read = await c.query(text).then(() => null, failure);
      expect(read?.code).toBe('58030');
      const write = await c.query('INSERT INTO hits VALUES (31)').then(() => null, failure);
      expect(write?.code).toBe('58030');
      expect(await direct('select count(*) from hits where n = 31')).toBe('0');
      const said = await airlock.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('audit: the writer thread stopped'));
      expect(JSON.stringify(said)).toContain('exited (code 70)');
      const notReady = await fetch(`${adminUrl}/readyz`);
      expect(notReady.status).toBe(503);
      expect(((await notReady.json()) as { checks: Record<string, boolean> }).checks.audit_writable).toBe(false);

      rmSync(crash);
      // A new writer starts after a back-off: until then statements are refused, never run unrecorded.
      for (;;) {
        if (await c.query('INSERT INTO hits VALUES (32)').then(() => true, () => false)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await direct('select count(*) from hits where n = 32')).toBe('1');
      expect((await c.query(text)).rows).toEqual([{ name: 'Alan' }]);
      expect((await fetch(`${adminUrl}/readyz`)).status).toBe(200);
      await airlock.waitForLog((l) => l.msg === 'audit: a new writer thread continues the log');
    } finally {
      rmSync(crash, { force: true });
      await c.end();
    }
    const { cmd, argv } = airlockCommand(['audit', 'verify', '--config', airlock.configFile]);
    const verify = await run(cmd, argv, { env: { AIRLOCK_CONFIG: '' } });
    expect(verify.stdout).toMatch(/^ok \d+ events/);
    expect(verify.code).toBe(0);
    const types: string[] = [];
    for await (const r of readEvents(join(dir, 'state', 'audit'))) types.push(r.event.type);
    expect(types).toContain('audit.writer_restarted');
  });
});

/** Runs `sql` on `c` once (the catalog learns its names), then under a failing sync: 58030, and `effect` unchanged. */
async function notPipelined(c: pg.Client, sql: string, effect: string): Promise<void> {
  await c.query(sql);
  const before = await direct(effect);
  try {
    writeFileSync(fail, '');
    const err = await c.query(sql).then(
      () => null,
      (e: unknown) => e as { code?: string },
    );
    expect(err?.code).toBe('58030');
  } finally {
    rmSync(fail, { force: true });
  }
  expect(await direct(effect)).toBe(before);
}

describe('pipelined write-ahead: effects the text does not show are judged with the catalog', () => {
  for (const [what, sql, tag] of [
    ['a SELECT from a view whose definition calls a writing function', 'SELECT n FROM marked', 101],
    ['a user-defined operator whose function writes', 'SELECT c + 1 FROM customers c', 102],
    ['a user-defined cast whose function writes', 'SELECT id::label FROM customers', 103],
    ['attribute notation (c.bump is bump(c))', 'SELECT c.bump FROM customers c', 104],
    ['a table whose row-security policy calls a writing function', 'SELECT id FROM guarded', 105],
    ["a sort on a user type whose operator class's comparison function writes", 'SELECT p FROM points ORDER BY p', 109],
  ] as const) {
    it(`${what}: synced before it is forwarded`, async () => {
      const c = await connected();
      try {
        await notPipelined(c, sql, `select count(*) from hits where n = ${tag}`);
      } finally {
        await c.end();
      }
    });
  }

  // Plan-time folding is cached per upstream backend (relcache): the catalog learns the names on
  // one session, the attack runs on a fresh one.
  for (const [what, sql, tag, setup] of [
    ["a cast to a table's row type whose column is a domain with a writing CHECK", 'SELECT ROW(1)::boxed', 110, null],
    ["a literal read as a table's row type (record_in checks the domain)", "SELECT '(1)'::boxed", 110, null],
    ["a typed literal of a table's row type", "SELECT boxed '(1)'", 110, null],
    ['a table with an expression index calling an IMMUTABLE-marked writing function', 'SELECT x FROM indexed', 111, null],
    ['a table with a partial index whose predicate calls one', 'SELECT x FROM partial', 112, null],
    ['a table with expression statistics calling one', 'SELECT x FROM stats WHERE x = 1', 113, null],
    ["an inheritance parent whose child's CHECK calls one (constraint exclusion)", 'SELECT x FROM family WHERE x = 1', 114, null],
    ['a table partitioned by an expression calling one', 'SELECT x FROM keyed', 115, null],
    ['a table whose own CHECK calls one, under constraint_exclusion = on', 'SELECT x FROM limited WHERE x = 1', 116, 'SET constraint_exclusion = on'],
  ] as const) {
    it(`${what}: synced before it is forwarded`, async () => {
      const warm = await connected();
      await warm.query(sql).finally(() => warm.end());
      const c = await connected();
      try {
        if (setup !== null) await c.query(setup);
        const effect = `select count(*) from hits where n = ${tag}`;
        const before = await direct(effect);
        try {
          writeFileSync(fail, '');
          const err = await c.query(sql).then(() => null, failure);
          expect(err?.code).toBe('58030');
        } finally {
          rmSync(fail, { force: true });
        }
        expect(await direct(effect)).toBe(before);
      } finally {
        await c.end();
      }
    });
  }

  it('a table replaced by a view (through airlock) since the catalog was read: synced before it is forwarded', async () => {
    const c = await connected();
    try {
      await c.query('SELECT n FROM later');
      await c.query('ALTER TABLE later RENAME TO later_table');
      await c.query('CREATE VIEW later AS SELECT mark(106) AS n');
      await notPipelined(c, 'SELECT n FROM later', 'select count(*) from hits where n = 106');
    } finally {
      await c.end();
    }
  });

  it('DDL prepared earlier (extended protocol) and run by a later Bind/Execute alone: the catalog is not trusted after it', async () => {
    const c = await connected();
    try {
      await direct('SET ROLE app; CREATE TABLE victim (n int); INSERT INTO victim VALUES (1)');
      const rename = { name: 'swap_rename', text: 'ALTER TABLE victim RENAME TO victim_table' };
      const view = { name: 'swap_view', text: 'CREATE VIEW victim AS SELECT mark(130) AS n' };
      // Prepared (Parse) in a transaction rolled back: the statements stay, their effects do not.
      await c.query('BEGIN');
      await c.query(rename);
      await c.query(view);
      await c.query('ROLLBACK');
      // The catalog learns that victim is a plain table (a name never looked up: the look-up is awaited).
      await c.query('SELECT n FROM victim');
      // node-postgres sends only Bind/Execute/Sync for a statement it has prepared already.
      await c.query(rename);
      await c.query(view);
      await notPipelined(c, 'SELECT n FROM victim', 'select count(*) from hits where n = 130');
    } finally {
      await c.end();
    }
  });

  it('DDL through one listener, a SELECT through another naming the same database by another host name: the catalog is not trusted', async () => {
    const a = await connected();
    const b = await connected(aliasPort);
    try {
      await direct('SET ROLE app; CREATE TABLE victim2 (n int); INSERT INTO victim2 VALUES (1)');
      // The other listener's catalog learns that victim2 is a plain table.
      await b.query('SELECT n FROM victim2');
      await a.query('ALTER TABLE victim2 RENAME TO victim2_table');
      await a.query('CREATE VIEW victim2 AS SELECT mark(131) AS n');
      const before = await direct('select count(*) from hits where n = 131');
      try {
        writeFileSync(fail, '');
        const err = await b.query('SELECT n FROM victim2').then(() => null, failure);
        expect(err?.code).toBe('58030');
      } finally {
        rmSync(fail, { force: true });
      }
      expect(await direct('select count(*) from hits where n = 131')).toBe(before);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('a view shadowing a table inside an open transaction: synced before it is forwarded until the transaction ends', async () => {
    const a = await connected();
    const b = await connected();
    try {
      await a.query('BEGIN');
      await a.query('CREATE SCHEMA early');
      await a.query('CREATE VIEW early.later2 AS SELECT mark(108) AS n');
      await a.query('SET search_path = early, public');
      // Another session's first look-up of the name: the committed catalog, where later2 is a plain table.
      await b.query('SELECT n FROM later2');
      const before = await direct('select count(*) from hits where n = 108');
      writeFileSync(fail, '');
      const err = await a.query('SELECT n FROM later2').then(() => null, failure);
      expect(err?.code).toBe('58030');
      rmSync(fail);
      // Had it run, its insert would be in the transaction, committed now.
      await a.query('COMMIT').catch(() => undefined);
      expect(await direct('select count(*) from hits where n = 108')).toBe(before);
    } finally {
      rmSync(fail, { force: true });
      await a.end();
      await b.end();
    }
  });

  // Last: a user `=` makes every statement that may resolve it (most do) pay full write-ahead.
  it('an operator shadowing = in a schema earlier on search_path: synced before it is forwarded', async () => {
    const c = await connected();
    try {
      await c.query('CREATE SCHEMA shadow');
      await c.query(
        "CREATE FUNCTION shadow.int4eq(int, int) RETURNS boolean LANGUAGE sql SET search_path = pg_catalog AS 'INSERT INTO public.hits VALUES (107) RETURNING $1 = $2'",
      );
      await c.query('CREATE OPERATOR shadow.= (LEFTARG = int, RIGHTARG = int, FUNCTION = shadow.int4eq)');
      await c.query('SET search_path = shadow, pg_catalog, public');
      await notPipelined(c, 'SELECT name FROM customers WHERE id = 1', 'select count(*) from hits where n = 107');
    } finally {
      await c.end();
    }
  });
});

// Red team: texts that reach a writing function some other way — held (never forwarded before
// the record is durable). Each runs under a failing sync: 58030, not seen upstream, no effect.
describe('pipelined write-ahead: red-team texts that stay synced first', () => {
  for (const [sql, tag, setup] of [
    ['FETCH ALL FROM rt_cursor', 140, ['BEGIN', 'DECLARE rt_cursor CURSOR FOR SELECT mark(140)']],
    ['EXECUTE rt_insert', 141, ['PREPARE rt_insert AS INSERT INTO hits VALUES (141)']],
    ['EXPLAIN ANALYZE SELECT mark(142)', 142, []],
    ['COPY (SELECT mark(143)) TO STDOUT', 143, []],
    ['DO $$ BEGIN PERFORM mark(144); END $$', 144, []],
    ['CALL rt_proc()', 145, ["CREATE PROCEDURE rt_proc() LANGUAGE sql AS 'INSERT INTO hits VALUES (145)'"]],
    ['SELECT * FROM ROWS FROM (mark(146))', 146, []],
    ['SELECT * FROM customers, LATERAL (SELECT mark(147)) x', 147, []],
    ['WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT mark(148) FROM r WHERE n < 1) SELECT * FROM r', 148, []],
    ['TABLE marked', 101, []],
    ['SELECT 1; SELECT mark(149)', 149, []],
    ['SELECT "mark"(150)', 150, []],
    ['SELECT public.mark(151)', 151, []],
    ['SELECT/**/mark/**/(152)', 152, []],
    ['SELECT U&"\\006Dark"(153)', 153, []],
    ['VALUES (mark(155))', 155, []],
    ['SELECT * FROM customers TABLESAMPLE SYSTEM (mark(156))', 156, []],
    ['SELECT x FROM (VALUES (1)) v(x) ORDER BY mark(157)', 157, []],
    ['SELECT (SELECT mark(158))', 158, []],
    ['SELECT $$mark(0)$$, mark(159)', 159, []],
    ["SELECT 1 FROM customers WHERE name = 'x' UNION SELECT mark(160)", 160, []],
    // A row lock whose words a comment separates (no row written: only never forwarded is checked).
    ['SELECT name FROM customers WHERE id = 1 FOR/**/UPDATE', 0, []],
    ['SELECT name FROM customers WHERE id = 1 FOR /* a /* nested */ comment */ NO KEY UPDATE', 0, []],
    ['SELECT name FROM customers WHERE id = 1 FOR -- x\nSHARE', 0, []],
  ] as const) {
    it(`${sql}: synced before it is forwarded`, async () => {
      const c = await connected();
      try {
        for (const x of setup) await c.query(x);
        const effect = `select count(*) from hits where n = ${tag}`;
        const before = await direct(effect);
        try {
          writeFileSync(fail, '');
          const err = await c.query(sql).then(() => null, failure);
          expect(err?.code).toBe('58030');
        } finally {
          rmSync(fail, { force: true });
        }
        expect(await direct(`select count(*) from pg_stat_activity where usename = 'app' and query = '${sql.replace(/'/g, "''")}'`)).toBe('0');
        await c.query('ROLLBACK').catch(() => undefined);
        expect(await direct(effect)).toBe(before);
      } finally {
        await c.end();
      }
    });
  }
});
