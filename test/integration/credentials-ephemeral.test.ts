/**
 * Ephemeral PostgreSQL roles against a real throwaway cluster: lifecycle, what the grants
 * allow, sweeping after a crash, concurrency, hostile subjects, failure modes, and that no
 * password leaks into airlock's output or the server's statement log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import pg from 'pg';
import { startPgCluster, type PgCluster } from '../../app/dev/pgcluster.js';
import { EphemeralPgLeases, RoleSweeper, nodeId, type EphemeralCredentials } from '../../src/credentials/index.js';
import { SecretResolver } from '../../src/secrets/index.js';
import { scramVerifier } from '../../src/credentials/pg-sql.js';
import { AirlockError } from '../../src/util/errors.js';
import { createLogger } from '../../src/util/log.js';
import type { Identity } from '../../src/core/types.js';
import type { Lease } from '../../src/core/session-types.js';

const execFileP = promisify(execFile);
const ADMIN_PASSWORD = 'adm1n-Pa55-\u00e9-never-printed';

let cluster: PgCluster;
let dir: string;
let logText = '';
const leasePasswords: string[] = [];
const logger = createLogger('debug', new Writable({ write(c: Buffer, _e, cb) { logText += c.toString(); cb(); } }));

function identity(subject: string, groups: string[] = []): Identity {
  return { subject, issuer: 'https://issuer.test', groups, kind: 'human', expiresAt: Date.now() + 3_600_000 };
}

function credentials(over: Partial<EphemeralCredentials> = {}): EphemeralCredentials {
  return {
    type: 'ephemeral',
    admin: { username: 'airlock_admin', password: `\${file:${join(dir, 'pg-admin')}}` },
    grant: ['app_readonly'],
    grant_by_group: { dba: ['app_rw'] },
    ttl: 3_600_000,
    role_prefix: 'airlock_',
    connection_limit: 4,
    settings: { statement_timeout: '5s', search_path: 'app, public' },
    drop_owned: 'drop',
    ...over,
  };
}

const brokers: EphemeralPgLeases[] = [];
function broker(opts: { node?: string; cred?: Partial<EphemeralCredentials>; held?: Map<string, string>; port?: number; now?: () => number; attempts?: number } = {}): EphemeralPgLeases {
  const b = new EphemeralPgLeases({
    connectionName: 'pgtest',
    upstream: { host: '127.0.0.1', port: opts.port ?? cluster.port, database: 'postgres', tls: 'disable' },
    credentials: credentials(opts.cred),
    resolver: new SecretResolver({ warn: (m) => logger.warn(m) }),
    logger,
    nodeId: opts.node ?? 'node-a',
    heldRoles: opts.held ?? new Map(),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.attempts ? { releaseAttempts: opts.attempts } : {}),
  });
  brokers.push(b);
  return b;
}

async function acquire(b: EphemeralPgLeases, subject = 'alice', groups: string[] = [], sessionId = `s-${Math.random().toString(36).slice(2)}`): Promise<Lease> {
  const lease = await b.acquire({ sessionId, identity: identity(subject, groups) });
  leasePasswords.push(lease.secret.reveal());
  return lease;
}

async function asLease(lease: Lease): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: cluster.port, database: 'postgres', user: lease.username, password: lease.secret.reveal() });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function sqlstate(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    const code = typeof e === 'object' && e !== null && 'code' in e ? e.code : undefined;
    return typeof code === 'string' ? code : 'no-code';
  }
  return 'ok';
}

async function roleExists(name: string): Promise<boolean> {
  return (await cluster.psql(`SELECT count(*) FROM pg_roles WHERE rolname = '${name.replace(/'/g, "''")}'`)) === '1';
}

async function airlockRoles(): Promise<string[]> {
  const out = await cluster.psql(`SELECT rolname FROM pg_roles WHERE shobj_description(oid, 'pg_authid') LIKE '{"airlock":%' ORDER BY 1`);
  return out === '' ? [] : out.split('\n');
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'airlock-eph-'));
  writeFileSync(join(dir, 'pg-admin'), `${ADMIN_PASSWORD}\n`, { mode: 0o600 });
  cluster = await startPgCluster({ extraConf: { log_statement: "'all'" } });
  await cluster.psql(`
    CREATE SCHEMA app;
    CREATE TABLE app.items (id int PRIMARY KEY, name text);
    INSERT INTO app.items VALUES (1, 'one'), (2, 'two');
    CREATE TABLE app.payroll (id int, salary int);
    CREATE ROLE app_readonly NOLOGIN;
    GRANT USAGE ON SCHEMA app TO app_readonly;
    GRANT SELECT ON app.items TO app_readonly;
    CREATE ROLE app_rw NOLOGIN;
    GRANT USAGE ON SCHEMA app TO app_rw;
    GRANT SELECT, INSERT ON app.items TO app_rw;
    CREATE ROLE airlock_admin LOGIN CREATEROLE PASSWORD '${await scramVerifier(ADMIN_PASSWORD)}';
  `);
}, 120_000);

afterAll(async () => {
  for (const b of brokers) await b.close();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('ephemeral PostgreSQL roles', () => {
  it('creates a role with the configured grants, VALID UNTIL, limit and settings; it can do exactly what the grant allows', async () => {
    const b = broker();
    const before = Date.now();
    const lease = await acquire(b, 'alice');
    expect(lease.username).toMatch(/^airlock_alice_[0-9a-f]{6}_[0-9a-f]{10}$/);
    expect(lease.expiresAt).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(String(lease.secret)).toBe('[secret]');
    const row = await cluster.psql(
      `SELECT extract(epoch FROM rolvaliduntil)::bigint, rolconnlimit, rolcanlogin, array_to_string(rolconfig, ';'),
              (SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid)
         FROM pg_roles r WHERE rolname = '${lease.username}'`,
    );
    const [validUntil, connLimit, canLogin, config, memberOf] = row.split('|');
    expect(Math.abs(Number(validUntil) * 1000 - (lease.expiresAt ?? 0))).toBeLessThan(1500);
    expect(connLimit).toBe('4');
    expect(canLogin).toBe('t');
    expect(row).toContain('statement_timeout=5s');
    expect(row).toContain('search_path=app, public');
    expect(config).toBeDefined();
    expect(memberOf).toBe('app_readonly');

    const c = await asLease(lease);
    expect((await c.query('SELECT name FROM items ORDER BY id')).rows.map((r) => r.name)).toEqual(['one', 'two']);
    expect((await c.query('SHOW statement_timeout')).rows[0]?.statement_timeout).toBe('5s');
    expect(await sqlstate(c.query("INSERT INTO app.items VALUES (3, 'three')"))).toBe('42501');
    expect(await sqlstate(c.query('SELECT * FROM app.payroll'))).toBe('42501');
    expect(await sqlstate(c.query('CREATE TABLE app.mine (x int)'))).toBe('42501');
    expect(await sqlstate(c.query('CREATE TABLE public.mine (x int)'))).toBe('42501');
    expect(await sqlstate(c.query('SET ROLE airlock_admin'))).toBe('42501');

    await b.release(lease);
    expect(await roleExists(lease.username)).toBe(false);
    // The open session was ended, and the password no longer logs in.
    expect(await sqlstate(c.query('SELECT 1'))).not.toBe('ok');
    await c.end().catch(() => undefined);
    expect(['28P01', '28000']).toContain(await sqlstate(asLease(lease)));
  });

  it('adds grant_by_group roles for the caller\'s groups', async () => {
    const b = broker();
    const lease = await acquire(b, 'dana', ['dba', 'other']);
    const c = await asLease(lease);
    expect(await sqlstate(c.query("INSERT INTO app.items VALUES (10, 'ten')"))).toBe('ok');
    expect(await sqlstate(c.query('SELECT * FROM app.payroll'))).toBe('42501');
    await c.end();
    await b.release(lease);
    expect(await roleExists(lease.username)).toBe(false);
  });

  it('drops what the role owned, or reassigns it when configured', async () => {
    await cluster.psql('CREATE SCHEMA scratch; GRANT CREATE, USAGE ON SCHEMA scratch TO app_rw');
    const dropper = broker();
    const l1 = await acquire(dropper, 'owner', ['dba']);
    const c1 = await asLease(l1);
    await c1.query('CREATE TABLE scratch.dropped_with_role (x int)');
    await c1.end();
    await dropper.release(l1);
    expect(await roleExists(l1.username)).toBe(false);
    expect(await cluster.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'dropped_with_role'")).toBe('0');

    const keeper = broker({ cred: { drop_owned: 'reassign' } });
    const l2 = await acquire(keeper, 'owner', ['dba']);
    const c2 = await asLease(l2);
    await c2.query('CREATE TABLE scratch.kept_after_role (x int)');
    await c2.end();
    await keeper.release(l2);
    expect(await roleExists(l2.username)).toBe(false);
    expect(await cluster.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'kept_after_role'")).toBe('airlock_admin');
  });

  it('gives a hostile subject a safe role name and stores it verbatim in the comment', async () => {
    const b = broker();
    for (const subject of [`o'brien "x" \u00fc \u{1F600} ; drop role postgres`, "back\\slash' -- \n\t", '\u{1F600}\u{1F600}', 'x'.repeat(300)]) {
      const lease = await acquire(b, subject);
      expect(lease.username).toMatch(/^airlock_[a-z0-9_]+$/);
      expect(Buffer.byteLength(lease.username)).toBeLessThanOrEqual(63);
      const comment = await cluster.psql(`SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = '${lease.username}'`);
      const parsed: unknown = JSON.parse(comment);
      expect(parsed).toMatchObject({ airlock: { node: 'node-a', subject } });
      await b.release(lease);
      expect(await roleExists(lease.username)).toBe(false);
    }
    expect(await roleExists('postgres')).toBe(true);
    const quoted = await acquire(b, `o'brien "x" \u00fc`);
    expect(quoted.username.startsWith('airlock_o_brien_x_u_')).toBe(true);
    await b.release(quoted);
  });

  it('gives 50 concurrent sessions 50 distinct roles, all dropped afterwards', async () => {
    const b = broker();
    const leases = await Promise.all(Array.from({ length: 50 }, (_, i) => acquire(b, `user${i % 5}`, [], `sess-${i}`)));
    expect(new Set(leases.map((l) => l.username)).size).toBe(50);
    expect(new Set(leases.map((l) => l.secret.reveal())).size).toBe(50);
    expect((await airlockRoles()).length).toBe(50);
    await Promise.all(leases.map((l) => b.release(l)));
    expect(await airlockRoles()).toEqual([]);
    expect(await roleExists('airlock_admin')).toBe(true);
  });

  it('sweeps a crashed node\'s orphans but not another node\'s live roles, unless past VALID UNTIL', async () => {
    const crashed = broker({ node: 'node-a' });
    const orphan = await acquire(crashed, 'orphan', [], 'dead-session');
    const stillLive = await acquire(crashed, 'live', [], 'live-session');
    const otherNode = broker({ node: 'node-b' });
    const othersLive = await acquire(otherNode, 'bob', [], 'b-session');
    const othersShort = await acquire(broker({ node: 'node-b', cred: { ttl: 2_000 } }), 'short', [], 'b-short');

    // The restarted node-a: a new process (no held roles), same node id.
    const restarted = broker({ node: 'node-a', now: () => Date.now() + 10_000 });
    const result = await restarted.sweep(new Set(['live-session']));
    expect(result.dropped.sort()).toEqual([orphan.username, othersShort.username].sort());
    expect(await roleExists(orphan.username)).toBe(false);
    expect(await roleExists(othersShort.username)).toBe(false);
    expect(await roleExists(stillLive.username)).toBe(true);
    expect(await roleExists(othersLive.username)).toBe(true);
    expect(await roleExists('airlock_admin')).toBe(true);

    // A role this process holds (session still opening) is never swept.
    const opening = await acquire(restarted, 'opening', [], 'not-yet-registered');
    expect((await restarted.sweep(new Set())).dropped).not.toContain(opening.username);
    expect(await roleExists(opening.username)).toBe(true);

    // RoleSweeper runs it at start; node-b's own sweep with no live sessions cleans its side.
    const sweeper = new RoleSweeper(() => [broker({ node: 'node-a' }), broker({ node: 'node-b' })], () => new Set(), logger, 60_000);
    await sweeper.start();
    await sweeper.stop();
    expect(await roleExists(stillLive.username)).toBe(false);
    expect(await roleExists(othersLive.username)).toBe(false);
    await restarted.release(opening);
    expect(await airlockRoles()).toEqual([]);
  });

  it('sweeps the orphan of an airlock process killed with SIGKILL mid-session', async () => {
    const held = dir;
    const script = join(dir, 'child.mts');
    writeFileSync(script, `
      import { EphemeralPgLeases } from ${JSON.stringify(join(process.cwd(), 'src/credentials/index.ts'))};
      import { SecretResolver } from ${JSON.stringify(join(process.cwd(), 'src/secrets/index.ts'))};
      import { createLogger } from ${JSON.stringify(join(process.cwd(), 'src/util/log.ts'))};
      const b = new EphemeralPgLeases({ connectionName: 'pgtest', nodeId: 'node-k',
        upstream: { host: '127.0.0.1', port: ${cluster.port}, database: 'postgres', tls: 'disable' },
        credentials: ${JSON.stringify(credentials())}, resolver: new SecretResolver(), logger: createLogger('silent') });
      const l = await b.acquire({ sessionId: 'killed', identity: { subject: 'victim', issuer: 'i', groups: [], kind: 'human', expiresAt: 0 } });
      process.stdout.write(l.username + '\\n');
      setInterval(() => undefined, 1000);
    `);
    // Node itself with tsx as a loader: SIGKILL must hit the process holding the lease, not a
    // wrapper (the tsx binary runs node as a child, which a SIGKILL to it would orphan).
    void held;
    const child = execFile(process.execPath, ['--import', 'tsx', script], { cwd: process.cwd() });
    const name = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      let err = '';
      child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
      child.once('exit', (code) => reject(new Error(`child exited ${code}: ${err}`)));
    });
    expect(await roleExists(name)).toBe(true);
    child.kill('SIGKILL');
    const restarted = broker({ node: 'node-k' });
    expect((await restarted.sweep(new Set())).dropped).toEqual([name]);
    expect(await roleExists(name)).toBe(false);
  }, 60_000);

  it('drops the role an expired fleet lease names only when it is airlock\'s and this process does not hold it', async () => {
    const owner = broker({ node: 'node-a' });
    const lease = await acquire(owner, 'dora', [], 'dora-session');
    const c = await asLease(lease);
    // The lease row alone is not trusted: the fleet sweeper on another node checks the role itself.
    const sweeperNode = broker({ node: 'node-b' });
    await cluster.psql('CREATE ROLE airlock_person LOGIN');
    expect(await owner.dropLeasedRole(lease.username)).toBe('held');
    expect(await sweeperNode.dropLeasedRole('airlock_admin')).toBe('not-airlock');
    expect(await sweeperNode.dropLeasedRole('airlock_person')).toBe('not-airlock');
    expect(await sweeperNode.dropLeasedRole('app_readonly')).toBe('not-airlock');
    for (const r of [lease.username, 'airlock_admin', 'airlock_person', 'app_readonly']) expect(await roleExists(r)).toBe(true);
    expect(await sweeperNode.dropLeasedRole(lease.username)).toBe('dropped');
    expect(await roleExists(lease.username)).toBe(false);
    // Its backend is ended with it.
    expect(await sqlstate(c.query('SELECT 1'))).not.toBe('ok');
    await c.end().catch(() => undefined);
    // Already gone (the owner's own drop won): nothing left to do.
    expect(await sweeperNode.dropLeasedRole(lease.username)).toBe('absent');
    await cluster.psql('DROP ROLE airlock_person');
    await owner.release(lease);
  });

  it('leaves a role it could not drop (upstream unreachable) to the sweeper', async () => {
    // One process (shared held-roles registry); its release finds the upstream unreachable.
    const held = new Map<string, string>();
    const b = broker({ held });
    const lease = await acquire(b, 'carol', [], 'carol-session');
    const unreachable = broker({ port: 1, attempts: 2, held });
    await unreachable.release(lease);
    expect(await roleExists(lease.username)).toBe(true);
    expect(logText).toContain('the sweeper will retry');
    // The session is over (not live, no longer held): the next sweep finishes the job.
    expect((await b.sweep(new Set())).dropped).toEqual([lease.username]);
    expect(await roleExists(lease.username)).toBe(false);
  });

  it('drops the role after the upstream restarts mid-session', async () => {
    const b = broker();
    const lease = await acquire(b, 'erin');
    const c = await asLease(lease);
    const pgCtl = join(cluster.binDir, 'pg_ctl');
    const args = ['-D', cluster.dataDir, '-w', '-m', 'fast', '-l', join(dirname(cluster.dataDir), 'server.log'), 'restart'];
    if (process.getuid?.() === 0) await execFileP('runuser', ['-u', 'postgres', '--', pgCtl, ...args]);
    else await execFileP(pgCtl, args);
    expect(await sqlstate(c.query('SELECT 1'))).not.toBe('ok');
    await b.release(lease);
    expect(await roleExists(lease.username)).toBe(false);
  }, 60_000);

  it('names a missing grant role and leaves nothing behind', async () => {
    const b = broker({ cred: { grant: ['app_readonly', 'no_such_role'] } });
    const err = await b.acquire({ sessionId: 'x', identity: identity('frank') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AirlockError);
    expect((err as AirlockError).code).toBe('AIRLOCK_UPSTREAM_UNAVAILABLE');
    expect((err as AirlockError).message).toContain('no_such_role');
    expect((err as AirlockError).message).not.toContain('app_readonly,');
    expect(await airlockRoles()).toEqual([]);
  });

  it('says clearly when the admin credentials are refused', async () => {
    writeFileSync(join(dir, 'wrong-admin'), 'not-the-password', { mode: 0o600 });
    const b = broker({ cred: { admin: { username: 'airlock_admin', password: `\${file:${join(dir, 'wrong-admin')}}` } } });
    const err = await b.acquire({ sessionId: 'x', identity: identity('gina') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AirlockError);
    expect((err as AirlockError).code).toBe('AIRLOCK_UPSTREAM_AUTH');
    expect((err as AirlockError).message).toBe('airlock could not create a session role on connection pgtest: admin credentials were refused');
    // A rotated admin password is picked up: the refusal re-resolves the reference.
    writeFileSync(join(dir, 'wrong-admin'), ADMIN_PASSWORD, { mode: 0o600 });
    const lease = await acquire(b, 'gina');
    await b.release(lease);
  });

  it('never writes the admin password or a lease password to airlock\'s output or the server\'s statement log', () => {
    expect(leasePasswords.length).toBeGreaterThan(50);
    const serverLog = readFileSync(join(dirname(cluster.dataDir), 'server.log'), 'utf8');
    expect(serverLog).toContain('CREATE ROLE');
    expect(logText).toContain('ephemeral role created');
    for (const text of [logText, serverLog]) {
      expect(text).not.toContain(ADMIN_PASSWORD);
      for (const p of leasePasswords) expect(text).not.toContain(p);
    }
  });

  it('keeps one node id per state directory', () => {
    const stateDir = join(dir, 'state');
    const a = nodeId(stateDir);
    expect(a).toMatch(/^[a-z0-9.-]+-[0-9a-f]{8}$/);
    expect(nodeId(stateDir)).toBe(a);
  });
});
