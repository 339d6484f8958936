/**
 * The PostgreSQL state store: approval requests, verdicts and grant_for windows shared by
 * every node. Schema by node-pg-migrate (src/state/migrations), applied at start under its
 * advisory lock, so nodes starting together migrate once. A verdict is claimed with one
 * conditional UPDATE (status still 'pending'), so nothing is decided twice; it is pushed to
 * the other nodes with NOTIFY and, in case a notification was missed (a reconnect), polled.
 *
 * One client carries every query, in order (a verdict never overtakes its request's insert),
 * and the LISTEN. When it fails the store reconnects with backoff and reports unreachable.
 */
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import type { Logger } from '../util/log.js';
import { AirlockError } from '../util/errors.js';
import type { ApprovalRequest, GrantChoice } from '../approvals/index.js';
import type { AuditCheckpoints, ClaimedVerdict, FleetNode, IndexedSession, KillRequest, SessionIndex, SessionIndexFilter, SessionKills, SharedApprovals, StateStore, StoredCheckpoint, StoredGrant } from './types.js';
import type { ExpiredLease, FleetLeaseStore, LostSession } from '../credentials/fleet-leases.js';

const CHANNEL = 'airlock_state';
const MIGRATIONS = fileURLToPath(new URL('./migrations', import.meta.url));
const MAX_BACKOFF_MS = 10_000;
/** A query the store does not answer within this is treated as the store being unreachable. */
const QUERY_TIMEOUT_MS = 5_000;
/** The advisory lock the fleet's role sweeper holds ('airlock' and 1 as one bigint); node-pg-migrate has its own. */
const SWEEPER_LOCK = '7019267304284449537';
/** Expired leases one sweep takes on; the rest wait for the next beat. */
const SWEEP_BATCH = 500;

interface ApprovalRow {
  request: ApprovalRequest;
  status: ApprovalRequest['status'];
  decided_at: string | null;
  decided_by: string | null;
  reason: string | null;
  grant_for_ms: string | null;
}

const APPROVAL_COLUMNS = 'request, status, decided_at, decided_by, reason, grant_for_ms';

function fromRow(row: ApprovalRow): ApprovalRequest {
  return {
    ...row.request,
    status: row.status,
    ...(row.decided_at === null ? {} : { decidedAt: Number(row.decided_at) }),
    ...(row.decided_by === null ? {} : { decidedBy: row.decided_by }),
    ...(row.reason === null ? {} : { reason: row.reason }),
  };
}

/** A verdict with the approver's window: 0 in the column is their "none"; NULL is no choice (the rule's window). */
function verdictFromRow(row: ApprovalRow): ClaimedVerdict {
  const request = fromRow(row);
  if (row.grant_for_ms === null) return { request };
  const ms = Number(row.grant_for_ms);
  return { request, grant: { grantForMs: ms === 0 ? null : ms } };
}

/** How a node names its connection to the store (PostgreSQL keeps NAMEDATALEN - 1 = 63 bytes of it). */
export function storeApplicationName(node: string): string {
  let name = `airlock ${node}`;
  while (Buffer.byteLength(name) > 63) name = name.slice(0, -1);
  return name;
}

interface KillRow {
  id: string;
  session_id: string;
  node: string;
  requested_by: string;
  requested_by_issuer: string;
  requested_on: string;
  reason: string | null;
  status: KillRequest['status'];
  requested_at: string;
  end_reason: string | null;
}

function killFromRow(r: KillRow): KillRequest {
  return {
    id: r.id,
    sessionId: r.session_id,
    node: r.node,
    requestedBy: r.requested_by,
    requestedByIssuer: r.requested_by_issuer,
    requestedOn: r.requested_on,
    reason: r.reason,
    status: r.status,
    requestedAt: Number(r.requested_at),
    endReason: r.end_reason,
  };
}

interface SessionRow {
  id: string;
  node: string;
  subject: string;
  issuer: string;
  connection: string;
  protocol: string;
  client: string;
  started_at: string;
  ended_at: string | null;
  end_reason: string | null;
}

