/**
 * A throwaway PostgreSQL cluster — a fresh initdb in a temporary directory, on a free
 * loopback port, never the machine's own cluster — for `airlock dev`, the tests and the
 * benchmarks. PostgreSQL refuses to run as root, so as root the server tools run as the
 * `postgres` user.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { AirlockError } from '../../src/util/errors.js';
import { createServer } from 'node:net';

const execFileP = promisify(execFile);

export type HbaMethod = 'scram-sha-256' | 'md5' | 'password' | 'trust';

export interface PgCluster {
  host: '127.0.0.1';
  port: number;
  superuser: string;
  superPassword: string;
  dataDir: string;
  binDir: string;
  /** Runs the real psql directly (not through airlock); -XAtq output without the final newline. */
  psql(sql: string, opts?: { db?: string; user?: string; password?: string }): Promise<string>;
  stop(): Promise<void>;
  /** Stops the server but keeps its data (an outage); resume() starts it again on the same port. */
  pause(): Promise<void>;
  resume(): Promise<void>;
}

export interface StartPostgresOptions {
  /** pg_hba method for local and host connections (initdb --auth). Default scram-sha-256. */
  hba?: HbaMethod;
  /** PEM files; copied into the server's directory, so any readable path will do. */
  ssl?: { cert: string; key: string };
  extraConf?: Record<string, string>;
}

/** The directory with initdb/pg_ctl/postgres, or null when PostgreSQL is not installed. */
export function findPgBinDir(): string | null {
  const candidates: string[] = [];
  if (existsSync('/usr/lib/postgresql')) {
    const versions = readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => `/usr/lib/postgresql/${v}/bin`));
  }
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    // pg_config is optional (libpq-dev)
  }
  candidates.push('/usr/local/bin', '/usr/bin');
  return candidates.find((d) => ['initdb', 'pg_ctl', 'postgres'].every((t) => existsSync(join(d, t)))) ?? null;
}

const asRoot = process.getuid?.() === 0;

export type StartPgClusterOptions = StartPostgresOptions;

function postgresIds(): { uid: number; gid: number } {
  const id = (flag: string): number => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** Runs a server tool, as the postgres user when we are root. */
async function runTool(binDir: string, tool: string, args: string[]): Promise<string> {
  const file = join(binDir, tool);
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
  const { stdout } = await execFileP(cmd, argv, { env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

const quote = (v: string): string => `'${v.replace(/'/g, "''")}'`;

export async function startPgCluster(opts: StartPostgresOptions = {}): Promise<PgCluster> {
  const binDir = findPgBinDir();
  if (binDir === null) {
    throw new AirlockError('AIRLOCK_UNSUPPORTED', 'PostgreSQL server binaries not found: install the Debian package "postgresql"');
  }
  const dir = mkdtempSync(join(tmpdir(), 'airlock-pgtest-'));
  const owner = asRoot ? postgresIds() : null;
  const own = (path: string): void => {
    if (owner !== null) chownSync(path, owner.uid, owner.gid);
  };
  own(dir);
  const dataDir = join(dir, 'data');
  const superuser = 'postgres';
  const superPassword = randomBytes(18).toString('base64url');
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, `${superPassword}\n`, { mode: 0o600 });
  own(pwfile);
  const hba = opts.hba ?? 'scram-sha-256';
  try {
    await runTool(binDir, 'initdb', ['-D', dataDir, '-U', superuser, `--pwfile=${pwfile}`, `--auth=${hba}`, '-E', 'UTF8', '--locale=C', '--no-sync']);
  } finally {
    rmSync(pwfile, { force: true });
  }
  const port = await freePort();
  const conf: Record<string, string> = {
    listen_addresses: quote('127.0.0.1'),
    port: String(port),
    unix_socket_directories: quote(dir),
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: '200',
    ...(hba === 'md5' ? { password_encryption: 'md5' } : {}),
  };
  if (opts.ssl !== undefined) {
    // The server reads its key as its own user and insists on mode 0600.
    const cert = join(dir, 'server.crt');
    const key = join(dir, 'server.key');
    copyFileSync(opts.ssl.cert, cert);
    copyFileSync(opts.ssl.key, key);
    chmodSync(key, 0o600);
    own(cert);
    own(key);
    Object.assign(conf, { ssl: 'on', ssl_cert_file: quote(cert), ssl_key_file: quote(key) });
  }
  Object.assign(conf, opts.extraConf);
  appendFileSync(join(dataDir, 'postgresql.conf'), `\n${Object.entries(conf).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`);
  const log = join(dir, 'server.log');
  try {
    await runTool(binDir, 'pg_ctl', ['-D', dataDir, '-l', log, '-w', '-t', '60', 'start']);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  const psqlBin = existsSync(join(binDir, 'psql')) ? join(binDir, 'psql') : 'psql';
  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    superuser,
    superPassword,
    dataDir,
    binDir,
    async psql(sql, o = {}) {
      const args = ['-XAtq', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', o.user ?? superuser, '-d', o.db ?? 'postgres', '-c', sql];
      const { stdout } = await execFileP(psqlBin, args, {
        env: { ...process.env, PGPASSWORD: o.password ?? superPassword, PGCONNECT_TIMEOUT: '10', PGSSLMODE: 'prefer' },
        maxBuffer: 64 * 1024 * 1024,
      });
      return stdout.replace(/\n$/, '');
    },
    async pause() {
      await runTool(binDir, 'pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop']);
    },
    async resume() {
      await runTool(binDir, 'pg_ctl', ['-D', dataDir, '-l', log, '-w', '-t', '60', 'start']);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await runTool(binDir, 'pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop']).catch(() =>
        runTool(binDir, 'pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']).catch(() => undefined),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Free TCP ports on loopback for throwaway servers; never one of the well-known service ports. */
const RESERVED = new Set([22, 80, 443, 3306, 5432]);

function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** A port nothing listens on right now (there is a small race until the caller binds it). */
/** Ports this process handed out lately: the kernel may offer a port again once its probe socket closed. */
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  for (;;) {
    const port = await ephemeralPort();
    if (port === 0 || RESERVED.has(port) || handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}
