/**
 * Builds the core's services from a config: SQL analysis, policy, approvals, audit.
 * The daemon rebuilds the policy on reload; the audit log and approval broker live on.
 */
import { join, resolve } from 'node:path';
import { hostname } from 'node:os';
import type { Logger } from '../src/util/log.js';
import type { Config, RuleConfig } from '../src/config/index.js';
import type { Identity } from '../src/core/types.js';
import type { CorePorts } from '../src/core/gateway.js';
import type { ApprovalPort } from '../src/core/session.js';
import { AirlockError, asAirlockError } from '../src/util/errors.js';
import { SecretResolver } from '../src/secrets/index.js';
import { parseDuration } from '../src/util/duration.js';
import { loadSqlParsers, analyzePostgres, resolveRelation } from '../parsers/sql/index.js';
import { analyzeMysql } from '../parsers/sql/mysql/index.js';
import { ParserError } from '../parsers/errors.js';
import { Policy } from '../src/policy/index.js';
import { ApprovalBroker, WebhookNotifier, holdMessage, type ApprovalRequest, type ApprovalRequestInput, type GrantChoice } from '../src/approvals/index.js';
import { AuditLog, listSessions, sessionTranscript, type SessionSummary } from '../src/audit/index.js';
import { loadCheckpointKey } from '../src/audit/signing.js';
import { startExporters, exporterFor, type AuditExporters } from '../src/audit/exporters/index.js';
import { GatewayMetrics } from '../src/admin/metrics.js';
import { CheckpointPublisher, EmbeddedStateStore, FleetApprovals, PostgresStateStore, type IndexedSession, type StateStore, type StoredGrant } from '../src/state/index.js';
import { nodeId } from '../src/credentials/index.js';

export interface Services {
  ports: CorePorts;
  healthy(): boolean;
  admin(config: () => Config): {
    approvals: { list(caller: Identity): unknown[] | Promise<unknown[]>; decide(id: string, caller: Identity, approve: boolean, reason?: string, grant?: GrantChoice): unknown };
    sessions: { list(caller: Identity, q: URLSearchParams): Promise<unknown[]>; show(caller: Identity, id: string): Promise<unknown> };
    /** The fleet's nodes (PostgreSQL state store only). */
    nodes?(caller: Identity): Promise<unknown[]>;
  };
  close(): Promise<void>;
  /** Rules that can apply to an identity on a connection (GET /v1/connections). */
  rulesFor(identity: Identity, connection: string): RuleConfig[];
  broker: ApprovalBroker;
  audit: AuditLog;
  /** audit.signing_key as the log was opened with it (a reload cannot change the running writer's key). */
  auditSigningKey: string | undefined;
  /** Started once with the audit log (a reload keeps them); `status()` belongs in /healthz. */
  exporters: AuditExporters;
  /** Prometheus metrics; one registry for the daemon's life (a reload keeps the counts). */
  metrics: GatewayMetrics;
  /** Grants and decided approvals beyond this process (config `state`); a reload keeps it. */
  store: StateStore;
  /** With a shared (PostgreSQL) store: approvals listed and decided across nodes. */
  fleet: FleetApprovals | null;
  /** With a shared (PostgreSQL) store: this node's signed audit checkpoints, published for `audit verify --fleet`. */
  checkpoints: CheckpointPublisher | null;
}

function approvalPort(broker: ApprovalBroker, fleet: FleetApprovals | null): ApprovalPort {
  return {
    async hold({ sessionId, requester, connection, action, decision, signal }) {
      const summary = action.kind === 'sql' ? action.statement.text : action.kind === 'connect' ? `connect to ${connection}` : JSON.stringify(action);
      const request = (input: ApprovalRequestInput, s: AbortSignal) => (fleet === null ? broker.request(input, s) : fleet.hold(input, s));
      const { id, verdict, granted } = await request(
        {
          sessionId,
          requester,
          connection,
          action,
          summary,
          rule: decision.rule,
          approvers: decision.approvers,
          timeoutMs: decision.timeoutMs,
          ...(decision.grantForMs === undefined ? {} : { grantForMs: decision.grantForMs }),
        },
        signal,
      );
      return { id, howToApprove: holdMessage(id, action.kind), verdict, granted };
    },
  };
}

