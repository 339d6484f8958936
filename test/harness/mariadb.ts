/**
 * A throwaway MariaDB for tests: mariadb-install-db into a fresh temp dir, mariadbd on a
 * random loopback port (never the machine's own server on 3306), a unix socket in the same
 * dir. root keeps socket authentication (the CLI over the socket); an `admin` user with a
 * random password and every privilege WITH GRANT OPTION is reachable over TCP (what an
 * ephemeral-user broker logs in as). The database `appdb` holds a small `customers` table.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { freePort } from './ports.js';

export type MariaDbRow = Record<string, unknown>;

export interface MariaDbServer {
  host: '127.0.0.1';
  port: number;
  socket: string;
  dir: string;
  /** Server version as executable comments compare it (10.11.19 → 101119). */
  version: number;
  /** A TCP user with every privilege WITH GRANT OPTION. */
  admin: { username: string; password: string };
  /**
   * Runs SQL as the admin over the socket; the server splits multi-statement text itself
   * (CLIENT_MULTI_STATEMENTS), so this is the oracle for how the server reads a text.
   * Returns the rows of the last result set (or [] for statements without rows).
   */
  rootQuery(sql: string, values?: unknown[]): Promise<MariaDbRow[]>;
  /** Every result of a multi-statement text: one entry per statement the server ran. */
  rootResults(sql: string): Promise<Array<MariaDbRow[] | { affectedRows: number }>>;
  /** Runs text through the `mariadb` CLI over the socket as root (tab-separated, no headers). */
  cli(sql: string, db?: string): Promise<string>;
  /** CREATE USER name@'%' with a password (plugin: mysql_native_password, ed25519 …), granted nothing. */
  createUser(name: string, password: string, plugin?: string): Promise<void>;
  /** A mysql2 connection as any user over TCP. */
  connect(user: string, password: string, database?: string): Promise<mysql.Connection>;
  errorLog(): string;
  stop(): Promise<void>;
}

function exec(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd}: ${stderr || err.message}`)) : resolve(stdout)));
    // A client that exits before reading all its input must not become an unhandled EPIPE.
    c.stdin?.on('error', () => undefined);
    if (input !== undefined) c.stdin?.end(input);
  });
}

const literal = (v: string): string => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

export interface StartMariaDbOptions {
  /** Extra mariadbd arguments (`--sql-mode=…`, TLS files …). */
  args?: string[];
}

export async function startMariaDb(opts: StartMariaDbOptions = {}): Promise<MariaDbServer> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-mariadb-'));
  const data = join(dir, 'data');
  const socket = join(dir, 'sock');
  const logFile = join(dir, 'error.log');
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  // mariadb-install-db bootstraps a throwaway server; on a loaded machine it has been seen to fail now and
  // then (a warning about a temporary table ends the bootstrap). A fresh data directory and another try
  // is what a person would do; the third failure is reported with its output.
  for (let attempt = 1; ; attempt++) {
    try {
      await exec('mariadb-install-db', ['--no-defaults', ...asRoot, `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db']);
      break;
    } catch (e) {
      rmSync(data, { recursive: true, force: true });
      if (attempt >= 3) throw e;
    }
  }
  const port = await freePort();
  const child: ChildProcess = spawn('mariadbd', [
    '--no-defaults', ...asRoot, `--datadir=${data}`, `--socket=${socket}`, `--port=${port}`, '--bind-address=127.0.0.1',
    '--skip-name-resolve', `--pid-file=${join(dir, 'pid')}`, '--skip-log-bin', '--innodb-buffer-pool-size=32M',
    '--max-connections=300', `--log-error=${logFile}`, ...(opts.args ?? []),
  ], { stdio: 'ignore' });
  let exitCode: number | null = null;
  child.once('exit', (code) => { exitCode = code ?? -1; });
  const cli = (text: string, db?: string): Promise<string> => exec('mariadb', ['--no-defaults', '-S', socket, '-uroot', '-N', '-B', ...(db ? [db] : [])], text);
  const cleanup = (): void => {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await cli('SELECT 1');
      break;
    } catch (e) {
      if (exitCode !== null || Date.now() > deadline) {
        const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '';
        cleanup();
        throw new Error(`mariadbd did not start: ${(e as Error).message}\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  const admin = { username: 'admin', password: `Adm-${randomBytes(12).toString('base64url')}` };
  try {
    await cli(`CREATE USER 'admin'@'%' IDENTIFIED BY ${literal(admin.password)};
      GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION;
      CREATE DATABASE appdb;
      CREATE TABLE appdb.customers (id int PRIMARY KEY, name varchar(50), email varchar(100), ssn varchar(20));
      INSERT INTO appdb.customers VALUES (1, 'Ann', 'ann@example.com', '123-45-6789'), (2, 'Bob', 'bob@example.org', '987-65-4321'), (3, 'Cy', 'cy@example.net', '555-12-3456');`);
  } catch (e) {
    cleanup();
    throw e;
  }
  const versionText = (await cli('SELECT VERSION()')).trim();
  const [maj, min, pat] = versionText.split(/[.-]/).map(Number);
  const version = (maj ?? 0) * 10000 + (min ?? 0) * 100 + (pat ?? 0);

  let pool: mysql.Pool | null = null;
  const getPool = (): mysql.Pool => {
    pool ??= mysql.createPool({ socketPath: socket, user: admin.username, password: admin.password, multipleStatements: true, connectionLimit: 4 });
    return pool;
  };
  const rootResults = async (sql: string): Promise<Array<MariaDbRow[] | { affectedRows: number }>> => {
    const [res] = await getPool().query(sql);
    const one = (r: unknown): MariaDbRow[] | { affectedRows: number } =>
      Array.isArray(r) ? (r as MariaDbRow[]) : { affectedRows: Number((r as { affectedRows?: number }).affectedRows ?? 0) };
    // mysql2 answers a multi-statement text with an array of results, one per statement
    // (row arrays or ResultSetHeaders); a single SELECT's rows are plain objects.
    const isHeader = (r: unknown): boolean => typeof r === 'object' && r !== null && r.constructor.name === 'ResultSetHeader';
    if (Array.isArray(res) && res.length > 1 && res.every((r) => Array.isArray(r) || isHeader(r))) return (res as unknown[]).map(one);
    return [one(res)];
  };
  return {
    host: '127.0.0.1',
    port,
    socket,
    dir,
    version,
    admin,
    cli,
    rootResults,
    rootQuery: async (sql, values) => {
      if (values !== undefined) {
        const [rows] = await getPool().query(sql, values);
        return Array.isArray(rows) ? (rows as MariaDbRow[]) : [];
      }
      const all = await rootResults(sql);
      const last = all[all.length - 1];
      return Array.isArray(last) ? last : [];
    },
    createUser: async (name, password, plugin) => {
      const auth = plugin === undefined ? `IDENTIFIED BY ${literal(password)}` : plugin === 'ed25519' ? `IDENTIFIED VIA ed25519 USING PASSWORD(${literal(password)})` : `IDENTIFIED VIA ${plugin} USING PASSWORD(${literal(password)})`;
      if (plugin === 'ed25519') await cli("INSTALL SONAME 'auth_ed25519'").catch(() => undefined);
      await getPool().query(`CREATE USER ${literal(name)}@'%' ${auth}`);
    },
    connect: (user, password, database) => mysql.createConnection({ host: '127.0.0.1', port, user, password, ...(database === undefined ? {} : { database }) }),
    errorLog: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    stop: async () => {
      await pool?.end().catch(() => undefined);
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
