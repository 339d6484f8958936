/**
 * MySQL/MariaDB throughput, every figure measured in the same run on this machine:
 * sysbench oltp_point_select (prepared statements, and again as text queries: COM_QUERY, the
 * statements the pipelined write-ahead audit forwards while their record syncs) and oltp_read_only with 8 threads,
 * direct vs airlock (rules on) vs airlock with rules and a mask rule on a column the
 * workload reads, and with the write-ahead audit off. Prints each tps and its ratio to direct.
 * Usage: npx tsx bench/mysql-throughput.ts [--seconds 10] [--threads 8] [--table-size 10000]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startLocalMaria } from '../test/harness/mariadb-local.js';
import { airlockCommand } from '../test/harness/airlock.js';
import { freePort } from '../test/harness/ports.js';
import { run } from '../test/harness/clients.js';
import { mintDevToken } from '../src/auth/verifier.js';
import { validateConfig } from '../app/config.js';
import { recordAuditRow, startTcpPipe, table, type Measured } from './lib.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) || dflt : dflt;
};
const seconds = arg('--seconds', 10);
const threads = arg('--threads', 8);
const tableSize = arg('--table-size', 10_000);
const password = 'bench-password-not-secret';

const maria = await startLocalMaria({ password });
const common = (port: number, pw: string): string[] => [
  '--db-driver=mysql', '--mysql-host=127.0.0.1', `--mysql-port=${port}`, '--mysql-user=app', `--mysql-password=${pw}`, '--mysql-db=appdb',
  '--mysql-ssl=off', '--tables=1', `--table-size=${tableSize}`,
];
const prep = await run('sysbench', ['oltp_point_select', ...common(maria.port, password), 'prepare'], { timeoutMs: 600_000 });
if (prep.code !== 0) throw new Error(`sysbench prepare failed: ${prep.stderr}`);

const RULES = [
  { name: 'no-ddl', when: { statements: ['drop', 'truncate', 'alter', 'create', 'grant', 'revoke'] }, effect: 'deny' },
  { name: 'no-unbounded-writes', when: { statements: ['update', 'delete'], without_where: true }, effect: 'deny' },
  { name: 'no-secrets-table', when: { tables: ['*.secrets'] }, effect: 'deny' },
  { name: 'no-outfile', when: { statements: ['into_outfile', 'load_data'] }, effect: 'deny' },
];
const MASK = { name: 'mask-c', when: { groups: ['bench'] }, effect: 'mask', columns: ['appdb.sbtest1.c'], method: 'redact' };

interface Airlock {
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

async function startAirlock(rules: unknown[], extra: Record<string, unknown> = {}): Promise<Airlock> {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-bench-mysql-'));
  const port = await freePort();
  const doc = {
    state_dir: join(dir, 'state'),
    log: { level: 'warn' },
    auth: { dev_issuer: true },
    connections: [maria.connection('bench', port, { allow_groups: ['bench'] })],
    rules,
    ...extra,
  };
  const configFile = join(dir, 'airlock.yaml');
  writeFileSync(configFile, stringify(doc));
  const { cmd, argv } = airlockCommand(['serve', '--config', configFile, '--log-level', 'warn']);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'inherit', 'inherit'] });
  await waitForPort(port);
  const parsed = validateConfig({ state_dir: doc.state_dir, auth: { dev_issuer: true } });
  if (!parsed.ok) throw new Error('bench config invalid');
  return { port, token: await mintDevToken(parsed.config, 'bench', ['bench'], 'machine', 3_600_000), child };
}

/** tps, and p50/p99 latency (ms) from sysbench's latency histogram. */
async function sysbench(test: string, port: number, pw: string, extra: string[] = []): Promise<Measured> {
  const r = await run('sysbench', [test, ...common(port, pw), ...extra, `--threads=${threads}`, `--time=${seconds}`, '--report-interval=0', '--histogram=on', 'run'], { timeoutMs: (seconds + 120) * 1000 });
  const m = /transactions:\s+\d+\s+\(([\d.]+) per sec\.\)/.exec(r.stdout);
  if (r.code !== 0 || m === null) throw new Error(`sysbench ${test} failed: ${r.stderr}\n${r.stdout}`);
  const buckets: Array<[number, number]> = [];
  for (const line of r.stdout.split('\n')) {
    const b = /^\s*([\d.]+) \|[*\s]*?(\d+)\s*$/.exec(line);
    if (b !== null) buckets.push([Number(b[1]), Number(b[2])]);
  }
  const total = buckets.reduce((n, [, c]) => n + c, 0);
  const at = (q: number): number => {
    let seen = 0;
    for (const [v, c] of buckets) if ((seen += c) >= q * total) return v;
    return Number.NaN;
  };
  return { tps: Number(m[1]), p50: at(0.5), p99: at(0.99) };
}

const ruled = await startAirlock(RULES);
const masked = await startAirlock([...RULES, MASK]);
const unaudited = await startAirlock(RULES, { audit: { enabled: false } });
const pipe = await startTcpPipe(maria.port);
const targets: Array<[string, number, string]> = [
  ['direct', maria.port, password],
  ['node tcp pipe', pipe.port, password],
  ['airlock (5 rules)', ruled.port, ruled.token],
  ['airlock (rules + mask)', masked.port, masked.token],
  ['airlock (rules, audit off)', unaudited.port, unaudited.token],
];
const rows: string[][] = [['workload', ...targets.map((t) => t[0]), ...targets.slice(1).map((t) => `${t[0]} / direct`)]];
try {
  const workloads: Array<[string, string, string[]]> = [
    ['oltp_point_select', 'oltp_point_select', []],
    ['oltp_point_select', 'oltp_point_select text', ['--db-ps-mode=disable']],
    ['oltp_read_only', 'oltp_read_only', []],
  ];
  for (const [test, label, extra] of workloads) {
    const runs: Measured[] = [];
    for (const [, port, pw] of targets) runs.push(await sysbench(test, port, pw, extra));
    const tps = runs.map((r) => r.tps);
    const nan = { tps: Number.NaN, p50: Number.NaN, p99: Number.NaN };
    if (test === 'oltp_point_select') recordAuditRow({ workload: `MySQL sysbench ${label.replace('oltp_', '')} ${threads} thr`, direct: runs[0] ?? nan, pipe: runs[1] ?? nan, auditOn: runs[2] ?? nan, auditOff: runs[4] ?? nan, measuredAt: new Date().toISOString() });
    const base = tps[0] ?? 1;
    rows.push([`${label} ${threads} thr`, ...tps.map((t) => t.toFixed(0)), ...tps.slice(1).map((t) => (t / base).toFixed(2))]);
  }
  console.log(table(rows));
} finally {
  for (const a of [ruled, masked, unaudited]) a.child.kill('SIGTERM');
  pipe.stop();
  await maria.stop();
}
