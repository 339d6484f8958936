/**
 * Ephemeral MySQL/MariaDB users against a real throwaway MariaDB (test/harness/mariadb.ts):
 * the harness itself, lifecycle (create, log in, grants and roles, MAX_USER_CONNECTIONS,
 * drop with the session's connections cut), sweeping after a crash, hostile config, and no
 * password in airlock's logs or the server's general log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mysql from 'mysql2/promise';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb.js';
import { EphemeralMysqlLeases, mysqlLiteral, mysqlUserName, parseMysqlUserName, renderGrant, type EphemeralMysqlCredentials } from '../../src/credentials/ephemeral-mysql.js';
import { isSweepable } from '../../src/credentials/brokers.js';
import { createLeaseBroker } from '../../app/adapters.js';
import { SecretResolver } from '../../src/secrets/index.js';
import { AirlockError } from '../../src/util/errors.js';
import { createLogger } from '../../src/util/log.js';
import type { Identity } from '../../src/core/types.js';
import type { Lease } from '../../src/core/session-types.js';
import type { MysqlConnectionConfig } from '../../protocols/mysql/config.js';
import { createTestIssuer } from '../harness/issuer.js';
import { startAirlock } from '../harness/airlock.js';
import { freePort } from '../harness/ports.js';

let maria: MariaDbServer;
let logText = '';
const leasePasswords: string[] = [];
const logger = createLogger('debug', new Writable({ write(c: Buffer, _e, cb) { logText += c.toString(); cb(); } }));
const generalLog = (): string => join(maria.dir, 'general.log');

beforeAll(async () => {
  maria = await startMariaDb();
  writeFileSync(join(maria.dir, 'admin-pw'), `${maria.admin.password}\n`, { mode: 0o600 });
  await maria.cli(`CREATE ROLE app_reader; GRANT SELECT ON appdb.customers TO app_reader;
    CREATE ROLE \`odd-role.x y\`; GRANT SELECT (id, name) ON appdb.customers TO \`odd-role.x y\`;
    GRANT app_reader TO admin WITH ADMIN OPTION; GRANT \`odd-role.x y\` TO admin WITH ADMIN OPTION;
    SET GLOBAL general_log_file = '${generalLog()}'; SET GLOBAL general_log = ON;`);
}, 120_000);

afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close()));
  await maria?.stop();
});

function identity(subject: string, groups: string[] = []): Identity {
  return { subject, issuer: 'https://issuer.test', groups, kind: 'human', expiresAt: Date.now() + 3_600_000 };
}

function credentials(over: Partial<EphemeralMysqlCredentials> = {}): EphemeralMysqlCredentials {
  return {
    type: 'ephemeral',
    admin: { username: maria.admin.username, password: `\${file:${join(maria.dir, 'admin-pw')}}` },
    grant: ['SELECT ON appdb.*'],
    roles: [],
    grant_by_group: { dba: ['INSERT, UPDATE ON appdb.customers'] },
    ttl: 3_600_000,
    user_prefix: 'airlock_',
    user_host: '%',
    max_user_connections: 2,
    ...over,
  };
}

const brokers: EphemeralMysqlLeases[] = [];
function broker(opts: { node?: string; cred?: Partial<EphemeralMysqlCredentials>; held?: Map<string, string>; now?: () => number } = {}): EphemeralMysqlLeases {
  const b = new EphemeralMysqlLeases({
    connectionName: 'mariatest',
    upstream: { host: '127.0.0.1', port: maria.port, tls: 'disable' },
    credentials: credentials(opts.cred),
    resolver: new SecretResolver({ warn: (m) => logger.warn(m) }),
    logger,
    nodeId: opts.node ?? 'node-a',
    heldUsers: opts.held ?? new Map(),
    ...(opts.now ? { now: opts.now } : {}),
  });
  brokers.push(b);
  return b;
}

async function acquire(b: EphemeralMysqlLeases, groups: string[] = [], sessionId = `s-${Math.random().toString(36).slice(2)}`): Promise<Lease> {
  const lease = await b.acquire({ sessionId, identity: identity('alice', groups) });
  leasePasswords.push(lease.secret.reveal());
  return lease;
}

const asLease = (lease: Lease): Promise<mysql.Connection> =>
  mysql.createConnection({ host: '127.0.0.1', port: maria.port, user: lease.username, password: lease.secret.reveal() });

async function errnoOf(p: Promise<unknown>): Promise<number | 'ok'> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return typeof e === 'object' && e !== null && 'errno' in e && typeof e.errno === 'number' ? e.errno : -1;
  }
}

async function userExists(name: string): Promise<boolean> {
  return (await maria.rootQuery('SELECT COUNT(*) AS n FROM mysql.user WHERE User = ?', [name]))[0]?.n === 1;
}

describe('the MariaDB harness', () => {
  it('serves appdb.customers to the admin over TCP and splits multi-statement text server-side', async () => {
    expect(maria.port).not.toBe(3306);
    expect(maria.version).toBeGreaterThanOrEqual(100000);
    const c = await maria.connect(maria.admin.username, maria.admin.password, 'appdb');
    const [rows] = await c.query('SELECT name FROM customers ORDER BY id');
    await c.end();
    expect(rows).toEqual([{ name: 'Ann' }, { name: 'Bob' }, { name: 'Cy' }]);
    expect(await maria.rootResults('SELECT 1 AS a; SELECT 2 AS b')).toEqual([[{ a: 1 }], [{ b: 2 }]]);
    expect(await maria.rootQuery('SELECT 3 AS c')).toEqual([{ c: 3 }]);
    expect((await maria.cli('SELECT COUNT(*) FROM customers', 'appdb')).trim()).toBe('3');
  });

  it('creates users that log in over TCP', async () => {
    await maria.createUser('harness_u1', "pw'x");
    const c = await maria.connect('harness_u1', "pw'x");
    const [rows] = await c.query('SELECT CURRENT_USER() AS u');
    await c.end();
    expect(rows).toEqual([{ u: 'harness_u1@%' }]);
  });
});

describe('user names carry what the sweeper needs', () => {
  it('node, expiry and session round-trip, within MySQL 8\'s 32 characters', () => {
    const name = mysqlUserName('airlock_', 'host-1234', 'session-xyz', 1_900_000_000_000);
    expect(name.length).toBeLessThanOrEqual(32);
    const parsed = parseMysqlUserName('airlock_', name);
    expect(parsed?.expiresAt).toBe(1_900_000_000_000);
    expect(parseMysqlUserName('airlock_', 'airlock_admin')).toBeNull();
    expect(parseMysqlUserName('airlock_', `${name}x`)).toBeNull();
  });
});

describe('configured grants and roles are validated and re-quoted', () => {
  it('renders privileges and names, quoting every identifier', () => {
    expect(renderGrant('select, insert on appdb.*')).toEqual({ privileges: 'SELECT, INSERT', on: '`appdb`.*' });
    expect(renderGrant('SELECT (id, `na``me`) ON `app db`.customers')).toEqual({ privileges: 'SELECT (`id`, `na``me`)', on: '`app db`.`customers`' });
    expect(renderGrant('EXECUTE ON PROCEDURE appdb.p')).toEqual({ privileges: 'EXECUTE', on: 'PROCEDURE `appdb`.`p`' });
  });

  it('refuses anything else', () => {
    for (const bad of [
      'SELECT ON appdb.*; DROP USER admin',
      'SELECT ON appdb.* TO evil',
      'ALL ON *.* WITH GRANT OPTION',
      'GRANT OPTION ON *.*',
      'SUPER ON *.*',
      'SELECT ON appdb',
      "SELECT ON appdb.`x`; DROP USER 'admin'@'%'; -- `",
      'SELECT (id ON appdb.t',
      'SELECT ON appdb.t/*x*/',
    ]) {
      expect(() => renderGrant(bad), bad).toThrow(AirlockError);
    }
    expect(() => broker({ cred: { roles: ["r'; DROP USER admin; -- "] } })).toThrow(/not a plain role name/);
    expect(() => broker({ cred: { user_host: "%' IDENTIFIED BY 'x" } })).toThrow(/not a host pattern/);
    expect(() => broker({ cred: { grant_by_group: { ops: ['SELECT ON a.b UNION'] } } })).toThrow(AirlockError);
    expect(() => mysqlLiteral('a\\')).toThrow(AirlockError);
    expect(mysqlLiteral("it's")).toBe("'it''s'");
  });
});

