/**
 * Ephemeral credentials through the real daemon: a session's upstream user is its own
 * short-lived role, gone soon after the session ends however it ends; after kill -9 the
 * restarted daemon's sweeper removes the orphan.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { startPgCluster, freePort, type PgCluster } from '../../app/dev/pgcluster.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { scramVerifier } from '../../src/credentials/pg-sql.js';

const ADMIN_PASSWORD = `admin-${Math.random().toString(36).slice(2)}-never-shown`;
const daemonStartsSweepers = readFileSync(resolve(import.meta.dirname, '../../app/daemon.ts'), 'utf8').includes('startSweepers');

let upstream: PgCluster;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let doc: Record<string, unknown>;
let port = 0;
let token = '';

async function airlockRoles(): Promise<string[]> {
  const out = await upstream.psql(`SELECT rolname FROM pg_roles WHERE shobj_description(oid, 'pg_authid') LIKE '{"airlock":%' ORDER BY 1`);
  return out === '' ? [] : out.split('\n');
}

/** Polls until the upstream has no airlock roles (the drop runs after the client is gone). */
async function untilNoRoles(timeoutMs = 15_000): Promise<string[]> {
  const end = Date.now() + timeoutMs;
  let roles = await airlockRoles();
  while (roles.length > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    roles = await airlockRoles();
  }
  return roles;
}

function client(): pg.Client {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'alice', database: 'postgres', password: token });
  c.on('error', () => undefined);
  return c;
}

beforeAll(async () => {
  issuer = await createTestIssuer();
  upstream = await startPgCluster();
  await upstream.psql(`
    CREATE TABLE items (id int, name text); INSERT INTO items VALUES (1, 'one');
    CREATE ROLE app_readonly NOLOGIN; GRANT SELECT ON items TO app_readonly;
    CREATE ROLE airlock_admin LOGIN CREATEROLE PASSWORD '${await scramVerifier(ADMIN_PASSWORD)}';
  `);
  const dir = mkdtempSync(join(tmpdir(), 'airlock-eph-gw-'));
  const pwFile = join(dir, 'pg-admin');
  writeFileSync(pwFile, `${ADMIN_PASSWORD}\n`, { mode: 0o600 });
  port = await freePort();
  doc = {
    state_dir: join(dir, 'state'),
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [
      {
        name: 'ephdb',
        protocol: 'postgres',
        listen: `127.0.0.1:${port}`,
        upstream: { host: '127.0.0.1', port: upstream.port, database: 'postgres' },
        credentials: { type: 'ephemeral', admin: { username: 'airlock_admin', password: `\${file:${pwFile}}` }, grant: ['app_readonly'], ttl: '1h', role_prefix: 'airlock_' },
        allow_groups: ['dba'],
      },
    ],
  };
  airlock = await startAirlock(doc);
  token = await issuer.token({ sub: 'alice', groups: ['dba'] }, { ttlSeconds: 600 });
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
  await upstream?.stop();
});

describe('ephemeral credentials through the daemon', () => {
  it('runs the session as its own role, dropped after a clean exit', async () => {
    const c = client();
    await c.connect();
    const who = (await c.query('SELECT current_user AS u')).rows[0] as { u: string };
    expect(who.u).toMatch(/^airlock_alice_[0-9a-f]{6}_[0-9a-f]{10}$/);
    expect((await c.query('SELECT name FROM items')).rows).toEqual([{ name: 'one' }]);
    expect(await airlockRoles()).toEqual([who.u]);
    await c.end();
    expect(await untilNoRoles()).toEqual([]);
  });

  it('drops the role when the client is killed', async () => {
    const c = client();
    await c.connect();
    await c.query('SELECT 1');
    expect((await airlockRoles()).length).toBe(1);
    // Cut the socket under the client, as a killed process would.
    (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    expect(await untilNoRoles()).toEqual([]);
  });

  it('gives concurrent sessions distinct roles, all dropped', async () => {
    const clients = Array.from({ length: 10 }, () => client());
    await Promise.all(clients.map((c) => c.connect()));
    const users = await Promise.all(clients.map(async (c) => ((await c.query('SELECT current_user AS u')).rows[0] as { u: string }).u));
    expect(new Set(users).size).toBe(10);
    await Promise.all(clients.map((c) => c.end()));
    expect(await untilNoRoles()).toEqual([]);
  });

  it.skipIf(!daemonStartsSweepers)('sweeps the orphan of a daemon killed with SIGKILL once it restarts', async () => {
    const c = client();
    await c.connect();
    await c.query('SELECT 1');
    const [orphan] = await airlockRoles();
    expect(orphan).toBeDefined();
    airlock.signal('SIGKILL');
    await airlock.stop();
    await c.end().catch(() => undefined);
    expect(await airlockRoles()).toEqual([orphan]);
    airlock = await startAirlock(doc);
    expect(await untilNoRoles()).toEqual([]);
  }, 60_000);

  it('never prints the admin password or a password literal', () => {
    const out = airlock.output();
    expect(out).not.toContain(ADMIN_PASSWORD);
    expect(out).not.toContain('SCRAM-SHA-256$');
    expect(out).not.toMatch(/PASSWORD '/);
  });
});
