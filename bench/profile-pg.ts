/**
 * CPU profile of the airlock daemon under pgbench -S (for finding where time goes).
 *   npx tsx bench/profile-pg.ts [simple|prepared|mask] [audit-on|audit-off] [seconds=8]
 * AIRLOCK_DIST=dir: the build to run (default dist; e.g. an older commit's build, for a same-run before/after).
 * AUDIT_FSYNC=0: audit on with `audit.fsync: false` (what the audit costs without its syncs).
 * `mask`: psql reads 1M rows × 6 columns through airlock with 2 columns masked (FETCH_COUNT=20000).
 * Writes a .cpuprofile into $PROFILE_DIR (default /tmp/airlock-prof) and prints the top self-time functions,
 * the top inclusive (self + callees) airlock functions and the daemon's CPU time per transaction.
 * TX=N: each pgbench client runs N transactions (-t) instead of running for `seconds` (-T), so CPU per
 * transaction is exact. SUMMARY=path: the printed summary is also written there (bench/profiles/).
 * CPU per transaction holds up on a loaded machine; throughput does not.
 */
import { appendFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, mkdtempSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { startPgCluster, freePort } from '../app/dev/pgcluster.js';
import { mintDevToken } from '../src/auth/verifier.js';
import { validateConfig } from '../app/config.js';
import { pgbench } from './lib.js';
import { run } from '../test/harness/clients.js';

const mode = process.argv[2] ?? 'simple';
const audit = (process.argv[3] ?? 'audit-on') === 'audit-on';
const seconds = Number(process.argv[4] ?? 8);
const txPerClient = process.env.TX === undefined ? null : Number(process.env.TX);
const summaryFile = process.env.SUMMARY;
if (summaryFile !== undefined) writeFileSync(summaryFile, '');
const say = (line: string): void => {
  console.log(line);
  if (summaryFile !== undefined) appendFileSync(summaryFile, `${line}\n`);
};
const profDir = process.env.PROFILE_DIR ?? join(tmpdir(), 'airlock-prof');
mkdirSync(profDir, { recursive: true });

const upstream = await startPgCluster({ extraConf: { shared_buffers: "'256MB'" } });
const password = 'bench-password-not-secret';
await upstream.psql('CREATE DATABASE bench');
await upstream.psql(`CREATE ROLE bench LOGIN PASSWORD '${password}'; ALTER DATABASE bench OWNER TO bench`);
const direct = { PGPASSWORD: password, PGUSER: 'bench', PGDATABASE: 'bench', PGSSLMODE: 'disable' };
await run('pgbench', ['-h', '127.0.0.1', '-p', String(upstream.port), '-i', '-s', '10', '-q'], { env: direct });
const dir = mkdtempSync(join(tmpdir(), 'airlock-prof-'));
const port = await freePort();
const stateDir = join(dir, 'state');
writeFileSync(join(dir, 'airlock.yaml'), stringify({
  state_dir: stateDir,
  log: { level: 'warn' },
  auth: { dev_issuer: true },
  audit: { enabled: audit, fsync: process.env.AUDIT_FSYNC !== '0' },
  rules: [{ name: 'pii', when: { groups: ['support'] }, effect: 'mask', columns: ['public.people.email', 'public.people.ssn'], method: 'redact' }],
  connections: [{ name: 'bench', protocol: 'postgres', listen: `127.0.0.1:${port}`, upstream: { host: '127.0.0.1', port: upstream.port, database: 'bench' }, credentials: { type: 'static', username: 'bench', password }, allow_groups: ['dba', 'support'] }],
}));
const profiling = process.env.NOPROF === undefined;
const child = spawn(process.execPath, [...(profiling ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []), resolve(process.env.AIRLOCK_DIST ?? 'dist', 'bin/airlock.js'), 'serve', '--config', join(dir, 'airlock.yaml')], { stdio: 'inherit' });
/** utime and stime of the daemon in clock ticks (/proc/PID/stat fields 14 and 15). */
const ticksOf = (path: string): { user: number; sys: number } => {
  const f = readFileSync(path, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return { user: Number(f[11]), sys: Number(f[12]) };
};
const cpuTicks = (): { user: number; sys: number } => ticksOf(`/proc/${child.pid}/stat`);
/** The main thread alone (its task id is the pid): the event loop every session shares. */
const mainTicks = (): { user: number; sys: number } => ticksOf(`/proc/${child.pid}/task/${child.pid}/stat`);
/** user+sys ticks of every thread of the daemon, by name and task id (the main thread: 'main'). */
const threadTicks = (): Map<string, number> => {
  const out = new Map<string, number>();
  for (const task of readdirSync(`/proc/${child.pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${child.pid}/task/${task}/comm`, 'utf8').trim();
      const t = ticksOf(`/proc/${child.pid}/task/${task}/stat`);
      out.set(`${name}/${task === String(child.pid) ? 'main' : `+${Number(task) - (child.pid ?? 0)}`}`, t.user + t.sys);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
};
for (let i = 0; i < 200; i++) {
  if ((await run('pg_isready', ['-h', '127.0.0.1', '-p', String(port)])).code === 0) break;
  await new Promise((r) => setTimeout(r, 100));
}
const parsed = validateConfig({ state_dir: stateDir, auth: { dev_issuer: true } });
if (!parsed.ok) throw new Error('config');
const token = await mintDevToken(parsed.config, 'bench', [mode === 'mask' ? 'support' : 'dba'], 'machine', 3_600_000);
const before = new Set(readdirSync(profDir));
let tps = 0;
const cpu0 = cpuTicks();
const main0 = mainTicks();
const threads0 = threadTicks();
const t0 = Date.now();
if (mode === 'mask') {
  await upstream.psql(`SET ROLE bench; CREATE TABLE people AS SELECT g AS id, 'name ' || g AS name, 'user' || g || '@example.com' AS email, lpad(g::text, 9, '0') AS ssn, g * 3 AS score, now() AS created FROM generate_series(1, 1000000) g`, { db: 'bench' });
  const t = Date.now();
  await run('sh', ['-c', `psql -X -At -v FETCH_COUNT=20000 -d "host=127.0.0.1 port=${port} dbname=bench user=bench sslmode=disable" -c "select * from people" | wc -c`], { env: { PGPASSWORD: token }, timeoutMs: 900_000 });
  console.log(`mask: 1M rows in ${((Date.now() - t) / 1000).toFixed(2)} s`);
} else {
  const length = txPerClient === null ? ['-T', String(seconds)] : ['-t', String(txPerClient)];
  const bench = pgbench(port, { ...direct, PGPASSWORD: token }, ['-S', '-M', mode, '-c', '8', '-j', '2', ...length, '-n']);
  if (process.env.STRACE !== undefined) {
    // Syscalls per transaction: strace -c on the daemon for part of the run.
    await new Promise((r) => setTimeout(r, 1000));
    const st = await run('timeout', ['-s', 'INT', '3', 'strace', '-c', '-f', '-p', String(child.pid)]);
    console.log(st.stderr.split('\n').filter((l) => !l.startsWith('strace:')).slice(0, 14).join('\n'));
  }
  tps = await bench;
}
const cpu1 = cpuTicks();
const main1 = mainTicks();
const threads1 = threadTicks();
const wall = (Date.now() - t0) / 1000;
const label = `${mode} ${audit ? `audit on${process.env.AUDIT_FSYNC === '0' ? ' (fsync off)' : ''}` : 'audit off'}${profiling ? ', profiling' : ''}`;
say(`${label}: ${tps.toFixed(0)} tps (wall clock: noise on a loaded machine; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]})`);
say(`daemon CPU over ${wall.toFixed(1)} s: user ${((cpu1.user - cpu0.user) / 100 / wall * 100).toFixed(0)}%, sys ${((cpu1.sys - cpu0.sys) / 100 / wall * 100).toFixed(0)}% of one core`);
// Clock ticks are 10 ms: with TX set the transaction count is exact, otherwise estimated from tps × wall.
const transactions = txPerClient !== null ? txPerClient * 8 : tps * wall;
if (transactions > 0 && mode !== 'mask') {
  const perTx = (t: number): string => ((t * 10_000) / transactions).toFixed(1);
  say(`daemon CPU per transaction: ${perTx(cpu1.user - cpu0.user + cpu1.sys - cpu0.sys)} µs (user ${perTx(cpu1.user - cpu0.user)}, sys ${perTx(cpu1.sys - cpu0.sys)}) over ${Math.round(transactions)} transactions`);
  say(`main thread (event loop) CPU per transaction: ${perTx(main1.user - main0.user + main1.sys - main0.sys)} µs (user ${perTx(main1.user - main0.user)}, sys ${perTx(main1.sys - main0.sys)})`);
  // A thread that ended during the run is missing from the second reading (its ticks are in the process total only).
  const byThread = [...threads1].map(([name, t]) => [name, t - (threads0.get(name) ?? 0)] as const).filter(([, t]) => t > 0).sort((a, b) => b[1] - a[1]);
  say(`CPU per transaction by thread: ${byThread.map(([name, t]) => `${name} ${perTx(t)}`).join(', ')} µs`);
}
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
await upstream.stop();
// The main thread's profile is the largest (the audit writer thread writes its own, smaller one).
const file = readdirSync(profDir)
  .filter((f) => !before.has(f) && f.endsWith('.cpuprofile'))
  .sort((a, b) => statSync(join(profDir, b)).size - statSync(join(profDir, a)).size)[0];
if (file === undefined) process.exit(0);
interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }
const prof = JSON.parse(readFileSync(join(profDir, file), 'utf8')) as { nodes: Node[]; samples: number[] };
const keyOf = (n: Node): string => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${n.callFrame.lineNumber}`;
const self = new Map<string, number>();
let total = 0;
for (const n of prof.nodes) {
  self.set(keyOf(n), (self.get(keyOf(n)) ?? 0) + (n.hitCount ?? 0));
  total += n.hitCount ?? 0;
}
const idle = (self.get('(idle) :-1') ?? 0) + (self.get('(program) :-1') ?? 0);
const pct = (v: number): string => `${((100 * v) / total).toFixed(1).padStart(5)}%`;
say(`\ntop self time (% of all samples; idle+program ${pct(idle).trim()}):`);
for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30)) say(`${pct(v)}  ${k}`);
// Inclusive time: each sample counts once for every distinct function on its stack.
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const inclusive = new Map<string, number>();
const onPath = new Map<string, number>();
const walk = (n: Node): number => {
  const k = keyOf(n);
  onPath.set(k, (onPath.get(k) ?? 0) + 1);
  let sub = n.hitCount ?? 0;
  for (const c of n.children ?? []) {
    const child = byId.get(c);
    if (child !== undefined) sub += walk(child);
  }
  onPath.set(k, (onPath.get(k) ?? 1) - 1);
  // Count this subtree only at the outermost occurrence of the function (recursion).
  if ((onPath.get(k) ?? 0) === 0) inclusive.set(k, (inclusive.get(k) ?? 0) + sub);
  return sub;
};
const root = prof.nodes[0];
if (root !== undefined) walk(root);
say('\ntop inclusive time of airlock functions (dist/):');
for (const [k, v] of [...inclusive.entries()].filter(([k]) => k.includes(' dist/')).sort((a, b) => b[1] - a[1]).slice(0, 40)) say(`${pct(v)}  ${k}`);
console.log(`profile: ${join(profDir, file)}`);