function sessionFromRow(x: SessionRow): IndexedSession {
  return {
    id: x.id,
    node: x.node,
    subject: x.subject,
    issuer: x.issuer,
    connection: x.connection,
    protocol: x.protocol,
    client: x.client,
    startedAt: Number(x.started_at),
    endedAt: x.ended_at === null ? null : Number(x.ended_at),
    endReason: x.end_reason,
  };
}

/** The store's own clock in ms: kill requests are aged by it, never by one node's clock against another's. */
const STORE_NOW_MS = '(extract(epoch FROM clock_timestamp()) * 1000)::bigint';

/** The end reason of a session whose node stopped beating (or a previous process with the same node id). */
export const NODE_LOST = 'node lost';

const KILL_COLUMNS = 'id, session_id, node, requested_by, requested_by_issuer, requested_on, reason, status, requested_at, end_reason';

export class PostgresStateStore implements StateStore, SharedApprovals, SessionIndex, SessionKills, AuditCheckpoints, FleetLeaseStore {
  readonly backend = 'postgres' as const;
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private readonly listeners: Array<() => void> = [];
  private pollTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private backoffMs = 250;
  /** A reconnect is scheduled: calls fail at once instead of each trying to connect. */
  private retrying = false;
  /** Writes that must not be lost (a verdict, a session's end) made while the store was away: replayed in order on reconnect. */
  private readonly deferred: Array<() => Promise<void>> = [];

  /** When this process opened the store (its clock): the node's row says when it started. */
  private readonly startedAt = Date.now();

  private constructor(
    private readonly url: string,
    private readonly node: string,
    private readonly logger: Logger,
    private readonly leaseTimeoutMs: number,
    private readonly self: { adminUrl: string | null; version: string },
  ) {}

  /**
   * Connects, applies pending migrations, listens; throws AIRLOCK_STATE_UNAVAILABLE when it cannot.
   * Sessions the index still shows open for this node id are a previous process's (a restart that
   * kept the id): they end as 'node lost' before this process admits any.
   */
  static async open(opts: { url: string; node: string; logger: Logger; pollIntervalMs: number; leaseTimeoutMs?: number; adminUrl?: string | null; version?: string }): Promise<PostgresStateStore> {
    const store = new PostgresStateStore(opts.url, opts.node, opts.logger, opts.leaseTimeoutMs ?? 60_000, { adminUrl: opts.adminUrl ?? null, version: opts.version ?? 'unknown' });
    try {
      const client = new pg.Client({ connectionString: opts.url });
      await client.connect();
      try {
        await runner({
          dbClient: client,
          dir: MIGRATIONS,
          ignorePattern: '.*\\.(d\\.ts|map)$',
          direction: 'up',
          migrationsTable: 'airlock_state_migrations',
          count: Infinity,
          advisoryLockMode: 'wait',
          log: () => undefined,
        });
      } finally {
        await client.end();
      }
      await store.connection();
      await store.endPreviousLife();
    } catch (e) {
      throw unavailable(e);
    }
    store.pollTimer = setInterval(() => store.changed(), opts.pollIntervalMs);
    store.pollTimer.unref();
    return store;
  }

