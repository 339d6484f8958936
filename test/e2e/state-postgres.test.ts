/**
 * The PostgreSQL state store (issue 18): two airlock daemons, one state PostgreSQL, one
 * upstream PostgreSQL. A statement held on node A is released by an approval given on node B,
 * and a connect held on node A gets the grant_for window B's approver chose.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import pg from 'pg';
import { freePort, startPgCluster, type PgCluster } from '../../app/dev/pgcluster.js';
import { startAppDb, type AppDb } from '../harness/appdb.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, airlockCommand, type RunningAirlock } from '../harness/airlock.js';
import { psql, run, spawnPsql } from '../harness/clients.js';

let db: AppDb;
let statePg: PgCluster;
let issuer: TestIssuer;
const nodes: Array<{ airlock: RunningAirlock; port: number; adminUrl: string }> = [];
let dev = '';
let dba = '';

async function startNode(name: string, urlFile: string): Promise<{ airlock: RunningAirlock; port: number; adminUrl: string }> {
  const port = await freePort();
  const adminPort = await freePort();
  const airlock = await startAirlock({
    state_dir: join(db.dir, `state-${name}`),
    state: { backend: 'postgres', url: `\${file:${urlFile}}`, poll_interval: '1s' },
    admin: { listen: `127.0.0.1:${adminPort}` },
    audit: { auditors: ['dba'] },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [db.connection('appdb', port, { allow_groups: ['dev', 'dba', 'ops'] })],
    rules: [
      { name: 'updates-need-a-dba', when: { statements: ['update'], groups: ['dev'] }, effect: 'approve', approvers: ['dba'], timeout: '60s' },
      { name: 'ops-connect-needs-a-dba', when: { groups: ['ops'], statements: ['connect'] }, effect: 'approve', approvers: ['dba'], timeout: '60s', grant_for: '1h' },
    ],
  });
  return { airlock, port, adminUrl: `http://127.0.0.1:${adminPort}` };
}

beforeAll(async () => {
  issuer = await createTestIssuer();
  db = await startAppDb({ password: 'fleet-upstream-pw', setupSql: 'CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES (1, $$x$$);' });
  statePg = await startPgCluster();
  const urlFile = join(db.dir, 'state-url');
  writeFileSync(urlFile, `postgres://${statePg.superuser}:${encodeURIComponent(statePg.superPassword)}@127.0.0.1:${statePg.port}/postgres`, { mode: 0o600 });
  // Both start at once: the migration runs once, under node-pg-migrate's advisory lock.
  nodes.push(...(await Promise.all([startNode('a', urlFile), startNode('b', urlFile)])));
  dev = await issuer.token({ sub: 'alice', groups: ['dev'] });
  dba = await issuer.token({ sub: 'bob', groups: ['dba'] });
}, 180_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.airlock.stop()));
  await db?.upstream.stop();
  await statePg?.stop();
});

const cli = (adminUrl: string, args: string[], token: string) => {
  const { cmd, argv } = airlockCommand(args);
  return run(cmd, argv, { env: { AIRLOCK_ADMIN_URL: adminUrl, AIRLOCK_TOKEN: token } });
};

function holdOn(port: number, sql: string): { id: () => Promise<string>; done: Promise<{ code: number | null; out: string; err: string }> } {
  const child = spawnPsql({ port, token: dev }, ['-At', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const done = new Promise<{ code: number | null; out: string; err: string }>((r) => child.once('exit', (code) => r({ code, out, err })));
  const id = async (): Promise<string> => {
    for (let i = 0; i < 150 && !/id ([0-9a-f]{8})/.test(err); i++) await new Promise((r) => setTimeout(r, 100));
    const m = /id ([0-9a-f]{8})/.exec(err)?.[1];
    if (m === undefined) throw new Error(`no approval notice: ${err}`);
    return m;
  };
  return { id, done };
}

describe('approvals across two nodes sharing a PostgreSQL state store', () => {
  it('releases a statement held on node A when a dba approves it with the CLI against node B', async () => {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const held = holdOn(a.port, 'UPDATE notes SET body = $$approved-on-b$$ WHERE id = 1');
    const id = await held.id();
    expect(await db.upstream.psql('select body from notes where id = 1', { db: 'appdb' })).toBe('x');
    // Node B lists node A's request.
    const list = await cli(b.adminUrl, ['approvals', 'list', '--json'], dba);
    expect(list.stdout).toContain(id);
    // The requester may not approve their own statement on another node either.
    expect((await cli(b.adminUrl, ['approvals', 'approve', id], dev)).code).not.toBe(0);
    const ok = await cli(b.adminUrl, ['approvals', 'approve', id], dba);
    expect(ok.code, ok.stderr).toBe(0);
    const r = await held.done;
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('UPDATE 1');
    expect(await db.upstream.psql('select body from notes where id = 1', { db: 'appdb' })).toBe('approved-on-b');
    // Decided once: a second verdict, on either node, is refused.
    const again = await cli(a.adminUrl, ['approvals', 'deny', id], dba);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('already approved');
  });

  it('refuses the statement on node A with the reason given when node B denies it through the API', async () => {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const held = holdOn(a.port, 'UPDATE notes SET body = $$denied$$ WHERE id = 1');
    const id = await held.id();
    const res = await fetch(`${b.adminUrl}/v1/approvals/${id}/deny`, {
      method: 'POST',
      headers: { authorization: `Bearer ${dba}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'not during the freeze' }),
    });
    expect(res.status).toBe(200);
    const r = await held.done;
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('not during the freeze');
    expect(await db.upstream.psql('select body from notes where id = 1', { db: 'appdb' })).toBe('approved-on-b');
  });

  it('lists a session open on node A, and after it ended, through node B (CLI and GET /v1/sessions)', async () => {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const open = new pg.Client({ host: '127.0.0.1', port: a.port, user: 'alice', database: 'appdb', password: dev, application_name: 'index-test' });
    await open.connect();
    const listed = async (): Promise<Array<{ session: string; node: string; subject: string; connection: string; endedAt: string | null; endReason: string | null; actions: number | null }>> => {
      const r = await cli(b.adminUrl, ['sessions', 'list', '--subject', 'alice', '--json'], dba);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Awaited<ReturnType<typeof listed>>;
    };
    let mine: Awaited<ReturnType<typeof listed>>[number] | undefined;
    try {
      await open.query('SELECT 1');
      const before = await listed();
      const onA = before.filter((s) => s.endedAt === null);
      expect(onA).toHaveLength(1);
      mine = onA[0];
      expect(mine).toMatchObject({ subject: 'alice', connection: 'appdb', endedAt: null });
      // Node B's own audit log has never seen it: the row comes from the shared index, with A as its node.
      const fromA = await (await fetch(`${a.adminUrl}/v1/sessions?subject=alice`, { headers: { authorization: `Bearer ${dba}` } })).json() as { sessions: Array<{ session: string; node: string; actions: number | null }> };
      const selfRow = fromA.sessions.find((s) => s.session === mine?.session);
      expect(selfRow?.node).toBe(mine?.node);
      expect(selfRow?.actions).toBeGreaterThanOrEqual(1);
      expect(mine?.actions).toBeNull();
      // The table form names the node.
      const table = await cli(b.adminUrl, ['sessions', 'list'], dba);
      expect(table.stdout).toContain(mine?.session ?? 'none');
      expect(table.stdout).toContain(mine?.node ?? 'none');
      // Only auditors may list sessions, on any node.
      expect((await cli(b.adminUrl, ['sessions', 'list'], dev)).code).not.toBe(0);
    } finally {
      await open.end();
    }
    let after = await listed();
    for (let i = 0; i < 50 && after.find((s) => s.session === mine?.session)?.endedAt === null; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await listed();
    }
    expect(after.find((s) => s.session === mine?.session)).toMatchObject({ endReason: expect.any(String), endedAt: expect.any(String) });
  });

  it('gives a connect held on node A the shorter grant_for window chosen with the CLI on node B; "none" gives none; the holding node bounds a window the rule does not allow', async () => {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const stateUrl = `postgres://${statePg.superuser}:${encodeURIComponent(statePg.superPassword)}@127.0.0.1:${statePg.port}/postgres`;
    const state = async <R extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<R[]> => {
      const c = new pg.Client({ connectionString: stateUrl });
      await c.connect();
      try {
        return (await c.query<R>(sql, values)).rows;
      } finally {
        await c.end();
      }
    };
    /** psql as `sub` (group ops) through node A, held at connect; resolves with its request id as node B lists it. */
    const connectHeld = async (sub: string) => {
      const token = await issuer.token({ sub, groups: ['ops'] });
      // No connect_timeout: the hold lasts as long as the approver takes.
      const child = spawnPsql({ port: a.port, token, user: sub }, ['-At', '-c', 'SELECT 40 + 2']);
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
      const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => child.once('exit', (code) => res({ code, stdout, stderr })));
      let id = '';
      for (let i = 0; i < 150 && id === ''; i++) {
        const listed = (await (await fetch(`${b.adminUrl}/v1/approvals`, { headers: { authorization: `Bearer ${dba}` } })).json()) as { approvals: Array<{ id: string; requester: { subject: string } }> };
        id = listed.approvals.find((r) => r.requester.subject === sub)?.id ?? '';
        if (id === '') await new Promise((r) => setTimeout(r, 100));
      }
      expect(id).not.toBe('');
      return { id, done, token };
    };
    const grantOf = async (sub: string) =>
      (await state<{ window: string; chosen: string | null }>(
        `SELECT g.expires_at - a.decided_at AS window, a.grant_for_ms AS chosen FROM airlock_grants g JOIN airlock_approvals a ON a.id = g.request_id WHERE g.subject = $1`,
        [sub],
      ))[0];

    // Longer than the rule's: refused on B, before anything is claimed.
    const carol = await connectHeld('carol');
    const tooLong = await cli(b.adminUrl, ['approvals', 'approve', carol.id, '--grant-for', '2h'], dba);
    expect(tooLong.code).not.toBe(0);
    expect(tooLong.stderr).toContain('allows a grant_for window of at most 1h');
    // 90s, chosen on B: A admits carol, and her grant (written by A, the holding node) runs 90 s from the verdict, not the rule's hour.
    const ok = await cli(b.adminUrl, ['approvals', 'approve', carol.id, '--grant-for', '90s'], dba);
    expect(ok.code, ok.stderr).toBe(0);
    const r = await carol.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('42');
    const g = await grantOf('carol');
    expect(g?.chosen).toBe('90000');
    // A settles when it hears the verdict (NOTIFY or poll), a moment after B claimed it: never near the rule's hour.
    expect(Number(g?.window)).toBeGreaterThanOrEqual(90_000);
    expect(Number(g?.window)).toBeLessThan(3_600_000 / 2);
    // Within the window carol connects again through either node without a new request.
    for (const n of [a, b]) {
      const again = await psql({ port: n.port, token: carol.token, user: 'carol' }, ['-Atc', 'SELECT 1']);
      expect(again.code, again.stderr).toBe(0);
    }

    // "none": admitted this once, no grant.
    const dave = await connectHeld('dave');
    expect((await cli(b.adminUrl, ['approvals', 'approve', dave.id, '--grant-for', 'none'], dba)).code).toBe(0);
    expect((await dave.done).code).toBe(0);
    expect(await state('SELECT 1 FROM airlock_grants WHERE subject = $1', ['dave'])).toEqual([]);
    expect((await state<{ chosen: string }>('SELECT grant_for_ms AS chosen FROM airlock_approvals WHERE id = $1', [dave.id]))[0]?.chosen).toBe('0');

    // A verdict in the store with a window longer than the rule's (written past every API): node A applies the rule's.
    const erin = await connectHeld('erin');
    await state(`UPDATE airlock_approvals SET status = 'approved', decided_at = $2, decided_by = 'bob', grant_for_ms = $3 WHERE id = $1 AND status = 'pending'`, [erin.id, Date.now(), 7_200_000]);
    await state(`SELECT pg_notify('airlock_state', 'decided ' || $1)`, [erin.id]);
    expect((await erin.done).code).toBe(0);
    const e = await grantOf('erin');
    expect(Number(e?.window)).toBeGreaterThanOrEqual(3_600_000);
    expect(Number(e?.window)).toBeLessThan(7_200_000);
    await a.airlock.waitForLog((l) => l.approval === erin.id && l.msg === "state store: an approver's grant_for window is not one the rule allows; the narrower window applies");
  }, 60_000);

  it('reports the store reachable, and never prints the state store password', async () => {
    for (const n of nodes) {
      const res = await fetch(`${n.adminUrl}/readyz`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { checks: Record<string, boolean> }).checks.state_store_reachable).toBe(true);
      expect(n.airlock.output()).not.toContain(statePg.superPassword);
      expect(n.airlock.output()).not.toContain('fleet-upstream-pw');
    }
  });

  it('while the state PostgreSQL is down: not ready, new sessions and holds refused with 57P03, open sessions go on; back up: nothing lost', async () => {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    // Before the outage: a statement held on node A, and an open session on node A.
    const held = holdOn(a.port, 'UPDATE notes SET body = $$after-the-outage$$ WHERE id = 1');
    const id = await held.id();
    const open = new pg.Client({ host: '127.0.0.1', port: a.port, user: 'alice', database: 'appdb', password: dev });
    await open.connect();
    try {
      await statePg.pause();
      for (const n of nodes) {
        const res = await fetch(`${n.adminUrl}/readyz`);
        expect(res.status).toBe(503);
        expect(await res.json()).toMatchObject({ status: 'not ready', checks: { audit_writable: true, listeners_up: true, state_store_reachable: false } });
        expect(await (await fetch(`${n.adminUrl}/metrics`)).text()).toMatch(/^airlock_state_store_up 0$/m);
        // A new session on either node is refused in the client's own protocol.
        const fresh = await psql({ port: n.port, token: dev }, ['-Atc', 'SELECT 1']);
        expect(fresh.code).not.toBe(0);
        expect(fresh.stderr).toContain('airlock state store unavailable');
        const driver = new pg.Client({ host: '127.0.0.1', port: n.port, user: 'alice', database: 'appdb', password: dev });
        await expect(driver.connect()).rejects.toMatchObject({ code: '57P03' });
        await driver.end().catch(() => undefined);
      }
      // The open session's plain SELECT needs no shared state: it runs.
      expect((await open.query('SELECT body FROM notes WHERE id = 1')).rows).toEqual([{ body: 'approved-on-b' }]);
      // A statement that needs an approval cannot be held where no other node could see it.
      await expect(open.query('UPDATE notes SET body = $$during$$ WHERE id = 1')).rejects.toMatchObject({ code: '57P03', message: expect.stringContaining('airlock state store unavailable') });
      expect((await open.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);

      await statePg.resume();
      // Each node reconnects with backoff (at most 10 s between tries): new sessions work again.
      for (const n of nodes) {
        let ok = await psql({ port: n.port, token: dev }, ['-Atc', 'SELECT 1']);
        for (let i = 0; i < 150 && ok.code !== 0; i++) {
          await new Promise((r) => setTimeout(r, 200));
          ok = await psql({ port: n.port, token: dev }, ['-Atc', 'SELECT 1']);
        }
        expect(ok.code, ok.stderr).toBe(0);
        expect((await fetch(`${n.adminUrl}/readyz`)).status).toBe(200);
      }
      // The statement held before the outage is still held, listed on node B, and B's approval releases it.
      expect((await cli(b.adminUrl, ['approvals', 'list', '--json'], dba)).stdout).toContain(id);
      const ok = await cli(b.adminUrl, ['approvals', 'approve', id], dba);
      expect(ok.code, ok.stderr).toBe(0);
      const r = await held.done;
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain('UPDATE 1');
      expect(await db.upstream.psql('select body from notes where id = 1', { db: 'appdb' })).toBe('after-the-outage');
      for (const n of nodes) expect(n.airlock.output()).not.toContain(statePg.superPassword);
    } finally {
      await open.end().catch(() => undefined);
    }
  }, 120_000);
});
