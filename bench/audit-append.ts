/**
 * Audit append throughput: N appenders each awaiting its own append in a loop (as N
 * sessions do, one action event per statement), fsync on and off.
 *
 *   npx tsx bench/audit-append.ts [seconds-per-case=3] [dir=tmpdir]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, type AuditEventBody } from '../src/audit/index.js';

const seconds = Number(process.argv[2] ?? 3);
const base = process.argv[3] ?? tmpdir();

function event(session: number, i: number): AuditEventBody {
  return {
    type: 'action',
    session: `bench-${session}`,
    action: {
      kind: 'sql',
      dialect: 'postgres',
      text: `UPDATE pgbench_accounts SET abalance = abalance + ${i % 5000} WHERE aid = ${i};`,
      statements: ['update'],
      reads: [],
      writes: ['pgbench_accounts'],
      opaque: false,
      unparsed: false,
    },
    decision: 'allow',
    rules: [],
  };
}

async function runCase(appenders: number, fsync: boolean): Promise<void> {
  const state = await mkdtemp(join(base, 'airlock-audit-bench-'));
  const log = await AuditLog.open({ dir: join(state, 'audit'), node: 'bench', fsync });
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  let total = 0;
  await Promise.all(
    Array.from({ length: appenders }, async (_, s) => {
      for (let i = 0; performance.now() < deadline; i++) {
        await log.append(event(s, i));
        total++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const { batches } = log.stats;
  await log.close();
  await rm(state, { recursive: true, force: true });
  const rate = Math.round(total / elapsed);
  console.log(
    `${String(appenders).padStart(2)} appender(s), fsync ${fsync ? 'on ' : 'off'}: ${String(rate).padStart(7)} appends/s  (${total} appends in ${batches} batches, ${(total / Math.max(1, batches)).toFixed(1)} per sync)`,
  );
}

for (const fsync of [true, false]) {
  for (const appenders of [1, 8, 16]) await runCase(appenders, fsync);
}
