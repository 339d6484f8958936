/**
 * Two airlock builds side by side on the HTTP bench's workload (bench/http-proxy.ts: auth,
 * 6 rules, a mask rule, an injected header credential), audit off and on, in interleaved
 * short wrk rounds so both builds see the same machine load. Prints the daemon's CPU µs per
 * request (from /proc, worker threads included) per round and the medians.
 * Usage: npx tsx bench/http-ab.ts --base dist-old [--new dist] [--rounds 5] [--seconds 3] [--connections 16]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { stringify } from 'yaml';
import { freePort } from '../app/dev/pgcluster.js';
import { mintDevToken } from '../src/auth/verifier.js';
import { validateConfig } from '../app/config.js';
import { run } from '../test/harness/clients.js';
import { ROOT, cpuSecondsOf } from './lib.js';

const opt = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
};
const base = opt('--base', '');
if (base === '') throw new Error('--base <dir of the other build> is required');
const next = opt('--new', 'dist');
const rounds = Number(opt('--rounds', '5'));
const seconds = Number(opt('--seconds', '3'));
const connections = Number(opt('--connections', '16'));

const BODY = JSON.stringify({ id: 42, name: 'Ada Lovelace', email: 'ada@example.com', plan: 'pro', tags: ['a', 'b'], created: '2026-01-01T00:00:00Z' });
const upstream = createServer({ keepAlive: true }, (req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) });
    res.end(BODY);
  });
});
upstream.keepAliveTimeout = 60_000;
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
const upPort = (upstream.address() as AddressInfo).port;
const dir = mkdtempSync(join(tmpdir(), 'airlock-http-ab-'));
writeFileSync(join(dir, 'key'), 'sk-bench-0123456789abcdef', { mode: 0o600 });
const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

async function waitForHttp(port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      await (await fetch(`http://127.0.0.1:${port}/`)).arrayBuffer();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`nothing answered on port ${port}`);
}

interface Daemon { label: string; port: number; pid: number; token: string }

async function startAirlock(dist: string, audit: boolean, label: string): Promise<Daemon> {
  const port = await freePort();
  const stateDir = join(dir, `state-${label}`);
  const doc = {
    state_dir: stateDir,
    log: { level: 'warn' },
    ...(audit ? {} : { audit: { enabled: false } }),
    auth: { dev_issuer: true },
    connections: [
      {
        name: 'api', protocol: 'http', listen: `127.0.0.1:${port}`, upstream: { base_url: `http://127.0.0.1:${upPort}` },
        credentials: { type: 'header', name: 'Authorization', value: `Bearer \${file:${join(dir, 'key')}}` }, allow_groups: ['agents'],
      },
    ],
    rules: [
      { name: 'no-admin-deletes', when: { http: { methods: ['DELETE'], paths: ['/admin/**'] } }, effect: 'deny' },
      { name: 'no-billing-writes', when: { http: { methods: ['POST', 'PUT', 'PATCH'], paths: ['/v1/billing/**'] } }, effect: 'deny' },
      { name: 'admin-posts-need-a-dba', when: { groups: ['agents'], http: { methods: ['POST'], paths: ['/admin/**'] } }, effect: 'approve', approvers: ['dba'] },
      { name: 'no-exports', when: { http: { paths: ['/v1/export/**', '/v1/*/dump'] } }, effect: 'deny' },
      { name: 'no-keys', when: { http: { paths: ['/v1/keys/**'] } }, effect: 'deny' },
      { name: 'read-only-ci', when: { groups: ['ci'], http: { methods: ['POST', 'PUT', 'PATCH', 'DELETE'] } }, effect: 'deny' },
      { name: 'pii', when: { groups: ['agents'] }, effect: 'mask', detect: ['email'], json_paths: ['$.name'], method: 'redact' },
    ],
  };
  const configFile = join(dir, `airlock-${label}.yaml`);
  writeFileSync(configFile, stringify(doc));
  const child = spawn(process.execPath, [resolve(ROOT, dist, 'bin/airlock.js'), 'serve', '--config', configFile, '--log-level', 'warn'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  children.push(child);
  await waitForHttp(port);
  const parsed = validateConfig({ state_dir: stateDir, auth: { dev_issuer: true } });
  if (!parsed.ok) throw new Error('bench config invalid');
  const token = await mintDevToken(parsed.config, 'bench', ['agents'], 'machine', 3_600_000);
  const check = await fetch(`http://127.0.0.1:${port}/v1/users/42`, { headers: { authorization: `Bearer ${token}` } });
  const checked = await check.text();
  if (check.status !== 200 || checked.includes('ada@example.com')) throw new Error(`${label}: sanity check failed: ${check.status} ${checked}`);
  return { label, port, pid: child.pid ?? 0, token };
}

async function round(d: Daemon): Promise<{ rps: number; cpuUs: number }> {
  const cpu0 = cpuSecondsOf(d.pid);
  const r = await run('wrk', ['-t', '1', '-c', String(connections), '-d', `${seconds}s`, '-H', `Authorization: Bearer ${d.token}`, `http://127.0.0.1:${d.port}/v1/users/42`], { timeoutMs: (seconds + 30) * 1000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? Number.NaN);
  const total = Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? Number.NaN);
  if (/Non-2xx/.test(r.stdout)) throw new Error(`${d.label}: non-2xx answers`);
  return { rps, cpuUs: ((cpuSecondsOf(d.pid) - cpu0) * 1e6) / total };
}

const daemons = [
  await startAirlock(base, false, 'base-off'), await startAirlock(next, false, 'new-off'),
  await startAirlock(base, true, 'base-on'), await startAirlock(next, true, 'new-on'),
];
const seen = new Map<string, number[]>(daemons.map((d) => [d.label, []]));
for (const d of daemons) await round(d); // warm-up
for (let i = 0; i < rounds; i++) {
  // Alternate which build goes first.
  const order = i % 2 === 0 ? daemons : [daemons[1], daemons[0], daemons[3], daemons[2]] as Daemon[];
  const line: string[] = [];
  for (const d of order) {
    const r = await round(d);
    seen.get(d.label)?.push(r.cpuUs);
    line.push(`${d.label} ${r.cpuUs.toFixed(0)} µs (${r.rps.toFixed(0)}/s)`);
  }
  console.log(`round ${i + 1}: ${line.join(', ')}`);
}
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? (s[(s.length - 1) / 2] ?? Number.NaN) : ((s[s.length / 2 - 1] ?? 0) + (s[s.length / 2] ?? 0)) / 2;
};
for (const [label, xs] of seen) console.log(`${label}: median ${median(xs).toFixed(0)} µs/request, range ${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)} (${base} = base, ${next} = new)`);
upstream.closeAllConnections();
upstream.close();
process.exit(0);
