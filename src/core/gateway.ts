/**
 * The daemon's core services as one object handed to every protocol listener:
 * authenticate a token, open a session (allow_groups, connect policy, lease, audit).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../util/log.js';
import type { Config, ConnectionConfig } from '../config/index.js';
import type { GatewayCore, Lease, OpenSessionRequest, Session } from './session-types.js';
import type { Identity } from './types.js';
import { AirlockError } from '../util/errors.js';
import { TokenVerifier } from '../auth/verifier.js';
import { GatewaySession, newSessionId, type SessionDeps } from './session.js';
import { RoleSweeper, nodeId, type LeaseBroker } from '../credentials/index.js';
import { createLeaseBroker, hasLeasedRoles, isSweepable, type BrokerDeps, type KeyedBroker, type LeaseBrokerFactory } from '../credentials/brokers.js';
import { FleetLeases, type FleetLeaseStore } from '../credentials/fleet-leases.js';
import type { LeasedRoles } from '../credentials/lease.js';
import { SecretResolver } from '../secrets/index.js';

export type CorePorts = Omit<SessionDeps, 'onClose' | 'logger'> & {
  /** The fleet's lease table (PostgreSQL state store): ephemeral roles get leases, renewed and swept fleet-wide. */
  roleLeases?: FleetLeaseStore;
};

/** True when the caller is in one of the connection's allow_groups ('*' admits any verified caller). */
export function mayUseConnection(identity: Identity, connection: ConnectionConfig): boolean {
  return connection.allow_groups.some((g) => g === '*' || identity.groups.includes(g));
}

export class Gateway implements GatewayCore {
  readonly sessions = new Map<string, GatewaySession>();
  private leases = new Map<string, KeyedBroker>();
  private node: string | undefined;
  private sweeper: RoleSweeper | undefined;
  private fleetLeases: FleetLeases | undefined;
  private draining = false;

  constructor(
    private config: Config,
    readonly logger: Logger,
    readonly verifier: TokenVerifier,
    private ports: CorePorts,
    private readonly secrets: SecretResolver,
    /** The protocol adapters' choice of lease broker (app/ passes its adapter list's). */
    private readonly leaseBroker: LeaseBrokerFactory,
  ) {
    this.leases = this.buildLeases(config);
  }

  /** New rules and connections apply to new statements and sessions. */
  reconfigure(config: Config, verifier: TokenVerifier, ports: CorePorts): void {
    this.config = config;
    this.maskingKeyCache = null;
    (this as { verifier: TokenVerifier }).verifier = verifier;
    this.ports = ports;
    this.leases = this.buildLeases(config);
  }

  get currentConfig(): Config {
    return this.config;
  }

  private buildLeases(config: Config): Map<string, KeyedBroker> {
    const m = new Map<string, KeyedBroker>();
    const deps: BrokerDeps = {
      resolver: this.secrets,
      logger: this.logger,
      nodeId: () => (this.node ??= nodeId(config.state_dir)),
      stateDir: config.state_dir,
      ...(this.ports.roleLeases === undefined ? {} : { ledger: this.ports.roleLeases }),
      signJwt: (claims) => this.verifier.signUpstreamJwt(claims),
    };
    for (const c of config.connections) {
      // An unchanged ephemeral connection keeps its broker (and its warm admin pool) across a reload.
      m.set(c.name, createLeaseBroker(c, deps, this.leases.get(c.name), this.leaseBroker));
    }
    return m;
  }

  /** Drops ephemeral roles orphaned by a crash now, then every minute those no live session owns. */
  startSweepers(): Promise<void> {
    this.sweeper ??= new RoleSweeper(
      () => [...this.leases.values()].filter(isSweepable),
      () => new Set(this.sessions.keys()),
      this.logger,
    );
    const first = this.sweeper.start();
    const store = this.ports.roleLeases;
    const state = this.config.state;
    if (store !== undefined && state.backend === 'postgres') {
      this.fleetLeases ??= new FleetLeases({
        store,
        brokers: () => new Map([...this.leases].filter((e): e is [string, KeyedBroker & LeasedRoles] => hasLeasedRoles(e[1]))),
        heartbeatMs: state.heartbeat_interval,
        logger: this.logger,
        onSwept: (lease) => this.ports.audit.append({ type: 'lease.swept', ...lease }),
      });
      this.fleetLeases.start();
    }
    return first;
  }

  stopSweepers(): Promise<void> {
    return Promise.all([this.sweeper?.stop(), this.fleetLeases?.stop()]).then(() => undefined);
  }

  startDraining(): void {
    this.draining = true;
  }

  /** Session ends still being written (lease release, then the session.end record). */
  private readonly ending = new Set<Promise<void>>();

  /** Resolves once every session that has ended has its lease released and its end recorded. */
  async endsSettled(): Promise<void> {
    while (this.ending.size > 0) await Promise.allSettled([...this.ending]);
  }

  private maskingKeyCache: Promise<string> | null = null;

