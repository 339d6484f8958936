/**
 * The web console with the PostgreSQL state store (issue 19 on top of issue 18): two airlock
 * daemons, one state PostgreSQL, one upstream, real headless Chromium. A DROP TABLE held on
 * node B shows live in the inbox of node A's console; approved or denied there, node B
 * releases or refuses it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import pg from 'pg';
import type { Browser, Page } from 'playwright-core';
import { freePort, startPgCluster, type PgCluster } from '../../app/dev/pgcluster.js';
import { startAppDb, type AppDb } from '../harness/appdb.js';
import { startAirlock, airlockCommand, type RunningAirlock } from '../harness/airlock.js';
import { run, spawnPsql } from '../harness/clients.js';
import { chromiumMissing, launchChromium } from '../harness/browser.js';

const missing = chromiumMissing();
if (missing !== null) console.warn(`console fleet browser tests skipped: ${missing}`);

interface Node {
  airlock: RunningAirlock;
  port: number;
  adminUrl: string;
}

let db: AppDb;
let statePg: PgCluster;
let browser: Browser;
let alice: Page;
const nodes: Node[] = [];
let bobOnB = '';
let carolOnB = '';
const pageErrors: string[] = [];

async function startNode(name: string, urlFile: string): Promise<Node> {
  const port = await freePort();
  const adminPort = await freePort();
  const airlock = await startAirlock({
    state_dir: join(db.dir, `state-${name}`),
    state: { backend: 'postgres', url: `\${file:${urlFile}}`, poll_interval: '1s' },
    admin: { listen: `127.0.0.1:${adminPort}` },
    auth: { dev_issuer: true },
    audit: { auditors: ['dba'] },
    connections: [db.connection('appdb', port, { allow_groups: ['dev', 'dba', 'ops'] })],
    rules: [
      { name: 'ops-connect-needs-a-dba', when: { groups: ['ops'], statements: ['connect'] }, effect: 'approve', approvers: ['dba'], timeout: '120s', grant_for: '1h' },
      { name: 'drops-need-a-dba', when: { statements: ['drop'], groups: ['dev'] }, effect: 'approve', approvers: ['dba'], timeout: '120s' },
    ],
  });
  await airlock.waitForLog((l) => l.msg === 'admin API started');
  return { airlock, port, adminUrl: `http://127.0.0.1:${adminPort}` };
}

function holdOn(node: Node, sql: string, who: 'bob' | 'carol' = 'bob'): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawnPsql({ port: node.port, token: who === 'bob' ? bobOnB : carolOnB, user: who }, ['-At', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose', '-c', sql]);
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((r) => child.once('exit', (code) => r({ code, out, err })));
}

const tableExists = async (name: string): Promise<boolean> => (await db.upstream.psql(`select count(*) from pg_tables where tablename = '${name}'`, { db: 'appdb' })) === '1';

beforeAll(async () => {
  if (missing !== null) return;
  db = await startAppDb({ password: 'console-fleet-pw', setupSql: 'CREATE TABLE gone_on_b (id int); CREATE TABLE kept_on_b (id int);' });
  statePg = await startPgCluster();
  const urlFile = join(db.dir, 'state-url');
  writeFileSync(urlFile, `postgres://${statePg.superuser}:${encodeURIComponent(statePg.superPassword)}@127.0.0.1:${statePg.port}/postgres`, { mode: 0o600 });
  nodes.push(...(await Promise.all([startNode('a', urlFile), startNode('b', urlFile)])));
  const b = nodes[1] as Node;
  const mint = async (sub: string, groups: string): Promise<string> => {
    const { cmd, argv } = airlockCommand(['token', 'mint', '--config', b.airlock.configFile, '--sub', sub, '--groups', groups, '--ttl', '30m']);
    const minted = await run(cmd, argv);
    if (minted.code !== 0) throw new Error(minted.stderr);
    return minted.stdout.trim();
  };
  bobOnB = await mint('bob', 'dev');
  carolOnB = await mint('carol', 'ops');
  browser = await launchChromium();
  // alice signs in to node A's console through node A's dev issuer.
  const a = nodes[0] as Node;
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  alice = await context.newPage();
  alice.on('pageerror', (e) => pageErrors.push(e.message));
  await alice.goto(`${a.adminUrl}/console`);
  await alice.locator('button[data-user="alice"]').click();
  await alice.waitForURL(`${a.adminUrl}/console`);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all(nodes.map((n) => n.airlock.stop()));
  await db?.upstream.stop();
  await statePg?.stop();
});

describe.skipIf(missing !== null)('web console on node A, statements held on node B (PostgreSQL state store)', () => {
  it('shows node B’s held DROP TABLE live in node A’s inbox; approving there lets psql on B finish', async () => {
    let navigations = 0;
    alice.on('framenavigated', () => navigations++);
    const done = holdOn(nodes[1] as Node, 'DROP TABLE gone_on_b');
    const card = alice.locator('#pending article.approval').filter({ hasText: 'DROP TABLE gone_on_b' });
    await card.waitFor({ timeout: 10_000 });
    expect(navigations).toBe(0);
    expect(await card.locator('.requester').textContent()).toBe('bob');
    expect(await card.locator('.rule').textContent()).toContain('drops-need-a-dba');
    expect(await tableExists('gone_on_b')).toBe(true);
    await card.locator('button.approve').click();
    const r = await done;
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('DROP TABLE');
    expect(await tableExists('gone_on_b')).toBe(false);
    // Gone from A's pending list without a reload, and in A's history (from the store: B held it).
    await card.waitFor({ state: 'detached', timeout: 10_000 });
    await alice.locator('#history article.approval.approved').filter({ hasText: 'DROP TABLE gone_on_b' }).filter({ hasText: 'approved by alice' }).waitFor({ timeout: 10_000 });
    expect(navigations).toBe(0);
  });

  it('denying node B’s request with a reason on node A: psql on B gets 42501 with that reason', async () => {
    const done = holdOn(nodes[1] as Node, 'DROP TABLE kept_on_b');
    const card = alice.locator('#pending article.approval').filter({ hasText: 'DROP TABLE kept_on_b' });
    await card.waitFor({ timeout: 10_000 });
    await card.locator('input.reason').fill('decided on node A');
    await card.locator('button.deny').click();
    const r = await done;
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('42501');
    expect(r.err).toContain('decided on node A');
    expect(await tableExists('kept_on_b')).toBe(true);
    await alice.locator('#history article.approval.denied').filter({ hasText: 'DROP TABLE kept_on_b' }).filter({ hasText: 'decided on node A' }).waitFor({ timeout: 10_000 });
  });

  it('a shorter grant_for window chosen in node A’s console applies to the connect held on node B (carried in the shared verdict)', async () => {
    const done = holdOn(nodes[1] as Node, 'SELECT 40 + 2', 'carol');
    const card = alice.locator('#pending article.approval').filter({ hasText: 'carol' });
    await card.waitFor({ timeout: 10_000 });
    const id = (await card.getAttribute('data-id')) ?? '';
    const csrf = (await alice.locator('meta[name="airlock-csrf"]').getAttribute('content')) ?? '';
    const api = `${(nodes[0] as Node).adminUrl}/console/api/approvals/${id}/approve`;
    const longer = await alice.context().request.post(api, { headers: { 'x-csrf-token': csrf, 'content-type': 'application/json' }, data: { grant_for: '2h' } });
    expect(longer.status()).toBe(403);
    expect(await longer.text()).toContain('at most 1h');
    const res = await alice.context().request.post(api, { headers: { 'x-csrf-token': csrf, 'content-type': 'application/json' }, data: { grant_for: '5m' } });
    expect(res.status(), await res.text()).toBe(200);
    const r = await done;
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('42');
    // Node B wrote carol's grant: five minutes from its verdict, not the rule's hour.
    const c = new pg.Client({ connectionString: `postgres://${statePg.superuser}:${encodeURIComponent(statePg.superPassword)}@127.0.0.1:${statePg.port}/postgres` });
    await c.connect();
    try {
      const row = (await c.query<{ window: string; node: string }>('SELECT g.expires_at - a.decided_at AS window, a.node FROM airlock_grants g JOIN airlock_approvals a ON a.id = g.request_id WHERE a.id = $1', [id])).rows[0];
      expect(Number(row?.window)).toBeGreaterThanOrEqual(300_000);
      expect(Number(row?.window)).toBeLessThan(1_800_000);
    } finally {
      await c.end();
    }
  });

  it('no script error, and no secret in either node’s output', () => {
    expect(pageErrors).toEqual([]);
    for (const n of nodes) {
      expect(n.airlock.output()).not.toContain(statePg.superPassword);
      expect(n.airlock.output()).not.toContain('console-fleet-pw');
      expect(n.airlock.output()).not.toContain(bobOnB);
      expect(n.airlock.output()).not.toContain(carolOnB);
    }
  });
});
