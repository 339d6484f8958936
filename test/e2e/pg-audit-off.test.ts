/**
 * PostgreSQL with the audit disabled (audit.enabled: false), real PostgreSQL and the real daemon.
 * The catalog's effect judgement exists for pipelined write-ahead alone: with nothing synced
 * there is nothing to pipeline, so it is not made and the upstream's catalog is never looked up
 * for it. Observed in the server's own log (log_connections): the catalog's look-ups connect as
 * application_name=airlock-catalog. An audited daemon on the same server, as another role, is
 * the control: its first SELECT of a table is looked up. Policy still applies with the audit off.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { startPgCluster, freePort, type PgCluster } from '../../app/dev/pgcluster.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';

let upstream: PgCluster;
let issuer: TestIssuer;
let off: RunningAirlock;
let on: RunningAirlock;
let token: string;
let offPort = 0;
let onPort = 0;
const dir = mkdtempSync(join(tmpdir(), 'airlock-audit-off-'));
const password = `pw-${Math.random().toString(36).slice(2)}`;

const connection = (name: string, port: number, user: string): Record<string, unknown> => ({
  name,
  protocol: 'postgres',
  listen: `127.0.0.1:${port}`,
  upstream: { host: '127.0.0.1', port: upstream.port, database: 'appdb' },
  credentials: { type: 'static', username: user, password },
  allow_groups: ['dba'],
});

beforeAll(async () => {
  issuer = await createTestIssuer();
  upstream = await startPgCluster({ extraConf: { log_connections: 'on' } });
  await upstream.psql('CREATE DATABASE appdb');
  await upstream.psql(`CREATE ROLE quiet LOGIN PASSWORD '${password}'; CREATE ROLE audited LOGIN PASSWORD '${password}'`);
  await upstream.psql(
    "CREATE TABLE customers (id int primary key, name text); INSERT INTO customers VALUES (1,'Ada'),(2,'Alan'); GRANT SELECT, DELETE ON customers TO quiet, audited",
    { db: 'appdb' },
  );
  offPort = await freePort();
  onPort = await freePort();
  const auth = { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] };
  const rules = [{ name: 'no-deletes', when: { statements: ['delete'] }, effect: 'deny', reason: 'no deletes here' }];
  off = await startAirlock({ state_dir: join(dir, 'off'), auth, audit: { enabled: false }, rules, connections: [connection('quiet', offPort, 'quiet')] });
  on = await startAirlock({ state_dir: join(dir, 'on'), auth, rules, connections: [connection('audited', onPort, 'audited')] });
  token = await issuer.token({ sub: 'alice', groups: ['dba'] }, { ttlSeconds: 600 });
}, 120_000);

afterAll(async () => {
  await off?.stop();
  await on?.stop();
  await upstream?.stop();
});

/** Connections the server logged for `user` from airlock's catalog look-ups. */
const catalogConnections = (user: string): number =>
  readFileSync(join(dirname(upstream.dataDir), 'server.log'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('connection authorized') && l.includes(`user=${user} `) && l.includes('application_name=airlock-catalog')).length;

async function selectTwice(port: number): Promise<string[]> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'alice', database: 'appdb', password: token });
  await c.connect();
  try {
    const names: string[] = [];
    for (const id of [1, 2]) names.push(...(await c.query<{ name: string }>(`SELECT name FROM customers WHERE id = ${id}`)).rows.map((r) => r.name));
    return names;
  } finally {
    await c.end();
  }
}

describe('postgres with the audit disabled', () => {
  it('answers SELECTs without looking up the catalog for the effect judgement (an audited daemon does)', async () => {
    expect(await selectTwice(onPort)).toEqual(['Ada', 'Alan']);
    // The control: the audited daemon's first SELECT of customers waited for a look-up.
    expect(catalogConnections('audited')).toBeGreaterThan(0);
    expect(await selectTwice(offPort)).toEqual(['Ada', 'Alan']);
    expect(catalogConnections('quiet')).toBe(0);
  });

  it('still applies policy: a denied statement never runs', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: offPort, user: 'alice', database: 'appdb', password: token });
    await c.connect();
    try {
      await expect(c.query('DELETE FROM customers WHERE id = 1')).rejects.toThrow(/no deletes here/);
      expect((await c.query<{ n: string }>('SELECT count(*) AS n FROM customers')).rows[0]?.n).toBe('2');
    } finally {
      await c.end();
    }
  });
});
