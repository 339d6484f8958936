/**
 * Postgres benchmarks, every figure measured in the same run on this machine:
 *  - pgbench -S (select-only), simple and prepared, 8 clients: direct, pgbouncer (session
 *    pool), airlock (default: audit on, no rules), airlock with 10 rules, airlock with audit off;
 *  - airlock's peak RSS, and RSS with 500 idle sessions;
 *  - a 2 GB result through airlock: time and airlock's peak RSS;
 *  - connection setup (connect → first query): direct, static and ephemeral credentials;
 *  - 5 million rows × 6 columns with 2 masked: direct, airlock masking off, masking on.
 * Usage: npx tsx bench/pg-throughput.ts [--seconds 10] [--quick] [--only-pgbench | --only-masking]
 */
import pg from 'pg';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPgCluster, freePort } from '../app/dev/pgcluster.js';
import { mintDevToken } from '../src/auth/verifier.js';
import { validateConfig } from '../app/config.js';
import { startPgbouncer, startTcpPipe, startAirlockProcess, memoryOf, pgbench, pgbenchLatency, recordAuditRow, table, type AirlockProcess, type Measured } from './lib.js';
import { run } from '../test/harness/clients.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) || dflt : dflt;
};
const seconds = arg('--seconds', 10);
const quick = process.argv.includes('--quick');
const onlyMasking = process.argv.includes('--only-masking');
const bigRows = quick ? 200_000 : 2_000_000;
const maskRows = quick ? 500_000 : 5_000_000;

const upstream = await startPgCluster({ extraConf: { shared_buffers: "'256MB'", max_connections: '700' } });
const password = 'bench-password-not-secret';
await upstream.psql('CREATE DATABASE bench');
await upstream.psql(`CREATE ROLE bench LOGIN PASSWORD '${password}' CREATEROLE; ALTER DATABASE bench OWNER TO bench`);
await upstream.psql('CREATE ROLE bench_read; GRANT pg_read_all_data TO bench_read', { db: 'bench' });
await upstream.psql('GRANT bench_read TO bench WITH ADMIN OPTION');
const direct = { PGPASSWORD: password, PGUSER: 'bench', PGDATABASE: 'bench', PGSSLMODE: 'disable' };
await run('pgbench', ['-h', '127.0.0.1', '-p', String(upstream.port), '-i', '-s', '10', '-q'], { env: direct });
const bouncer = await startPgbouncer(upstream, 'bench', 'bench', password);
const pipe = await startTcpPipe(upstream.port);

const dir = mkdtempSync(join(tmpdir(), 'airlock-bench-pw-'));
writeFileSync(join(dir, 'pw'), password, { mode: 0o600 });
const RULES = [
  { name: 'no-ddl-for-agents', when: { groups: ['agents'], statements: ['drop', 'truncate', 'alter', 'create', 'grant', 'revoke'] }, effect: 'deny' },
  { name: 'no-unbounded-writes', when: { statements: ['update', 'delete'], without_where: true }, effect: 'deny' },
  { name: 'orders-writes-need-a-dba', when: { statements: ['insert', 'update', 'delete', 'merge'], tables: ['public.orders'], groups: ['dev'] }, effect: 'approve', approvers: ['dba'] },
  { name: 'opaque-is-denied', when: { opaque: true, groups: ['agents'] }, effect: 'deny' },
  { name: 'no-copy-for-agents', when: { statements: ['copy'], groups: ['agents'] }, effect: 'deny' },
  { name: 'no-secrets-table', when: { tables: ['*.secrets', 'vault.*'] }, effect: 'deny' },
  { name: 'no-dblink', when: { functions: ['dblink*', 'pg_read_file', 'lo_import'] }, effect: 'deny' },
  { name: 'ci-read-only', when: { groups: ['ci'], statements: ['insert', 'update', 'delete', 'merge', 'truncate'] }, effect: 'deny' },
  { name: 'no-vacuum-full', when: { statements: ['vacuum'], groups: ['agents', 'ci'] }, effect: 'deny' },
  { name: 'history-append-only', when: { statements: ['update', 'delete'], tables: ['public.pgbench_history'] }, effect: 'deny' },
];
const MASK_RULES = [
  { name: 'pii', when: { groups: ['support'] }, effect: 'mask', columns: ['public.people.email', 'public.people.ssn'], method: 'redact' },
];

