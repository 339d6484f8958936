/**
 * Prometheus metrics (GET /metrics on the admin listener), with prom-client: it owns the
 * exposition format, label escaping and histogram buckets, which are easy to get subtly wrong.
 *
 * Counters are fed from what the core already produces — the audit events the session writes
 * ahead and the approval broker's events — so a metric counts exactly what the audit log records.
 * Labels carry connection names, protocols, verdicts and error codes only: never a subject,
 * a statement text or anything else a caller chose.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AuditPort, PolicyPort } from '../core/session.js';

/** What a gauge reads at scrape time from the running daemon. */
export interface MetricsSources {
  auditQueueDepth(): number;
  approvalsPending(): number;
  ephemeralRolesLive(): number;
  /** 1 when the state store answers, 0 when not. */
  stateStoreUp(): Promise<number>;
}

interface SessionLabels {
  protocol: string;
  connection: string;
}

/** Seconds; airlock's own overhead is sub-millisecond to tens of milliseconds (fsync). */
const OVERHEAD_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** Seconds a human takes to decide: up to the longest sensible approval timeout. */
const DECISION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600];

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly sessionsOpen: Gauge<'protocol' | 'connection'>;
  private readonly sessionsTotal: Counter<'protocol' | 'connection'>;
  private readonly statements: Counter<'verdict' | 'kind' | 'connection'>;
  private readonly checkSeconds: Histogram;
  private readonly auditSyncSeconds: Histogram;
  private readonly decisionSeconds: Histogram<'status'>;
  private readonly errors: Counter<'code'>;
  private readonly leasesSwept: Counter<'connection'>;
  private readonly checkpointsPublished: Counter<'outcome'>;
  private readonly open = new Map<string, SessionLabels>();
  /**
   * Actions counted since the last scrape, by labels: added to airlock_statements_total when it
   * is collected (prom-client's inc hashes and validates its labels on every call, and this
   * runs for every statement).
   */
  private readonly counted = new Map<string, { labels: { verdict: string; kind: string; connection: string }; n: number }>();
  /** When the policy decision of the action now being written ahead began (see observePolicy). */
  private decideStartedAt: bigint | null = null;
  private sources: MetricsSources | null = null;

  constructor(build: { version: string }) {
    const registers = [this.registry];
    this.sessionsOpen = new Gauge({ name: 'airlock_sessions_open', help: 'Sessions open now.', labelNames: ['protocol', 'connection'], registers });
    this.sessionsTotal = new Counter({ name: 'airlock_sessions_total', help: 'Sessions started (admitted or not) since the daemon started.', labelNames: ['protocol', 'connection'], registers });
    const counted = this.counted;
    this.statements = new Counter({
      name: 'airlock_statements_total',
      help: 'Actions (SQL statements, connects, commands, HTTP requests) by verdict: allow, deny, held; then approved, denied_by_approver, expired, cancelled for held ones.',
      labelNames: ['verdict', 'kind', 'connection'],
      registers,
      collect() {
        for (const c of counted.values()) {
          if (c.n === 0) continue;
          this.inc(c.labels, c.n);
          c.n = 0;
        }
      },
    });
    this.checkSeconds = new Histogram({
      name: 'airlock_check_duration_seconds',
      help: 'Latency airlock adds before forwarding an action: policy decision until its audit record is durable (not time held for approval).',
      buckets: OVERHEAD_BUCKETS,
      registers,
    });
    this.auditSyncSeconds = new Histogram({ name: 'airlock_audit_sync_duration_seconds', help: 'Time from appending a write-ahead audit record until it is durable.', buckets: OVERHEAD_BUCKETS, registers });
    this.decisionSeconds = new Histogram({ name: 'airlock_approval_decision_seconds', help: 'Time from an approval request until it was decided, expired or cancelled.', labelNames: ['status'], buckets: DECISION_BUCKETS, registers });
    this.leasesSwept = new Counter({
      name: 'airlock_ephemeral_leases_swept_total',
      help: 'Ephemeral roles/users of another (dead) node, or of this node\'s failed drops, dropped by this node as the fleet\'s sweeper after their lease expired.',
      labelNames: ['connection'],
      registers,
    });
    this.errors = new Counter({ name: 'airlock_errors_total', help: 'Sessions ended by an error and admin API errors, by airlock error code.', labelNames: ['code'], registers });
    this.checkpointsPublished = new Counter({
      name: 'airlock_audit_checkpoint_publish_total',
      help: 'Signed audit checkpoints written to the shared state store (outcome ok), and attempts that failed and will be retried (outcome failed).',
      labelNames: ['outcome'],
      registers,
    });
    const sourced = (name: string, help: string, read: (s: MetricsSources) => number | Promise<number>): void => {
      const metrics = this;
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          if (metrics.sources !== null) this.set(await read(metrics.sources));
        },
      });
    };
    sourced('airlock_audit_queue_depth', 'Audit records handed to the writer and not yet durable.', (s) => s.auditQueueDepth());
    sourced('airlock_approvals_pending', 'Approval requests waiting for a decision on this node.', (s) => s.approvalsPending());
    sourced('airlock_ephemeral_roles_live', 'Ephemeral upstream roles/users held by open sessions of this node.', (s) => s.ephemeralRolesLive());
    sourced('airlock_state_store_up', '1 when the state store answers, 0 when it does not.', (s) => s.stateStoreUp());
    new Gauge({ name: 'airlock_build_info', help: 'Always 1; the labels say which build runs.', labelNames: ['version', 'node_version'], registers }).set(
      { version: build.version, node_version: process.version },
      1,
    );
  }

  /** Gauges read at scrape time; set once the daemon's parts exist. */
  attach(sources: MetricsSources): void {
    this.sources = sources;
  }

  /** The policy port, timed: the start of a decision is the start of airlock's overhead for that action. */
  observePolicy(policy: PolicyPort): PolicyPort {
    return {
      decide: (action, ctx) => {
        // decide() and the write-ahead append that follows run in one synchronous stretch
        // (GatewaySession.check), so no other action's decision can come in between.
        this.decideStartedAt = process.hrtime.bigint();
        return policy.decide(action, ctx);
      },
      maskPlan: (ctx) => policy.maskPlan(ctx),
    };
  }

  /** The audit port, observed: counts sessions and verdicts from the events written ahead. */
  observeAudit(audit: AuditPort): AuditPort {
    if (audit.disabled === true) {
      // The audit is disabled: nothing is synced (no sync time to observe) and an action is
      // forwarded as soon as it is decided, so its check ends now.
      const seen = (event: { type: string; [key: string]: unknown }): void => {
        if (event.type === 'action') {
          const decideStarted = this.decideStartedAt;
          this.decideStartedAt = null;
          if (decideStarted !== null) this.checkSeconds.observe(Number(process.hrtime.bigint() - decideStarted) / 1e9);
        }
        this.count(event);
      };
      const count = (event: { type: string; [key: string]: unknown }): Promise<unknown> => {
        seen(event);
        return audit.append(event);
      };
      // recordLazy: nothing waits on the record, so no promise is made for it.
      return { disabled: true, append: count, appendLazy: count, recordLazy: seen };
    }
    const observed: AuditPort = {
      append: (event) => {
        const started = process.hrtime.bigint();
        const decideStarted = event.type === 'action' ? this.decideStartedAt : null;
        this.decideStartedAt = null;
        this.count(event);
        const p = audit.append(event);
        p.then(
          () => {
            const end = process.hrtime.bigint();
            this.auditSyncSeconds.observe(Number(end - started) / 1e9);
            if (decideStarted !== null) this.checkSeconds.observe(Number(end - decideStarted) / 1e9);
          },
          () => undefined,
        );
        return p;
      },
    };
    const lazy = audit.appendLazy?.bind(audit);
    if (lazy !== undefined) {
      observed.appendLazy = (event) => {
        this.count(event);
        return lazy(event);
      };
    }
    const record = audit.recordLazy?.bind(audit);
    if (record !== undefined) {
      observed.recordLazy = (event, onFailed) => {
        this.count(event);
        record(event, onFailed);
      };
    }
    return observed;
  }

  /** An approval request was decided, expired or was cancelled. */
  approvalFinished(r: { status: string; createdAt: number; decidedAt?: number; action: { kind: string }; connection: string }): void {
    const verdict = r.status === 'denied' ? 'denied_by_approver' : r.status;
    this.statements.inc({ verdict, kind: r.action.kind, connection: r.connection });
    this.decisionSeconds.observe({ status: r.status }, Math.max(0, (r.decidedAt ?? Date.now()) - r.createdAt) / 1000);
  }

  /** A checkpoint reached the shared store, or an attempt failed (it is retried). */
  checkpointPublish(outcome: 'ok' | 'failed'): void {
    this.checkpointsPublished.inc({ outcome });
  }

  error(code: string): void {
    this.errors.inc({ code });
  }

  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private count(event: { type: string; [key: string]: unknown }): void {
    switch (event.type) {
      case 'session.start': {
        const labels = { protocol: String(event.protocol), connection: String(event.connection) };
        if (typeof event.session === 'string') this.open.set(event.session, labels);
        this.sessionsTotal.inc(labels);
        this.sessionsOpen.inc(labels);
        break;
      }
      case 'session.end': {
        const labels = typeof event.session === 'string' ? this.open.get(event.session) : undefined;
        if (labels !== undefined && typeof event.session === 'string') {
          this.open.delete(event.session);
          this.sessionsOpen.dec(labels);
        }
        if (typeof event.reason === 'string' && /^AIRLOCK_[A-Z_]+$/.test(event.reason)) this.error(event.reason);
        break;
      }
      case 'action': {
        const session = typeof event.session === 'string' ? this.open.get(event.session) : undefined;
        const action = event.action as { kind?: unknown } | undefined;
        const decision = String(event.decision);
        const verdict = decision === 'hold' ? 'held' : decision;
        const kind = String(action?.kind ?? 'unknown');
        const connection = session?.connection ?? 'unknown';
        const key = `${verdict}\u0000${kind}\u0000${connection}`;
        const c = this.counted.get(key);
        if (c !== undefined) c.n++;
        // Label values are verdicts, action kinds and connection names: a bounded set.
        else this.counted.set(key, { labels: { verdict, kind, connection }, n: 1 });
        break;
      }
      case 'lease.swept':
        this.leasesSwept.inc({ connection: String(event.connection) });
        break;
      default:
        break;
    }
  }
}
