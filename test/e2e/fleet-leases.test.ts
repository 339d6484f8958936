/**
 * Ephemeral-role leases across a fleet (issue 18): two airlock daemons on one state PostgreSQL
 * and one upstream PostgreSQL with an ephemeral-credential connection. Node A is killed with
 * SIGKILL mid-session; its role is dropped by node B's sweeper once its lease expires, while
 * a live session on B keeps its role, its lease renewed by B's heartbeat. The same heartbeat
 * says each node is alive: once A has not beaten for a lease timeout, B's sweeper ends A's open
 * session in the shared index as 'node lost', and `sessions list` / `nodes list` on B show it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { freePort, startPgCluster, type PgCluster } from '../../app/dev/pgcluster.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { psql, run } from '../harness/clients.js';
import { airlockCommand } from '../harness/airlock.js';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb.js';
import { scramVerifier } from '../../src/credentials/pg-sql.js';
import { PostgresStateStore } from '../../src/state/postgres.js';
import { createLogger } from '../../src/util/log.js';

const ADMIN_PASSWORD = 'fleet-admin-pw-5c1e';
const HEARTBEAT = '250ms';
const LEASE_MS = 3000;
const LEASE_TIMEOUT = `${LEASE_MS}ms`;

let upstream: PgCluster;
let statePg: PgCluster;
let issuer: TestIssuer;
let dir = '';
let stateUrl = '';
let token = '';
let auditorToken = '';
interface Node {
  airlock: RunningAirlock;
  port: number;
  adminUrl: string;
}
let a: Node;
let b: Node;

async function startNode(name: string, urlFile: string, pwFile: string): Promise<Node> {
  const port = await freePort();
  const adminPort = await freePort();
  const airlock = await startAirlock({
    state_dir: join(dir, `state-${name}`),
    state: { backend: 'postgres', url: `\${file:${urlFile}}`, poll_interval: '1s', heartbeat_interval: HEARTBEAT, lease_timeout: LEASE_TIMEOUT },
    admin: { listen: `127.0.0.1:${adminPort}` },
    audit: { auditors: ['auditors'] },
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
  });
  return { airlock, port, adminUrl: `http://127.0.0.1:${adminPort}` };
}

async function upstreamRoles(): Promise<string[]> {
  const out = await upstream.psql("SELECT rolname FROM pg_roles WHERE rolname LIKE 'airlock\\_%' AND rolname <> 'airlock_admin' ORDER BY 1");
  return out === '' ? [] : out.split('\n');
}

async function stateQuery<R extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: stateUrl });
  await c.connect();
  try {
    return (await c.query<R>(sql, values)).rows;
  } finally {
    await c.end();
  }
}

/** Polls `probe` until it holds; the bound only keeps a broken build from hanging the suite. */
async function until(probe: () => Promise<boolean>, what: string, bound = 60_000): Promise<void> {
  const end = Date.now() + bound;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function client(node: Node): pg.Client {
  const c = new pg.Client({ host: '127.0.0.1', port: node.port, user: 'alice', database: 'postgres', password: token });
  c.on('error', () => undefined);
  return c;
}

beforeAll(async () => {
  issuer = await createTestIssuer();
  [upstream, statePg] = await Promise.all([startPgCluster(), startPgCluster()]);
  await upstream.psql(`
    CREATE TABLE items (id int, name text); INSERT INTO items VALUES (1, 'one');
    CREATE ROLE app_readonly NOLOGIN; GRANT SELECT ON items TO app_readonly;
    CREATE ROLE airlock_admin LOGIN CREATEROLE PASSWORD '${await scramVerifier(ADMIN_PASSWORD)}';
  `);
  dir = mkdtempSync(join(tmpdir(), 'airlock-fleet-leases-'));
  const pwFile = join(dir, 'pg-admin');
  writeFileSync(pwFile, `${ADMIN_PASSWORD}\n`, { mode: 0o600 });
  stateUrl = `postgres://${statePg.superuser}:${encodeURIComponent(statePg.superPassword)}@127.0.0.1:${statePg.port}/postgres`;
  const urlFile = join(dir, 'state-url');
  writeFileSync(urlFile, stateUrl, { mode: 0o600 });
  [a, b] = await Promise.all([startNode('a', urlFile, pwFile), startNode('b', urlFile, pwFile)]);
  token = await issuer.token({ sub: 'alice', groups: ['dba'] }, { ttlSeconds: 600 });
  auditorToken = await issuer.token({ sub: 'audrey', groups: ['auditors'] }, { ttlSeconds: 600 });
}, 180_000);

/** `airlock <args> --admin <node> --token <auditor's>`: stdout, or the test fails with stderr. */
async function cli(node: Node, args: string[]): Promise<string> {
  const { cmd, argv } = airlockCommand([...args, '--admin', node.adminUrl, '--token', auditorToken]);
  const r = await run(cmd, argv);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

interface ListedSession { session: string; node: string; subject: string; endedAt: string | null; endReason: string | null }
interface ListedNode { node: string; live: boolean; openSessions: number; self: boolean; lastSeen: string; adminUrl: string | null }

afterAll(async () => {
  await Promise.all([a?.airlock.stop(), b?.airlock.stop()]);
  await upstream?.stop();
  await statePg?.stop();
});

describe('ephemeral-role leases across two nodes', () => {
  it('drops the role of node A, killed with SIGKILL mid-session, from node B once its lease expires; B\'s live session keeps its role', async () => {
    const onB = client(b);
    await onB.connect();
    const roleB = ((await onB.query('SELECT current_user AS u')).rows[0] as { u: string }).u;
    const onA = client(a);
    await onA.connect();
    const roleA = ((await onA.query('SELECT current_user AS u')).rows[0] as { u: string }).u;
    expect(roleA).not.toBe(roleB);
    expect(await upstreamRoles()).toEqual([roleA, roleB].sort());
    // Each role has its lease, written by the node that made it.
    const leases = await stateQuery<{ role: string; node: string; connection: string }>('SELECT role, node, connection FROM airlock_role_leases ORDER BY role');
    expect(leases.map((l) => l.role)).toEqual([roleA, roleB].sort());
    expect(new Set(leases.map((l) => l.node)).size).toBe(2);
    // Both nodes beat and compete for the sweeper lock all along: live sessions' leases are
    // renewed, never swept, well past two lease timeouts.
    await until(async () => {
      const r = await stateQuery<{ n: string }>(`SELECT count(*) AS n FROM airlock_role_leases WHERE now() - created_at > 2 * $1 * interval '1 millisecond'`, [LEASE_MS]);
      return r[0]?.n === '2';
    }, 'both sessions outlive two lease timeouts');
    expect(await upstreamRoles()).toEqual([roleA, roleB].sort());
    expect((await onA.query('SELECT name FROM items')).rows).toEqual([{ name: 'one' }]);
    // Both nodes beat all along: neither is lost, both sessions still open in the index on B.
    const before = JSON.parse(await cli(b, ['sessions', 'list', '--json'])) as ListedSession[];
    expect(before.filter((s) => s.endedAt === null).map((s) => s.node).sort()).toEqual([...new Set(leases.map((l) => l.node))].sort());
    const nodeA = leases.find((l) => l.role === roleA)?.node ?? '';
    const sessionA = before.find((s) => s.node === nodeA)?.session ?? '';
    expect(sessionA).not.toBe('');
    const liveNodes = JSON.parse(await cli(b, ['nodes', 'list', '--json'])) as ListedNode[];
    expect(liveNodes.map((n) => [n.node, n.live, n.openSessions])).toEqual(
      expect.arrayContaining([[nodeA, true, 1], [leases.find((l) => l.role === roleB)?.node, true, 1]]),
    );
    expect(liveNodes.find((n) => n.node === nodeA)?.adminUrl).toBe(a.adminUrl);

    a.airlock.signal('SIGKILL');
    await a.airlock.stop();
    // Nothing on A dropped it: the role outlives its node until the lease runs out.
    expect(await upstreamRoles()).toContain(roleA);

    await until(async () => !(await upstreamRoles()).includes(roleA), `${roleA} dropped`);
    const swept = await b.airlock.waitForLog((l) => l.msg === 'fleet sweeper dropped the role of an expired lease' && l.role === roleA);
    expect(swept).toMatchObject({ connection: 'ephdb', node: leases.find((l) => l.role === roleA)?.node });
    expect(await (await fetch(`${b.adminUrl}/metrics`)).text()).toMatch(/^airlock_ephemeral_leases_swept_total\{connection="ephdb"\} 1$/m);
    expect((await stateQuery('SELECT 1 FROM airlock_role_leases WHERE role = $1', [roleA])).length).toBe(0);

    // A's session no longer shows as open: B's sweeper ended it as 'node lost', at A's last beat.
    await until(async () => (await stateQuery<{ end_reason: string | null }>('SELECT end_reason FROM airlock_sessions WHERE id = $1', [sessionA]))[0]?.end_reason === 'node lost', 'A\'s session marked node lost');
    const after = JSON.parse(await cli(b, ['sessions', 'list', '--json'])) as ListedSession[];
    const lostA = after.find((s) => s.session === sessionA);
    expect(lostA).toMatchObject({ node: nodeA, endReason: 'node lost' });
    const [atLastSeen] = await stateQuery<{ same: boolean }>('SELECT s.ended_at = n.last_seen AS same FROM airlock_sessions s JOIN airlock_nodes n ON n.node = s.node WHERE s.id = $1', [sessionA]);
    expect(atLastSeen?.same).toBe(true);
    expect(after.filter((s) => s.endedAt === null).map((s) => s.node)).toEqual([leases.find((l) => l.role === roleB)?.node]);
    const table = await cli(b, ['sessions', 'list']);
    expect(table.split('\n').find((l) => l.startsWith(sessionA))).toMatch(/node lost$/);
    await b.airlock.waitForLog((l) => l.msg === 'fleet sweeper: a node stopped beating; its open session is marked ended (node lost)' && l.session === sessionA);
    const lostNodes = JSON.parse(await cli(b, ['nodes', 'list', '--json'])) as ListedNode[];
    expect(lostNodes.find((n) => n.node === nodeA)).toMatchObject({ live: false, openSessions: 0, self: false });
    expect(lostNodes.find((n) => n.self)).toMatchObject({ live: true, openSessions: 1 });
    expect(await cli(b, ['nodes', 'list'])).toMatch(new RegExp(`^${nodeA.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+lost\\s`, 'm'));

    // B's session was open all along — longer than one lease timeout, so many heartbeats — and keeps its role.
    expect(await upstreamRoles()).toEqual([roleB]);
    expect((await onB.query('SELECT name FROM items')).rows).toEqual([{ name: 'one' }]);
    const [renewed] = await stateQuery<{ renewed: boolean }>(
      `SELECT expires_at - created_at > $2 * interval '1 millisecond' AS renewed FROM airlock_role_leases WHERE role = $1`,
      [roleB, LEASE_MS],
    );
    expect(renewed?.renewed).toBe(true);
    expect(b.airlock.logs().some((l) => l.role === roleB && typeof l.msg === 'string' && l.msg.startsWith('fleet sweeper'))).toBe(false);

    // A clean end removes the lease with the role.
    await onB.end();
    await until(async () => (await upstreamRoles()).length === 0 && (await stateQuery('SELECT 1 FROM airlock_role_leases')).length === 0, 'role and lease of B removed');
    for (const out of [a.airlock.output(), b.airlock.output()]) {
      expect(out).not.toContain(ADMIN_PASSWORD);
      expect(out).not.toContain(statePg.superPassword);
    }
  }, 120_000);

  it('refuses a new session with "airlock state store unavailable" when the store does not take its lease, and creates no role', async () => {
    await stateQuery(`CREATE FUNCTION refuse_lease() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'leases refused'; END$$;
      CREATE TRIGGER refuse_lease BEFORE INSERT ON airlock_role_leases FOR EACH ROW EXECUTE FUNCTION refuse_lease()`);
    try {
      const r = await psql({ port: b.port, token, db: 'postgres' }, ['-Atc', 'SELECT 1']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('airlock state store unavailable');
      expect(await upstreamRoles()).toEqual([]);
    } finally {
      await stateQuery('DROP TRIGGER refuse_lease ON airlock_role_leases; DROP FUNCTION refuse_lease()');
    }
    const ok = await psql({ port: b.port, token, db: 'postgres' }, ['-Atc', 'SELECT name FROM items']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toBe('one');
  });

  it('lets one node at a time be the fleet\'s sweeper (pg_try_advisory_lock)', async () => {
    const logger = createLogger('silent');
    const [s1, s2] = await Promise.all([
      PostgresStateStore.open({ url: stateUrl, node: 'lock-test-1', logger, pollIntervalMs: 60_000 }),
      PostgresStateStore.open({ url: stateUrl, node: 'lock-test-2', logger, pollIntervalMs: 60_000 }),
    ]);
    try {
      let release = (): void => undefined;
      const gate = new Promise<void>((r) => (release = r));
      let entered = (): void => undefined;
      const inside = new Promise<void>((r) => (entered = r));
      const first = s1.asSweeper(async () => {
        entered();
        await gate;
      });
      await inside;
      let secondRan = false;
      // Node B's daemon is sweeping on its own beat too: while s1 holds the lock, nobody else gets it.
      expect(await s2.asSweeper(async () => void (secondRan = true))).toBe(false);
      expect(secondRan).toBe(false);
      release();
      expect(await first).toBe(true);
      // Released with the sweep's connection: another node gets it now (B's beat may hold it for a moment).
      await until(() => s2.asSweeper(async () => undefined), 'lock free again');
    } finally {
      await Promise.all([s1.close(), s2.close()]);
    }
  });
});

describe('node liveness: a node that comes back with the same id', () => {
  it('ends what its previous process left open as node lost, then indexes its new sessions normally; a live node is never swept', async () => {
    const logger = createLogger('silent');
    const id = 'restarted-host:1';
    const first = await PostgresStateStore.open({ url: stateUrl, node: id, logger, pollIntervalMs: 60_000, leaseTimeoutMs: LEASE_MS });
    await first.sessionStarted({ id: 'before-restart', subject: 'alice', issuer: 'i', connection: 'ephdb', protocol: 'postgres', client: '127.0.0.1:1', startedAt: Date.now() - 1000 });
    await first.heartbeat([]);
    const [{ last_seen: lastSeen } = { last_seen: '' }] = await stateQuery<{ last_seen: string }>('SELECT last_seen FROM airlock_nodes WHERE node = $1', [id]);
    // Gone without a word (its session never ended), back before anyone took it for dead.
    await first.close();
    const again = await PostgresStateStore.open({ url: stateUrl, node: id, logger, pollIntervalMs: 60_000, leaseTimeoutMs: LEASE_MS });
    try {
      const old = await again.session('before-restart');
      expect(old).toMatchObject({ endReason: 'node lost', endedAt: Number(lastSeen) });
      await again.sessionStarted({ id: 'after-restart', subject: 'alice', issuer: 'i', connection: 'ephdb', protocol: 'postgres', client: '127.0.0.1:2', startedAt: Date.now() });
      await again.heartbeat([]);
      // Swept by whichever node holds the lock, many times over: a node that beats keeps its sessions.
      const since = Date.now();
      await until(async () => {
        await again.heartbeat([]);
        return Date.now() - since > 2 * LEASE_MS;
      }, 'two lease timeouts of node B\'s sweeps');
      expect(await again.session('after-restart')).toMatchObject({ endedAt: null, endReason: null });
      const n = (await again.nodes()).find((x) => x.node === id);
      expect(n).toMatchObject({ live: true, openSessions: 1 });
    } finally {
      await again.close();
    }
  });
});

describe('ephemeral MySQL/MariaDB users have leases too', () => {
  let maria: MariaDbServer;
  let c: Node;
  let d: Node;

  async function startMysqlNode(name: string): Promise<Node> {
    const port = await freePort();
    const adminPort = await freePort();
    const airlock = await startAirlock({
      state_dir: join(dir, `state-${name}`),
      state: { backend: 'postgres', url: `\${file:${join(dir, 'state-url')}}`, heartbeat_interval: HEARTBEAT, lease_timeout: LEASE_TIMEOUT },
      admin: { listen: `127.0.0.1:${adminPort}` },
      auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
      connections: [{
        name: 'maria-eph', protocol: 'mysql', listen: `127.0.0.1:${port}`,
        upstream: { host: '127.0.0.1', port: maria.port, database: 'appdb' },
        credentials: { type: 'ephemeral', admin: { username: maria.admin.username, password: `\${file:${join(dir, 'maria-admin')}}` }, grant: ['SELECT ON appdb.*'] },
        allow_groups: ['dba'],
      }],
    });
    return { airlock, port, adminUrl: `http://127.0.0.1:${adminPort}` };
  }

  const userExists = async (name: string): Promise<boolean> => (await maria.rootQuery('SELECT COUNT(*) AS n FROM mysql.user WHERE User = ?', [name]))[0]?.n === 1;

  beforeAll(async () => {
    maria = await startMariaDb();
    writeFileSync(join(dir, 'maria-admin'), `${maria.admin.password}\n`, { mode: 0o600 });
    [c, d] = await Promise.all([startMysqlNode('c'), startMysqlNode('d')]);
  }, 180_000);

  afterAll(async () => {
    await Promise.all([c?.airlock.stop(), d?.airlock.stop()]);
    await maria?.stop();
  });

  it('drops the user of node C, killed with SIGKILL mid-session, from node D once its lease expires', async () => {
    const session = await mysql.createConnection({ host: '127.0.0.1', port: c.port, user: 'alice', password: token, database: 'appdb', enableCleartextPlugin: true });
    session.on('error', () => undefined);
    const [rows] = await session.query('SELECT CURRENT_USER() AS u');
    const user = String((rows as Array<{ u: string }>)[0]?.u ?? '').split('@')[0] as string;
    expect(await userExists(user)).toBe(true);
    expect((await stateQuery('SELECT 1 FROM airlock_role_leases WHERE connection = $1 AND role = $2', ['maria-eph', user])).length).toBe(1);

    c.airlock.signal('SIGKILL');
    await c.airlock.stop();
    session.destroy();
    expect(await userExists(user)).toBe(true);

    await until(async () => !(await userExists(user)), `${user} dropped`);
    await d.airlock.waitForLog((l) => l.msg === 'fleet sweeper dropped the role of an expired lease' && l.role === user);
    expect(await (await fetch(`${d.adminUrl}/metrics`)).text()).toMatch(/^airlock_ephemeral_leases_swept_total\{connection="maria-eph"\} 1$/m);
    expect((await stateQuery('SELECT 1 FROM airlock_role_leases WHERE role = $1', [user])).length).toBe(0);
    // Node B has no such connection: it never touched the lease when it held the sweeper lock.
    expect(b.airlock.logs().some((l) => l.role === user && l.msg === 'fleet sweeper dropped the role of an expired lease')).toBe(false);
    expect(d.airlock.output()).not.toContain(maria.admin.password);
  }, 120_000);
});
