/**
 * `credentials.type: ephemeral` for MySQL/MariaDB: one user per session, created over
 * airlock's admin connection, granted the configured privileges and roles, locked, cut off
 * and dropped when the session ends; what a failed drop or a crash leaves behind is found
 * by `sweep()` (see sweeper.ts).
 *
 * MariaDB has no COMMENT or ATTRIBUTE on users (MySQL 8.0.21 has), so what the sweeper
 * needs is in the user name itself, short enough for MySQL 8's 32-character limit with the
 * default prefix:
 *
 *     <prefix><node:6 hex>_<expiry:7 base36 seconds>_<session:8 hex>   airlock_3fa91c_0t5gq2k_9d0e4b7a
 *
 * node and session are the first hex digits of SHA-256 of this node's id and the session
 * id. A name that does not match this shape exactly is never touched.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import type { ConnectionConfig } from '../config/index.js';
import type { Logger } from '../util/log.js';
import type { Lease } from '../core/session-types.js';
import { AirlockError } from '../util/errors.js';
import { Secret, type SecretResolver } from '../secrets/index.js';
import type { LeaseBroker, LeasedRoleOutcome, LeasedRoles, LeaseRequest, RoleLedger, SweepResult } from './lease.js';

/** The connection config this broker serves (its schema: protocols/mysql/config.ts). */
type MysqlConnectionConfig = Extract<ConnectionConfig, { protocol: 'mysql' }>;

export type EphemeralMysqlCredentials = Extract<MysqlConnectionConfig['credentials'], { type: 'ephemeral' }>;
export type MysqlUpstreamConfig = MysqlConnectionConfig['upstream'];

/** Users this process holds (user name → session id), shared by every broker in it. */
const processHeldUsers = new Map<string, string>();

export interface EphemeralMysqlOptions {
  connectionName: string;
  upstream: MysqlUpstreamConfig;
  credentials: EphemeralMysqlCredentials;
  resolver: SecretResolver;
  logger: Logger;
  nodeId: string;
  /** Users held by this process; tests pass their own to act as another process. */
  heldUsers?: Map<string, string>;
  /** Release attempts before leaving the user to the sweeper. Default 3. */
  releaseAttempts?: number;
  now?: () => number;
  /** The fleet's lease table (PostgreSQL state store): each user is recorded there before it exists. */
  ledger?: RoleLedger;
}

const tag = (s: string, hex: number): string => createHash('sha256').update(s).digest('hex').slice(0, hex);

/** The user name for a session (see the file comment for its shape). */
export function mysqlUserName(prefix: string, nodeId: string, sessionId: string, expiresAt: number): string {
  const expiry = Math.ceil(expiresAt / 1000).toString(36).padStart(7, '0');
  return `${prefix}${tag(nodeId, 6)}_${expiry}_${tag(sessionId, 8)}`;
}

export function parseMysqlUserName(prefix: string, name: string): { node: string; expiresAt: number; session: string } | null {
  if (!name.startsWith(prefix)) return null;
  const m = /^([0-9a-f]{6})_([0-9a-z]{7})_([0-9a-f]{8})$/.exec(name.slice(prefix.length));
  if (m === null) return null;
  return { node: m[1] as string, expiresAt: parseInt(m[2] as string, 36) * 1000, session: m[3] as string };
}

// ---- quoting: every literal and identifier airlock writes into admin SQL ----

/**
 * A string literal that reads the same with and without NO_BACKSLASH_ESCAPES: quotes are
 * doubled and a value with a backslash, NUL or other control character is refused rather
 * than escaped (its meaning would depend on the admin session's sql_mode).
 */
export function mysqlLiteral(value: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\\\u0000-\u001f\u007f]/.test(value)) throw new AirlockError('AIRLOCK_CONFIG_INVALID', 'a value for MySQL admin SQL holds a backslash or a control character');
  return `'${value.replace(/'/g, "''")}'`;
}

