/**
 * A minimal throwaway MariaDB for the MySQL gateway suites (until test/harness/mariadb.ts
 * is shared): mariadb-install-db into a temp dir, mariadbd on a random loopback port, a
 * database `appdb` and a user `app` with a password only airlock holds (in a 0600 file).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export interface LocalMaria {
  port: number;
  dir: string;
  passwordFile: string;
  /** Runs SQL as root over the socket; tab-separated output without headers. */
  sql(text: string, db?: string): Promise<string>;
  /** A mysql connection block for airlock's config. */
  connection(name: string, port: number, extra?: Record<string, unknown>): Record<string, unknown>;
  stop(): Promise<void>;
}

function exec(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd}: ${stderr || err.message}`)) : resolve(stdout)));
    if (input !== undefined) c.stdin?.end(input);
  });
}

export async function startLocalMaria(opts: { password: string; setupSql?: string; tls?: { cert: string; key: string; ca: string } }): Promise<LocalMaria> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-maria-'));
  const data = join(dir, 'data');
  const socket = join(dir, 'mysqld.sock');
  const port = await freePort();
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  await exec('mariadb-install-db', ['--no-defaults', ...asRoot, `--datadir=${data}`, '--auth-root-authentication-method=socket', '--skip-test-db']);
  const child: ChildProcess = spawn('mariadbd', [
    '--no-defaults', ...asRoot, `--datadir=${data}`, `--socket=${socket}`, `--port=${port}`, '--bind-address=127.0.0.1',
    `--pid-file=${join(dir, 'pid')}`, '--skip-log-bin', '--innodb-buffer-pool-size=32M', '--max-connections=500', '--max-allowed-packet=64M', `--log-error=${join(dir, 'error.log')}`,
    ...(opts.tls ? [`--ssl-cert=${opts.tls.cert}`, `--ssl-key=${opts.tls.key}`, `--ssl-ca=${opts.tls.ca}`] : []),
  ], { stdio: 'ignore' });
  const sql = (text: string, db?: string): Promise<string> => exec('mariadb', ['--no-defaults', '-S', socket, '-uroot', '-N', '-B', ...(db ? [db] : [])], text);
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await sql('SELECT 1');
      break;
    } catch (e) {
      if (child.exitCode !== null || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const pw = opts.password.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
  await sql(`CREATE DATABASE appdb; CREATE USER 'app'@'%' IDENTIFIED BY '${pw}'; GRANT ALL ON appdb.* TO 'app'@'%';`);
  if (opts.setupSql !== undefined) await sql(opts.setupSql, 'appdb');
  const passwordFile = join(dir, 'app-password');
  writeFileSync(passwordFile, opts.password);
  chmodSync(passwordFile, 0o600);
  return {
    port,
    dir,
    passwordFile,
    sql,
    connection: (name, listenPort, extra = {}) => ({
      name,
      protocol: 'mysql',
      listen: `127.0.0.1:${listenPort}`,
      upstream: { host: '127.0.0.1', port, database: 'appdb' },
      credentials: { type: 'static', username: 'app', password: `\${file:${passwordFile}}` },
      ...extra,
    }),
    stop: async () => {
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