describe('lifecycle', () => {
  it('creates a user that logs in with the configured grants and connection limit, and drops it', async () => {
    const b = broker();
    const lease = await acquire(b);
    expect(lease.username).toMatch(/^airlock_[0-9a-f]{6}_[0-9a-z]{7}_[0-9a-f]{8}$/);
    const c = await asLease(lease);
    const [rows] = await c.query('SELECT name FROM appdb.customers ORDER BY id LIMIT 1');
    expect(rows).toEqual([{ name: 'Ann' }]);
    expect(await errnoOf(c.query("INSERT INTO appdb.customers VALUES (9, 'x', 'x', 'x')"))).toBe(1142);
    const c2 = await asLease(lease);
    // MAX_USER_CONNECTIONS 2: a third login is refused (ER_USER_LIMIT_REACHED).
    expect(await errnoOf(asLease(lease))).toBe(1226);
    await c2.end();
    await b.release(lease);
    expect(await userExists(lease.username)).toBe(false);
    // The session's open connection was cut at release.
    expect(await errnoOf(c.query('SELECT 1'))).not.toBe('ok');
    c.destroy();
    expect(await errnoOf(asLease(lease))).toBe(1045);
  });

  it('grant_by_group adds privileges; roles are granted and the first is the default', async () => {
    const b = broker({ cred: { grant: [], roles: ['app_reader'] } });
    const dba = await acquire(b, ['dba']);
    const c = await asLease(dba);
    const [rows] = await c.query('SELECT COUNT(*) AS n FROM appdb.customers');
    expect(rows).toEqual([{ n: 3 }]);
    expect(await errnoOf(c.query("UPDATE appdb.customers SET name = name WHERE id = 1"))).toBe('ok');
    const [role] = await c.query('SELECT CURRENT_ROLE() AS r');
    expect(role).toEqual([{ r: 'app_reader' }]);
    await c.end();
    await b.release(dba);
    const odd = broker({ cred: { grant: [], roles: ['odd-role.x y'] } });
    const lease = await acquire(odd);
    const c3 = await asLease(lease);
    expect(await errnoOf(c3.query('SELECT id, name FROM appdb.customers'))).toBe('ok');
    expect(await errnoOf(c3.query('SELECT ssn FROM appdb.customers'))).toBe(1143);
    await c3.end();
    await odd.release(lease);
    expect(await userExists(lease.username)).toBe(false);
  });

  it('a grant the server refuses leaves no user behind, and says why without the password', async () => {
    const b = broker({ cred: { roles: ['no_such_role'] } });
    const err = await b.acquire({ sessionId: 's-bad', identity: identity('alice') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AirlockError);
    expect((err as AirlockError).message).toMatch(/role does not exist/);
    const left = await maria.rootQuery("SELECT User FROM mysql.user WHERE User LIKE 'airlock\\_%'");
    expect(left).toEqual([]);
  });

  it('refused admin credentials are AIRLOCK_UPSTREAM_AUTH', async () => {
    writeFileSync(join(maria.dir, 'wrong-pw'), 'wrong-admin-password\n');
    const b = broker({ cred: { admin: { username: maria.admin.username, password: `\${file:${join(maria.dir, 'wrong-pw')}}` } } });
    const err = await b.acquire({ sessionId: 's-x', identity: identity('alice') }).catch((e: unknown) => e);
    expect((err as AirlockError).code).toBe('AIRLOCK_UPSTREAM_AUTH');
    expect(JSON.stringify(err)).not.toContain('wrong-admin-password');
  });
});

describe('sweeping', () => {
  it('after a crash: this node\'s orphans and every expired user go; live, held, foreign and non-airlock users stay', async () => {
    const crashed = broker({ node: 'node-a' });
    const orphan = await acquire(crashed, [], 'sess-orphan');
    const live = await acquire(crashed, [], 'sess-live');
    const otherNode = await acquire(broker({ node: 'node-b' }), [], 'sess-b');
    const expiredOther = await acquire(broker({ node: 'node-b', cred: { ttl: 1_000 }, now: () => Date.now() - 60_000 }), [], 'sess-b2');
    await maria.createUser('airlock_manual', 'x');
    const held = new Map<string, string>();
    const restarted = broker({ node: 'node-a', held });
    const heldLease = await acquire(restarted, [], 'sess-held');
    const c = await asLease(orphan);
    const result = await restarted.sweep(new Set(['sess-live']));
    expect(result.dropped.sort()).toEqual([orphan.username, expiredOther.username].sort());
    expect(result.failed).toEqual([]);
    for (const l of [live, otherNode, heldLease]) expect(await userExists(l.username)).toBe(true);
    expect(await userExists('airlock_manual')).toBe(true);
    expect(await userExists(maria.admin.username)).toBe(true);
    expect(await errnoOf(c.query('SELECT 1'))).not.toBe('ok');
    c.destroy();
    // Once the sessions end the rest goes too; a second sweep finds nothing.
    const later = broker({ node: 'node-a', now: () => Date.now() + 7_200_000 });
    const second = await later.sweep(new Set());
    expect(second.dropped).toEqual(expect.arrayContaining([live.username, otherNode.username, heldLease.username]));
    expect((await later.sweep(new Set())).dropped).toEqual([]);
    expect(await userExists('airlock_manual')).toBe(true);
  });

  it('drops the user an expired fleet lease names only when it has airlock\'s name shape and this process does not hold it', async () => {
    const owner = broker({ node: 'node-a', held: new Map() });
    const lease = await acquire(owner, [], 'sess-fleet');
    const c = await asLease(lease);
    const sweeperNode = broker({ node: 'node-b', held: new Map() });
    await maria.createUser('airlock_someone', 'x');
    expect(await owner.dropLeasedRole(lease.username)).toBe('held');
    expect(await sweeperNode.dropLeasedRole('airlock_someone')).toBe('not-airlock');
    expect(await sweeperNode.dropLeasedRole(maria.admin.username)).toBe('not-airlock');
    for (const u of [lease.username, 'airlock_someone', maria.admin.username]) expect(await userExists(u)).toBe(true);
    expect(await sweeperNode.dropLeasedRole(lease.username)).toBe('dropped');
    expect(await userExists(lease.username)).toBe(false);
    expect(await errnoOf(c.query('SELECT 1'))).not.toBe('ok');
    c.destroy();
    expect(await sweeperNode.dropLeasedRole(lease.username)).toBe('absent');
    await maria.rootQuery("DROP USER 'airlock_someone'@'%'");
    await owner.release(lease);
  });

  it('createLeaseBroker serves ephemeral MySQL users, sweepable, kept across an unchanged reload', () => {
    const conn = {
      name: 'maria', protocol: 'mysql', listen: '127.0.0.1:0', upstream: { host: '127.0.0.1', port: maria.port, tls: 'disable' },
      credentials: credentials(), allow_groups: [],
    } as unknown as MysqlConnectionConfig;
    const deps = { resolver: new SecretResolver(), logger, nodeId: () => 'node-z', stateDir: maria.dir, signJwt: async () => '' };
    const first = createLeaseBroker(conn, deps, undefined);
    expect(first).toBeInstanceOf(EphemeralMysqlLeases);
    expect(isSweepable(first)).toBe(true);
    expect(createLeaseBroker(conn, deps, first)).toBe(first);
    brokers.push(first as EphemeralMysqlLeases);
  });
});

describe('the least-privileged admin the README documents', () => {
  it('CREATE USER, PROCESS, CONNECTION ADMIN, SELECT on mysql.user and the grants WITH GRANT OPTION suffice', async () => {
    await maria.cli(`CREATE USER 'lp_admin'@'%' IDENTIFIED BY 'lp-Admin-pw-1';
      GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO 'lp_admin'@'%';
      GRANT SELECT ON mysql.user TO 'lp_admin'@'%';
      GRANT SELECT ON appdb.* TO 'lp_admin'@'%' WITH GRANT OPTION;
      GRANT app_reader TO 'lp_admin'@'%' WITH ADMIN OPTION;`);
    writeFileSync(join(maria.dir, 'lp-pw'), 'lp-Admin-pw-1');
    const b = broker({ node: 'node-lp', cred: { admin: { username: 'lp_admin', password: `\${file:${join(maria.dir, 'lp-pw')}}` }, roles: ['app_reader'] } });
    const lease = await acquire(b, [], 'sess-lp');
    const c = await asLease(lease);
    expect(await errnoOf(c.query('SELECT COUNT(*) FROM appdb.customers'))).toBe('ok');
    // Without UPDATE on mysql.* the user set its default role itself.
    const [role] = await c.query('SELECT CURRENT_ROLE() AS r');
    expect(role).toEqual([{ r: 'app_reader' }]);
    const orphan = await acquire(b, [], 'sess-lp-orphan');
    const c2 = await asLease(orphan);
    await b.release(lease);
    expect(await userExists(lease.username)).toBe(false);
    expect(await errnoOf(c.query('SELECT 1'))).not.toBe('ok');
    c.destroy();
    const swept = await broker({ node: 'node-lp' }).sweep(new Set());
    expect(swept.dropped).toEqual([orphan.username]);
    expect(await errnoOf(c2.query('SELECT 1'))).not.toBe('ok');
    c2.destroy();
  });
});

describe('through the daemon', () => {
  it('a session logs in upstream as its own user, which is gone when the session ends', async () => {
    const issuer = await createTestIssuer();
    const port = await freePort();
    const airlock = await startAirlock({
      state_dir: join(maria.dir, 'state'),
      auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
      connections: [{
        name: 'maria-eph', protocol: 'mysql', listen: `127.0.0.1:${port}`,
        upstream: { host: '127.0.0.1', port: maria.port, database: 'appdb' },
        credentials: { type: 'ephemeral', admin: { username: maria.admin.username, password: `\${file:${join(maria.dir, 'admin-pw')}}` }, grant: ['SELECT ON appdb.*'], max_user_connections: 3 },
        allow_groups: ['dev'],
      }],
      rules: [],
    });
    try {
      const token = await issuer.token({ sub: 'dana', groups: ['dev'] });
      const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'dana', password: token, database: 'appdb', enableCleartextPlugin: true });
      const [rows] = await c.query('SELECT CURRENT_USER() AS u, COUNT(*) AS n FROM customers');
      const user = String((rows as Array<{ u: string }>)[0]?.u ?? '');
      expect(user).toMatch(/^airlock_[0-9a-f]{6}_[0-9a-z]{7}_[0-9a-f]{8}@%$/);
      expect((rows as Array<{ n: number }>)[0]?.n).toBe(3);
      const name = user.split('@')[0] as string;
      expect(await userExists(name)).toBe(true);
      await c.end();
      for (let i = 0; i < 100 && (await userExists(name)); i++) await new Promise((r) => setTimeout(r, 100));
      expect(await userExists(name)).toBe(false);
      expect(airlock.output()).not.toContain(maria.admin.password);
    } finally {
      await airlock.stop();
    }
  });
});

describe('secrets', () => {
  it('no lease or admin password in airlock\'s log or the server\'s general log', async () => {
    expect(leasePasswords.length).toBeGreaterThan(4);
    const general = readFileSync(generalLog(), 'utf8');
    expect(general).toContain('CREATE USER');
    for (const secret of [...leasePasswords, maria.admin.password]) {
      expect(logText).not.toContain(secret);
      expect(general).not.toContain(secret);
    }
  });
});
