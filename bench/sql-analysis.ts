/**
 * Statement analysis cost: µs per statement cold (no cache: parse + walk + lineage) and
 * cached (normalise + LRU hit), for a pgbench-like mix with fresh literals on every call.
 * Run: npx tsx bench/sql-analysis.ts [iterations]
 */
import { AnalysisCache, analyzePostgres, loadSqlParsers } from '../parsers/sql/index.js';

const settings = { standardConformingStrings: true, searchPath: ['"$user"', 'public'] };
const rnd = (n: number): number => Math.floor(Math.random() * n) + 1;

const mix: Array<() => string> = [
  () => `UPDATE pgbench_accounts SET abalance = abalance + ${rnd(10000) - 5000} WHERE aid = ${rnd(100000)};`,
  () => `SELECT abalance FROM pgbench_accounts WHERE aid = ${rnd(100000)};`,
  () => `UPDATE pgbench_tellers SET tbalance = tbalance + ${rnd(10000) - 5000} WHERE tid = ${rnd(10)};`,
  () => `UPDATE pgbench_branches SET bbalance = bbalance + ${rnd(10000) - 5000} WHERE bid = ${rnd(1)};`,
  () => `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${rnd(10)}, 1, ${rnd(100000)}, ${rnd(9999)}, CURRENT_TIMESTAMP);`,
  () => 'BEGIN;',
  () => 'END;',
  () => `SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relname OPERATOR(pg_catalog.~) '^(t${rnd(99)})$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3;`,
];

function measure(label: string, iterations: number, cache: AnalysisCache | null): void {
  const texts = Array.from({ length: iterations }, (_, i) => (mix[i % mix.length] ?? (() => 'SELECT 1'))());
  for (const t of texts.slice(0, 2000)) analyzePostgres(t, settings, cache);
  const start = process.hrtime.bigint();
  for (const t of texts) analyzePostgres(t, settings, cache);
  const us = Number(process.hrtime.bigint() - start) / 1000 / texts.length;
  const rate = cache === null ? '' : `  (hit rate ${(100 * cache.hits / Math.max(1, cache.hits + cache.misses)).toFixed(1)}%)`;
  console.log(`${label.padEnd(8)} ${us.toFixed(2)} µs/statement${rate}`);
}

await loadSqlParsers();
const iterations = Number(process.argv[2] ?? 50_000);
measure('cold', iterations, null);
measure('cached', iterations, new AnalysisCache(10_000));
