/**
 * The differential runner of the compatibility suite: each scenario runs twice — connected
 * directly to the server and through airlock — and the two outcomes (rows, types, errors and
 * their codes, events, close behaviour), reduced to plain JSON, must be equal. A difference is
 * accepted only where expected-differences.yaml names it with the README section explaining it.
 */
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { parse } from 'yaml';

export type Driver = 'pg' | 'postgres.js' | 'psql' | 'pg_dump' | 'mysql2' | 'mariadb' | 'mariadb-dump';

/** Where a scenario connects: the server itself, or airlock in front of it. */
export interface Target {
  via: 'direct' | 'airlock';
  host: '127.0.0.1';
  port: number;
  user: string;
  password: string;
  database: string;
  /** The CA of the TLS certificate both ways in offer. */
  tlsCa?: string;
  /** Through airlock: a listener on the same server with airlock's default policy (no permissive rule). */
  defaultPolicyPort?: number;
  /** The other way in to the same server (for a second connection that kills or notifies). */
  peer?: Target;
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface Scenario {
  driver: Driver;
  name: string;
  run(t: Target): Promise<unknown>;
}

export interface ExpectedDifference {
  driver: Driver;
  scenario: string;
  /** The README section that explains the difference. */
  readme: string;
  why: string;
}

export type Verdict = 'same' | 'expected difference' | 'different';

export interface Result {
  driver: Driver;
  scenario: string;
  verdict: Verdict;
  direct: Json;
  airlock: Json;
  /** The direct run raised nothing the scenario did not catch itself. */
  directPassed: boolean;
  note?: string;
}

const SECRET_FIELDS = new Set(['password', 'token']);

/** Reduces what a driver returned or threw to comparable JSON. */
export function toJson(v: unknown, depth = 0): Json {
  if (depth > 12) return '<deep>';
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : v;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (Buffer.isBuffer(v)) return `hex:${v.toString('hex')}`;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString();
  if (v instanceof Error) return errorJson(v);
  if (Array.isArray(v)) return v.map((x) => toJson(x, depth + 1));
  if (typeof v === 'object') {
    const out: Record<string, Json> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (typeof x === 'function' || SECRET_FIELDS.has(k)) continue;
      out[k] = toJson(x, depth + 1);
    }
    return out;
  }
  return String(v);
}

/** Cuts a message to its first line; connection ids (MariaDB connector's `(conn:12, …`) differ by nature. */
const normalise = (m: string): string => m.replace(/\s*\n[\s\S]*$/, '').replace(/\(conn:-?\d+, /, '(conn:N, ');

/** The parts of a driver error that a caller acts on: codes, severity, message. */
export function errorJson(e: unknown): Json {
  if (!(e instanceof Error)) return { thrown: toJson(e) };
  const x = e as Error & Record<string, unknown>;
  const out: Record<string, Json> = { error: x.constructor.name, message: normalise(x.message) };
  for (const k of ['code', 'errno', 'sqlState', 'sqlMessage', 'severity', 'position', 'routine', 'fatal']) {
    if (x[k] !== undefined) out[k] = typeof x[k] === 'string' ? normalise(x[k] as string) : toJson(x[k]);
  }
  return out;
}

/** Runs fn and returns its value, or the error it threw, as JSON. */
export async function outcome(fn: () => Promise<unknown>): Promise<{ value: Json; threw: boolean }> {
  try {
    return { value: toJson(await fn()), threw: false };
  } catch (e) {
    return { value: { threw: errorJson(e) }, threw: true };
  }
}

export function loadExpected(file: string): ExpectedDifference[] {
  const doc = parse(readFileSync(file, 'utf8')) as { differences?: ExpectedDifference[] } | null;
  const list = doc?.differences ?? [];
  for (const d of list) {
    if (!d.driver || !d.scenario || !d.readme || !d.why) throw new Error(`expected-differences.yaml: an entry needs driver, scenario, readme and why: ${JSON.stringify(d)}`);
    const extra = Object.keys(d).filter((k) => !['driver', 'scenario', 'readme', 'why'].includes(k));
    if (extra.length > 0) throw new Error(`expected-differences.yaml: unknown field(s) ${extra.join(', ')} in ${JSON.stringify(d)}`);
  }
  return list;
}

export function judge(s: Scenario, direct: { value: Json; threw: boolean }, viaAirlock: { value: Json; threw: boolean }, expected: ExpectedDifference[]): Result {
  const entry = expected.find((d) => d.driver === s.driver && d.scenario === s.name);
  const same = isDeepStrictEqual(direct.value, viaAirlock.value);
  const base = { driver: s.driver, scenario: s.name, direct: direct.value, airlock: viaAirlock.value, directPassed: !direct.threw };
  // A stale entry (the difference did not occur in this run) fails too, so the list stays true.
  if (same) return entry === undefined ? { ...base, verdict: 'same' } : { ...base, verdict: 'different', note: 'listed as an expected difference but the outcomes are the same: remove the entry' };
  if (entry !== undefined) return { ...base, verdict: 'expected difference', note: `${entry.why} (README: ${entry.readme})` };
  return { ...base, verdict: 'different' };
}

/** `same / expected difference / different` per driver, and passed direct / through airlock. */
export function summary(results: Result[]): string {
  const drivers = [...new Set(results.map((r) => r.driver))];
  const lines = ['driver          scenarios  passed-direct  same-through-airlock  expected-difference  different'];
  for (const d of drivers) {
    const rs = results.filter((r) => r.driver === d);
    const count = (v: Verdict): number => rs.filter((r) => r.verdict === v).length;
    lines.push(`${d.padEnd(16)}${String(rs.length).padStart(9)}  ${String(rs.filter((r) => r.directPassed).length).padStart(13)}  ${String(count('same')).padStart(20)}  ${String(count('expected difference')).padStart(19)}  ${String(count('different')).padStart(9)}`);
  }
  for (const r of results) if (r.note !== undefined && r.verdict !== 'expected difference') lines.push(`note: ${r.driver} / ${r.scenario}: ${r.note}`);
  return lines.join('\n');
}
