/**
 * Release latency across a fleet (issue 18): two airlock daemons on one state PostgreSQL, one
 * upstream PostgreSQL. A client on node A runs UPDATEs that a rule holds for approval; each is
 * approved through an admin API, and the time from sending the approval until the client has
 * the statement's result is measured. Approved through node B, the verdict travels through the
 * store (claim, NOTIFY, node A settles); approved through node A itself, it settles at once —
 * both in the same run, so the ratio is what the fleet path costs.
 * Usage: npx tsx bench/release-latency.ts [--n 200]
 */
import pg from 'pg';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPgCluster, freePort } from '../app/dev/pgcluster.js';
import { mintDevToken } from '../src/auth/verifier.js';
import { validateConfig } from '../app/config.js';
import { startAirlockProcess, table, type AirlockProcess } from './lib.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) || dflt : dflt;
};
const n = arg('--n', 200);

const upstream = await startPgCluster();
const state = await startPgCluster();
const password = 'bench-password-not-secret';
await upstream.psql('CREATE DATABASE bench');
await upstream.psql(`CREATE ROLE bench LOGIN PASSWORD '${password}'; ALTER DATABASE bench OWNER TO bench`);
await upstream.psql('SET ROLE bench; CREATE TABLE counter (id int PRIMARY KEY, v bigint); INSERT INTO counter VALUES (1, 0)', { db: 'bench' });

const dir = mkdtempSync(join(tmpdir(), 'airlock-bench-fleet-'));
writeFileSync(join(dir, 'pw'), password, { mode: 0o600 });
writeFileSync(join(dir, 'state-url'), `postgres://${state.superuser}:${encodeURIComponent(state.superPassword)}@127.0.0.1:${state.port}/postgres`, { mode: 0o600 });
// One dev issuer key for both nodes: a token minted once is accepted by either.
writeFileSync(join(dir, 'dev-issuer.pem'), generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
const auth = { dev_issuer: true, dev_issuer_key: `\${file:${join(dir, 'dev-issuer.pem')}}` };

async function node(): Promise<{ a: AirlockProcess; admin: string }> {
  const port = await freePort();
  const adminPort = await freePort();
  const a = await startAirlockProcess(
    {
      auth,
      state: { backend: 'postgres', url: `\${file:${join(dir, 'state-url')}}` },
      admin: { listen: `127.0.0.1:${adminPort}` },
      connections: [
        {
          name: 'bench',
          protocol: 'postgres',
          listen: `127.0.0.1:${port}`,
          upstream: { host: '127.0.0.1', port: upstream.port, database: 'bench' },
          credentials: { type: 'static', username: 'bench', password: `\${file:${join(dir, 'pw')}}` },
          allow_groups: ['dev'],
        },
      ],
      rules: [{ name: 'updates-need-a-dba', when: { statements: ['update'], groups: ['dev'] }, effect: 'approve', approvers: ['dba'], timeout: '60s' }],
    },
    port,
  );
  return { a, admin: `http://127.0.0.1:${adminPort}` };
}

const [nodeA, nodeB] = [await node(), await node()];
const parsed = validateConfig({ state_dir: nodeA.a.stateDir, auth });
if (!parsed.ok) throw new Error('bench config invalid');
const devToken = await mintDevToken(parsed.config, 'dev-user', ['dev'], 'machine', 3_600_000);
const dbaToken = await mintDevToken(parsed.config, 'dba-user', ['dba'], 'human', 3_600_000);

for (let i = 0; i < 100; i++) {
  const r = await fetch(`${nodeB.admin}/readyz`).catch(() => null);
  if (r?.status === 200) break;
  await new Promise((res) => setTimeout(res, 100));
}

const client = new pg.Client({ host: '127.0.0.1', port: nodeA.a.port, user: 'dev-user', database: 'bench', password: devToken });
let noticed: ((id: string) => void) | null = null;
client.on('notice', (m) => {
  const id = /id ([0-9a-f]{8})/.exec(m.message ?? '')?.[1];
  if (id !== undefined) noticed?.(id);
});
await client.connect();

/** One held UPDATE approved through `admin`: ms from sending the approval until the client has the result. */
async function once(admin: string): Promise<number> {
  const held = new Promise<string>((r) => (noticed = r));
  const result = client.query('UPDATE counter SET v = v + 1 WHERE id = 1');
  const id = await held;
  const t0 = performance.now();
  const res = await fetch(`${admin}/v1/approvals/${id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${dbaToken}` } });
  if (res.status !== 200) throw new Error(`approve failed: ${res.status} ${await res.text()}`);
  const r = await result;
  const ms = performance.now() - t0;
  if (r.rowCount !== 1) throw new Error('the UPDATE did not run');
  return ms;
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};

// Warm both paths (JIT, connections), then alternate so both see the same machine.
await once(nodeA.admin);
await once(nodeB.admin);
const local: number[] = [];
const fleet: number[] = [];
for (let i = 0; i < n; i++) {
  local.push(await once(nodeA.admin));
  fleet.push(await once(nodeB.admin));
}
await client.end();

const f = (x: number): string => x.toFixed(1);
console.log(`== Approval release latency, ${n} held UPDATEs per path (approval sent → the client has the result)`);
console.log(
  table([
    ['approved through', 'p50 ms', 'p99 ms', 'max ms'],
    ['node A (holds it)', f(pct(local, 50)), f(pct(local, 99)), f(Math.max(...local))],
    ['node B (via the store)', f(pct(fleet, 50)), f(pct(fleet, 99)), f(Math.max(...fleet))],
  ]),
);
console.log(`ratio node B / node A: p50 ${(pct(fleet, 50) / pct(local, 50)).toFixed(2)}, p99 ${(pct(fleet, 99) / pct(local, 99)).toFixed(2)}`);

await nodeA.a.stop();
await nodeB.a.stop();
await upstream.stop();
await state.stop();