/** A backtick-quoted identifier (backticks doubled; a backtick is never an escape). */
export function mysqlIdent(name: string): string {
  // eslint-disable-next-line no-control-regex
  if (name === '' || /[\u0000]/.test(name)) throw new AirlockError('AIRLOCK_CONFIG_INVALID', 'an empty MySQL identifier');
  return `\`${name.replace(/`/g, '``')}\``;
}

export const mysqlAccount = (user: string, host: string): string => `${mysqlLiteral(user)}@${mysqlLiteral(host)}`;

/** Static privileges of MySQL 8 and MariaDB 10.11 that a per-session user may be granted. */
const PRIVILEGES = new Set([
  'ALL', 'ALL PRIVILEGES', 'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'INDEX', 'ALTER', 'REFERENCES',
  'CREATE TEMPORARY TABLES', 'LOCK TABLES', 'EXECUTE', 'CREATE VIEW', 'SHOW VIEW', 'CREATE ROUTINE', 'ALTER ROUTINE',
  'EVENT', 'TRIGGER', 'DELETE HISTORY', 'SHOW DATABASES', 'PROCESS', 'RELOAD', 'REPLICATION CLIENT', 'BINLOG MONITOR',
  'SLAVE MONITOR', 'REPLICA MONITOR',
]);

const NAME = String.raw`(?:\*|[A-Za-z0-9_$]+|` + '`(?:[^`]|``)+`)';
const COLUMN = String.raw`(?:[A-Za-z0-9_$]+|` + '`(?:[^`]|``)+`)';
const GRANT_SPEC = new RegExp(String.raw`^\s*(.+?)\s+ON\s+(?:(TABLE|PROCEDURE|FUNCTION)\s+)?(${NAME})\s*\.\s*(${NAME})\s*$`, 'i');

const unquote = (n: string): string => (n.startsWith('`') ? n.slice(1, -1).replace(/``/g, '`') : n);
const renderName = (n: string): string => (n === '*' ? '*' : mysqlIdent(unquote(n)));

/**
 * A configured grant such as `SELECT, INSERT ON appdb.*` or `SELECT (id, name) ON appdb.customers`,
 * validated against a strict grammar and re-rendered with every name quoted: the text that
 * reaches the server is built by airlock, never copied from the config.
 */
export function renderGrant(spec: string): { privileges: string; on: string } {
  const m = GRANT_SPEC.exec(spec);
  if (m === null) throw new AirlockError('AIRLOCK_CONFIG_INVALID', `grant "${spec}" is not "<privileges> ON <db>.<table>"`);
  const [, privText, objectType, db, table] = m as unknown as [string, string, string | undefined, string, string];
  const privileges: string[] = [];
  // Split at commas outside parentheses: SELECT (a, b), INSERT.
  let depth = 0;
  let current = '';
  for (const ch of privText) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0) throw new AirlockError('AIRLOCK_CONFIG_INVALID', `grant "${spec}": unbalanced parentheses`);
    if (ch === ',' && depth === 0) { privileges.push(current); current = ''; } else current += ch;
  }
  privileges.push(current);
  const rendered = privileges.map((p) => {
    const pm = new RegExp(String.raw`^\s*([A-Za-z ]+?)\s*(?:\(\s*(${COLUMN}(?:\s*,\s*${COLUMN})*)\s*\))?\s*$`).exec(p);
    const priv = pm?.[1]?.toUpperCase().replace(/\s+/g, ' ');
    if (pm === null || priv === undefined || !PRIVILEGES.has(priv)) throw new AirlockError('AIRLOCK_CONFIG_INVALID', `grant "${spec}": "${p.trim()}" is not a privilege airlock grants`);
    const cols = pm[2] === undefined ? '' : ` (${(pm[2].match(new RegExp(COLUMN, 'g')) ?? []).map((c) => mysqlIdent(unquote(c))).join(', ')})`;
    return `${priv}${cols}`;
  });
  return { privileges: rendered.join(', '), on: `${objectType === undefined ? '' : `${objectType.toUpperCase()} `}${renderName(db)}.${renderName(table)}` };
}

