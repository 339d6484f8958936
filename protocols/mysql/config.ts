/**
 * The MySQL / MariaDB connection's config schema: its section of the config file, composed with the
 * core's keys by app/config.ts (issue 22). Shared fields (duration, listen, tls …) come from the core.
 */
import { z } from 'zod';
import { duration, limits, listen, recordSettings, staticCredentials, tlsListener } from '../../src/config/index.js';

const upstreamTls = z.enum(['disable', 'require', 'verify-full']);

// ---- MySQL / MariaDB (protocols/mysql) ----

const mysqlUpstream = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(3306),
  /** Default schema for the upstream login; the client's own COM_INIT_DB / database still applies. */
  database: z.string().min(1).optional(),
  tls: upstreamTls.default('disable'),
  ca: z.string().optional(),
});

const mysqlEphemeralCredentials = z.strictObject({
  type: z.literal('ephemeral'),
  admin: z.strictObject({ username: z.string().min(1), password: z.string() }),
  /** Privilege grants for every session user, e.g. "SELECT ON appdb.*". */
  grant: z.array(z.string()).default([]),
  /** MariaDB/MySQL roles granted and set as default. */
  roles: z.array(z.string()).default([]),
  grant_by_group: z.record(z.string(), z.array(z.string())).default({}),
  ttl: duration.default(3_600_000),
  user_prefix: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'lower-case letters, digits and _').default('airlock_'),
  /** The host part of the user, 'user'@'host'. */
  user_host: z.string().min(1).default('%'),
  max_user_connections: z.number().int().min(1).default(5),
});

export const mysqlConnection = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . -'),
  protocol: z.literal('mysql'),
  listen,
  tls: tlsListener.optional(),
  upstream: mysqlUpstream,
  credentials: z.discriminatedUnion('type', [staticCredentials, mysqlEphemeralCredentials]),
  allow_groups: z.array(z.string()).default([]),
  limits,
  record: recordSettings,
  /**
   * LOAD DATA LOCAL INFILE (admitted by a rule naming load_data_local): a file longer than
   * max_bytes is cut off, its statement aborted upstream and the session ended.
   */
  local_infile: z
    .strictObject({ max_bytes: z.number().int().min(0).default(256 * 1024 * 1024) })
    .default({ max_bytes: 256 * 1024 * 1024 }),
  drain_timeout: duration.optional(),
  /** From connect to a verified token; a connection that takes longer is closed. */
  auth_timeout: duration.default(30_000),
});

export type MysqlConnectionConfig = z.output<typeof mysqlConnection>;

declare module '../../src/config/index.js' {
  interface ConnectionConfigs {
    mysql: MysqlConnectionConfig;
  }
}
