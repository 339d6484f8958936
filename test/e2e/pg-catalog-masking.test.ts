/**
 * Masking through the catalog (issue 25 items 2 and 3, issue 27 item 6), through the real
 * daemon with psql and the pg driver against a real PostgreSQL: statistics views copy stored
 * values, errors carry values unquoted, pg_stat_activity shows other sessions' statement text.
 * None of the seeded values may reach an identity under a column mask rule.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, type PgCluster } from '../../app/dev/pgcluster.js';
import { startAppDb } from '../harness/appdb.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { psql } from '../harness/clients.js';

const PASSWORD = 'catalog-mask-pw';
const SSNS = ['123-45-6789', '987-65-4321'];
const EMAILS = ['ada.lovelace@example.com', 'alan.turing@example.org'];
/** Raw values, and the digits-only SSN an error would print. */
const RAW = [...SSNS, ...EMAILS, '123456789', '987654321'];

let upstream: PgCluster;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let support: string;
let dba: string;
let port = 0;

beforeAll(async () => {
  issuer = await createTestIssuer();
  const db = await startAppDb({
    password: PASSWORD,
    extraConf: { shared_preload_libraries: "'pg_stat_statements'" },
    setupSql: `CREATE TABLE customers (id int primary key, name text, email text, ssn text);
      INSERT INTO customers VALUES (1, 'Ada', '${EMAILS[0]}', '${SSNS[0]}'), (2, 'Alan', '${EMAILS[1]}', '${SSNS[1]}');
      CREATE STATISTICS customers_mcv (mcv) ON ssn, email FROM customers;
      CREATE STATISTICS customers_expr ON (lower(ssn)) FROM customers;
      ANALYZE customers;
      CREATE VIEW my_activity AS SELECT pid, query FROM pg_stat_activity;
      CREATE VIEW my_activity_fn AS SELECT a.pid, a.query AS q FROM pg_stat_get_activity(NULL) a;
      CREATE VIEW customer_ssn AS SELECT id, ssn FROM customers;
      CREATE FUNCTION ssn_of(int) RETURNS text LANGUAGE sql STABLE AS 'SELECT ssn FROM customers WHERE id = $1';
      CREATE VIEW customer_fn AS SELECT id, ssn_of(id) AS s FROM customers;
      CREATE VIEW customer_fn2 AS SELECT id, s FROM customer_fn;
      CREATE TABLE plain (x int); INSERT INTO plain VALUES (1);
      CREATE VIEW my_stats AS SELECT attname, histogram_bounds::text AS hb FROM pg_stats;`,
  });
  upstream = db.upstream;
  await upstream.psql('CREATE EXTENSION pg_stat_statements; GRANT pg_read_all_stats TO app', { db: 'appdb' });
  port = await freePort();
  airlock = await startAirlock({
    state_dir: join(db.dir, 'state'),
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [db.connection('appdb', port, { allow_groups: ['support', 'dba'] })],
    rules: [
      { name: 'pii', when: { groups: ['support'] }, effect: 'mask', columns: ['public.customers.email', 'public.customers.ssn'], method: 'redact' },
    ],
  });
  support = await issuer.token({ sub: 'sam', groups: ['support'] });
  dba = await issuer.token({ sub: 'bob', groups: ['dba'] });
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
  await upstream?.stop();
});

function expectNoRaw(text: string, what: string): void {
  for (const v of RAW) expect(text, `${what} leaked ${v}`).not.toContain(v);
}

