/**
 * Upstream credential leases. A lease is what airlock uses upstream for one session;
 * the caller never sees it.
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

export { EphemeralPgLeases, type EphemeralPgOptions, type EphemeralCredentials, type SweepResult } from './ephemeral-pg.js';
export { RoleSweeper, SWEEP_INTERVAL_MS, type Sweepable } from './sweeper.js';
export { nodeId } from './node-id.js';
export { quoteIdent, quoteLiteral, roleName, sanitiseSubject } from './pg-sql.js';