async function airlockWith(extra: Record<string, unknown>, credentials?: Record<string, unknown>): Promise<AirlockProcess> {
  const port = await freePort();
  const doc = {
    auth: { dev_issuer: true },
    connections: [
      {
        name: 'bench',
        protocol: 'postgres',
        listen: `127.0.0.1:${port}`,
        upstream: { host: '127.0.0.1', port: upstream.port, database: 'bench' },
        credentials: credentials ?? { type: 'static', username: 'bench', password: `\${file:${join(dir, 'pw')}}` },
        allow_groups: ['dba', 'support'],
      },
    ],
    ...extra,
  };
  return startAirlockProcess(doc, port);
}

async function tokenFor(a: AirlockProcess, groups = ['dba']): Promise<string> {
  const parsed = validateConfig({ state_dir: a.stateDir, auth: { dev_issuer: true } });
  if (!parsed.ok) throw new Error('bench config invalid');
  return mintDevToken(parsed.config, 'bench', groups, 'machine', 3_600_000);
}

if (!onlyMasking) {
const plain = await airlockWith({});
const ruled = await airlockWith({ rules: RULES });
const unaudited = await airlockWith({ audit: { enabled: false } });
const targets: Array<[string, number, NodeJS.ProcessEnv]> = [
  ['direct', upstream.port, direct],
  ['pgbouncer', bouncer.port, direct],
  ['node tcp pipe', pipe.port, direct],
  ['airlock', plain.port, { ...direct, PGPASSWORD: await tokenFor(plain) }],
  ['airlock+10 rules', ruled.port, { ...direct, PGPASSWORD: await tokenFor(ruled) }],
  ['airlock audit off', unaudited.port, { ...direct, PGPASSWORD: await tokenFor(unaudited) }],
];

const tps: Record<string, Record<string, number>> = {};
for (const mode of ['simple', 'prepared']) {
  tps[mode] = {};
  for (const [, port, env] of targets) await pgbench(port, env, ['-S', '-M', mode, '-c', '8', '-j', '2', '-T', '2', '-n']);
  const measured: Record<string, Measured> = {};
  for (const [name, port, env] of targets) {
    const m = await pgbenchLatency(port, env, ['-S', '-M', mode, '-c', '8', '-j', '2', '-T', String(seconds), '-n']);
    measured[name] = m;
    (tps[mode] as Record<string, number>)[name] = m.tps;
  }
  const need = (n: string): Measured => measured[n] ?? { tps: Number.NaN, p50: Number.NaN, p99: Number.NaN };
  recordAuditRow({ workload: `PostgreSQL pgbench -S ${mode}`, pipe: need('node tcp pipe'), direct: need('direct'), auditOff: need('airlock audit off'), auditOn: need('airlock'), measuredAt: new Date().toISOString() });
}
const peak = memoryOf(plain.pid);

const f = (n: number | undefined): string => (n ?? 0).toFixed(0);
const ratio = (a: number | undefined, b: number | undefined): string => ((a ?? 0) / (b ?? 1)).toFixed(2);
const rows = [['mode', ...targets.map(([n]) => `${n} tps`), 'airlock/direct', 'airlock/pgbouncer', 'pipe/pgbouncer', 'audit off/pipe', 'rules/no rules', 'audit on/off']];
for (const [mode, r] of Object.entries(tps)) {
  rows.push([mode, ...targets.map(([n]) => f(r[n])), ratio(r.airlock, r.direct), ratio(r.airlock, r.pgbouncer), ratio(r['node tcp pipe'], r.pgbouncer), ratio(r['airlock audit off'], r['node tcp pipe']), ratio(r['airlock+10 rules'], r.airlock), ratio(r.airlock, r['airlock audit off'])]);
}
console.log(`\n## pgbench -S, 8 clients, ${seconds}s per run (${new Date().toISOString().slice(0, 10)}, ${process.arch}, 2 cores)`);
console.log(table(rows));
if (process.argv.includes('--only-pgbench')) {
  for (const a of [plain, ruled, unaudited]) await a.stop();
  bouncer.stop();
  pipe.stop();
  await upstream.stop();
  process.exit(0);
}
const idle: pg.Client[] = [];
const plainToken = await tokenFor(plain);
for (let i = 0; i < 500; i++) {
  const c = new pg.Client({ host: '127.0.0.1', port: plain.port, user: 'bench', database: 'bench', password: plainToken });
  await c.connect();
  idle.push(c);
}
await new Promise((r) => setTimeout(r, 1000));
const idleMem = memoryOf(plain.pid);
await Promise.all(idle.map((c) => c.end()));

console.log(`airlock peak RSS after the runs: ${peak.peakMiB} MiB; RSS with 500 idle sessions: ${idleMem.rssMiB} MiB`);
await ruled.stop();
await unaudited.stop();

// A large result: bounded memory.
const big = await airlockWith({});
const bigToken = await tokenFor(big);
const before = memoryOf(big.pid);
const t0 = Date.now();
const bigRun = await run('sh', ['-c', `psql -X -At -d "host=127.0.0.1 port=${big.port} dbname=bench user=bench sslmode=disable" -c "select g, repeat('x', 1000) from generate_series(1, ${bigRows}) g" | wc -c`], { env: { PGPASSWORD: bigToken }, timeoutMs: 900_000 });
const bigSecs = (Date.now() - t0) / 1000;
const after = memoryOf(big.pid);
console.log(`\n## A ${(Number(bigRun.stdout.trim()) / 1e9).toFixed(2)} GB result through airlock: ${bigSecs.toFixed(1)} s; airlock RSS before ${before.rssMiB} MiB, peak ${after.peakMiB} MiB`);
await big.stop();

// Connection setup: connect → first query, medians of 40.
async function setupMedian(port: number, user: string, pass: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 40; i++) {
    const t = process.hrtime.bigint();
    const c = new pg.Client({ host: '127.0.0.1', port, user, database: 'bench', password: pass });
    await c.connect();
    await c.query('select 1');
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
    await c.end();
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? 0;
}
const eph = await airlockWith({}, { type: 'ephemeral', admin: { username: 'bench', password: `\${file:${join(dir, 'pw')}}` }, grant: ['bench_read'], ttl: '1h' });
const dMed = await setupMedian(upstream.port, 'bench', password);
const sMed = await setupMedian(plain.port, 'bench', plainToken);
const eMed = await setupMedian(eph.port, 'bench', await tokenFor(eph));
console.log('\n## Connection setup (connect → first query), median of 40');
console.log(table([['direct ms', 'static ms', 'ephemeral ms', 'static/direct', 'ephemeral/static'], [dMed.toFixed(1), sMed.toFixed(1), eMed.toFixed(1), (sMed / dMed).toFixed(2), (eMed / sMed).toFixed(2)]]));
await eph.stop();
await plain.stop();

}

