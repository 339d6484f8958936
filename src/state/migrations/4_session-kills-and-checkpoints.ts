/**
 * Kill requests relayed to the node that holds a session, and every node's signed audit
 * checkpoints (for `airlock audit verify --fleet`), with where each node keeps its audit log.
 */
import type { MigrationBuilder } from 'node-pg-migrate';

export function up(pgm: MigrationBuilder): void {
  pgm.createTable('airlock_session_kills', {
    id: { type: 'text', primaryKey: true },
    session_id: { type: 'text', notNull: true },
    /** The node that holds the session (host:pid, as in airlock_sessions.node). */
    node: { type: 'text', notNull: true },
    requested_by: { type: 'text', notNull: true },
    requested_by_issuer: { type: 'text', notNull: true },
    requested_on: { type: 'text', notNull: true },
    reason: { type: 'text' },
    /** pending → taken (the holding node is ending it) → done | gone; or pending → expired (nobody took it in time). */
    status: { type: 'text', notNull: true },
    requested_at: { type: 'bigint', notNull: true },
    finished_at: { type: 'bigint' },
    end_reason: { type: 'text' },
  });
  pgm.createIndex('airlock_session_kills', ['node', 'status']);
  pgm.createTable('airlock_audit_nodes', {
    /** The audit chain's node id: stable across restarts (state_dir/node-id). */
    node: { type: 'text', primaryKey: true },
    host: { type: 'text', notNull: true },
    audit_dir: { type: 'text', notNull: true },
    updated_at: { type: 'bigint', notNull: true },
  });
  pgm.createTable('airlock_audit_checkpoints', {
    node: { type: 'text', notNull: true },
    /** The checkpoint record's own seq; it signs the record before it (head_seq, head). */
    seq: { type: 'bigint', notNull: true },
    head_seq: { type: 'bigint', notNull: true },
    head: { type: 'text', notNull: true },
    key_id: { type: 'text', notNull: true },
    sig: { type: 'text', notNull: true },
    file: { type: 'text', notNull: true },
    written_at: { type: 'text', notNull: true },
  });
  pgm.addConstraint('airlock_audit_checkpoints', 'airlock_audit_checkpoints_pkey', { primaryKey: ['node', 'seq'] });
}

export function down(pgm: MigrationBuilder): void {
  pgm.dropTable('airlock_audit_checkpoints');
  pgm.dropTable('airlock_audit_nodes');
  pgm.dropTable('airlock_session_kills');
}