  /** Called on every NOTIFY, after a reconnect and at each poll. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  async publish(request: ApprovalRequest): Promise<void> {
    await this.query(
      `INSERT INTO airlock_approvals (id, node, status, request, created_at) VALUES ($1, $2, 'pending', $3, $4) ON CONFLICT (id) DO NOTHING`,
      [request.id, this.node, JSON.stringify(request), request.createdAt],
    );
    await this.query(`SELECT pg_notify($1, $2)`, [CHANNEL, `requested ${request.id}`]);
  }

  async pending(): Promise<ApprovalRequest[]> {
    const r = await this.query<ApprovalRow>(`SELECT ${APPROVAL_COLUMNS} FROM airlock_approvals WHERE status = 'pending' ORDER BY created_at`);
    return r.rows.map(fromRow);
  }

  async get(id: string): Promise<ApprovalRequest | undefined> {
    const r = await this.query<ApprovalRow>(`SELECT ${APPROVAL_COLUMNS} FROM airlock_approvals WHERE id = $1`, [id]);
    const row = r.rows[0];
    return row === undefined ? undefined : fromRow(row);
  }

  async claim(id: string, verdict: { status: ApprovalRequest['status']; decidedAt: number; decidedBy?: string; reason?: string; grant?: GrantChoice }): Promise<boolean> {
    const grantForMs = verdict.grant === undefined ? null : (verdict.grant.grantForMs ?? 0);
    const r = await this.query(
      `UPDATE airlock_approvals SET status = $2, decided_at = $3, decided_by = $4, reason = $5, grant_for_ms = $6 WHERE id = $1 AND status = 'pending'`,
      [id, verdict.status, verdict.decidedAt, verdict.decidedBy ?? null, verdict.reason ?? null, grantForMs],
    );
    if (r.rowCount === 1) await this.query(`SELECT pg_notify($1, $2)`, [CHANNEL, `decided ${id}`]);
    return r.rowCount === 1;
  }

  async decidedAmong(ids: string[]): Promise<ClaimedVerdict[]> {
    if (ids.length === 0) return [];
    const r = await this.query<ApprovalRow>(`SELECT ${APPROVAL_COLUMNS} FROM airlock_approvals WHERE id = ANY($1) AND status <> 'pending'`, [ids]);
    return r.rows.map(verdictFromRow);
  }

  async loadGrants(now: number): Promise<StoredGrant[]> {
    const r = await this.query<{ subject: string; connection: string; expires_at: string; request_id: string; granted_by: string }>(
      `SELECT subject, connection, expires_at, request_id, granted_by FROM airlock_grants WHERE expires_at > $1`,
      [now],
    );
    return r.rows.map((g) => ({ subject: g.subject, connection: g.connection, expiresAt: Number(g.expires_at), requestId: g.request_id, by: g.granted_by }));
  }

  async saveGrant(g: StoredGrant): Promise<void> {
    await this.query(
      `INSERT INTO airlock_grants (subject, connection, expires_at, request_id, granted_by) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (subject, connection) DO UPDATE SET expires_at = GREATEST(airlock_grants.expires_at, EXCLUDED.expires_at), request_id = EXCLUDED.request_id, granted_by = EXCLUDED.granted_by`,
      [g.subject, g.connection, g.expiresAt, g.requestId, g.by],
    );
    await this.query(`SELECT pg_notify($1, $2)`, [CHANNEL, `granted ${g.requestId}`]);
  }

  async loadDecided(limit: number): Promise<ApprovalRequest[]> {
    const r = await this.query<ApprovalRow>(
      `SELECT ${APPROVAL_COLUMNS} FROM airlock_approvals WHERE status <> 'pending' ORDER BY created_at DESC LIMIT $1`,
      [limit],
    );
    return r.rows.map(fromRow).reverse();
  }

  /** This node's own verdicts (expired, cancelled, decided here): the same conditional claim; kept for the reconnect when the store is away. */
  async saveDecided(r: ApprovalRequest): Promise<void> {
    await this.orLater(async () => {
      await this.claim(r.id, { status: r.status, decidedAt: r.decidedAt ?? Date.now(), ...(r.decidedBy === undefined ? {} : { decidedBy: r.decidedBy }), ...(r.reason === undefined ? {} : { reason: r.reason }) });
    });
  }

