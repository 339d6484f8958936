/**
 * HTTP gateway benchmark (issue 9), every figure from the same run on this machine: wrk,
 * keep-alive, a small JSON GET against a Node upstream —
 *  - direct to the upstream,
 *  - nginx (Debian) as a plain reverse proxy with upstream keep-alive,
 *  - a bare pass-through proxy on Node's http module (the ceiling for any proxy on this stack),
 *  - airlock with caller auth (dev issuer token), 6 HTTP rules, a mask rule (email
 *    detector + a JSON path) and an injected header credential (always scrubbed), audit on.
 * Prints requests/s, p50/p99 latency, airlock/nginx ratio and the latency airlock adds.
 * Usage: npx tsx bench/http-proxy.ts [--seconds 10] [--connections 16] [--threads 1]
 * AIRLOCK_DIST=dir: the airlock build to run (default dist; e.g. an older commit's build, for a same-run before/after).
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
import { ROOT, cpuSecondsOf, memoryOf, recordAuditRow, table, type Measured } from './lib.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) || dflt : dflt;
};
const seconds = arg('--seconds', 10);
const connections = arg('--connections', 16);
const threads = arg('--threads', 1);

// ---- the upstream: a small JSON document, keep-alive ------------------------
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
const dir = mkdtempSync(join(tmpdir(), 'airlock-http-bench-'));
/** Children to stop however the run ends (a failed step must not leave nginx behind). */
const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