// Masking throughput: maskRows rows × 6 columns, 2 masked.
await upstream.psql(
  `SET ROLE bench; CREATE TABLE people AS SELECT g AS id, 'name ' || g AS name, 'user' || g || '@example.com' AS email, lpad(g::text, 9, '0') AS ssn, g * 3 AS score, now() AS created FROM generate_series(1, ${maskRows}) g`,
  { db: 'bench' },
);
const masking = await airlockWith({ rules: MASK_RULES });
const q = `select * from people`;
async function timed(port: number, user: string, pass: string): Promise<{ secs: number; bytes: number }> {
  const t = Date.now();
  const r = await run('sh', ['-c', `psql -X -At -v FETCH_COUNT=20000 -d "host=127.0.0.1 port=${port} dbname=bench user=${user} sslmode=disable" -c "${q}" | wc -c`], { env: { PGPASSWORD: pass }, timeoutMs: 900_000 });
  return { secs: (Date.now() - t) / 1000, bytes: Number(r.stdout.trim()) };
}
const mDirect = await timed(upstream.port, 'bench', password);
const mOff = await timed(masking.port, 'bench', await tokenFor(masking, ['dba']));
const mOn = await timed(masking.port, 'bench', await tokenFor(masking, ['support']));
const mPeak = memoryOf(masking.pid);
const rps = (s: number): string => (maskRows / s / 1000).toFixed(0);
console.log(`\n## ${maskRows} rows × 6 columns (2 masked), psql FETCH_COUNT=20000`);
console.log(table([
  ['target', 'seconds', 'k rows/s'],
  ['direct', mDirect.secs.toFixed(1), rps(mDirect.secs)],
  ['airlock, masking off', mOff.secs.toFixed(1), rps(mOff.secs)],
  ['airlock, masking on', mOn.secs.toFixed(1), rps(mOn.secs)],
]));
console.log(`masking on / masking off throughput: ${(mOff.secs / mOn.secs).toFixed(2)}; airlock peak RSS ${mPeak.peakMiB} MiB`);
await masking.stop();

bouncer.stop();
pipe.stop();
await upstream.stop();
process.exit(0);
