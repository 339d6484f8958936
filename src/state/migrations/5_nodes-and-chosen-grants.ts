/**
 * Node liveness and the approver's chosen grant_for window.
 *
 * airlock_nodes: one row per node (host:pid, as in airlock_sessions.node), upserted by its
 * heartbeat; last_seen is the store's clock in ms, so the nodes' clocks need not agree. The
 * sweeper leader ends the open sessions of a node not seen for a lease timeout ('node lost').
 *
 * airlock_approvals.grant_for_ms: the window the approver chose when the verdict was claimed —
 * NULL: the rule's; 0: none; else a window no longer than the rule's (checked again by the
 * node that holds the request).
 */
import type { MigrationBuilder } from 'node-pg-migrate';

export function up(pgm: MigrationBuilder): void {
  pgm.createTable('airlock_nodes', {
    node: { type: 'text', primaryKey: true },
    started_at: { type: 'bigint', notNull: true },
    last_seen: { type: 'bigint', notNull: true },
    admin_url: { type: 'text' },
    version: { type: 'text', notNull: true },
  });
  pgm.createIndex('airlock_sessions', ['node'], { where: 'ended_at IS NULL', name: 'airlock_sessions_open_by_node' });
  pgm.addColumn('airlock_approvals', { grant_for_ms: { type: 'bigint' } });
}

export function down(pgm: MigrationBuilder): void {
  pgm.dropColumn('airlock_approvals', 'grant_for_ms');
  pgm.dropIndex('airlock_sessions', ['node'], { name: 'airlock_sessions_open_by_node' });
  pgm.dropTable('airlock_nodes');
}
