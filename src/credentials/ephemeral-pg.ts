/**
 * `credentials.type: ephemeral` for PostgreSQL: one role per session, created over
 * airlock's admin connection, granted the configured roles, dropped when the session
 * ends; what a failed drop leaves behind is found by `sweep()` (see sweeper.ts).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { ConnectionConfig } from '../config/index.js';
import type { Logger } from '../util/log.js';
import type { Lease } from '../core/session-types.js';
import { AirlockError } from '../util/errors.js';
import { Secret, type SecretResolver } from '../secrets/index.js';
import type { LeaseBroker, LeasedRoleOutcome, LeasedRoles, LeaseRequest, RoleLedger, SweepResult } from './lease.js';
import { parseRoleComment, quoteIdent, quoteLiteral, roleComment, roleName, scramVerifier } from './pg-sql.js';

/** The connection config this broker serves (its schema: protocols/postgres/config.ts). */
type PostgresConnectionConfig = Extract<ConnectionConfig, { protocol: 'postgres' }>;

export type EphemeralCredentials = Extract<PostgresConnectionConfig['credentials'], { type: 'ephemeral' }>;
export type PgUpstreamConfig = PostgresConnectionConfig['upstream'];

/** Ephemeral roles this process holds (role name → session id), shared by every broker in it. */
const processHeldRoles = new Map<string, string>();

export interface EphemeralPgOptions {
  connectionName: string;
  upstream: PgUpstreamConfig;
  credentials: EphemeralCredentials;
  resolver: SecretResolver;
  logger: Logger;
  /** This node's id (nodeId(state_dir)); written into each role's comment. */
  nodeId: string;
  /** Roles held by this process; defaults to the process-wide registry. Tests pass their own to act as another process. */
  heldRoles?: Map<string, string>;
  /** Release attempts before leaving the role to the sweeper. Default 3. */
  releaseAttempts?: number;
  now?: () => number;
  /** The fleet's lease table (PostgreSQL state store): each role is recorded there before it exists. */
  ledger?: RoleLedger;
}

interface PgErrorShape {
  code?: unknown;
}

