/**
 * Rules match effects, not syntax (issue 25, item 4), on the Postgres wire: each statement
 * that rewrote every row past a `without_where` rule is denied, COPY … FROM is held by a rule
 * about inserts, and bounded writes still run — checked by the upstream's own state, through
 * the real daemon with psql and node-postgres.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, type PgCluster } from '../../app/dev/pgcluster.js';
import { startAppDb } from '../harness/appdb.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { psql } from '../harness/clients.js';

let upstream: PgCluster;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let dev = '';
let dba = '';
let adminUrl = '';
let port = 0;

beforeAll(async () => {
  issuer = await createTestIssuer();
  const db = await startAppDb({
    password: 'effects-pw',
    setupSql: "CREATE TABLE customers (id int primary key, notes text); INSERT INTO customers SELECT g, 'orig' FROM generate_series(1, 5) g; CREATE TABLE orders (id int primary key, amount int); INSERT INTO orders VALUES (1, 10), (2, 20);",
  });
  upstream = db.upstream;
  port = await freePort();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  airlock = await startAirlock({
    state_dir: join(db.dir, 'state'),
    admin: { listen: `127.0.0.1:${adminPort}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [db.connection('appdb', port, { allow_groups: ['dev', 'dba'] })],
    rules: [
      { name: 'no-unbounded-writes', when: { statements: ['update', 'delete'], without_where: true }, effect: 'deny' },
      { name: 'orders-writes-need-a-dba', when: { statements: ['insert', 'update', 'delete', 'merge'], tables: ['public.orders'], groups: ['dev'] }, effect: 'approve', approvers: ['dba'], timeout: '60s' },
    ],
  });
  dev = await issuer.token({ sub: 'alice', groups: ['dev'] });
  dba = await issuer.token({ sub: 'bob', groups: ['dba'] });
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
  await upstream?.stop();
});

const rewritten = (): Promise<string> => upstream.psql("select count(*) from customers where notes <> 'orig'", { db: 'appdb' });
const customers = (): Promise<string> => upstream.psql('select count(*) from customers', { db: 'appdb' });

describe('unbounded writes are denied', () => {
  const statements: Array<[string, string]> = [
    ['an upsert from SELECT *', "INSERT INTO customers SELECT * FROM customers ON CONFLICT (id) DO UPDATE SET notes = 'x'"],
    ['an upsert from a set-returning function', "INSERT INTO customers (id, notes) SELECT generate_series(1, 5), 'x' ON CONFLICT (id) DO UPDATE SET notes = 'x'"],
    ['MERGE … ON true', "MERGE INTO customers c USING (SELECT 1) s ON true WHEN MATCHED THEN UPDATE SET notes = 'x'"],
    ['MERGE … WHEN NOT MATCHED BY SOURCE', "MERGE INTO customers c USING (SELECT 1 AS id) s ON c.id = s.id WHEN NOT MATCHED BY SOURCE THEN UPDATE SET notes = 'x'"],
    ['UPDATE … WHERE 1 = 1', "UPDATE customers SET notes = 'x' WHERE 1 = 1"],
    ["DELETE … WHERE 'a' = 'a'", "DELETE FROM customers WHERE 'a' = 'a'"],
    ['UPDATE … WHERE id = id', "UPDATE customers SET notes = 'x' WHERE id = id"],
    ['TRUNCATE', 'TRUNCATE customers'],
    ['an unbounded upsert in a data-modifying CTE', "WITH u AS (INSERT INTO customers SELECT * FROM customers ON CONFLICT (id) DO UPDATE SET notes = 'x' RETURNING 1) SELECT count(*) FROM u"],
  ];
  for (const [name, sql] of statements) {
    it(`psql: ${name}`, async () => {
      const r = await psql({ port, token: dev }, ['-At', '-c', sql]);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(/airlock: denied by rule no-unbounded-writes: an unbounded/);
      expect(await rewritten()).toBe('0');
      expect(await customers()).toBe('5');
    });
  }

  it('node-postgres (extended protocol): the MERGE and the upsert answer 42501 and the session goes on', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'alice', database: 'appdb', password: dev });
    await c.connect();
    try {
      for (const sql of [
        "MERGE INTO customers c USING (SELECT 1) s ON true WHEN MATCHED THEN UPDATE SET notes = $1",
        'INSERT INTO customers SELECT * FROM customers ON CONFLICT (id) DO UPDATE SET notes = $1',
      ]) {
        const e = (await c.query(sql, ['x']).catch((x: unknown) => x)) as { code?: string; message?: string };
        expect(e.code, sql).toBe('42501');
        expect(e.message).toContain('no-unbounded-writes');
      }
      expect((await c.query('select count(*)::int as n from customers')).rows[0]?.n).toBe(5);
    } finally {
      await c.end();
    }
    expect(await rewritten()).toBe('0');
  });
});

describe('bounded writes still run', () => {
  it('UPDATE … WHERE id = 1, an upsert of VALUES, a MERGE of VALUES by key', async () => {
    const r = await psql({ port, token: dev }, ['-At',
      '-c', "UPDATE customers SET notes = 'one' WHERE id = 1",
      '-c', "INSERT INTO customers VALUES (2, 'two'), (6, 'six') ON CONFLICT (id) DO UPDATE SET notes = excluded.notes",
      '-c', "MERGE INTO customers c USING (VALUES (3, 'three')) s(id, n) ON c.id = s.id WHEN MATCHED THEN UPDATE SET notes = s.n",
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(await upstream.psql("select string_agg(id || '=' || notes, ',' order by id) from customers where notes <> 'orig'", { db: 'appdb' })).toBe('1=one,2=two,3=three,6=six');
    await upstream.psql("UPDATE customers SET notes = 'orig'; DELETE FROM customers WHERE id = 6", { db: 'appdb' });
  });
});

describe('COPY … FROM is an insert', () => {
  /** Denies (as the dba, through the API) the first pending request of alice; returns its id. */
  const denyPending = async (): Promise<string> => {
    for (let i = 0; i < 200; i++) {
      const res = await fetch(`${adminUrl}/v1/approvals`, { headers: { authorization: `Bearer ${dba}` } });
      const body = (await res.json()) as { approvals: Array<{ id: string; requester: { subject: string } }> };
      const mine = body.approvals.find((a) => a.requester.subject === 'alice');
      if (mine !== undefined) {
        const r = await fetch(`${adminUrl}/v1/approvals/${mine.id}/deny`, { method: 'POST', headers: { authorization: `Bearer ${dba}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'no bulk loads today' }) });
        expect(r.status).toBe(200);
        return mine.id;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('nothing was held');
  };

  it('COPY orders FROM STDIN is held by the rule about inserts into public.orders, and runs nothing when denied', async () => {
    const copy = psql({ port, token: dev }, ['-At', '-c', 'COPY orders FROM STDIN'], { input: '10\t100\n11\t110\n\\.\n' });
    const id = await denyPending();
    const r = await copy;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`held for approval (id ${id})`);
    expect(r.stderr).toMatch(/denied by rule orders-writes-need-a-dba: no bulk loads today/);
    expect(await upstream.psql('select count(*) from orders', { db: 'appdb' })).toBe('2');
  });

  it('COPY customers FROM STDIN (a table no rule names) runs', async () => {
    const r = await psql({ port, token: dev }, ['-At', '-c', 'COPY customers FROM STDIN'], { input: '20\torig\n\\.\n' });
    expect(r.code, r.stderr).toBe(0);
    expect(await customers()).toBe('6');
    await upstream.psql('DELETE FROM customers WHERE id = 20', { db: 'appdb' });
  });
});