  maskingKey(): Promise<string> {
    this.maskingKeyCache ??= (async () => {
      const ref = this.config.masking.hash_key;
      if (ref !== undefined) return (await this.secrets.resolve(ref)).reveal();
      // Stable pseudonyms across restarts without configuration: a key made once in state_dir.
      const file = join(this.config.state_dir, 'masking-hash.key');
      if (!existsSync(file)) {
        mkdirSync(this.config.state_dir, { recursive: true, mode: 0o700 });
        try {
          writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600, flag: 'wx' });
        } catch {
          // Another process made it first.
        }
      }
      return readFileSync(file, 'utf8').trim();
    })();
    return this.maskingKeyCache;
  }

  authenticate(token: string): Promise<Identity> {
    return this.verifier.verify(token);
  }

  async openSession(request: OpenSessionRequest): Promise<Session> {
    if (this.draining) throw new AirlockError('AIRLOCK_SHUTTING_DOWN', undefined, { fatal: true });
    const { connection, identity, client } = request;
    if (!mayUseConnection(identity, connection)) {
      throw new AirlockError('AIRLOCK_FORBIDDEN', `${identity.subject} may not use connection "${connection.name}"`, { fatal: true });
    }
    const broker = this.leases.get(connection.name);
    if (broker === undefined) {
      throw new AirlockError('AIRLOCK_UNSUPPORTED', `connection "${connection.name}" has no credential broker`, { fatal: true });
    }
    const id = newSessionId();
    const state = this.ports.state;
    if (state !== undefined) {
      try {
        await state.sessionStarted({
          id,
          subject: identity.subject,
          issuer: identity.issuer,
          connection: connection.name,
          protocol: connection.protocol,
          client: `${client.address}:${client.port}`,
          startedAt: Date.now(),
        });
      } catch (e) {
        // Approvals, grants and the session index are shared: a node that cannot reach them
        // admits nobody new (open sessions go on with what needs no shared state).
        throw new AirlockError('AIRLOCK_STATE_UNAVAILABLE', undefined, { fatal: true, cause: e });
      }
    }
    let lease: Lease;
    try {
      lease = await broker.acquire({ sessionId: id, identity, ...(request.target?.login === undefined ? {} : { login: request.target.login }) });
    } catch (e) {
      this.indexEnded(id, e instanceof AirlockError ? e.code : 'error');
      throw e;
    }
    const logger = this.logger.child({ session: id, connection: connection.name, subject: identity.subject });
    const session = new GatewaySession(id, identity, connection, client, lease, logger, {
      ...this.ports,
      // After a reload, changed rules apply to the next statement of live sessions too.
      policy: {
        decide: (action, ctx) => this.ports.policy.decide(action, ctx),
        maskPlan: (ctx) => this.ports.policy.maskPlan(ctx),
      },
      logger,
      onClose: async (s, reason) => {
        const ended = this.endSession(s, reason, broker);
        this.ending.add(ended);
        try {
          await ended;
        } finally {
          this.ending.delete(ended);
        }
      },
    });
    try {
      await session.audit({
        type: 'session.start',
        session: id,
        identity: { subject: identity.subject, issuer: identity.issuer, groups: identity.groups, kind: identity.kind },
        connection: connection.name,
        protocol: connection.protocol,
        client,
        lease: lease.id,
      });
      const decision = await session.check({ kind: 'connect' }, request.onHold);
      if (decision.effect === 'deny') {
        throw new AirlockError('AIRLOCK_DENIED', `denied by rule ${decision.rule}: ${decision.reason}`, { rule: decision.rule, fatal: true });
      }
    } catch (e) {
      await session.close(e instanceof AirlockError ? e.code : 'error');
      throw e;
    }
    this.sessions.set(id, session);
    logger.info(
      { event: 'session.start', identity: { subject: identity.subject, issuer: identity.issuer, groups: identity.groups, kind: identity.kind }, client, lease: lease.id },
      'session started',
    );
    return session;
  }

  /**
   * Ends one of this node's sessions on an administrator's word: who asked (and from which
   * node, for a kill relayed through the shared store) is durable in the audit log before the
   * session ends. Resolves with the end reason once the end is written; null when no session
   * with this id is open here.
   */
  async killSession(id: string, by: { subject: string; issuer: string }, opts: { reason?: string; requestedOn?: string } = {}): Promise<string | null> {
    const session = this.sessions.get(id);
    if (session === undefined) return null;
    try {
      await this.ports.audit.append({
        type: 'session.killed',
        session: id,
        by,
        ...(opts.reason === undefined ? {} : { reason: opts.reason }),
        ...(opts.requestedOn === undefined ? {} : { requestedOn: opts.requestedOn }),
      });
    } catch (e) {
      // Ending a session is always safe; the session.end record still names who ended it.
      session.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'audit of a session kill failed; ending the session anyway');
    }
    session.logger.info({ event: 'session.killed', by: by.subject, ...(opts.requestedOn === undefined ? {} : { requestedOn: opts.requestedOn }) }, 'session killed by an administrator');
    await session.kill(by.subject);
    return `killed by ${by.subject}`;
  }

  /** The shared session index learns a session ended (kept for the reconnect when the store is away). */
  private indexEnded(id: string, reason: string): void {
    this.ports.state?.sessionEnded(id, Date.now(), reason).catch((e: unknown) => {
      this.logger.warn({ err: e instanceof Error ? e.message : String(e), session: id }, 'state store: session end not written yet');
    });
  }

  private async endSession(session: GatewaySession, reason: string, broker: LeaseBroker): Promise<void> {
    this.sessions.delete(session.id);
    this.indexEnded(session.id, reason);
    const durationMs = Date.now() - session.startedAt;
    await broker.release(session.lease);
    session.logger.info(
      { event: 'session.end', reason, durationMs, client: session.client, bytesFromClient: session.stats.bytesFromClient, bytesToClient: session.stats.bytesToClient },
      'session ended',
    );
    await this.ports.audit
      .append({ type: 'session.end', session: session.id, reason, durationMs, ...session.stats })
      .catch((e: unknown) => session.logger.warn({ err: e }, 'audit of session end failed'));
  }
}