/** Role names: printable, no quotes games (a role is a literal in GRANT, SET DEFAULT ROLE). */
const ROLE_NAME = /^[A-Za-z0-9_$][A-Za-z0-9_$.\- ]{0,79}$/;
const HOST = /^[A-Za-z0-9.%_:\-/]{1,255}$/;

interface MysqlErrorShape { errno?: unknown; code?: unknown }
function errno(e: unknown): number | undefined {
  const n = typeof e === 'object' && e !== null ? (e as MysqlErrorShape).errno : undefined;
  return typeof n === 'number' ? n : undefined;
}

/** Errors of the admin leg without their text: mysql2 errors carry the SQL (with the password hash) in `.sql`. */
function quiet(e: unknown): { errno: number | undefined; code: string | undefined } {
  const code = typeof e === 'object' && e !== null ? (e as MysqlErrorShape).code : undefined;
  return { errno: errno(e), code: typeof code === 'string' ? code : undefined };
}

const ER_ACCESS_DENIED = 1045;
const ACCESS_DENIED = new Set([1044, 1142, 1227, 1410, 1698]);
/** MariaDB ER_INVALID_ROLE, MySQL ER_UNKNOWN_AUTHID / ER_ROLE_NOT_GRANTED. */
const UNKNOWN_ROLE = new Set([1959, 3523, 3530]);
/** ER_CANNOT_USER (DROP USER of a missing user with IF EXISTS absent), ER_NO_SUCH_USER. */
const NO_SUCH_USER = new Set([1396, 1449]);

/** mysql_native_password's stored form: '*' + hex(SHA1(SHA1(password))). */
export function nativePasswordHash(password: string): string {
  const inner = createHash('sha1').update(password, 'utf8').digest();
  return `*${createHash('sha1').update(inner).digest('hex').toUpperCase()}`;
}

export class EphemeralMysqlLeases implements LeaseBroker, LeasedRoles {
  private pool: mysql.Pool | null = null;
  private flavour: Promise<'mariadb' | 'mysql'> | null = null;
  private readonly held: Map<string, string>;
  private readonly now: () => number;
  private readonly grants: ReadonlyMap<string, { privileges: string; on: string }>;