export async function buildPorts(config: Config, logger: Logger, previous: Services | null, secrets?: SecretResolver): Promise<Services> {
  const hook = config.approvals.webhook;
  const webhookUrl = hook === undefined ? undefined : secrets !== undefined ? (await secrets.resolve(hook)).reveal() : hook;
  await loadSqlParsers();
  const policy = new Policy(config.rules, { defaultApprovalTimeoutMs: config.approvals.default_timeout });
  const broker =
    previous?.broker ??
    new ApprovalBroker({
      logger,
      ...(webhookUrl === undefined ? {} : { notifier: new WebhookNotifier(webhookUrl, { logger }) }),
    });
  const auditDir = join(config.state_dir, 'audit');
  const auditSigningKey = previous?.auditSigningKey ?? config.audit.signing_key;
  if (previous !== null && previous.auditSigningKey !== config.audit.signing_key) {
    logger.warn('reload: audit.signing_key changed; the audit log keeps signing checkpoints with the key it started with until airlock restarts');
  }
  const audit = previous?.audit ?? (await openAudit(config, auditDir, logger, secrets));
  const exporters =
    previous?.exporters ?? (await startExporters(audit, config.audit.exporters.map((c, i) => exporterFor(c, i, config.state_dir, logger)), logger));
  const metrics = previous?.metrics ?? new GatewayMetrics({ version: AIRLOCK_VERSION });
  const store = previous?.store ?? (await openStateStore(config, broker, logger, secrets));
  const fleet = previous?.fleet ?? (store instanceof PostgresStateStore ? new FleetApprovals(broker, store, logger) : null);
  const checkpoints = previous?.checkpoints ?? (store instanceof PostgresStateStore ? publishCheckpoints(store, audit, config, auditDir, metrics, logger) : null);
  const stopRetention = previous === null && config.audit.retention !== undefined ? audit.scheduleRetention(config.audit.retention) : null;
  if (previous === null) {
    broker.on('requested', (r: { id: string }) => void audit.append({ type: 'approval.requested', approval: r }).catch(() => undefined));
    broker.on('decided', (r: { id: string }) => void audit.append({ type: 'approval.decided', approval: r }).catch(() => undefined));
    broker.on('decided', (r: ApprovalRequest) => metrics.approvalFinished(r));
  }

  const isAuditor = (caller: Identity): boolean => caller.groups.some((g) => config.audit.auditors.includes(g));
  return {
    broker,
    audit,
    auditSigningKey,
    exporters,
    metrics,
    store,
    fleet,
    checkpoints,
    rulesFor: (identity, connection) => policy.rulesFor(identity, connection),
    ports: {
      policy: metrics.observePolicy(policy),
      approvals: approvalPort(broker, fleet),
      ...(store instanceof PostgresStateStore
        ? { state: { sessionStarted: (s) => store.sessionStarted(s), sessionEnded: (id, at, reason) => store.sessionEnded(id, at, reason) }, roleLeases: store }
        : {}),
      audit: metrics.observeAudit(config.audit.enabled ? audit : { append: async () => undefined, writeAhead: false }),
      sql: {
        analyze: (text, dialect, settings) => {
          try {
            return dialect === 'mysql' ? analyzeMysql(text, settings) : analyzePostgres(text, settings);
          } catch (e) {
            // The parsers' own error becomes the AirlockError it always was (same code, same text).
            throw e instanceof ParserError ? asAirlockError(e) : e;
          }
        },
        resolveRelation,
      },
    },
    healthy: () => audit.healthy,
    admin: () => ({
      approvals: {
        list: (caller) => (fleet === null ? broker.list({ status: 'pending', approverGroups: caller.groups }) : fleet.list(caller)),
        decide: (id, caller, approve, reason, grant) => (fleet === null ? broker.decide(id, caller, approve, reason, grant) : fleet.decide(id, caller, approve, reason, grant)),
      },
      ...(store instanceof PostgresStateStore
        ? {
            nodes: async (caller: Identity) => {
              if (!isAuditor(caller)) throw new AirlockError('AIRLOCK_FORBIDDEN', 'only auditors may list nodes');
              return (await store.nodes()).map((n) => ({ ...n, startedAt: new Date(n.startedAt).toISOString(), lastSeen: new Date(n.lastSeen).toISOString(), self: n.node === node }));
            },
          }
        : {}),
      sessions: {
        list: async (caller, q) => {
          if (!isAuditor(caller)) throw new AirlockError('AIRLOCK_FORBIDDEN', 'only auditors may list sessions');
          const since = q.get('since');
          const sinceMs = since === null ? null : parseDuration(since);
          const filter = {
            ...(sinceMs === null ? {} : { sinceMs: Date.now() - sinceMs }),
            ...(q.get('subject') === null ? {} : { subject: q.get('subject') ?? '' }),
            ...(q.get('connection') === null ? {} : { connection: q.get('connection') ?? '' }),
          };
          const local = await listSessions(auditDir, filter);
          if (!(store instanceof PostgresStateStore)) return local;
          return fleetSessions(await store.sessions(filter), local, node);
        },
        show: async (caller, id) => {
          if (!isAuditor(caller)) throw new AirlockError('AIRLOCK_FORBIDDEN', 'only auditors may read sessions');
          return { session: id, events: await sessionTranscript(auditDir, id) };
        },
      },
    }),
    close: async () => {
      stopRetention?.();
      broker.close();
      // The log is sealed with a signed checkpoint at close: it goes to the store before the store closes.
      await audit.close();
      await checkpoints?.flush(CHECKPOINT_FLUSH_MS);
      await store.close();
      await exporters.close();
    },
  };
}

