/** Approval requests with their verdicts, and grant_for windows, shared by every node. */
import type { MigrationBuilder } from 'node-pg-migrate';

export function up(pgm: MigrationBuilder): void {
  pgm.createTable('airlock_approvals', {
    id: { type: 'text', primaryKey: true },
    node: { type: 'text', notNull: true },
    status: { type: 'text', notNull: true },
    /** The request as the broker holds it (HTTP credential headers already redacted). */
    request: { type: 'jsonb', notNull: true },
    created_at: { type: 'bigint', notNull: true },
    decided_at: { type: 'bigint' },
    decided_by: { type: 'text' },
    reason: { type: 'text' },
  });
  pgm.createIndex('airlock_approvals', ['status', 'created_at']);
  pgm.createTable('airlock_grants', {
    subject: { type: 'text', notNull: true },
    connection: { type: 'text', notNull: true },
    expires_at: { type: 'bigint', notNull: true },
    request_id: { type: 'text', notNull: true },
    granted_by: { type: 'text', notNull: true },
  });
  pgm.addConstraint('airlock_grants', 'airlock_grants_pkey', { primaryKey: ['subject', 'connection'] });
}

export function down(pgm: MigrationBuilder): void {
  pgm.dropTable('airlock_grants');
  pgm.dropTable('airlock_approvals');
}
