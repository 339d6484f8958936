/**
 * pgbench -S (select-only), simple and prepared, 8 clients: direct, pgbouncer (session pool)
 * and airlock, measured in the same run. Prints TPS, the ratios, and airlock's memory.
 * Usage: npx tsx bench/pg-throughput.ts [--seconds 15]
 */
import pg from 'pg';
import { startPgCluster, freePort } from '../src/dev/pgcluster.js';
import { mintDevToken } from '../src/auth/verifier.js';
import { validateConfig } from '../src/config.js';
import { startPgbouncer, startAirlockProcess, memoryOf, pgbench, table } from './lib.js';
import { run } from '../test/harness/clients.js';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1] || 15) || 15;
const rulesArg = process.argv.includes('--rules');

const upstream = await startPgCluster();
const password = 'bench-password-not-secret';
await upstream.psql('CREATE DATABASE bench');
await upstream.psql(`CREATE ROLE bench LOGIN PASSWORD '${password}'; ALTER DATABASE bench OWNER TO bench`);
const direct = { PGPASSWORD: password, PGUSER: 'bench', PGDATABASE: 'bench', PGSSLMODE: 'disable' };
await run('pgbench', ['-h', '127.0.0.1', '-p', String(upstream.port), '-i', '-s', '10', '-q'], { env: direct });

const bouncer = await startPgbouncer(upstream, 'bench', 'bench', password);
const port = await freePort();
const dir = mkdtempSync(join(tmpdir(), 'airlock-bench-pw-'));
writeFileSync(join(dir, 'pw'), password, { mode: 0o600 });
const doc = {
  auth: { dev_issuer: true },
  connections: [
    {
      name: 'bench',
      protocol: 'postgres',
      listen: `127.0.0.1:${port}`,
      upstream: { host: '127.0.0.1', port: upstream.port, database: 'bench' },
      credentials: { type: 'static', username: 'bench', password: `\${file:${join(dir, 'pw')}}` },
      allow_groups: ['dba'],
    },
  ],
  rules: rulesArg ? REALISTIC_RULES() : [],
};
const airlock = await startAirlockProcess(doc, port);
const parsed = validateConfig({ ...doc, state_dir: airlock.stateDir });
if (!parsed.ok) throw new Error('bench config invalid');
const token = await mintDevToken(parsed.config, 'bench', ['dba'], 'machine', 3_600_000);
const viaAirlock = { PGPASSWORD: token, PGUSER: 'bench', PGDATABASE: 'bench', PGSSLMODE: 'disable' };

const results: Record<string, Record<string, number>> = {};
for (const mode of ['simple', 'prepared']) {
  results[mode] = {};
  const args = ['-S', '-M', mode, '-c', '8', '-j', '2', '-T', String(seconds), '-n'];
  // Warm-up, then interleave so drift on a shared machine hits every target alike.
  await pgbench(airlock.port, viaAirlock, ['-S', '-M', mode, '-c', '8', '-j', '2', '-T', '2', '-n']);
  const r = results[mode];
  r.direct = await pgbench(upstream.port, direct, args);
  r.pgbouncer = await pgbench(bouncer.port, direct, args);
  r.airlock = await pgbench(airlock.port, viaAirlock, args);
}
const peak = memoryOf(airlock.pid);

// 500 idle sessions.
const idle: pg.Client[] = [];
for (let i = 0; i < 500; i++) {
  const c = new pg.Client({ host: '127.0.0.1', port: airlock.port, user: 'bench', database: 'bench', password: token });
  await c.connect();
  idle.push(c);
}
await new Promise((r) => setTimeout(r, 1000));
const idleMem = memoryOf(airlock.pid);
await Promise.all(idle.map((c) => c.end()));

const rows = [['mode', 'direct tps', 'pgbouncer tps', 'airlock tps', 'airlock/direct', 'airlock/pgbouncer']];
for (const [mode, r] of Object.entries(results)) {
  rows.push([mode, (r.direct ?? 0).toFixed(0), (r.pgbouncer ?? 0).toFixed(0), (r.airlock ?? 0).toFixed(0), ((r.airlock ?? 0) / (r.direct ?? 1)).toFixed(2), ((r.airlock ?? 0) / (r.pgbouncer ?? 1)).toFixed(2)]);
}
console.log(`\npgbench -S, 8 clients, ${seconds}s per run${rulesArg ? ', 10 rules loaded' : ''} (${new Date().toISOString().slice(0, 10)})`);
console.log(table(rows));
console.log(`airlock peak RSS: ${peak.peakMiB} MiB; RSS with 500 idle sessions: ${idleMem.rssMiB} MiB (peak ${idleMem.peakMiB} MiB)`);

await airlock.stop();
bouncer.stop();
await upstream.stop();
process.exit(0);

function REALISTIC_RULES(): unknown[] {
  return [
    { name: 'no-ddl-for-agents', when: { groups: ['agents'], statements: ['drop', 'truncate', 'alter', 'create', 'grant', 'revoke'] }, effect: 'deny' },
    { name: 'no-unbounded-writes', when: { statements: ['update', 'delete'], without_where: true }, effect: 'deny' },
    { name: 'orders-writes-need-a-dba', when: { statements: ['insert', 'update', 'delete', 'merge'], tables: ['public.orders'] }, effect: 'approve', approvers: ['dba'] },
    { name: 'opaque-is-denied', when: { opaque: true }, effect: 'deny' },
    { name: 'no-copy-program', when: { statements: ['copy'], groups: ['agents'] }, effect: 'deny' },
    { name: 'no-secrets-table', when: { tables: ['*.secrets', 'vault.*'] }, effect: 'deny' },
    { name: 'no-dblink', when: { functions: ['dblink*', 'pg_read_file', 'lo_import'] }, effect: 'deny' },
    { name: 'ci-read-only', when: { groups: ['ci'], statements: ['insert', 'update', 'delete', 'merge', 'truncate'] }, effect: 'deny' },
    { name: 'no-vacuum-full', when: { statements: ['vacuum'], groups: ['agents', 'ci'] }, effect: 'deny' },
    { name: 'history-append-only', when: { statements: ['update', 'delete'], tables: ['public.pgbench_history'] }, effect: 'deny' },
  ];
}
