/**
 * Ephemeral-role leases: one row per upstream role or user a node created, renewed by that
 * node's heartbeat; a row whose expires_at has passed names the role of a dead node, which
 * the fleet's sweeper drops. Times are the store's own clock (now()), so nodes' clocks never
 * have to agree.
 */
import type { MigrationBuilder } from 'node-pg-migrate';

export function up(pgm: MigrationBuilder): void {
  pgm.createTable('airlock_role_leases', {
    connection: { type: 'text', notNull: true },
    role: { type: 'text', notNull: true },
    node: { type: 'text', notNull: true },
    session: { type: 'text', notNull: true },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
    expires_at: { type: 'timestamptz', notNull: true },
  });
  pgm.addConstraint('airlock_role_leases', 'airlock_role_leases_pkey', { primaryKey: ['connection', 'role'] });
  pgm.createIndex('airlock_role_leases', ['node']);
  pgm.createIndex('airlock_role_leases', ['expires_at']);
}

export function down(pgm: MigrationBuilder): void {
  pgm.dropTable('airlock_role_leases');
}
