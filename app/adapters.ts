/** Every protocol airlock speaks: one line each (its folder exports the adapter). */
import type { ConnectionConfig } from '../src/config/index.js';
import { AirlockError } from '../src/util/errors.js';
import type { McpBackends } from '../src/mcp/backends/types.js';
import { createLeaseBroker as keptOrNew, type BrokerDeps, type KeyedBroker } from '../src/credentials/brokers.js';
import { postgresAdapter } from '../protocols/postgres/adapter.js';
import { mysqlAdapter } from '../protocols/mysql/adapter.js';
import { sshAdapter } from '../protocols/ssh/adapter.js';
import { httpAdapter } from '../protocols/http/adapter.js';

export const adapters = [postgresAdapter, mysqlAdapter, sshAdapter, httpAdapter] as const;

/** What each protocol lends the MCP tools, by protocol, in the order above. */
export const mcpBackends: McpBackends = Object.fromEntries(adapters.map((a) => [a.protocol, a.mcp]));

/** The adapter of a connection's protocol. */
export function adapterFor(c: ConnectionConfig): (typeof adapters)[number] {
  const adapter = adapters.find((a) => a.protocol === c.protocol);
  if (adapter === undefined) throw new AirlockError('AIRLOCK_INTERNAL', `no adapter speaks ${c.protocol}`);
  return adapter;
}

/** The lease broker of a connection, as its protocol's adapter chooses it; kept across a reload while unchanged. */
export function createLeaseBroker(c: ConnectionConfig, deps: BrokerDeps, previous: KeyedBroker | undefined): KeyedBroker {
  return keptOrNew(c, deps, previous, (conn, d, keyed) => adapterFor(conn).leaseBroker(conn, d, keyed));
}