  async sessionStarted(s: Omit<IndexedSession, 'node' | 'endedAt' | 'endReason'>): Promise<void> {
    await this.query(
      `INSERT INTO airlock_sessions (id, node, subject, issuer, connection, protocol, client, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [s.id, this.node, s.subject, s.issuer, s.connection, s.protocol, s.client, s.startedAt],
    );
  }

  async sessionEnded(id: string, endedAt: number, reason: string): Promise<void> {
    await this.orLater(async () => {
      await this.query(`UPDATE airlock_sessions SET ended_at = $2, end_reason = $3 WHERE id = $1 AND ended_at IS NULL`, [id, endedAt, reason]);
    });
  }

  async sessions(f: SessionIndexFilter): Promise<IndexedSession[]> {
    const r = await this.query<SessionRow>(
      `SELECT id, node, subject, issuer, connection, protocol, client, started_at, ended_at, end_reason FROM airlock_sessions
       WHERE ($1::bigint IS NULL OR started_at >= $1) AND ($2::text IS NULL OR subject = $2) AND ($3::text IS NULL OR connection = $3)
       ORDER BY started_at, id LIMIT 10000`,
      [f.sinceMs ?? null, f.subject ?? null, f.connection ?? null],
    );
    return r.rows.map(sessionFromRow);
  }

  async session(id: string): Promise<IndexedSession | undefined> {
    const r = await this.query<SessionRow>(`SELECT id, node, subject, issuer, connection, protocol, client, started_at, ended_at, end_reason FROM airlock_sessions WHERE id = $1`, [id]);
    const row = r.rows[0];
    return row === undefined ? undefined : sessionFromRow(row);
  }

  async nodeConnected(node: string): Promise<boolean> {
    const r = await this.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1`, [storeApplicationName(node)]);
    return (r.rowCount ?? 0) > 0;
  }

  async requestKill(k: Omit<KillRequest, 'status' | 'endReason' | 'requestedAt'>): Promise<void> {
    await this.query(
      `INSERT INTO airlock_session_kills (id, session_id, node, requested_by, requested_by_issuer, requested_on, reason, status, requested_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', ${STORE_NOW_MS})`,
      [k.id, k.sessionId, k.node, k.requestedBy, k.requestedByIssuer, k.requestedOn, k.reason],
    );
    await this.query(`SELECT pg_notify($1, $2)`, [CHANNEL, `kill ${k.id}`]);
  }

  async kill(id: string): Promise<KillRequest | undefined> {
    const r = await this.query<KillRow>(`SELECT ${KILL_COLUMNS} FROM airlock_session_kills WHERE id = $1`, [id]);
    const row = r.rows[0];
    return row === undefined ? undefined : killFromRow(row);
  }

  async expireStaleKills(node: string, ms: number): Promise<void> {
    await this.query(`UPDATE airlock_session_kills SET status = 'expired' WHERE node = $1 AND status = 'pending' AND requested_at < ${STORE_NOW_MS} - $2`, [node, ms]);
  }

  async pendingKills(node: string): Promise<KillRequest[]> {
    const r = await this.query<KillRow>(`SELECT ${KILL_COLUMNS} FROM airlock_session_kills WHERE node = $1 AND status = 'pending' ORDER BY requested_at`, [node]);
    return r.rows.map(killFromRow);
  }

  async moveKill(id: string, to: 'taken' | 'expired'): Promise<boolean> {
    const r = await this.query(`UPDATE airlock_session_kills SET status = $2 WHERE id = $1 AND status = 'pending'`, [id, to]);
    return r.rowCount === 1;
  }

  async finishKill(id: string, outcome: 'done' | 'gone', endReason: string | null): Promise<void> {
    const now = Date.now();
    // The index shows the end before the requester hears the kill is done.
    await this.query(
      `WITH k AS (UPDATE airlock_session_kills SET status = $2, finished_at = $3, end_reason = $4 WHERE id = $1 AND status = 'taken' RETURNING session_id)
       UPDATE airlock_sessions SET ended_at = $3, end_reason = $4 WHERE $2 = 'done' AND id = (SELECT session_id FROM k) AND ended_at IS NULL`,
      [id, outcome, now, endReason],
    );
    await this.query(`SELECT pg_notify($1, $2)`, [CHANNEL, `killed ${id}`]);
  }

  async registerAuditNode(n: { node: string; host: string; auditDir: string }): Promise<void> {
    await this.query(
      `INSERT INTO airlock_audit_nodes (node, host, audit_dir, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (node) DO UPDATE SET host = EXCLUDED.host, audit_dir = EXCLUDED.audit_dir, updated_at = EXCLUDED.updated_at`,
      [n.node, n.host, n.auditDir, Date.now()],
    );
  }

