/** Shared pieces of the benchmarks: a PostgreSQL upstream, pgbouncer, airlock as a child process. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { freePort, type PgCluster } from '../app/dev/pgcluster.js';
import { run } from '../test/harness/clients.js';

export const ROOT = resolve(import.meta.dirname, '..');

export interface Pgbouncer {
  port: number;
  stop(): void;
}

export async function startPgbouncer(upstream: PgCluster, db: string, user: string, password: string): Promise<Pgbouncer> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-pgbouncer-'));
  const port = await freePort();
  writeFileSync(join(dir, 'userlist.txt'), `"${user}" "${password}"\n`);
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `${db} = host=127.0.0.1 port=${upstream.port} dbname=${db}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      `unix_socket_dir = ${dir}`,
      'auth_type = scram-sha-256',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = session',
      'max_client_conn = 1000',
      'default_pool_size = 40',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      '',
    ].join('\n'),
  );
  chmodSync(join(dir, 'userlist.txt'), 0o600);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
    for (const f of ['', 'userlist.txt', 'pgbouncer.ini']) chownSync(join(dir, f), uid, gid);
  }
  const bin = '/usr/sbin/pgbouncer';
  const child = asRoot ? spawn('runuser', ['-u', 'postgres', '--', bin, join(dir, 'pgbouncer.ini')], { stdio: 'ignore' }) : spawn(bin, [join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const r = await run('pg_isready', ['-h', '127.0.0.1', '-p', String(port)]);
    if (r.code === 0) break;
    await new Promise((r2) => setTimeout(r2, 100));
  }
  // runuser does not pass signals on: stop pgbouncer itself, by its config path.
  return { port, stop: () => void execFileSync('pkill', ['-INT', '-f', join(dir, 'pgbouncer.ini')]) };
}

export interface AirlockProcess {
  pid: number;
  port: number;
  stateDir: string;
  configFile: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Runs the built daemon (dist/) so its memory is its own. */
export async function startAirlockProcess(doc: Record<string, unknown>, pgPort: number): Promise<AirlockProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-bench-'));
  const stateDir = join(dir, 'state');
  const configFile = join(dir, 'airlock.yaml');
  writeFileSync(configFile, stringify({ state_dir: stateDir, log: { level: 'warn' }, ...doc }));
  const child = spawn(process.execPath, [join(ROOT, 'dist/bin/airlock.js'), 'serve', '--config', configFile, '--log-level', 'warn'], { stdio: ['ignore', 'inherit', 'inherit'] });
  for (let i = 0; i < 200; i++) {
    const r = await run('pg_isready', ['-h', '127.0.0.1', '-p', String(pgPort)]);
    if (r.code === 0) break;
    await new Promise((r2) => setTimeout(r2, 100));
  }
  return {
    pid: child.pid ?? 0,
    port: pgPort,
    stateDir,
    configFile,
    child,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

export interface TcpPipe {
  port: number;
  stop(): void;
}

/** bench/tcp-pipe.ts in a process of its own: the do-nothing Node proxy, the ceiling of airlock's stack. */
export async function startTcpPipe(targetPort: number): Promise<TcpPipe> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/tcp-pipe.ts'), String(port), String(targetPort)], { stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT });
  await new Promise<void>((resolveReady, reject) => {
    child.stdout?.once('data', () => resolveReady());
    child.once('exit', (code) => reject(new Error(`tcp-pipe exited with ${String(code)}`)));
  });
  return { port, stop: () => void child.kill('SIGTERM') };
}

/** Resident set size and its peak, from /proc (kB → MiB). */
/**
 * CPU seconds (user + system) a process and its live descendants have used so far, from
 * /proc (clock ticks at the usual 100 Hz): the per-request cost of a proxy, apart from what
 * the load generator and the upstream on the same cores spend.
 */
export function cpuSecondsOf(pid: number): number {
  let total = 0;
  const visit = (p: number): void => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / 100;
      for (const c of readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/)) if (c !== '') visit(Number(c));
    } catch {
      // gone
    }
  };
  visit(pid);
  return total;
}

export function memoryOf(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rssMiB: Math.round(kb('VmRSS') / 102.4) / 10, peakMiB: Math.round(kb('VmHWM') / 102.4) / 10 };
}

export async function pgbench(port: number, env: NodeJS.ProcessEnv, args: string[]): Promise<number> {
  const r = await run('pgbench', ['-h', '127.0.0.1', '-p', String(port), ...args], { env, timeoutMs: 600_000 });
  const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout);
  if (r.code !== 0 || m === null) throw new Error(`pgbench failed: ${r.stderr}\n${r.stdout}`);
  return Number(m[1]);
}

/** Transactions per second and the latency percentiles (ms) of every transaction, from pgbench's per-transaction log. */
export interface Measured {
  tps: number;
  p50: number;
  p99: number;
}

export async function pgbenchLatency(port: number, env: NodeJS.ProcessEnv, args: string[]): Promise<Measured> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-pgbench-log-'));
  try {
    const tps = await pgbench(port, env, [...args, '-l', '--log-prefix', join(dir, 'tx')]);
    const us: number[] = [];
    // Each line: client_id transaction_no time(µs) script_no time_epoch time_us
    for (const f of readdirSync(dir)) for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      const v = Number(line.split(' ')[2]);
      if (line !== '' && Number.isFinite(v)) us.push(v);
    }
    return { tps, p50: percentile(us, 0.5) / 1000, p99: percentile(us, 0.99) / 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function percentile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/**
 * The audit figures of issue 17, one row per workload, kept in .bench/audit.json by the benchmarks that measure
 * them in one run (pg, mysql, http) and printed together by bench/audit-table.ts.
 */
export interface AuditRow {
  workload: string;
  /** The do-nothing proxy (Node TCP pipe, or the bare Node HTTP proxy). */
  pipe: Measured;
  direct: Measured;
  auditOff: Measured;
  auditOn: Measured;
  measuredAt: string;
}

export const AUDIT_RESULTS = join(ROOT, '.bench', 'audit.json');

export function recordAuditRow(row: AuditRow): void {
  mkdirSync(join(ROOT, '.bench'), { recursive: true });
  const rows: AuditRow[] = existsSync(AUDIT_RESULTS) ? (JSON.parse(readFileSync(AUDIT_RESULTS, 'utf8')) as AuditRow[]) : [];
  writeFileSync(AUDIT_RESULTS, `${JSON.stringify([...rows.filter((r) => r.workload !== row.workload), row], null, 1)}\n`);
}

export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ')).join('\n');
}
