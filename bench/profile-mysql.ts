/**
 * CPU per statement of the airlock daemon under sysbench oltp_point_select (MySQL/MariaDB), from /proc:
 * prepared statements (COM_STMT_EXECUTE) and text queries (COM_QUERY), audit on and off, every
 * build given, alternated in the same run.
 *   npx tsx bench/profile-mysql.ts [--events 40000] [--threads 8] [--rounds 2] [--modes ps,text] [--audit on,off]
 * AIRLOCK_DIST=dir[,dir…]: the builds to compare (default dist; e.g. an older commit's build in
 * .scratch/base-dist for a same-run before/after). Each build and audit setting runs as a daemon of its
 * own; the runs alternate builds inside each round so that load on the shared cores falls on all of them.
 * BENCH_CPU_PROF=dir: the daemons run with --cpu-prof and write .cpuprofile files there on exit
 * (read them with a profile reader; the main thread's is the largest).
 * sysbench runs a fixed number of events, so CPU per statement is exact up to the 10 ms clock tick:
 * the daemon's CPU (all threads) and its main thread's alone (the event loop every session shares).
 * PERF=dir: one more run per daemon and workload under `perf record` (the daemon runs with
 * --perf-basic-prof so JavaScript frames have names): on-CPU samples only, where the V8 profile counts
 * a thread preempted in a system call as busy there (writeBuffer looks large on a loaded machine).
 * --pipe: also the do-nothing Node TCP pipe (bench/tcp-pipe.ts) as a daemon, for what Node's sockets alone cost per statement.
 * STRACE=1: one more run per daemon and workload under `strace -c -f`, printed as system calls per statement.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { startLocalMaria } from '../test/harness/mariadb-local.js';
import { freePort } from '../test/harness/ports.js';
import { run } from '../test/harness/clients.js';
import { mintDevToken } from '../src/auth/verifier.js';
import { validateConfig } from '../app/config.js';
import { ROOT, table } from './lib.js';

const argOf = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
};
const events = Number(argOf('--events', '40000'));
const threads = Number(argOf('--threads', '8'));
const rounds = Number(argOf('--rounds', '2'));
const modes = argOf('--modes', 'ps,text').split(',');
const audits = argOf('--audit', 'on,off').split(',');
const dists = (process.env.AIRLOCK_DIST ?? 'dist').split(',').map((d) => resolve(ROOT, d));
const profDir = process.env.BENCH_CPU_PROF;
if (profDir !== undefined) mkdirSync(profDir, { recursive: true });
const perfDir = process.env.PERF;
if (perfDir !== undefined) mkdirSync(perfDir, { recursive: true });
const password = 'bench-password-not-secret';

const maria = await startLocalMaria({ password });
const common = (port: number, pw: string): string[] => [
  '--db-driver=mysql', '--mysql-host=127.0.0.1', `--mysql-port=${port}`, '--mysql-user=app', `--mysql-password=${pw}`, '--mysql-db=appdb',
  '--mysql-ssl=off', '--tables=1', '--table-size=10000',
];
const prep = await run('sysbench', ['oltp_point_select', ...common(maria.port, password), 'prepare'], { timeoutMs: 600_000 });
if (prep.code !== 0) throw new Error(`sysbench prepare failed: ${prep.stderr}`);

const RULES = [
  { name: 'no-ddl', when: { statements: ['drop', 'truncate', 'alter', 'create', 'grant', 'revoke'] }, effect: 'deny' },
  { name: 'no-unbounded-writes', when: { statements: ['update', 'delete'], without_where: true }, effect: 'deny' },
  { name: 'no-secrets-table', when: { tables: ['*.secrets'] }, effect: 'deny' },
  { name: 'no-outfile', when: { statements: ['into_outfile', 'load_data'] }, effect: 'deny' },
];

interface Daemon {
  label: string;
  port: number;
  token: string;
  child: ChildProcess;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${port}`);
}

async function startDaemon(dist: string, audit: boolean): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-prof-mysql-'));
  const port = await freePort();
  const stateDir = join(dir, 'state');
  const configFile = join(dir, 'airlock.yaml');
  writeFileSync(configFile, stringify({
    state_dir: stateDir,
    log: { level: 'warn' },
    auth: { dev_issuer: true },
    connections: [maria.connection('bench', port, { allow_groups: ['bench'] })],
    rules: RULES,
    ...(audit ? {} : { audit: { enabled: false } }),
  }));
  const prof = [...(profDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profDir]), ...(perfDir === undefined ? [] : ['--perf-basic-prof'])];
  const child = spawn(process.execPath, [...prof, join(dist, 'bin/airlock.js'), 'serve', '--config', configFile, '--log-level', 'warn'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  await waitForPort(port);
  const parsed = validateConfig({ state_dir: stateDir, auth: { dev_issuer: true } });
  if (!parsed.ok) throw new Error('bench config invalid');
  const token = await mintDevToken(parsed.config, 'bench', ['bench'], 'machine', 3_600_000);
  return { label: `${dist.replace(`${ROOT}/`, '')} audit ${audit ? 'on' : 'off'}`, port, token, child };
}

/** utime + stime in clock ticks (fields 14 and 15 of a stat file). */
const ticksOf = (path: string): number => {
  const f = readFileSync(path, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(f[11]) + Number(f[12]);
};

interface Sample {
  tps: number;
  cpuUs: number;
  mainUs: number;
}

async function measure(d: Daemon, mode: string): Promise<Sample> {
  const pid = d.child.pid as number;
  const extra = mode === 'text' ? ['--db-ps-mode=disable'] : [];
  const cpu0 = ticksOf(`/proc/${pid}/stat`);
  const main0 = ticksOf(`/proc/${pid}/task/${pid}/stat`);
  const r = await run('sysbench', ['oltp_point_select', ...common(d.port, d.token), ...extra, `--threads=${threads}`, `--events=${events}`, '--time=0', '--report-interval=0', 'run'], { timeoutMs: 600_000 });
  const cpu1 = ticksOf(`/proc/${pid}/stat`);
  const main1 = ticksOf(`/proc/${pid}/task/${pid}/stat`);
  const m = /transactions:\s+(\d+)\s+\(([\d.]+) per sec\.\)/.exec(r.stdout);
  if (r.code !== 0 || m === null) throw new Error(`sysbench failed: ${r.stderr}\n${r.stdout}`);
  const n = Number(m[1]);
  return { tps: Number(m[2]), cpuUs: ((cpu1 - cpu0) * 10_000) / n, mainUs: ((main1 - main0) * 10_000) / n };
}

const daemons: Daemon[] = [];
for (const dist of dists) for (const a of audits) daemons.push(await startDaemon(dist, a === 'on'));
if (process.argv.includes('--pipe')) {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/tcp-pipe.ts'), String(port), String(maria.port)], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port);
  daemons.push({ label: 'node tcp pipe', port, token: password, child });
}
const results = new Map<string, Sample[]>();
try {
  // A warm-up for each daemon: JIT, the catalog's view look-up, the first connections.
  for (const d of daemons) for (const mode of modes) await measure(d, mode);
  if (perfDir !== undefined) {
    for (const mode of modes) {
      for (const [i, d] of daemons.entries()) {
        const file = join(perfDir, `${mode}-${i}-audit-${d.label.endsWith('on') ? 'on' : 'off'}.data`);
        const pr = spawn('perf', ['record', '-F', '1999', '-g', '-o', file, '-p', String(d.child.pid)], { stdio: 'ignore' });
        await new Promise((r) => setTimeout(r, 500));
        await measure(d, mode);
        await new Promise((r) => {
          pr.once('exit', r);
          pr.kill('SIGINT');
        });
        console.log(`perf data: ${file} (${mode} ${d.label})`);
      }
    }
  }
  if (process.env.STRACE !== undefined) {
    for (const mode of modes) {
      for (const d of daemons) {
        const st = spawn('strace', ['-c', '-f', '-p', String(d.child.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
        let out = '';
        st.stderr?.on('data', (c: Buffer) => (out += c.toString()));
        await new Promise((r) => setTimeout(r, 500));
        await measure(d, mode);
        await new Promise((r) => {
          st.once('exit', r);
          st.kill('SIGINT');
        });
        console.log(`system calls per statement, ${mode} ${d.label}:`);
        for (const line of out.split('\n')) {
          const f = line.trim().split(/\s+/);
          const calls = Number(f[3]);
          const name = f[f.length - 1] ?? '';
          if (f.length >= 5 && Number.isFinite(calls) && name !== 'total' && calls / events >= 0.05) console.log(`  ${name.padEnd(16)} ${(calls / events).toFixed(2)}`);
        }
      }
    }
  }
  for (let round = 0; round < rounds; round++) {
    for (const mode of modes) {
      for (const d of daemons) {
        const s = await measure(d, mode);
        const key = `${mode}\t${d.label}`;
        results.set(key, [...(results.get(key) ?? []), s]);
        console.log(`round ${round + 1} ${mode.padEnd(4)} ${d.label}: ${s.tps.toFixed(0)} tps, daemon ${s.cpuUs.toFixed(1)} µs/stmt, main thread ${s.mainUs.toFixed(1)} µs/stmt`);
      }
    }
  }
  const rows: string[][] = [['workload', 'daemon', 'tps (each run)', 'daemon CPU µs/stmt (each run)', 'main thread µs/stmt (each run)']];
  for (const [key, ss] of results) {
    const [mode, label] = key.split('\t');
    rows.push([mode === 'ps' ? 'point_select prepared' : 'point_select text', label ?? '', ss.map((s) => s.tps.toFixed(0)).join(' / '), ss.map((s) => s.cpuUs.toFixed(1)).join(' / '), ss.map((s) => s.mainUs.toFixed(1)).join(' / ')]);
  }
  console.log(`\n${events} events × ${threads} threads per run; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`);
  console.log(table(rows));
} finally {
  await Promise.all(daemons.map((d) => new Promise((r) => {
    d.child.once('exit', r);
    d.child.kill('SIGTERM');
  })));
  await maria.stop();
}
process.exit(0);