  async publishCheckpoint(c: StoredCheckpoint): Promise<void> {
    await this.query(
      `INSERT INTO airlock_audit_checkpoints (node, seq, head_seq, head, key_id, sig, file, written_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (node, seq) DO UPDATE SET head_seq = EXCLUDED.head_seq, head = EXCLUDED.head, key_id = EXCLUDED.key_id, sig = EXCLUDED.sig, file = EXCLUDED.file, written_at = EXCLUDED.written_at`,
      [c.node, c.seq, c.headSeq, c.head, c.keyId, c.sig, c.file, c.writtenAt],
    );
  }

  async lastCheckpoints(): Promise<Array<{ checkpoint: StoredCheckpoint; auditDir: string | null; host: string | null }>> {
    const r = await this.query<{ node: string; seq: string; head_seq: string; head: string; key_id: string; sig: string; file: string; written_at: string; audit_dir: string | null; host: string | null }>(
      `SELECT DISTINCT ON (c.node) c.node, c.seq, c.head_seq, c.head, c.key_id, c.sig, c.file, c.written_at, n.audit_dir, n.host
       FROM airlock_audit_checkpoints c LEFT JOIN airlock_audit_nodes n ON n.node = c.node
       ORDER BY c.node, c.seq DESC`,
    );
    return r.rows.map((x) => ({
      checkpoint: { node: x.node, seq: Number(x.seq), headSeq: Number(x.head_seq), head: x.head, keyId: x.key_id, sig: x.sig, file: x.file, writtenAt: x.written_at },
      auditDir: x.audit_dir,
      host: x.host,
    }));
  }

  async recordRole(e: { connection: string; role: string; session: string }): Promise<void> {
    await this.query(
      `INSERT INTO airlock_role_leases (connection, role, node, session, expires_at) VALUES ($1, $2, $3, $4, now() + $5 * interval '1 millisecond')`,
      [e.connection, e.role, this.node, e.session, this.leaseTimeoutMs],
    );
  }

  async forgetRole(connection: string, role: string): Promise<void> {
    await this.orLater(async () => {
      await this.query(`DELETE FROM airlock_role_leases WHERE connection = $1 AND role = $2`, [connection, role]);
    });
  }

  /**
   * One statement per beat: this node's row in airlock_nodes is seen now (the store's clock),
   * and its leases among `roles` run for another lease timeout. A data-modifying WITH runs to
   * completion whether or not the outer statement reads it.
   */
  async heartbeat(roles: string[]): Promise<number> {
    const r = await this.query(
      `WITH seen AS (
         INSERT INTO airlock_nodes (node, started_at, last_seen, admin_url, version) VALUES ($1, $4, ${STORE_NOW_MS}, $5, $6)
         ON CONFLICT (node) DO UPDATE SET started_at = EXCLUDED.started_at, last_seen = EXCLUDED.last_seen, admin_url = EXCLUDED.admin_url, version = EXCLUDED.version
       )
       UPDATE airlock_role_leases SET expires_at = now() + $3 * interval '1 millisecond' WHERE node = $1 AND role = ANY($2)`,
      [this.node, roles, this.leaseTimeoutMs, this.startedAt, this.self.adminUrl, this.self.version],
    );
    return r.rowCount ?? 0;
  }

  /** Every node that ever beat, with whether it beat within the lease timeout and its sessions still open in the index. */
  async nodes(): Promise<FleetNode[]> {
    const r = await this.query<{ node: string; started_at: string; last_seen: string; admin_url: string | null; version: string; live: boolean; open: string }>(
      `SELECT n.node, n.started_at, n.last_seen, n.admin_url, n.version, n.last_seen >= ${STORE_NOW_MS} - $1 AS live,
              (SELECT count(*) FROM airlock_sessions s WHERE s.node = n.node AND s.ended_at IS NULL) AS open
       FROM airlock_nodes n ORDER BY n.node`,
      [this.leaseTimeoutMs],
    );
    return r.rows.map((x) => ({ node: x.node, startedAt: Number(x.started_at), lastSeen: Number(x.last_seen), adminUrl: x.admin_url, version: x.version, live: x.live, openSessions: Number(x.open) }));
  }

