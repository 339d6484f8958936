/**
 * CPU profile of the airlock daemon under pgbench -S (for finding where time goes).
 *   npx tsx bench/profile-pg.ts [simple|prepared|mask] [audit-on|audit-off] [seconds=8]
 * AUDIT_FSYNC=0: audit on with `audit.fsync: false` (what the audit costs without its syncs).
 * `mask`: psql reads 1M rows × 6 columns through airlock with 2 columns masked (FETCH_COUNT=20000).
 * Writes a .cpuprofile into $PROFILE_DIR (default /tmp/airlock-prof) and prints the top self-time functions.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
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
const child = spawn(process.execPath, [...(profiling ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []), resolve('dist/bin/airlock.js'), 'serve', '--config', join(dir, 'airlock.yaml')], { stdio: 'inherit' });
/** utime and stime of the daemon in clock ticks (/proc/PID/stat fields 14 and 15). */
const cpuTicks = (): { user: number; sys: number } => {
  const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return { user: Number(f[11]), sys: Number(f[12]) };
};
for (let i = 0; i < 200; i++) {
  if ((await run('pg_isready', ['-h', '127.0.0.1', '-p', String(port)])).code === 0) break;
  await new Promise((r) => setTimeout(r, 100));
}
const parsed = validateConfig({ state_dir: stateDir, auth: { dev_issuer: true } });
if (!parsed.ok) throw new Error('config');
const token = await mintDevToken(parsed.config, 'bench', [mode === 'mask' ? 'support' : 'dba'], 'machine', 3_600_000);
const before = new Set(readdirSync(profDir));
const cpu0 = cpuTicks();
const t0 = Date.now();
if (mode === 'mask') {
  await upstream.psql(`SET ROLE bench; CREATE TABLE people AS SELECT g AS id, 'name ' || g AS name, 'user' || g || '@example.com' AS email, lpad(g::text, 9, '0') AS ssn, g * 3 AS score, now() AS created FROM generate_series(1, 1000000) g`, { db: 'bench' });
  const t = Date.now();
  await run('sh', ['-c', `psql -X -At -v FETCH_COUNT=20000 -d "host=127.0.0.1 port=${port} dbname=bench user=bench sslmode=disable" -c "select * from people" | wc -c`], { env: { PGPASSWORD: token }, timeoutMs: 900_000 });
  console.log(`mask: 1M rows in ${((Date.now() - t) / 1000).toFixed(2)} s`);
} else {
  const bench = pgbench(port, { ...direct, PGPASSWORD: token }, ['-S', '-M', mode, '-c', '8', '-j', '2', '-T', String(seconds), '-n']);
  if (process.env.STRACE !== undefined) {
    // Syscalls per transaction: strace -c on the daemon for part of the run.
    await new Promise((r) => setTimeout(r, 1000));
    const st = await run('timeout', ['-s', 'INT', '3', 'strace', '-c', '-f', '-p', String(child.pid)]);
    console.log(st.stderr.split('\n').filter((l) => !l.startsWith('strace:')).slice(0, 14).join('\n'));
  }
  const tps = await bench;
  console.log(`${mode} ${audit ? 'audit on' : 'audit off'}: ${tps.toFixed(0)} tps`);
}
const cpu1 = cpuTicks();
const wall = (Date.now() - t0) / 1000;
console.log(`daemon CPU over ${wall.toFixed(1)} s: user ${((cpu1.user - cpu0.user) / 100 / wall * 100).toFixed(0)}%, sys ${((cpu1.sys - cpu0.sys) / 100 / wall * 100).toFixed(0)}% of one core`);
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
await upstream.stop();
const file = readdirSync(profDir).find((f) => !before.has(f) && f.endsWith('.cpuprofile'));
if (file === undefined) process.exit(0);
interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }
const prof = JSON.parse(readFileSync(join(profDir, file), 'utf8')) as { nodes: Node[]; samples: number[] };
const self = new Map<string, number>();
let total = 0;
for (const n of prof.nodes) {
  const key = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${n.callFrame.lineNumber}`;
  self.set(key, (self.get(key) ?? 0) + (n.hitCount ?? 0));
  total += n.hitCount ?? 0;
}
const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25);
for (const [k, v] of top) console.log(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
console.log(`profile: ${join(profDir, file)}`);
