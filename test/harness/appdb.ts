/**
 * The upstream most e2e suites need: a throwaway PostgreSQL with database `appdb` owned by a
 * role `app` whose password only airlock holds (in a 0600 file), and the connection block
 * that points a Postgres listener at it.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPgCluster, type PgCluster } from '../../app/dev/pgcluster.js';

export interface AppDb {
  upstream: PgCluster;
  /** A temporary directory for the suite (state_dir goes in it). */
  dir: string;
  /** The file holding app's password, for `${file:…}`. */
  passwordFile: string;
  /** A Postgres connection block for airlock's config. */
  connection(name: string, port: number, extra?: Record<string, unknown>): Record<string, unknown>;
}

export async function startAppDb(opts: { password: string; setupSql?: string; ssl?: { cert: string; key: string }; extraConf?: Record<string, string> }): Promise<AppDb> {
  const upstream = await startPgCluster({ ...(opts.ssl === undefined ? {} : { ssl: opts.ssl }), ...(opts.extraConf === undefined ? {} : { extraConf: opts.extraConf }) });
  await upstream.psql('CREATE DATABASE appdb');
  await upstream.psql(`CREATE ROLE app LOGIN PASSWORD '${opts.password.replace(/'/g, "''")}'; ALTER DATABASE appdb OWNER TO app`);
  await upstream.psql('GRANT ALL ON SCHEMA public TO app', { db: 'appdb' });
  if (opts.setupSql !== undefined) await upstream.psql(`SET ROLE app; ${opts.setupSql}`, { db: 'appdb' });
  const dir = mkdtempSync(join(tmpdir(), 'airlock-e2e-'));
  const passwordFile = join(dir, 'app-password');
  writeFileSync(passwordFile, opts.password);
  chmodSync(passwordFile, 0o600);
  return {
    upstream,
    dir,
    passwordFile,
    connection: (name, port, extra = {}) => ({
      name,
      protocol: 'postgres',
      listen: `127.0.0.1:${port}`,
      upstream: { host: '127.0.0.1', port: upstream.port, database: 'appdb' },
      credentials: { type: 'static', username: 'app', password: `\${file:${passwordFile}}` },
      ...extra,
    }),
  };
}