describe('statistics views and functions', () => {
  it('an unmasked identity sees the raw values in pg_stats (the leak is real)', async () => {
    const r = await psql({ port, token: dba }, ['-At', '-c', "SELECT histogram_bounds FROM pg_stats WHERE tablename = 'customers' AND attname = 'ssn'"]);
    expect(r.stdout).toContain(SSNS[0]);
  });

  const corpus: Array<[string, string]> = [
    ['pg_stats columns', "SELECT histogram_bounds, most_common_vals FROM pg_stats WHERE tablename = 'customers'"],
    ['pg_stats star', "SELECT * FROM pg_catalog.pg_stats WHERE tablename = 'customers'"],
    ['pg_stats cast to text', "SELECT attname, histogram_bounds::text FROM pg_stats WHERE tablename = 'customers'"],
    ['pg_stats unnest', "SELECT unnest(histogram_bounds::text::text[]) FROM pg_stats WHERE tablename = 'customers'"],
    ['pg_stats whole row', "SELECT row_to_json(s) FROM pg_stats s WHERE tablename = 'customers'"],
    ['pg_stats through a CTE', "WITH s AS (SELECT * FROM pg_stats) SELECT array_to_string(histogram_bounds::text::text[], ',') FROM s WHERE tablename = 'customers'"],
    ['pg_stats_ext', "SELECT most_common_vals FROM pg_stats_ext WHERE tablename = 'customers'"],
    ['pg_stats_ext star', "SELECT * FROM pg_stats_ext WHERE tablename = 'customers'"],
    ['pg_stats_ext_exprs', "SELECT * FROM pg_stats_ext_exprs WHERE tablename = 'customers'"],
    ['a view over pg_stats', 'SELECT attname, hb FROM my_stats'],
  ];
  for (const [what, sql] of corpus) {
    it(`masks ${what}`, async () => {
      const r = await psql({ port, token: support }, ['-At', '-c', sql]);
      expect(r.stderr, what).toBe('');
      expectNoRaw(r.stdout + r.stderr, what);
    });
  }

  it('masks pg_stats through the pg driver (extended protocol, binary and text)', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port, database: 'appdb', user: 'sam', password: support });
    await c.connect();
    try {
      const r = await c.query({ text: "SELECT histogram_bounds::text AS h, most_common_vals::text AS m FROM pg_stats WHERE tablename = $1", values: ['customers'] });
      expect(r.rows.length).toBeGreaterThan(0);
      expectNoRaw(JSON.stringify(r.rows), 'pg driver');
    } finally {
      await c.end();
    }
  });
});

describe('computed columns over a view (lineage through the view)', () => {
  it('masks upper(ssn) over a view of customers', async () => {
    const r = await psql({ port, token: support }, ['-At', '-c', 'SELECT upper(ssn), ssn || \'\' FROM customer_ssn']);
    expect(r.stderr).toBe('');
    expectNoRaw(r.stdout, 'computed over a view');
  });

  it('masks COPY (query over a view) TO STDOUT', async () => {
    const r = await psql({ port, token: support }, ['-At', '-c', 'COPY (SELECT id, lower(ssn) FROM customer_ssn) TO STDOUT']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['1\t[redacted]', '2\t[redacted]']);
  });

  it('masks a view column computed by a user function (its lineage is unknown)', async () => {
    for (const sql of ['SELECT s FROM customer_fn', 'SELECT * FROM customer_fn2', 'SELECT upper(s) FROM customer_fn2']) {
      const r = await psql({ port, token: support }, ['-At', '-c', sql]);
      expect(r.stderr, sql).toBe('');
      expect(r.stdout.length, sql).toBeGreaterThan(0);
      expectNoRaw(r.stdout, sql);
    }
  });

  it('masks a user function that reads a masked column, called over an unmasked table', async () => {
    for (const sql of ['SELECT ssn_of(1)', 'SELECT ssn_of(x) FROM plain', 'SELECT p.x, ssn_of(p.x) AS s FROM plain p']) {
      const r = await psql({ port, token: support }, ['-At', '-c', sql]);
      expect(r.stderr, sql).toBe('');
      expect(r.stdout.length, sql).toBeGreaterThan(0);
      expectNoRaw(r.stdout, sql);
    }
  });

  it('masks a computed column over a table whose columns are renamed in FROM', async () => {
    const r = await psql({ port, token: support }, ['-At', '-c', 'SELECT upper(s), lower(e) FROM customers AS t(i, n, e, s)']);
    expect(r.stderr).toBe('');
    expectNoRaw(r.stdout, 'column aliases');
  });

  it("reads the server's own views by column name: information_schema.columns stays readable", async () => {
    const r = await psql({ port, token: support }, ['-At', '-c', "SELECT column_name FROM information_schema.columns WHERE table_name = 'customers' ORDER BY ordinal_position"]);
    expect(r.stdout.trim().split('\n')).toEqual(['id', 'name', 'email', 'ssn']);
  });

  it('passes computed columns of a view that read no masked column', async () => {
    const r = await psql({ port, token: support }, ['-At', '-c', 'SELECT id + 1 FROM customer_ssn ORDER BY id']);
    expect(r.stdout.trim().split('\n')).toEqual(['2', '3']);
  });
});

