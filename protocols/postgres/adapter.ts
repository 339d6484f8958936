/** The postgres protocol as the daemon sees it (src/core/adapter.ts; listed in app/adapters.ts). */
import { wrongProtocol, type Listener, type ProtocolAdapter } from '../../src/core/adapter.js';
import { postgresConnection } from './config.js';
import { PostgresListener } from './listener.js';
import { pgQuery } from './mcp.js';
import { StaticLeases } from '../../src/credentials/lease.js';
import { EphemeralPgLeases } from '../../src/credentials/ephemeral-pg.js';

export const postgresAdapter = {
  protocol: 'postgres',
  connectionSchema: postgresConnection,
  createListener: (core, config, context) => (config.protocol === 'postgres' ? (new PostgresListener(core, config) as Listener) : wrongProtocol('postgres', config)),
  eventKinds: [],
  mcp: { query: pgQuery },
  describe: () => ({}),
  leaseBroker: (c, deps, keyed) => {
    if (c.protocol !== 'postgres') return wrongProtocol('postgres', c);
    const cred = c.credentials;
    if (cred.type === 'static') return new StaticLeases(deps.resolver, cred.username, cred.password);
    return keyed(new EphemeralPgLeases({ connectionName: c.name, upstream: c.upstream, credentials: cred, resolver: deps.resolver, logger: deps.logger, nodeId: deps.nodeId(), ...(deps.ledger === undefined ? {} : { ledger: deps.ledger }) }));
  },
} satisfies ProtocolAdapter<'postgres'>;
