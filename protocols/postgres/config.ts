/**
 * The PostgreSQL connection's config schema: its section of the config file, composed with the
 * core's keys by app/config.ts (issue 22). Shared fields (duration, listen, tls …) come from the core.
 */
import { z } from 'zod';
import { duration, limits, listen, recordSettings, staticCredentials, tlsListener } from '../../src/config/index.js';

const pgUpstream = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(5432),
  database: z.string().min(1),
  tls: z.enum(['disable', 'require', 'verify-full']).default('disable'),
  ca: z.string().optional(),
});

const ephemeralCredentials = z.strictObject({
  type: z.literal('ephemeral'),
  admin: z.strictObject({ username: z.string().min(1), password: z.string() }),
  grant: z.array(z.string()).default([]),
  grant_by_group: z.record(z.string(), z.array(z.string())).default({}),
  ttl: duration.default(3_600_000),
  role_prefix: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'lower-case letters, digits and _').default('airlock_'),
  connection_limit: z.number().int().min(1).default(5),
  settings: z.record(z.string(), z.string()).default({}),
  drop_owned: z.enum(['drop', 'reassign', 'none']).default('drop'),
  reassign_to: z.string().optional(),
});

export const postgresConnection = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . -'),
  protocol: z.literal('postgres'),
  listen,
  tls: tlsListener.optional(),
  upstream: pgUpstream,
  credentials: z.discriminatedUnion('type', [staticCredentials, ephemeralCredentials]),
  allow_groups: z.array(z.string()).default([]),
  /** What to do with the user name in the startup packet: ignore it, or require it to equal the token's subject. */
  startup_user: z.enum(['ignore', 'match_subject']).default('ignore'),
  limits,
  record: recordSettings,
  drain_timeout: duration.optional(),
  /** From connect to a verified token; a connection that takes longer is closed. */
  auth_timeout: duration.default(30_000),
});

export type PostgresConnectionConfig = z.output<typeof postgresConnection>;

declare module '../../src/config/index.js' {
  interface ConnectionConfigs {
    postgres: PostgresConnectionConfig;
  }
}