  constructor(private readonly options: EphemeralMysqlOptions) {
    this.held = options.heldUsers ?? processHeldUsers;
    this.now = options.now ?? Date.now;
    const cred = options.credentials;
    const where = `connection ${options.connectionName}`;
    const grants = new Map<string, { privileges: string; on: string }>();
    for (const g of [...cred.grant, ...Object.values(cred.grant_by_group).flat()]) {
      try {
        grants.set(g, renderGrant(g));
      } catch (e) {
        throw new AirlockError('AIRLOCK_CONFIG_INVALID', `${where}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    this.grants = grants;
    for (const r of cred.roles) if (!ROLE_NAME.test(r)) throw new AirlockError('AIRLOCK_CONFIG_INVALID', `${where}: role "${r}" is not a plain role name`);
    if (!HOST.test(cred.user_host)) throw new AirlockError('AIRLOCK_CONFIG_INVALID', `${where}: user_host "${cred.user_host}" is not a host pattern`);
  }

  heldSessions(): Set<string> {
    return new Set(this.held.values());
  }

  heldRoles(): string[] {
    return [...this.held.keys()];
  }

  async acquire(request: LeaseRequest): Promise<Lease> {
    const cred = this.options.credentials;
    const expiresAt = this.now() + cred.ttl;
    const name = mysqlUserName(cred.user_prefix, this.options.nodeId, request.sessionId, expiresAt);
    const account = mysqlAccount(name, cred.user_host);
    const password = randomBytes(24).toString('base64url');
    const grants = this.grantsFor(request.identity.groups);
    this.held.set(name, request.sessionId);
    await this.recordLease(name, request.sessionId);
    let created = false;
    try {
      const mariadb = (await this.serverFlavour()) === 'mariadb';
      // Only the password's hash travels (MariaDB); MySQL 8 takes the password and keeps it out of its logs.
      const auth = mariadb ? `IDENTIFIED BY PASSWORD ${mysqlLiteral(nativePasswordHash(password))}` : `IDENTIFIED BY ${mysqlLiteral(password)}`;
      await this.admin(`CREATE USER ${account} ${auth} WITH MAX_USER_CONNECTIONS ${cred.max_user_connections}`);
      created = true;
      for (const g of grants) await this.admin(`GRANT ${g.privileges} ON ${g.on} TO ${account}`);
      if (cred.roles.length > 0) {
        // MariaDB grants one role per statement.
        for (const role of cred.roles) await this.admin(`GRANT ${mysqlLiteral(role)} TO ${account}`);
        // MariaDB keeps one default role (the first); MySQL 8 makes them all default.
        if (mariadb) await this.setMariaDbDefaultRole(name, password, cred.roles[0] as string);
        else await this.admin(`SET DEFAULT ROLE ALL TO ${account}`);
      }
    } catch (e) {
      if (created) await this.dropUser(name, cred.user_host).catch(() => undefined);
      this.held.delete(name);
      // A user created and not dropped keeps its lease: it expires and the fleet sweeper retries the drop.
      if (!created) this.forgetLease(name);
      throw this.acquireError(e);
    }
    this.options.logger.debug({ connection: this.options.connectionName, user: name, expiresAt }, 'ephemeral user created');
    return { id: `ephemeral-${name}`, username: name, secret: new Secret(password), expiresAt };
  }

  async release(lease: Lease): Promise<void> {
    const name = lease.username;
    this.held.delete(name);
    const attempts = this.options.releaseAttempts ?? 3;
    for (let i = 1; i <= attempts; i++) {
      try {
        await this.dropUser(name, this.options.credentials.user_host);
        this.forgetLease(name);
        this.options.logger.debug({ connection: this.options.connectionName, user: name }, 'ephemeral user dropped');
        return;
      } catch (e) {
        if (i === attempts) {
          this.options.logger.warn({ connection: this.options.connectionName, user: name, ...quiet(e) }, 'ephemeral user could not be dropped; the sweeper will retry');
          return;
        }
        await new Promise((r) => setTimeout(r, 250 * 4 ** (i - 1)));
      }
    }
  }

  /**
   * Drops this connection's airlock users whose expiry (in the name) has passed, whichever
   * node made them, and this node's users whose session is neither in `liveSessionIds` nor
   * held by this process. Users whose name is not airlock's exact shape are never touched.
   */
  async sweep(liveSessionIds: ReadonlySet<string>): Promise<SweepResult> {
    const cred = this.options.credentials;
    const [rows] = await this.admin('SELECT User AS user, Host AS host FROM mysql.user WHERE LEFT(User, CHAR_LENGTH(?)) = ?', [cred.user_prefix, cred.user_prefix]);
    const now = this.now();
    const node = tag(this.options.nodeId, 6);
    const live = new Set([...liveSessionIds, ...this.held.values()].map((s) => tag(s, 8)));
    const held = new Set(this.held.keys());
    const result: SweepResult = { dropped: [], failed: [] };
    for (const row of rows as Array<{ user: unknown; host: unknown }>) {
      const user = Buffer.isBuffer(row.user) ? row.user.toString('utf8') : String(row.user);
      const host = Buffer.isBuffer(row.host) ? row.host.toString('utf8') : String(row.host);
      const parsed = parseMysqlUserName(cred.user_prefix, user);
      if (parsed === null || held.has(user)) continue;
      const expired = parsed.expiresAt <= now;
      const orphan = parsed.node === node && !live.has(parsed.session);
      if (!expired && !orphan) continue;
      try {
        await this.dropUser(user, host);
        this.forgetLease(user);
        result.dropped.push(user);
      } catch (e) {
        result.failed.push(user);
        this.options.logger.warn({ connection: this.options.connectionName, user, ...quiet(e) }, 'sweeper could not drop user');
      }
    }
    if (result.dropped.length > 0) this.options.logger.info({ connection: this.options.connectionName, users: result.dropped }, 'sweeper dropped stale ephemeral users');
    return result;
  }

  /**
   * The user of a lease no node renewed in time (its node died): dropped unless this process
   * holds it, and only when its name has airlock's exact shape under this connection's prefix.
   */
  async dropLeasedRole(name: string): Promise<LeasedRoleOutcome> {
    if (this.held.has(name)) return 'held';
    if (parseMysqlUserName(this.options.credentials.user_prefix, name) === null) return 'not-airlock';
    const [rows] = await this.admin('SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?', [name, this.options.credentials.user_host]);
    if ((rows as unknown[]).length === 0) return 'absent';
    await this.dropUser(name, this.options.credentials.user_host);
    return 'dropped';
  }

  /** Fails the session closed (AIRLOCK_STATE_UNAVAILABLE) when the fleet cannot learn of the user. */
  private async recordLease(name: string, session: string): Promise<void> {
    const ledger = this.options.ledger;
    if (ledger === undefined) return;
    try {
      await ledger.recordRole({ connection: this.options.connectionName, role: name, session });
    } catch (e) {
      this.held.delete(name);
      throw new AirlockError('AIRLOCK_STATE_UNAVAILABLE', undefined, { fatal: true, cause: e });
    }
  }

  private forgetLease(name: string): void {
    this.options.ledger?.forgetRole(this.options.connectionName, name).catch((e: unknown) => {
      this.options.logger.warn({ connection: this.options.connectionName, user: name, err: e instanceof Error ? e.message : String(e) }, 'state store: user lease not removed yet');
    });
  }

  async close(): Promise<void> {
    const p = this.pool;
    this.pool = null;
    if (p !== null) await p.end().catch(() => undefined);
  }

  private grantsFor(groups: readonly string[]): Array<{ privileges: string; on: string }> {
    const cred = this.options.credentials;
    const specs = new Set([...cred.grant, ...groups.flatMap((g) => cred.grant_by_group[g] ?? [])]);
    return [...specs].map((s) => this.grants.get(s) ?? renderGrant(s));
  }

  /**
   * MariaDB lets an admin set another user's default role only with UPDATE on the whole
   * mysql schema; a user may set its own with no privilege at all. Without that UPDATE the
   * new user logs in once and sets it itself.
   */
  private async setMariaDbDefaultRole(name: string, password: string, role: string): Promise<void> {
    const account = mysqlAccount(name, this.options.credentials.user_host);
    try {
      await this.admin(`SET DEFAULT ROLE ${mysqlLiteral(role)} FOR ${account}`);
      return;
    } catch (e) {
      if (!ACCESS_DENIED.has(errno(e) ?? 0)) throw e;
    }
    const { upstream } = this.options;
    const ssl = this.sslOptions();
    const self = await mysql.createConnection({ host: upstream.host, port: upstream.port, user: name, password, connectTimeout: 10_000, ...(ssl === undefined ? {} : { ssl }) });
    try {
      await self.query(`SET DEFAULT ROLE ${mysqlLiteral(role)}`);
    } finally {
      await self.end().catch(() => self.destroy());
    }
  }

  private sslOptions(): mysql.PoolOptions['ssl'] {
    const { upstream } = this.options;
    if (upstream.tls === 'disable') return undefined;
    if (upstream.tls === 'require') return { rejectUnauthorized: false };
    const ca = upstream.ca === undefined ? undefined : upstream.ca.includes('-----BEGIN') ? upstream.ca : readFileSync(upstream.ca, 'utf8');
    return { rejectUnauthorized: true, ...(ca === undefined ? {} : { ca }) };
  }

  /** Lock first (no new logins), then end its connections, then drop. */
  private async dropUser(name: string, host: string): Promise<void> {
    const account = mysqlAccount(name, host);
    await this.admin(`ALTER USER ${account} ACCOUNT LOCK`).catch((e: unknown) => {
      if (!NO_SUCH_USER.has(errno(e) ?? 0)) throw e;
    });
    const [rows] = await this.admin('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()', [name]);
    for (const r of rows as Array<{ id: unknown }>) {
      const id = Number(r.id);
      if (!Number.isSafeInteger(id)) continue;
      await this.admin(`KILL CONNECTION ${id}`).catch((e: unknown) => {
        // ER_NO_SUCH_THREAD: it ended by itself meanwhile.
        if (errno(e) !== 1094) throw e;
      });
    }
    await this.admin(`DROP USER IF EXISTS ${account}`);
  }

  private serverFlavour(): Promise<'mariadb' | 'mysql'> {
    this.flavour ??= this.admin('SELECT VERSION() AS v').then(([rows]) => {
      const v = String((rows as Array<{ v: unknown }>)[0]?.v ?? '');
      return /mariadb/i.test(v) ? 'mariadb' : 'mysql';
    }).catch((e: unknown) => {
      this.flavour = null;
      throw e;
    });
    return this.flavour;
  }

  /** The admin pool, made with the admin password as resolved now (re-made after a refused login). */
  private async adminPool(): Promise<mysql.Pool> {
    if (this.pool !== null) return this.pool;
    const { upstream, credentials, resolver } = this.options;
    const ssl = this.sslOptions();
    const password = (await resolver.resolve(credentials.admin.password)).reveal();
    if (this.pool !== null) return this.pool;
    const pool = mysql.createPool({
      host: upstream.host,
      port: upstream.port,
      user: credentials.admin.username,
      password,
      ...(ssl === undefined ? {} : { ssl }),
      connectionLimit: 3,
      maxIdle: 1,
      idleTimeout: 30_000,
      connectTimeout: 10_000,
    });
    // Idle admin connections lost to an upstream restart must not take the daemon down.
    pool.on('connection', (c) => {
      c.on('error', (e: unknown) => this.options.logger.warn({ connection: this.options.connectionName, ...quiet(e) }, 'idle admin connection lost'));
    });
    this.pool = pool;
    return pool;
  }

  /** One admin statement; on refused credentials the cached admin secret is re-resolved once. */
  private async admin(sql: string, values?: unknown[]): Promise<[unknown, unknown]> {
    try {
      return (await (await this.adminPool()).query(sql, values)) as [unknown, unknown];
    } catch (e) {
      if (errno(e) !== ER_ACCESS_DENIED) throw e;
      this.options.resolver.invalidate(this.options.credentials.admin.password);
      await this.close();
      return (await (await this.adminPool()).query(sql, values)) as [unknown, unknown];
    }
  }

  private acquireError(e: unknown): AirlockError {
    if (e instanceof AirlockError) return e;
    const where = `connection ${this.options.connectionName}`;
    const n = errno(e);
    if (n === ER_ACCESS_DENIED) return new AirlockError('AIRLOCK_UPSTREAM_AUTH', `airlock could not create a session user on ${where}: admin credentials were refused`, { fatal: true });
    if (n !== undefined && UNKNOWN_ROLE.has(n)) return new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `airlock could not create a session user on ${where}: a configured role does not exist upstream (error ${n})`, { fatal: true });
    if (n !== undefined && ACCESS_DENIED.has(n)) return new AirlockError('AIRLOCK_UPSTREAM_AUTH', `airlock could not create a session user on ${where}: the admin user lacks CREATE USER, a configured privilege WITH GRANT OPTION or a configured role WITH ADMIN OPTION (error ${n})`, { fatal: true });
    if (n !== undefined) return new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `airlock could not create a session user on ${where} (error ${n})`, { fatal: true });
    // No cause: a mysql2 error carries the statement text.
    return new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `airlock could not create a session user on ${where}: the upstream could not be reached`, { fatal: true });
  }
}
