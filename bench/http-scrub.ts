/**
 * What scrubbing the injected secret costs (issue 25), every figure from the same run:
 *  1. the matcher alone, in this process: 200 MB through the byte scanner (bodies, WebSocket
 *     frames) and the text scanner (SSE fields, detector bodies) against a copy of the same
 *     chunks, and a whole small value (a header) per call;
 *  2. through the daemon: a 200 MB streamed text/plain body read by curl, and small 1 KB
 *     GETs under wrk, each direct, through a bare Node proxy, through airlock with no injected
 *     credential (scrubbing off) and through airlock injecting one (scrubbing on) — the two
 *     airlock connections in one process, audit on.
 * Usage: npx tsx bench/http-scrub.ts [--mb 200] [--seconds 5] (needs `make build`)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { stringify } from 'yaml';
import { freePort } from '../app/dev/pgcluster.js';
import { mintDevToken } from '../src/auth/verifier.js';
import { validateConfig } from '../app/config.js';
import { SecretForms, injectedSecrets } from '../src/masking/secret-forms.js';
import { run } from '../test/harness/clients.js';
import { ROOT, cpuSecondsOf, table } from './lib.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) || dflt : dflt;
};
const MB = arg('--mb', 200);
const seconds = arg('--seconds', 5);
const KEY = 'sk-bench-0123456789abcdef';
const f = (n: number, d = 2): string => (Number.isFinite(n) ? n.toFixed(d) : '?');

// ---- 1. the matcher alone ----------------------------------------------------
/** Text as an API returns it: JSON with an escape now and then, no key in it. */
const LINE = `{"id":1234,"name":"Ada Lovelace","note":"see https:\\/\\/example.com\\/a?b=c%20d","text":"lorem ipsum dolor sit amet, consectetur adipiscing elit"}\n`;
const CHUNK = Buffer.from(LINE.repeat(Math.ceil(65536 / LINE.length)).slice(0, 65536));
const chunks = Math.round((MB * 1024 * 1024) / CHUNK.length);
const forms = SecretForms.of(injectedSecrets(`Bearer ${KEY}`));

function mbPerSecond(fn: () => number): number {
  const t = process.hrtime.bigint();
  const bytes = fn();
  return bytes / 1048576 / (Number(process.hrtime.bigint() - t) / 1e9);
}
const copy = (): number => {
  let n = 0;
  for (let i = 0; i < chunks; i++) n += Buffer.from(CHUNK).length;
  return n;
};
const bytesScan = (): number => {
  const s = forms.byteScanner();
  let n = 0;
  for (let i = 0; i < chunks; i++) n += s.push(CHUNK).length;
  return n + s.end().length;
};
const textScan = (): number => {
  const s = forms.scanner();
  const text = CHUNK.toString('utf8');
  let n = 0;
  for (let i = 0; i < chunks; i++) n += s.push(text).length;
  return n + s.end().length;
};
// Warm up, then measure.
for (const fn of [copy, bytesScan, textScan]) mbPerSecond(() => (fn === copy ? copy() : fn()));
const copyRate = mbPerSecond(copy);
const bytesRate = mbPerSecond(bytesScan);
const textRate = mbPerSecond(textScan);
const header = `session=abc123; Path=/; redirect=https://example.com/cb?state=${'x'.repeat(120)}`;
const calls = 200_000;
let t = process.hrtime.bigint();
for (let i = 0; i < calls; i++) forms.scrub(header);
const perHeaderNs = Number(process.hrtime.bigint() - t) / calls;
console.log(`== the matcher alone: ${MB} MB in 64 KiB chunks (${forms.longest}-char longest form, ${injectedSecrets(`Bearer ${KEY}`).length} secrets)`);
console.log(table([
  ['path', 'MB/s', 'vs a copy of the chunks'],
  ['copy (scrubbing off)', f(copyRate, 0), '1.00'],
  ['byte scanner (bodies, WebSocket)', f(bytesRate, 0), f(bytesRate / copyRate)],
  ['text scanner (SSE fields)', f(textRate, 0), f(textRate / copyRate)],
]));
console.log(`a ${header.length}-char header value, scrubbed whole: ${f(perHeaderNs / 1000)} µs per value`);

// ---- 2. through the daemon -----------------------------------------------------
const SMALL = Buffer.from(LINE.repeat(8));
const upstream = createServer({ keepAlive: true }, (req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.url?.startsWith('/big')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      let left = chunks;
      const write = (): void => {
        while (left-- > 0) if (!res.write(CHUNK)) return void res.once('drain', write);
        res.end();
      };
      return write();
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': SMALL.length });
    res.end(SMALL);
  });
});
upstream.keepAliveTimeout = 60_000;
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
const upPort = (upstream.address() as AddressInfo).port;
const dir = mkdtempSync(join(tmpdir(), 'airlock-scrub-bench-'));
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

async function startBareNodeProxy(): Promise<{ port: number; pid: number }> {
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
  return { port, pid: child.pid ?? 0 };
}

