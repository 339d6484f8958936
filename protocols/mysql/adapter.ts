/** The mysql protocol as the daemon sees it (src/core/adapter.ts; listed in app/adapters.ts). */
import { wrongProtocol, type Listener, type ProtocolAdapter } from '../../src/core/adapter.js';
import { mysqlConnection } from './config.js';
import { MysqlListener } from './listener.js';
import { mysqlQuery } from './mcp.js';
import { StaticLeases } from '../../src/credentials/lease.js';
import { EphemeralMysqlLeases } from '../../src/credentials/ephemeral-mysql.js';

export const mysqlAdapter = {
  protocol: 'mysql',
  connectionSchema: mysqlConnection,
  createListener: (core, config, context) => (config.protocol === 'mysql' ? (new MysqlListener(core, config) as Listener) : wrongProtocol('mysql', config)),
  eventKinds: [],
  mcp: { query: (target, auth, sql, limits, _hooks, signal) => mysqlQuery(target, auth, sql, limits, signal) },
  describe: () => ({}),
  leaseBroker: (c, deps, keyed) => {
    if (c.protocol !== 'mysql') return wrongProtocol('mysql', c);
    const cred = c.credentials;
    if (cred.type === 'static') return new StaticLeases(deps.resolver, cred.username, cred.password);
    return keyed(new EphemeralMysqlLeases({ connectionName: c.name, upstream: c.upstream, credentials: cred, resolver: deps.resolver, logger: deps.logger, nodeId: deps.nodeId(), ...(deps.ledger === undefined ? {} : { ledger: deps.ledger }) }));
  },
} satisfies ProtocolAdapter<'mysql'>;
