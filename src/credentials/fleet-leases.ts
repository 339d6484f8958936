/**
 * Ephemeral-role leases across a fleet of nodes sharing the PostgreSQL state store.
 *
 * Each role this node creates has a lease row (written before the role exists, removed when
 * it is dropped). On every beat the node renews the leases of the roles it still holds, with
 * one UPDATE; a node that dies stops renewing. On the same beat each node asks to be the
 * fleet's sweeper; the one that gets the lock drops the roles of leases whose time ran out,
 * with the connection's admin credentials (every node has the same config), and deletes the
 * leases. A role this node created but no longer holds (its drop failed) is no longer renewed,
 * so its lease runs out too and the sweeper retries the drop.
 *
 * The same beat says the node is alive (its row in the store's node table, in the same
 * statement), and the sweeper ends the sessions of nodes not seen for a lease timeout.
 */
import type { Logger } from '../util/log.js';
import type { LeasedRoles, RoleLedger } from './lease.js';

/** A lease whose time ran out: its node stopped renewing it. */
export interface ExpiredLease {
  connection: string;
  role: string;
  /** The node that created the role (host:pid). */
  node: string;
  session: string;
}

/** A session the sweeper marked ended because its node stopped beating. */
export interface LostSession {
  session: string;
  node: string;
  /** When the node last beat (the store's clock, ms): the session's recorded end. */
  lastSeen: number;
}

/** The lease table as the fleet needs it (the PostgreSQL state store). */
export interface FleetLeaseStore extends RoleLedger {
  /**
   * One statement: this node is seen now, and its leases among `roles` run for another lease
   * timeout (the store's clock). Runs on every beat, with or without roles.
   */
  heartbeat(roles: string[]): Promise<number>;
  /**
   * Calls `sweep` only if this node gets the fleet's sweeper lock, and holds the lock until it
   * returns; false (without calling it) when another node is sweeping now. Under the lock the
   * store first ends the open sessions of nodes not seen for a lease timeout (`lost`).
   */
  asSweeper(sweep: (expired: ExpiredLease[], lost: LostSession[], done: (lease: ExpiredLease) => Promise<void>) => Promise<void>): Promise<boolean>;
}

export interface FleetLeaseOptions {
  store: FleetLeaseStore;
  /** This node's brokers with leases, by connection name (read at each beat: a reload may change them). */
  brokers: () => ReadonlyMap<string, LeasedRoles>;
  heartbeatMs: number;
  logger: Logger;
  /** Each dropped role of an expired lease (the audit log records it; /metrics counts it). */
  onSwept: (lease: ExpiredLease) => Promise<unknown>;
}

export class FleetLeases {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly options: FleetLeaseOptions) {}

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => void this.beat(), this.options.heartbeatMs);
    this.timer.unref();
    void this.beat();
  }

  stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    return this.running ?? Promise.resolve();
  }

  /** Renews this node's leases, then sweeps if this node is the sweeper; a beat still running is not started twice. */
  beat(): Promise<void> {
    if (this.running !== null) return this.running;
    this.running = (async () => {
      await this.renew();
      await this.sweep();
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async renew(): Promise<void> {
    const roles = new Set<string>();
    for (const b of this.options.brokers().values()) for (const r of b.heldRoles()) roles.add(r);
    try {
      await this.options.store.heartbeat([...roles]);
    } catch (e) {
      this.options.logger.warn({ err: message(e), roles: roles.size }, 'state store: heartbeat not written; this node\'s sessions and role leases count as lost unless a later beat reaches the store in time');
    }
  }

  private async sweep(): Promise<void> {
    const { logger } = this.options;
    try {
      await this.options.store.asSweeper(async (expired, lost, done) => {
        for (const l of lost) {
          logger.warn({ session: l.session, node: l.node, lastSeen: new Date(l.lastSeen).toISOString() }, 'fleet sweeper: a node stopped beating; its open session is marked ended (node lost)');
        }
        const brokers = this.options.brokers();
        for (const lease of expired) {
          const broker = brokers.get(lease.connection);
          if (broker === undefined) {
            logger.warn({ connection: lease.connection, role: lease.role, node: lease.node }, 'fleet sweeper: an expired lease names a connection this node does not have; left for a node that has it');
            continue;
          }
          try {
            const outcome = await broker.dropLeasedRole(lease.role);
            if (outcome === 'held') continue;
            await done(lease);
            if (outcome === 'absent') {
              logger.debug({ connection: lease.connection, role: lease.role, node: lease.node }, 'fleet sweeper: the role of an expired lease was already gone; lease removed');
              continue;
            }
            if (outcome === 'not-airlock') {
              logger.error({ connection: lease.connection, role: lease.role, node: lease.node }, 'fleet sweeper: an expired lease names a role that is not one of airlock\'s; lease removed, role left alone');
              continue;
            }
            logger.info({ connection: lease.connection, role: lease.role, node: lease.node, session: lease.session }, 'fleet sweeper dropped the role of an expired lease');
            await this.options.onSwept(lease).catch((e: unknown) => logger.warn({ err: message(e) }, 'audit of a swept lease failed'));
          } catch (e) {
            // Upstream down: the lease stays, the next beat tries again.
            logger.warn({ connection: lease.connection, role: lease.role, err: message(e) }, 'fleet sweeper could not drop the role of an expired lease');
          }
        }
      });
    } catch (e) {
      logger.warn({ err: message(e) }, 'fleet sweeper: state store unavailable; the next beat tries again');
    }
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
