/**
 * The daemon's config: the core's keys (src/config) with each protocol's connection schema
 * (protocols/<p>/config.ts). This is the only place that composes them.
 */
import { z } from 'zod';
import { configReader, type ConnectionConfig } from '../src/config/index.js';
import { postgresConnection } from '../protocols/postgres/config.js';
import { mysqlConnection } from '../protocols/mysql/config.js';
import { sshConnection } from '../protocols/ssh/config.js';
import { httpConnection } from '../protocols/http/config.js';

/** One connection: the schema whose `protocol` it names validates it. */
export const connectionSchema: z.ZodType<ConnectionConfig, unknown> = z.discriminatedUnion('protocol', [postgresConnection, mysqlConnection, sshConnection, httpConnection]);

export const { validateConfig, parseConfigText, loadConfigFile } = configReader(connectionSchema);