function sqlState(e: unknown): string | undefined {
  const code = typeof e === 'object' && e !== null ? (e as PgErrorShape).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

const AUTH_FAILED = new Set(['28P01', '28000']);
const SETTING_NAME = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/;
/** Settings that take a list: each element is its own literal, or 'app, public' would name one schema. */
const LIST_SETTINGS = new Set(['search_path', 'temp_tablespaces', 'local_preload_libraries', 'session_preload_libraries']);

function settingValue(name: string, value: string): string {
  if (!LIST_SETTINGS.has(name)) return quoteLiteral(value);
  const items = value.split(',').map((v) => v.trim().replace(/^"(.*)"$/, '$1')).filter((v) => v !== '');
  return items.length === 0 ? "''" : items.map(quoteLiteral).join(', ');
}

function pgSsl(upstream: PgUpstreamConfig): pg.PoolConfig['ssl'] {
  if (upstream.tls === 'disable') return false;
  if (upstream.tls === 'require') return { rejectUnauthorized: false };
  if (upstream.ca === undefined) return { rejectUnauthorized: true, servername: upstream.host };
  const ca = upstream.ca.includes('-----BEGIN') ? upstream.ca : readFileSync(upstream.ca, 'utf8');
  return { rejectUnauthorized: true, ca, servername: upstream.host };
}

export class EphemeralPgLeases implements LeaseBroker, LeasedRoles {
  private pool: pg.Pool | null = null;
  private readonly held: Map<string, string>;
  private readonly now: () => number;

  constructor(private readonly options: EphemeralPgOptions) {
    this.held = options.heldRoles ?? processHeldRoles;
    this.now = options.now ?? Date.now;
    for (const k of Object.keys(options.credentials.settings)) {
      if (!SETTING_NAME.test(k)) {
        throw new AirlockError('AIRLOCK_CONFIG_INVALID', `connection ${options.connectionName}: "${k}" is not a setting name`);
      }
    }
  }

  /** Session ids whose roles this process holds (acquired, not yet released). */
  heldSessions(): Set<string> {
    return new Set(this.held.values());
  }

  heldRoles(): string[] {
    return [...this.held.keys()];
  }

  async acquire(request: LeaseRequest): Promise<Lease> {
    const cred = this.options.credentials;
    const name = roleName(cred.role_prefix, request.identity.subject, this.options.nodeId);
    const password = randomBytes(32).toString('base64url');
    const expiresAt = this.now() + cred.ttl;
    const grants = this.grantsFor(request.identity.groups);
    const comment = roleComment({ node: this.options.nodeId, session: request.sessionId, subject: request.identity.subject });
    const role = quoteIdent(name);
    const statements = [
      'BEGIN',
      `CREATE ROLE ${role} LOGIN PASSWORD ${quoteLiteral(await scramVerifier(password))}` +
        ` VALID UNTIL ${quoteLiteral(new Date(expiresAt).toISOString())} CONNECTION LIMIT ${cred.connection_limit}`,
      `COMMENT ON ROLE ${role} IS ${quoteLiteral(comment)}`,
      // Membership lets the admin end this role's backends and DROP/REASSIGN OWNED on every version (PG 16 needs it).
      `GRANT ${role} TO CURRENT_USER`,
      ...(grants.length > 0 ? [`GRANT ${grants.map(quoteIdent).join(', ')} TO ${role}`] : []),
      ...Object.entries(cred.settings).map(([k, v]) => `ALTER ROLE ${role} SET ${k.split('.').map(quoteIdent).join('.')} = ${settingValue(k, v)}`),
      'COMMIT',
    ];
    this.held.set(name, request.sessionId);
    await this.recordLease(name, request.sessionId);
    try {
      await this.admin(statements.join(';\n'));
    } catch (e) {
      this.held.delete(name);
      this.forgetLease(name);
      throw await this.acquireError(e, grants);
    }
    this.options.logger.debug({ connection: this.options.connectionName, role: name, expiresAt }, 'ephemeral role created');
    return { id: `ephemeral-${name}`, username: name, secret: new Secret(password), expiresAt };
  }

  async release(lease: Lease): Promise<void> {
    const name = lease.username;
    this.held.delete(name);
    const attempts = this.options.releaseAttempts ?? 3;
    for (let i = 1; i <= attempts; i++) {
      try {
        await this.dropRole(name);
        this.forgetLease(name);
        this.options.logger.debug({ connection: this.options.connectionName, role: name }, 'ephemeral role dropped');
        return;
      } catch (e) {
        if (i === attempts) {
          this.options.logger.warn(
            { connection: this.options.connectionName, role: name, sqlstate: sqlState(e) },
            'ephemeral role could not be dropped; the sweeper will retry',
          );
          return;
        }
        await new Promise((r) => setTimeout(r, 250 * 4 ** (i - 1)));
      }
    }
  }

  /**
   * Drops this connection's airlock roles that are past VALID UNTIL (any node), and those
   * of this node whose session is neither in `liveSessionIds` nor held by this process.
   * Roles without airlock's comment — the admin role itself, people's roles — are never touched.
   */
  async sweep(liveSessionIds: ReadonlySet<string>): Promise<SweepResult> {
    const res = await this.admin(
      `SELECT r.rolname, r.rolvaliduntil, shobj_description(r.oid, 'pg_authid') AS comment
         FROM pg_roles r WHERE starts_with(r.rolname, $1) AND r.rolname <> current_user`,
      [this.options.credentials.role_prefix],
    );
    const now = this.now();
    const held = new Set(this.held.keys());
    const result: SweepResult = { dropped: [], failed: [] };
    for (const row of res.rows as { rolname: string; rolvaliduntil: Date | null; comment: string | null }[]) {
      const tag = parseRoleComment(row.comment);
      if (tag === null || held.has(row.rolname)) continue;
      const expired = row.rolvaliduntil !== null && row.rolvaliduntil.getTime() <= now;
      const orphan = tag.node === this.options.nodeId && !liveSessionIds.has(tag.session);
      if (!expired && !orphan) continue;
      try {
        await this.dropRole(row.rolname);
        this.forgetLease(row.rolname);
        result.dropped.push(row.rolname);
      } catch (e) {
        result.failed.push(row.rolname);
        this.options.logger.warn({ connection: this.options.connectionName, role: row.rolname, sqlstate: sqlState(e) }, 'sweeper could not drop role');
      }
    }
    if (result.dropped.length > 0) {
      this.options.logger.info({ connection: this.options.connectionName, roles: result.dropped }, 'sweeper dropped stale ephemeral roles');
    }
    return result;
  }

  /**
   * The role of a lease no node renewed in time (its node died): dropped unless this process
   * holds it, and only when it is one of airlock's roles under this connection's prefix —
   * a row in the state store alone never gets any other role dropped.
   */
  async dropLeasedRole(name: string): Promise<LeasedRoleOutcome> {
    if (this.held.has(name)) return 'held';
    if (!name.startsWith(this.options.credentials.role_prefix)) return 'not-airlock';
    const res = await this.admin(
      `SELECT shobj_description(r.oid, 'pg_authid') AS comment, r.rolname = current_user AS self FROM pg_roles r WHERE r.rolname = $1`,
      [name],
    );
    const row = res.rows[0] as { comment: string | null; self: boolean } | undefined;
    if (row === undefined) return 'absent';
    if (row.self || parseRoleComment(row.comment) === null) return 'not-airlock';
    await this.dropRole(name);
    return 'dropped';
  }

  /** Fails the session closed (AIRLOCK_STATE_UNAVAILABLE) when the fleet cannot learn of the role. */
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
      this.options.logger.warn({ connection: this.options.connectionName, role: name, err: e instanceof Error ? e.message : String(e) }, 'state store: role lease not removed yet');
    });
  }

  async close(): Promise<void> {
    const p = this.pool;
    this.pool = null;
    if (p !== null) await p.end().catch(() => undefined);
  }

  private grantsFor(groups: readonly string[]): string[] {
    const cred = this.options.credentials;
    const all = [...cred.grant];
    for (const g of groups) all.push(...(cred.grant_by_group[g] ?? []));
    return [...new Set(all)];
  }

  private async dropRole(name: string): Promise<void> {
    const cred = this.options.credentials;
    const role = quoteIdent(name);
    // NOLOGIN first, so nothing reconnects between the terminate and the drop.
    await this.admin(
      `ALTER ROLE ${role} NOLOGIN;
       SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ${quoteLiteral(name)} AND pid <> pg_backend_pid()`,
    ).catch((e: unknown) => {
      if (sqlState(e) !== '42704') throw e;
    });
    const owned =
      cred.drop_owned === 'drop'
        ? [`DROP OWNED BY ${role}`]
        : cred.drop_owned === 'reassign'
          ? [`REASSIGN OWNED BY ${role} TO ${cred.reassign_to === undefined ? 'CURRENT_USER' : quoteIdent(cred.reassign_to)}`, `DROP OWNED BY ${role}`]
          : [];
    try {
      await this.admin(['BEGIN', "SET LOCAL lock_timeout = '10s'", ...owned, `DROP ROLE IF EXISTS ${role}`, 'COMMIT'].join(';\n'));
    } catch (e) {
      // Already gone (DROP OWNED on a dropped role): nothing left to do.
      if (sqlState(e) === '42704') return;
      throw e;
    }
  }

  private adminPool(): pg.Pool {
    if (this.pool !== null) return this.pool;
    const { upstream, credentials, resolver } = this.options;
    const pool = new pg.Pool({
      host: upstream.host,
      port: upstream.port,
      database: upstream.database,
      user: credentials.admin.username,
      password: async () => (await resolver.resolve(credentials.admin.password)).reveal(),
      ssl: pgSsl(upstream),
      max: 3,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 10_000,
      application_name: 'airlock-admin',
      // Idle admin connections must not keep a stopping daemon alive.
      allowExitOnIdle: true,
    });
    // An idle admin connection lost to an upstream restart must not take the daemon down.
    pool.on('error', (e: Error) => {
      this.options.logger.warn({ connection: this.options.connectionName, sqlstate: sqlState(e) }, 'idle admin connection lost');
    });
    this.pool = pool;
    return pool;
  }

  /** One admin statement; on refused credentials the cached admin secret is re-resolved once. */
  private async admin(text: string, values?: unknown[]): Promise<pg.QueryResult> {
    try {
      return await this.adminPool().query(text, values);
    } catch (e) {
      if (!AUTH_FAILED.has(sqlState(e) ?? '')) throw e;
      this.options.resolver.invalidate(this.options.credentials.admin.password);
      return await this.adminPool().query(text, values);
    }
  }

  private async acquireError(e: unknown, grants: string[]): Promise<AirlockError> {
    if (e instanceof AirlockError) return e;
    const where = `connection ${this.options.connectionName}`;
    const state = sqlState(e);
    if (state !== undefined && AUTH_FAILED.has(state)) {
      return new AirlockError('AIRLOCK_UPSTREAM_AUTH', `airlock could not create a session role on ${where}: admin credentials were refused`, { fatal: true });
    }
    if (state === '42704') {
      const missing = await this.missingRoles(grants).catch(() => []);
      const which = missing.length > 0 ? missing.join(', ') : grants.join(', ');
      return new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `airlock could not create a session role on ${where}: granted role(s) ${which} do not exist upstream`, { fatal: true });
    }
    if (state === '42501') {
      return new AirlockError('AIRLOCK_UPSTREAM_AUTH', `airlock could not create a session role on ${where}: the admin role lacks CREATEROLE or the right to grant the configured roles`, { fatal: true });
    }
    if (state !== undefined && /^[0-9A-Z]{5}$/.test(state)) {
      return new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `airlock could not create a session role on ${where} (SQLSTATE ${state})`, { fatal: true });
    }
    return new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `airlock could not create a session role on ${where}: the upstream could not be reached`, { fatal: true, cause: e });
  }

  private async missingRoles(grants: string[]): Promise<string[]> {
    const res = await this.admin('SELECT g FROM unnest($1::text[]) AS g WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = g)', [grants]);
    return (res.rows as { g: string }[]).map((r) => r.g);
  }
}
