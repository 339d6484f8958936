/**
 * The daemon's config: the core's keys (src/config) with each protocol's connection schema
 * (protocols/<p>/config.ts, through the adapter list in app/adapters.ts). The only place that composes them.
 */
import { z } from 'zod';
import { configReader, type ConnectionConfig } from '../src/config/index.js';
import { adapters } from './adapters.js';

type ConnectionSchema = (typeof adapters)[number]['connectionSchema'];
const [first, ...rest] = adapters.map((a): ConnectionSchema => a.connectionSchema);
if (first === undefined) throw new Error('app/adapters.ts lists no protocol');

/** One connection: the adapter whose `protocol` it names validates it. */
export const connectionSchema: z.ZodType<ConnectionConfig, unknown> = z.discriminatedUnion('protocol', [first, ...rest]);

export const { validateConfig, parseConfigText, loadConfigFile } = configReader(connectionSchema);
