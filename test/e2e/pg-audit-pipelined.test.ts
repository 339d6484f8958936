/**
 * Pipelined write-ahead (issue 17), PostgreSQL simple-query mode, real PostgreSQL and the
 * real daemon. An effect-free SELECT is forwarded while its audit record syncs, but no byte
 * of its result reaches the client before the record is durable; anything with an effect
 * (INSERT, nextval, a function the analyser cannot vouch for) is never forwarded before.
 * The daemon's test hooks hold (gate file) or fail (fail file) every audit sync.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPgCluster, freePort, type PgCluster } from '../../app/dev/pgcluster.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';

let upstream: PgCluster;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let token: string;
let port = 0;
const dir = mkdtempSync(join(tmpdir(), 'airlock-pipelined-'));
const gate = join(dir, 'hold-syncs');
const fail = join(dir, 'fail-syncs');
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
  port = await freePort();
  process.env.AIRLOCK_TEST_AUDIT_SYNC_GATE = gate;
  process.env.AIRLOCK_TEST_AUDIT_SYNC_FAIL = fail;
  try {
    airlock = await startAirlock({
      state_dir: join(dir, 'state'),
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
      ],
    });
  } finally {
    delete process.env.AIRLOCK_TEST_AUDIT_SYNC_GATE;
    delete process.env.AIRLOCK_TEST_AUDIT_SYNC_FAIL;
  }
  token = await issuer.token({ sub: 'alice', groups: ['dba'] }, { ttlSeconds: 600 });
}, 120_000);

afterAll(async () => {
  rmSync(gate, { force: true });
  rmSync(fail, { force: true });
  await airlock?.stop();
  await upstream?.stop();
});

async function connected(): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'alice', database: 'appdb', password: token });
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
      writeFileSync(gate, '');
      const text = 'SELECT name FROM customers WHERE id = 1';
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