describe('errors of a statement that reads masked columns', () => {
  const corpus: Array<[string, string]> = [
    ['make_date', "SELECT make_date(replace(ssn, '-', '')::int, 13, 1) FROM customers"],
    ['make_time', "SELECT make_time(replace(ssn, '-', '')::int, 0, 0) FROM customers"],
    ['chr', "SELECT chr(replace(ssn, '-', '')::int) FROM customers"],
    ['to_date', "SELECT to_date(replace(ssn, '-', ''), 'YYYYMMDD') FROM customers"],
    ['in WHERE only', "SELECT id FROM customers WHERE make_date(replace(ssn, '-', '')::int, 13, 1) IS NULL"],
    ['through a view', "SELECT make_date(replace(ssn, '-', '')::int, 13, 1) FROM customer_ssn"],
  ];
  for (const [what, sql] of corpus) {
    it(`withholds the message: ${what}`, async () => {
      const r = await psql({ port, token: support }, ['-At', '-c', sql]);
      expect(r.code, what).not.toBe(0);
      expect(r.stderr, what).toContain('details withheld: the statement reads masked columns');
      expect(r.stderr, what).toMatch(/SQLSTATE [0-9A-Z]{5}/);
      expectNoRaw(r.stdout + r.stderr, what);
    });
  }

  it('an unmasked identity still gets the server text (the leak is real)', async () => {
    const r = await psql({ port, token: dba }, ['-At', '-c', corpus[0]?.[1] ?? '']);
    expect(r.stderr).toContain('123456789');
  });

  it('withholds through the pg driver too, keeping the SQLSTATE', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port, database: 'appdb', user: 'sam', password: support });
    await c.connect();
    try {
      const e = await c.query("SELECT make_date(replace(ssn, '-', '')::int, 13, 1) FROM customers WHERE id = $1", [1]).then(() => null, (err: unknown) => err as { code?: string; message: string; detail?: string });
      expect(e?.code).toBe('22008');
      expect(e?.message).toContain('details withheld');
      expectNoRaw(JSON.stringify(e), 'pg driver error');
      // The session goes on.
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });

  it('keeps a known-safe message with its variable parts redacted (psql still points at the spot)', async () => {
    const r = await psql({ port, token: support }, ['-At', '-c', 'SELECT nosuchcolumn FROM customers']);
    expect(r.stderr).toContain('column "[redacted]" does not exist');
    expect(r.stderr).toContain('LINE 1: SELECT nosuchcolumn FROM customers');
    // A name cast from data: the text holding the same characters does not let it through.
    const c = await psql({ port, token: support }, ['-At', '-c', "SELECT left(ssn, 1)::regclass FROM customers WHERE '1' = '1'"]);
    expect(c.stderr).toContain('relation "[redacted]" does not exist');
  });

  it('leaves errors of statements that read no masked column as they were', async () => {
    const r = await psql({ port, token: support }, ['-At', '-c', "SELECT make_date(2024, 13, 1)"]);
    expect(r.stderr).toContain('date field value out of range: 2024-13-01');
  });
});

