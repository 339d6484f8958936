/** The mysql protocol as the daemon sees it (src/core/adapter.ts; listed in app/adapters.ts). */
import { wrongProtocol, type Listener, type ProtocolAdapter } from '../../src/core/adapter.js';
import { mysqlConnection } from './config.js';
import { MysqlListener } from './listener.js';

export const mysqlAdapter = {
  protocol: 'mysql',
  connectionSchema: mysqlConnection,
  createListener: (core, config, context) => (config.protocol === 'mysql' ? (new MysqlListener(core, config) as Listener) : wrongProtocol('mysql', config)),
  eventKinds: [],
} satisfies ProtocolAdapter<'mysql'>;