/** The audit log; with audit.signing_key, that key (resolved and checked now: a bad one stops the start) signs its checkpoints. */
async function openAudit(config: Config, auditDir: string, logger: Logger, secrets: SecretResolver | undefined): Promise<AuditLog> {
  const ref = config.audit.signing_key;
  const signingKey = ref === undefined ? undefined : await loadCheckpointKey(ref, secrets ?? new SecretResolver());
  return AuditLog.open({
    dir: auditDir,
    node: hostname(),
    fsync: config.audit.fsync,
    checkpointEvery: config.audit.checkpoint_every,
    logger,
    ...(signingKey === undefined ? {} : { signingKey }),
  });
}

/** How long a stopping daemon tries to publish the checkpoint that sealed its log. */
const CHECKPOINT_FLUSH_MS = 2_000;

/** Every checkpoint the writer makes, once durable, goes to the store (never waited on by an append). */
function publishCheckpoints(store: PostgresStateStore, audit: AuditLog, config: Config, auditDir: string, metrics: GatewayMetrics, logger: Logger): CheckpointPublisher {
  const publisher = new CheckpointPublisher(store, { node: nodeId(config.state_dir), host: hostname(), auditDir: resolve(auditDir) }, logger, {
    published: () => metrics.checkpointPublish('ok'),
    failed: () => metrics.checkpointPublish('failed'),
  });
  audit.onCheckpoint((c) => publisher.add(c));
  return publisher;
}

/** This build's version (airlock_build_info, the node table). */
export const AIRLOCK_VERSION = '0.1.0';

/** This node in the shared store: host and process (two daemons on one host are two nodes). */
export const node = `${hostname()}:${process.pid}`;

/**
 * Every node's sessions from the shared index; this node's with the counts its own audit log
 * has (another node's counts are in that node's log: null here).
 */
function fleetSessions(index: IndexedSession[], local: SessionSummary[], self: string): Array<Omit<SessionSummary, 'actions' | 'denied' | 'held'> & { node: string; actions: number | null; denied: number | null; held: number | null }> {
  const mine = new Map(local.map((s) => [s.session, s]));
  return index.map((s) => {
    const own = s.node === self ? mine.get(s.id) : undefined;
    return {
      session: s.id,
      node: s.node,
      subject: s.subject,
      issuer: s.issuer,
      connection: s.connection,
      protocol: s.protocol,
      client: s.client,
      startedAt: new Date(s.startedAt).toISOString(),
      endedAt: s.endedAt === null ? null : new Date(s.endedAt).toISOString(),
      endReason: s.endReason,
      actions: own?.actions ?? null,
      denied: own?.denied ?? null,
      held: own?.held ?? null,
    };
  });
}

/** Where this node's admin API is, as the node table shows it: the console's public URL, else the listener. */
function adminUrlOf(config: Config): string | null {
  const a = config.admin;
  if (a.console !== undefined) return a.console.public_url;
  if (a.listen === undefined) return null;
  const host = a.listen.host.includes(':') ? `[${a.listen.host}]` : a.listen.host;
  return `${a.tls === undefined ? 'http' : 'https'}://${host}:${a.listen.port}`;
}

/** Opens the configured store, gives the broker what it kept, and keeps it up to date from then on. */
async function openStateStore(config: Config, broker: ApprovalBroker, logger: Logger, secrets: SecretResolver | undefined): Promise<StateStore> {
  const s = config.state;
  let store: StateStore;
  if (s.backend === 'postgres') {
    if (secrets === undefined) throw new AirlockError('AIRLOCK_CONFIG_INVALID', 'state.url needs the secret resolver');
    const url = (await secrets.resolve(s.url)).reveal();
    store = await PostgresStateStore.open({ url, node, logger, pollIntervalMs: s.poll_interval, leaseTimeoutMs: s.lease_timeout, adminUrl: adminUrlOf(config), version: AIRLOCK_VERSION });
  } else {
    store = new EmbeddedStateStore(config.state_dir);
  }
  broker.restore({ grants: await store.loadGrants(Date.now()), decided: await store.loadDecided(1000) });
  const failed = (what: string) => (e: unknown) => logger.error({ err: e, backend: store.backend }, `state store: could not save ${what}`);
  broker.on('granted', (g: StoredGrant) => void store.saveGrant(g).catch(failed('a grant')));
  broker.on('decided', (r: ApprovalRequest) => void store.saveDecided(r).catch(failed('an approval verdict')));
  return store;
}
