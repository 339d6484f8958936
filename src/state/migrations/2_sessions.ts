/** The session index: every node's sessions (who, where, when), for `sessions list` on any node. */
import type { MigrationBuilder } from 'node-pg-migrate';

export function up(pgm: MigrationBuilder): void {
  pgm.createTable('airlock_sessions', {
    id: { type: 'text', primaryKey: true },
    node: { type: 'text', notNull: true },
    subject: { type: 'text', notNull: true },
    issuer: { type: 'text', notNull: true },
    connection: { type: 'text', notNull: true },
    protocol: { type: 'text', notNull: true },
    client: { type: 'text', notNull: true },
    started_at: { type: 'bigint', notNull: true },
    ended_at: { type: 'bigint' },
    end_reason: { type: 'text' },
  });
  pgm.createIndex('airlock_sessions', ['started_at']);
}

export function down(pgm: MigrationBuilder): void {
  pgm.dropTable('airlock_sessions');
}
