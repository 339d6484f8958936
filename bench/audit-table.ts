/**
 * The audit table of issue 17, from what pg-throughput, mysql-throughput and http-proxy measured in this run
 * (.bench/audit.json): per workload, audited / audit-off and audit-off / do-nothing proxy (targets ≥ 0.8 each),
 * and the p50/p99 latency airlock adds over a direct connection, audit on and off.
 * Usage: npx tsx bench/audit-table.ts
 */
import { existsSync, readFileSync } from 'node:fs';
import { AUDIT_RESULTS, table, type AuditRow } from './lib.js';

if (!existsSync(AUDIT_RESULTS)) {
  console.log('no audit figures: run bench/pg-throughput.ts, bench/mysql-throughput.ts and bench/http-proxy.ts first');
  process.exit(0);
}
const rows = JSON.parse(readFileSync(AUDIT_RESULTS, 'utf8')) as AuditRow[];
const f = (n: number, d = 2): string => (Number.isFinite(n) ? n.toFixed(d) : '?');
const target = (r: number): string => `${f(r)} ${r >= 0.8 ? 'met' : 'missed'}`;
console.log(table([
  ['workload', 'pipe', 'audit off', 'audit on', 'on/off (≥0.8)', 'off/pipe (≥0.8)', 'adds p50 ms on (off)', 'adds p99 ms on (off)', 'measured'],
  ...rows.map((r) => [
    r.workload,
    f(r.pipe.tps, 0),
    f(r.auditOff.tps, 0),
    f(r.auditOn.tps, 0),
    target(r.auditOn.tps / r.auditOff.tps),
    target(r.auditOff.tps / r.pipe.tps),
    `${f(r.auditOn.p50 - r.direct.p50)} (${f(r.auditOff.p50 - r.direct.p50)})`,
    `${f(r.auditOn.p99 - r.direct.p99)} (${f(r.auditOff.p99 - r.direct.p99)})`,
    r.measuredAt.slice(0, 16),
  ]),
]));
console.log('throughput in transactions (requests) per second; latency added = percentile through airlock − percentile direct, same run.');