if (!existsSync(join(ROOT, 'dist/bin/airlock.js'))) throw new Error('run `make build` first: the daemon is benchmarked as it ships');
const offPort = await freePort();
const onPort = await freePort();
writeFileSync(join(dir, 'key'), KEY, { mode: 0o600 });
const doc = {
  state_dir: join(dir, 'state'),
  log: { level: 'warn' },
  auth: { dev_issuer: true },
  connections: [
    { name: 'off', protocol: 'http', listen: `127.0.0.1:${offPort}`, upstream: { base_url: `http://127.0.0.1:${upPort}` }, credentials: { type: 'none' }, allow_groups: ['agents'] },
    {
      name: 'on', protocol: 'http', listen: `127.0.0.1:${onPort}`, upstream: { base_url: `http://127.0.0.1:${upPort}` },
      credentials: { type: 'header', name: 'Authorization', value: `Bearer \${file:${join(dir, 'key')}}` }, allow_groups: ['agents'],
    },
  ],
};
writeFileSync(join(dir, 'airlock.yaml'), stringify(doc));
const daemon = spawn(process.execPath, [join(ROOT, 'dist/bin/airlock.js'), 'serve', '--config', join(dir, 'airlock.yaml'), '--log-level', 'warn'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
children.push(daemon);
await waitForHttp(offPort);
await waitForHttp(onPort);
const parsed = validateConfig({ state_dir: join(dir, 'state'), auth: { dev_issuer: true } });
if (!parsed.ok) throw new Error('bench config invalid');
const token = await mintDevToken(parsed.config, 'bench', ['agents'], 'machine', 3_600_000);
const bare = await startBareNodeProxy();

interface Target {
  name: string;
  port: number;
  pid: number;
  headers: string[];
}
const targets: Target[] = [
  { name: 'direct', port: upPort, pid: 0, headers: [] },
  { name: 'bare Node proxy', port: bare.port, pid: bare.pid, headers: [] },
  { name: 'airlock, scrubbing off', port: offPort, pid: daemon.pid ?? 0, headers: [`Authorization: Bearer ${token}`] },
  { name: 'airlock, scrubbing on', port: onPort, pid: daemon.pid ?? 0, headers: [`Authorization: Bearer ${token}`] },
];

/** One 200 MB body read by curl: MB/s and the proxy's CPU seconds. */
async function big(tg: Target): Promise<{ rate: number; cpu: number }> {
  const cpu0 = tg.pid === 0 ? 0 : cpuSecondsOf(tg.pid);
  const r = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', ...tg.headers.flatMap((h) => ['-H', h]), `http://127.0.0.1:${tg.port}/big`], { timeoutMs: 600_000 });
  const [size, secs] = r.stdout.trim().split(' ').map(Number);
  if (size !== chunks * CHUNK.length) throw new Error(`${tg.name}: got ${size} bytes`);
  return { rate: (size ?? 0) / 1048576 / (secs ?? 1), cpu: tg.pid === 0 ? Number.NaN : cpuSecondsOf(tg.pid) - cpu0 };
}

/** Small GETs under wrk: requests/s and p50 in ms. */
async function small(tg: Target): Promise<{ rps: number; p50: number }> {
  const r = await run('wrk', ['-t', '1', '-c', '8', '-d', `${seconds}s`, '--latency', ...tg.headers.flatMap((h) => ['-H', h]), `http://127.0.0.1:${tg.port}/small`], { timeoutMs: (seconds + 30) * 1000 });
  const lat = /\s50%\s+([\d.]+)(us|ms|s)/.exec(r.stdout);
  const p50 = lat === null ? Number.NaN : Number(lat[1]) * (lat[2] === 'us' ? 0.001 : lat[2] === 's' ? 1000 : 1);
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? Number.NaN), p50 };
}

const bigs: Array<{ rate: number; cpu: number }> = [];
for (const tg of targets) bigs.push(await big(tg));
const smalls: Array<{ rps: number; p50: number }> = [];
for (const tg of targets) smalls.push(await small(tg));
const bareRow = 1;
const off = 2;
console.log(`\n== through the daemon: a ${MB} MB text/plain body (curl), and ${SMALL.length}-byte GETs (wrk -c8, ${seconds}s)`);
console.log(table([
  ['target', `${MB} MB: MB/s`, 'proxy CPU s', 'vs scrubbing off', 'vs bare proxy', 'small: req/s', 'p50 ms', 'vs scrubbing off', 'vs bare proxy'],
  ...targets.map((tg, i) => [
    tg.name,
    f(bigs[i]?.rate ?? Number.NaN, 0),
    f(bigs[i]?.cpu ?? Number.NaN),
    f((bigs[i]?.rate ?? 0) / (bigs[off]?.rate ?? 1)),
    f((bigs[i]?.rate ?? 0) / (bigs[bareRow]?.rate ?? 1)),
    f(smalls[i]?.rps ?? Number.NaN, 0),
    f(smalls[i]?.p50 ?? Number.NaN),
    f((smalls[i]?.rps ?? 0) / (smalls[off]?.rps ?? 1)),
    f((smalls[i]?.rps ?? 0) / (smalls[bareRow]?.rps ?? 1)),
  ]),
]));

upstream.closeAllConnections();
upstream.close();
process.exit(0);
