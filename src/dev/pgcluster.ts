/**
 * A throwaway PostgreSQL cluster in a temporary directory on a free port — for
 * `airlock dev` and the test harness. PostgreSQL refuses to run as root, so as root the
 * server runs as the `postgres` user.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { AirlockError } from '../errors.js';

const execFileP = promisify(execFile);

export interface PgCluster {
  host: '127.0.0.1';
  port: number;
  superuser: string;
  superPassword: string;
  dataDir: string;
  binDir: string;
  /** Runs psql directly against the cluster (not through airlock); -XAtq output. */
  psql(sql: string, opts?: { db?: string; user?: string; password?: string }): Promise<string>;
  stop(): Promise<void>;
}

export interface PgClusterOptions {
  hba?: 'scram-sha-256' | 'md5' | 'password' | 'trust';
  ssl?: { cert: string; key: string };
  extraConf?: Record<string, string>;
  port?: number;
}

/** The directory with initdb/pg_ctl/postgres, or null when PostgreSQL is not installed. */
export function findPgBinDir(): string | null {
  const candidates: string[] = [];
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    // pg_config is in libpq-dev, often absent
  }
  if (existsSync('/usr/lib/postgresql')) {
    const versions = readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin`);
  }
  candidates.push('/usr/local/bin', '/usr/bin');
  return candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl'))) ?? null;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const runAsPostgres = process.getuid?.() === 0;

/** Runs a PostgreSQL binary, as the postgres user when we are root. */
async function runPg(binDir: string, tool: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const file = join(binDir, tool);
  const [cmd, argv] = runAsPostgres ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
  const { stdout } = await execFileP(cmd, argv, { env: { ...process.env, ...env, LC_ALL: 'C' }, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

export async function startPgCluster(opts: PgClusterOptions = {}): Promise<PgCluster> {
  const binDir = findPgBinDir();
  if (binDir === null) {
    throw new AirlockError('AIRLOCK_UNSUPPORTED', 'PostgreSQL server binaries not found: install the Debian package "postgresql"');
  }
  const dir = mkdtempSync(join(tmpdir(), 'airlock-pg-'));
  chmodSync(dir, 0o755);
  const dataDir = join(dir, 'data');
  const superuser = 'postgres';
  const superPassword = randomBytes(18).toString('base64url');
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, `${superPassword}\n`, { mode: 0o600 });
  if (runAsPostgres) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
    chownSync(pwfile, uid, gid);
  }
  const hba = opts.hba ?? 'scram-sha-256';
  await runPg(binDir, 'initdb', ['-D', dataDir, '-U', superuser, `--pwfile=${pwfile}`, `--auth=${hba}`, '-E', 'UTF8', '--no-sync', '--locale=C']);
  rmSync(pwfile);
  const port = opts.port ?? (await freePort());
  const conf: Record<string, string> = {
    listen_addresses: "'127.0.0.1'",
    port: String(port),
    unix_socket_directories: `'${dir}'`,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: '200',
    password_encryption: hba === 'md5' ? 'md5' : 'scram-sha-256',
    ...(opts.ssl ? { ssl: 'on', ssl_cert_file: `'${opts.ssl.cert}'`, ssl_key_file: `'${opts.ssl.key}'` } : {}),
    ...opts.extraConf,
  };
  const confText = Object.entries(conf).map(([k, v]) => `${k} = ${v}`).join('\n');
  // postgresql.auto.conf is owned by the server user; append through a shell as that user.
  const auto = join(dataDir, 'postgresql.auto.conf');
  writeFileSync(`${dir}/extra.conf`, `${confText}\n`);
  if (runAsPostgres) execFileSync('runuser', ['-u', 'postgres', '--', 'sh', '-c', `cat '${dir}/extra.conf' >> '${auto}'`]);
  else execFileSync('sh', ['-c', `cat '${dir}/extra.conf' >> '${auto}'`]);
  await runPg(binDir, 'pg_ctl', ['-D', dataDir, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  const cluster: PgCluster = {
    host: '127.0.0.1',
    port,
    superuser,
    superPassword,
    dataDir,
    binDir,
    async psql(sql, o = {}) {
      const psqlBin = existsSync(join(binDir, 'psql')) ? join(binDir, 'psql') : 'psql';
      const { stdout } = await execFileP(psqlBin, ['-XAtq', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', o.user ?? superuser, '-d', o.db ?? 'postgres', '-c', sql], {
        env: { ...process.env, PGPASSWORD: o.password ?? superPassword, PGCONNECT_TIMEOUT: '10' },
        maxBuffer: 256 * 1024 * 1024,
      });
      return stdout.trimEnd();
    },
    async stop() {
      await runPg(binDir, 'pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}
