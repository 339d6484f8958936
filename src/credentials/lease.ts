/**
 * What every lease broker is: a lease is what airlock uses upstream for one session;
 * the caller never sees it. The brokers import this file, never the folder's index.
 */
import { randomBytes } from 'node:crypto';
import type { Identity } from '../core/types.js';
import type { Lease } from '../core/session-types.js';
import type { SecretResolver } from '../secrets/index.js';

export interface LeaseRequest {
  sessionId: string;
  identity: Identity;
  /** The SSH login the lease must be good for. */
  login?: string;
}

export interface LeaseBroker {
  acquire(request: LeaseRequest): Promise<Lease>;
  /** Ends the lease (drops an ephemeral role, …). Never throws; failures are for the sweeper. */
  release(lease: Lease): Promise<void>;
}

/** The held username/password, resolved from its secret reference at each use. */
export class StaticLeases implements LeaseBroker {
  constructor(
    private readonly resolver: SecretResolver,
    private readonly username: string,
    private readonly passwordRef: string,
  ) {}

  async acquire(): Promise<Lease> {
    const secret = await this.resolver.resolve(this.passwordRef);
    return { id: `static-${randomBytes(6).toString('hex')}`, username: this.username, secret, expiresAt: null };
  }

  async release(): Promise<void> {}

  /** Upstream refused the held password: the next acquire re-resolves it instead of using the cached value. */
  invalidate(): void {
    this.resolver.invalidate(this.passwordRef);
  }
}

/** What a sweep of orphaned roles or users did (ephemeral Postgres and MySQL brokers). */
export interface SweepResult {
  dropped: string[];
  failed: string[];
}

/**
 * Where the fleet learns which ephemeral roles exist: the PostgreSQL state store's lease
 * table. Absent with the embedded store (one node: its own sweeper is enough).
 */
export interface RoleLedger {
  /** Written before the role is created; throws AIRLOCK_STATE_UNAVAILABLE when the store does not take it. */
  recordRole(entry: { connection: string; role: string; session: string }): Promise<void>;
  /** The role is dropped; kept for the reconnect when the store is away (the caller only logs). */
  forgetRole(connection: string, role: string): Promise<void>;
}

/** What the fleet sweeper did with the role an expired lease names. */
export type LeasedRoleOutcome =
  /** Dropped now. */
  | 'dropped'
  /** Already gone (its node dropped it, or the node's own sweeper did after a restart). */
  | 'absent'
  /** This process holds it for a live session: its lease is renewed at the next heartbeat, never dropped. */
  | 'held'
  /** Not one of airlock's roles (no airlock comment / not airlock's name shape): never touched. */
  | 'not-airlock';

/** A broker whose roles have leases: the fleet sweeper renews and drops through it. */
export interface LeasedRoles {
  /** Roles this process holds now (acquired, not yet released). */
  heldRoles(): string[];
  /** Drops the role an expired lease names, with this connection's admin credentials. */
  dropLeasedRole(role: string): Promise<LeasedRoleOutcome>;
}
