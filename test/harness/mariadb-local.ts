/**
 * The upstream the MySQL gateway suites share, on top of the throwaway MariaDB of
 * test/harness/mariadb.ts: a user `app` with a password only airlock holds (in a 0600
 * file), everything granted on `appdb`, the suite's own tables, and the connection block
 * that points a MySQL listener at it.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMariaDb, type MariaDbServer } from './mariadb.js';

export interface LocalMaria {
  server: MariaDbServer;
  port: number;
  dir: string;
  passwordFile: string;
  /** Runs SQL as root over the socket; tab-separated output without headers. */
  sql(text: string, db?: string): Promise<string>;
  /** A mysql connection block for airlock's config. */
  connection(name: string, port: number, extra?: Record<string, unknown>): Record<string, unknown>;
  stop(): Promise<void>;
}

export async function startLocalMaria(opts: { password: string; setupSql?: string; tls?: { cert: string; key: string; ca: string }; args?: string[] }): Promise<LocalMaria> {
  const tls = opts.tls ? [`--ssl-cert=${opts.tls.cert}`, `--ssl-key=${opts.tls.key}`, `--ssl-ca=${opts.tls.ca}`] : [];
  const server = await startMariaDb({ args: ['--max-allowed-packet=64M', ...tls, ...(opts.args ?? [])] });
  try {
    await server.createUser('app', opts.password);
    await server.cli("GRANT ALL ON appdb.* TO 'app'@'%'");
    if (opts.setupSql !== undefined) await server.cli(opts.setupSql, 'appdb');
  } catch (e) {
    await server.stop();
    throw e;
  }
  const passwordFile = join(server.dir, 'app-password');
  writeFileSync(passwordFile, opts.password);
  chmodSync(passwordFile, 0o600);
  return {
    server,
    port: server.port,
    dir: server.dir,
    passwordFile,
    sql: (text, db) => server.cli(text, db),
    connection: (name, listenPort, extra = {}) => ({
      name,
      protocol: 'mysql',
      listen: `127.0.0.1:${listenPort}`,
      upstream: { host: '127.0.0.1', port: server.port, database: 'appdb' },
      credentials: { type: 'static', username: 'app', password: `\${file:${passwordFile}}` },
      ...extra,
    }),
    stop: () => server.stop(),
  };
}