// ---- nginx as a plain reverse proxy -----------------------------------------
async function startNginx(): Promise<{ port: number; pid: number; stop(): void }> {
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  const tmp = (n: string): string => join(dir, n);
  writeFileSync(
    conf,
    `worker_processes 1;
error_log ${tmp('nginx-error.log')} warn;
pid ${tmp('nginx.pid')};
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${tmp('nginx-body')};
  proxy_temp_path ${tmp('nginx-proxy')};
  fastcgi_temp_path ${tmp('nginx-fcgi')};
  uwsgi_temp_path ${tmp('nginx-uwsgi')};
  scgi_temp_path ${tmp('nginx-scgi')};
  upstream app { server 127.0.0.1:${upPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`,
  );
  const asRoot = process.getuid?.() === 0;
  const child = spawn('/usr/sbin/nginx', ['-p', dir, '-c', conf, '-g', asRoot ? 'daemon off; user root;' : 'daemon off;'], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  await waitForHttp(port);
  return { port, pid: child.pid ?? 0, stop: () => void child.kill('SIGQUIT') };
}

// ---- the ceiling of Node's own HTTP stack: a bare pass-through proxy, nothing checked ----
async function startBareNodeProxy(): Promise<{ port: number; pid: number; stop(): void }> {
  const port = await freePort();
  const src = `const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
http.createServer({ keepAlive: true }, (req, res) => {
  const up = http.request({ host: '127.0.0.1', port: ${upPort}, path: req.url, method: req.method, headers: req.headers, agent }, (r) => { res.writeHead(r.statusCode, r.headers); r.pipe(res); });
  req.pipe(up);
}).listen(${port}, '127.0.0.1');`;
  const child = spawn(process.execPath, ['-e', src], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  await waitForHttp(port);
  return { port, pid: child.pid ?? 0, stop: () => void child.kill('SIGTERM') };
}

// ---- airlock with auth + rules + masking ------------------------------------
async function startAirlock(audit: 'on' | 'off' = 'on'): Promise<{ port: number; token: string; child: ChildProcess; stop(): Promise<void> }> {
  const port = await freePort();
  const stateDir = join(dir, `state-audit-${audit}`);
  writeFileSync(join(dir, 'key'), 'sk-bench-0123456789abcdef', { mode: 0o600 });
  const doc = {
    state_dir: stateDir,
    log: { level: 'warn' },
    // BENCH_AUDIT=nofsync | off: to see what the write-ahead audit costs (never in production).
    ...(audit === 'off' ? { audit: { enabled: false } } : process.env.BENCH_AUDIT === 'nofsync' ? { audit: { fsync: false } } : process.env.BENCH_AUDIT === 'off' ? { audit: { enabled: false } } : {}),
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
  const configFile = join(dir, 'airlock.yaml');
  writeFileSync(configFile, stringify(doc));
  const prof = process.env.BENCH_CPU_PROF === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF];
  const child = spawn(process.execPath, [...prof, resolve(ROOT, process.env.AIRLOCK_DIST ?? 'dist', 'bin/airlock.js'), 'serve', '--config', configFile, '--log-level', 'warn'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  children.push(child);
  await waitForHttp(port);
  const parsed = validateConfig({ state_dir: stateDir, auth: { dev_issuer: true } });
  if (!parsed.ok) throw new Error('bench config invalid');
  const token = await mintDevToken(parsed.config, 'bench', ['agents'], 'machine', 3_600_000);
  return {
    port, token, child,
    stop: () => new Promise<void>((r) => {
      child.once('exit', () => r());
      child.kill('SIGTERM');
    }),
  };
}

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

interface WrkResult {
  rps: number;
  /** CPU the proxy under test used per request, in µs (NaN for direct). */
  cpuUs: number;
  p50: number;
  p99: number;
  errors: string;
}

/** wrk latency as milliseconds ("512.00us", "1.20ms", "1.01s"). */
function ms(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v);
  if (m === null) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

async function wrk(port: number, headers: string[] = [], pid = 0): Promise<WrkResult> {
  const cpu0 = pid === 0 ? 0 : cpuSecondsOf(pid);
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), `http://127.0.0.1:${port}/v1/users/42`];
  const r = await run('wrk', args, { timeoutMs: (seconds + 30) * 1000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? Number.NaN);
  const cpuUs = pid === 0 ? Number.NaN : ((cpuSecondsOf(pid) - cpu0) * 1e6) / (rps * seconds);
  const p50 = ms(/\s50%\s+(\S+)/.exec(r.stdout)?.[1] ?? '');
  const p99 = ms(/\s99%\s+(\S+)/.exec(r.stdout)?.[1] ?? '');
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(r.stdout)?.[1];
  const sockErr = /Socket errors:[^\n]*/.exec(r.stdout)?.[0];
  return { rps, cpuUs, p50, p99, errors: [non2xx === undefined ? '' : `${non2xx} non-2xx`, sockErr ?? ''].filter((s) => s !== '').join('; ') };
}

const nginx = await startNginx();
const bare = await startBareNodeProxy();
const airlock = await startAirlock();
const unaudited = await startAirlock('off');
const auth = `Authorization: Bearer ${airlock.token}`;
// Sanity: airlock masks what it should and answers 200.
const check = await fetch(`http://127.0.0.1:${airlock.port}/v1/users/42`, { headers: { authorization: `Bearer ${airlock.token}` } });
const checked = await check.text();
if (check.status !== 200 || checked.includes('ada@example.com')) throw new Error(`airlock sanity check failed: ${check.status} ${checked}`);

console.log(`wrk -t${threads} -c${connections} -d${seconds}s, small JSON GET (${BODY.length} bytes), keep-alive`);
const direct = await wrk(upPort);
const viaNginx = await wrk(nginx.port, [], nginx.pid);
const viaBare = await wrk(bare.port, [], bare.pid);
const viaAirlock = await wrk(airlock.port, [auth], airlock.child.pid ?? 0);
const viaUnaudited = await wrk(unaudited.port, [`Authorization: Bearer ${unaudited.token}`], unaudited.child.pid ?? 0);
const asMeasured = (w: WrkResult): Measured => ({ tps: w.rps, p50: w.p50, p99: w.p99 });
recordAuditRow({ workload: `HTTP wrk GET ${connections} conns`, pipe: asMeasured(viaBare), direct: asMeasured(direct), auditOff: asMeasured(viaUnaudited), auditOn: asMeasured(viaAirlock), measuredAt: new Date().toISOString() });
const mem = memoryOf(airlock.child.pid ?? 0);
const f = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '?');
const rows = [
  ['target', 'req/s', 'p50 ms', 'p99 ms', 'vs nginx', 'proxy CPU µs/req', 'errors'],
  ['direct', direct.rps.toFixed(0), f(direct.p50), f(direct.p99), f(direct.rps / viaNginx.rps), '', direct.errors],
  ['nginx', viaNginx.rps.toFixed(0), f(viaNginx.p50), f(viaNginx.p99), '1.00', viaNginx.cpuUs.toFixed(0), viaNginx.errors],
  ['bare Node proxy (ceiling)', viaBare.rps.toFixed(0), f(viaBare.p50), f(viaBare.p99), f(viaBare.rps / viaNginx.rps), viaBare.cpuUs.toFixed(0), viaBare.errors],
  ['airlock (auth+rules+mask)', viaAirlock.rps.toFixed(0), f(viaAirlock.p50), f(viaAirlock.p99), f(viaAirlock.rps / viaNginx.rps), viaAirlock.cpuUs.toFixed(0), viaAirlock.errors],
  ['airlock, audit off', viaUnaudited.rps.toFixed(0), f(viaUnaudited.p50), f(viaUnaudited.p99), f(viaUnaudited.rps / viaNginx.rps), viaUnaudited.cpuUs.toFixed(0), viaUnaudited.errors],
];
console.log(table(rows));
console.log(`airlock adds p50 ${f(viaAirlock.p50 - direct.p50)} ms, p99 ${f(viaAirlock.p99 - direct.p99)} ms over direct (nginx adds p50 ${f(viaNginx.p50 - direct.p50)} ms); airlock RSS ${mem.rssMiB} MiB, peak ${mem.peakMiB} MiB`);
console.log(`airlock / bare Node proxy: ${f(viaAirlock.rps / viaBare.rps)}`);
console.log(`target: airlock >= 0.5 x nginx req/s: ${viaAirlock.rps / viaNginx.rps >= 0.5 ? 'met' : 'NOT met'}`);

await airlock.stop();
await unaudited.stop();
nginx.stop();
bare.stop();
upstream.closeAllConnections();
upstream.close();
process.exit(0);