  /** A fresh process holds no session yet: what the index shows open under its id was a previous process's. */
  private async endPreviousLife(): Promise<void> {
    const r = await this.query<{ id: string }>(
      `UPDATE airlock_sessions s SET ended_at = GREATEST(s.started_at, COALESCE((SELECT n.last_seen FROM airlock_nodes n WHERE n.node = s.node), s.started_at)), end_reason = $2
       WHERE s.node = $1 AND s.ended_at IS NULL RETURNING s.id`,
      [this.node, NODE_LOST],
    );
    if ((r.rowCount ?? 0) > 0) this.logger.warn({ node: this.node, sessions: r.rows.map((x) => x.id) }, 'state store: sessions a previous process with this node id left open are marked ended (node lost)');
  }

  /**
   * The sweeper lock is session-level, on a connection of its own opened for this one sweep
   * and closed after it: the shared client carries every other query in order, so a
   * transaction there would take other callers' queries into it, and no transaction stays
   * open while upstream drops take seconds. Closing the connection releases the lock — also
   * when this node dies mid-sweep (the server sees the socket close). Each lease is deleted
   * as soon as its role is gone, so a sweep cut short loses nothing.
   */
  async asSweeper(sweep: (expired: ExpiredLease[], lost: LostSession[], done: (lease: ExpiredLease) => Promise<void>) => Promise<void>): Promise<boolean> {
    if (this.closed) throw new AirlockError('AIRLOCK_STATE_UNAVAILABLE', 'airlock state store is closed');
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: QUERY_TIMEOUT_MS, query_timeout: QUERY_TIMEOUT_MS });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (e) {
      await client.end().catch(() => undefined);
      throw unavailable(e);
    }
    try {
      const lock = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [SWEEPER_LOCK]);
      if (lock.rows[0]?.ok !== true) return false;
      // A node not seen for a lease timeout is lost: its open sessions end when it was last seen.
      const lost = await client.query<{ id: string; node: string; last_seen: string }>(
        `UPDATE airlock_sessions s SET ended_at = GREATEST(s.started_at, n.last_seen), end_reason = $3
         FROM airlock_nodes n
         WHERE s.node = n.node AND s.ended_at IS NULL AND n.node <> $1 AND n.last_seen < ${STORE_NOW_MS} - $2
         RETURNING s.id, s.node, n.last_seen`,
        [this.node, this.leaseTimeoutMs, NODE_LOST],
      );
      const r = await client.query<ExpiredLease>(
        `SELECT connection, role, node, session FROM airlock_role_leases WHERE expires_at < now() ORDER BY expires_at LIMIT ${SWEEP_BATCH}`,
      );
      const lostSessions: LostSession[] = lost.rows.map((x) => ({ session: x.id, node: x.node, lastSeen: Number(x.last_seen) }));
      await sweep(r.rows, lostSessions, async (l) => {
        // Still expired: a lease renewed meanwhile (its node came back) is its node's again.
        await client.query(`DELETE FROM airlock_role_leases WHERE connection = $1 AND role = $2 AND expires_at < now()`, [l.connection, l.role]);
      });
      return true;
    } catch (e) {
      throw e instanceof AirlockError ? e : unavailable(e);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Runs a write now; when the store is away, queues it for the reconnect and still rejects (the caller logs). */
  private async orLater(write: () => Promise<void>): Promise<void> {
    if (this.deferred.length > 0) {
      this.deferred.push(write);
      throw new AirlockError('AIRLOCK_STATE_UNAVAILABLE', 'airlock state store unavailable; the write is kept for the reconnect');
    }
    try {
      await write();
    } catch (e) {
      if (e instanceof AirlockError && e.code === 'AIRLOCK_STATE_UNAVAILABLE') this.deferred.push(write);
      throw e;
    }
  }

  /** After a reconnect: the queued writes, oldest first; stops at the first that fails again. */
  private flushing = false;

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      await this.flushQueue();
    } finally {
      this.flushing = false;
    }
  }

  private async flushQueue(): Promise<void> {
    while (this.deferred.length > 0) {
      const next = this.deferred[0] as () => Promise<void>;
      try {
        await next();
      } catch (e) {
        if (e instanceof AirlockError && e.code === 'AIRLOCK_STATE_UNAVAILABLE') return;
        this.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'state store: a write kept for the reconnect failed; dropped');
      }
      this.deferred.shift();
    }
  }

  async reachable(): Promise<boolean> {
    try {
      await this.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pollTimer !== null) clearInterval(this.pollTimer);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }

  /** The last query handed to the client: the next one starts after it (node-postgres deprecates overlapping client.query calls). */
  private inOrder: Promise<unknown> = Promise.resolve();

  private query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    const run = this.inOrder.then(() => this.queryNow<R>(text, values));
    this.inOrder = run.catch(() => undefined);
    return run;
  }

  private async queryNow<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    const client = await this.connection();
    try {
      return await client.query<R>(text, values);
    } catch (e) {
      // The server answered with an error: the store is there. No answer at all (a timeout,
      // a dropped connection): treat the connection as lost, so the node reconnects.
      if (!(e instanceof pg.DatabaseError)) {
        this.lost(client, e instanceof Error ? e : null);
        client.end().catch(() => undefined);
      }
      throw e instanceof AirlockError ? e : unavailable(e);
    }
  }

  private connection(): Promise<pg.Client> {
    if (this.closed) return Promise.reject(new AirlockError('AIRLOCK_STATE_UNAVAILABLE', 'airlock state store is closed'));
    if (this.client !== null) return Promise.resolve(this.client);
    if (this.retrying && this.connecting === null) return Promise.reject(new AirlockError('AIRLOCK_STATE_UNAVAILABLE', 'airlock state store unavailable; reconnecting'));
    this.connecting ??= (async () => {
      const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: QUERY_TIMEOUT_MS, query_timeout: QUERY_TIMEOUT_MS, application_name: storeApplicationName(this.node) });
      client.on('error', (e) => this.lost(client, e));
      client.on('end', () => this.lost(client, null));
      client.on('notification', () => this.changed());
      try {
        await client.connect();
        await client.query(`LISTEN ${CHANNEL}`);
      } catch (e) {
        client.removeAllListeners('end');
        await client.end().catch(() => undefined);
        throw unavailable(e);
      }
      this.client = client;
      this.backoffMs = 250;
      void this.flush();
      // A notification sent while we were away is caught up by looking again now.
      this.changed();
      return client;
    })().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private lost(client: pg.Client, e: Error | null): void {
    if (this.client !== client) return;
    this.client = null;
    if (this.closed) return;
    this.logger.warn({ err: e?.message ?? 'connection ended', backend: 'postgres' }, 'state store connection lost; reconnecting');
    if (this.retrying) return;
    this.retrying = true;
    const retry = (): void => {
      if (this.closed || this.client !== null) {
        this.retrying = false;
        return;
      }
      this.retrying = false;
      this.connection()
        .then(() => this.logger.info({ backend: 'postgres' }, 'state store connection restored'))
        .catch(() => {
          this.retrying = true;
          this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
          setTimeout(retry, this.backoffMs).unref();
        });
    };
    setTimeout(retry, this.backoffMs).unref();
  }

  private changed(): void {
    for (const l of this.listeners) {
      try {
        l();
      } catch (e) {
        this.logger.warn({ err: e }, 'a state store listener failed');
      }
    }
  }
}

function unavailable(e: unknown): AirlockError {
  return new AirlockError('AIRLOCK_STATE_UNAVAILABLE', 'airlock state store unavailable', { cause: e });
}
