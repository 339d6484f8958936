export type { StateStore, StoredGrant } from './types.js';
export { EmbeddedStateStore } from './embedded.js';
export type { SharedApprovals, IndexedSession, SessionIndex, SessionIndexFilter } from './types.js';
export { PostgresStateStore } from './postgres.js';
export { FleetApprovals } from './fleet-approvals.js';
export { fleetWarnings, type FleetWarning } from './fleet-check.js';
export { FleetKills, type KillOutcome, type LocalKill } from './fleet-kills.js';
export type { KillRequest, SessionKills, StoredCheckpoint, AuditCheckpoints } from './types.js';
export { CheckpointPublisher, type CheckpointCounts } from './checkpoint-publisher.js';