describe("other sessions' statement text", () => {
  let other: pg.Client;
  let running: Promise<unknown>;

  beforeAll(async () => {
    // A direct session (not through airlock) runs a slow statement with a masked value in it.
    other = new pg.Client({ host: '127.0.0.1', port: upstream.port, database: 'appdb', user: 'app', password: PASSWORD });
    await other.connect();
    // pg_stat_statements keeps a utility statement's text as written (PostgreSQL 15 does not normalise it).
    await other.query(`SET application_name = '${SSNS[1]}'`);
    await other.query("SET application_name = 'direct'");
    running = other.query(`SELECT pg_sleep(300), '${SSNS[0]}' AS probe`).catch(() => undefined);
    for (;;) {
      const seen = await upstream.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(300)%' AND state = 'active' AND pid <> pg_backend_pid()", { db: 'appdb' });
      if (seen.trim() === '1') break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 60_000);

  afterAll(async () => {
    await upstream.psql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(300)%' AND pid <> pg_backend_pid()", { db: 'appdb' });
    await running;
    await other.end();
  });

  it('an unmasked identity sees it (the leak is real)', async () => {
    const r = await psql({ port, token: dba }, ['-At', '-c', 'SELECT query FROM pg_stat_activity']);
    expect(r.stdout).toContain(SSNS[0]);
    const s = await psql({ port, token: dba }, ['-At', '-c', 'SELECT query FROM pg_stat_statements']);
    expect(s.stdout).toContain(SSNS[1]);
  });

  const corpus: Array<[string, string]> = [
    ['pg_stat_activity.query', 'SELECT query FROM pg_stat_activity'],
    ['pg_stat_activity star', 'SELECT * FROM pg_catalog.pg_stat_activity'],
    ['pg_stat_activity whole row', 'SELECT a::text FROM pg_stat_activity a'],
    ['pg_stat_get_activity()', 'SELECT query FROM pg_stat_get_activity(NULL)'],
    ['pg_stat_get_activity() joined', 'SELECT a.query, c.id FROM pg_stat_get_activity(NULL) a CROSS JOIN (SELECT 1 AS id) c'],
    ['pg_stat_get_backend_activity()', 'SELECT pg_stat_get_backend_activity(s) FROM pg_stat_get_backend_idset() s'],
    ['pg_stat_get_activity() with column aliases', 'SELECT q FROM pg_stat_get_activity(NULL) AS a(d, p, l, u, ap, ca, ch, cp, bs, xs, qs, sc, wt, w, st, bx, bm, q)'],
    ['a view over pg_stat_activity', 'SELECT query FROM my_activity'],
    ['pg_stat_statements', 'SELECT query FROM pg_stat_statements'],
    ['pg_stat_statements star', 'SELECT * FROM public.pg_stat_statements'],
    ['pg_stat_statements()', 'SELECT s.query FROM pg_stat_statements(true) s'],
    ['a view over pg_stat_get_activity()', 'SELECT q, upper(q) FROM my_activity_fn'],
  ];
  it('passes the columns that carry no statement text', async () => {
    const r = await psql({ port, token: support }, ['-At', '-c', "SELECT count(*) FROM pg_stat_activity WHERE pid IS NOT NULL AND backend_start IS NOT NULL AND query LIKE '%'"]);
    expect(r.stderr).toBe('');
    expect(Number(r.stdout.trim())).toBeGreaterThan(1);
    const p = await psql({ port, token: support }, ['-At', '-c', 'SELECT pid, state FROM pg_stat_activity WHERE pid = pg_backend_pid()']);
    expect(p.stdout.trim()).toMatch(/^\d+\|active$/);
  });
  for (const [what, sql] of corpus) {
    it(`masks ${what}`, async () => {
      const r = await psql({ port, token: support }, ['-At', '-c', sql]);
      expect(r.stderr, what).toBe('');
      expect(r.stdout.length, what).toBeGreaterThan(0);
      expectNoRaw(r.stdout + r.stderr, what);
    });
  }
});
