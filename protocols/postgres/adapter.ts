/** The postgres protocol as the daemon sees it (src/core/adapter.ts; listed in app/adapters.ts). */
import { wrongProtocol, type Listener, type ProtocolAdapter } from '../../src/core/adapter.js';
import { postgresConnection } from './config.js';
import { PostgresListener } from './listener.js';

export const postgresAdapter = {
  protocol: 'postgres',
  connectionSchema: postgresConnection,
  createListener: (core, config, context) => (config.protocol === 'postgres' ? (new PostgresListener(core, config) as Listener) : wrongProtocol('postgres', config)),
  eventKinds: [],
} satisfies ProtocolAdapter<'postgres'>;
