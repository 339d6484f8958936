/**
 * Upstream credential leases. A lease is what airlock uses upstream for one session;
 * the caller never sees it.
 */
export { StaticLeases, type LeaseBroker, type LeaseRequest, type SweepResult } from './lease.js';
export { EphemeralPgLeases, type EphemeralPgOptions, type EphemeralCredentials } from './ephemeral-pg.js';
export { RoleSweeper, SWEEP_INTERVAL_MS, type Sweepable } from './sweeper.js';
export { nodeId } from './node-id.js';
export { quoteIdent, quoteLiteral, roleName, sanitiseSubject } from './pg-sql.js';
