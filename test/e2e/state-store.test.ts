/**
 * The embedded state store (issue 18): a `grant_for` window and decided approvals survive a
 * restart of a single node, kept in files under state_dir/state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { freePort, type PgCluster } from '../../app/dev/pgcluster.js';
import { startAppDb, type AppDb } from '../harness/appdb.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, airlockCommand, type RunningAirlock } from '../harness/airlock.js';
import { psql, run, spawnPsql } from '../harness/clients.js';

let db: AppDb;
let upstream: PgCluster;
let issuer: TestIssuer;
let airlock: RunningAirlock | undefined;
let adminUrl = '';
let adminPort = 0;
let port = 0;

function config(connectTimeout: string): Record<string, unknown> {
  return {
    state_dir: join(db.dir, 'state'),
    admin: { listen: `127.0.0.1:${adminPort}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [db.connection('appdb', port, { allow_groups: ['ops', 'dba'] })],
    rules: [{ name: 'ops-connect', when: { statements: ['connect'], groups: ['ops'] }, effect: 'approve', approvers: ['dba'], grant_for: '1h', timeout: connectTimeout }],
  };
}

beforeAll(async () => {
  issuer = await createTestIssuer();
  db = await startAppDb({ password: 'state-pw' });
  upstream = db.upstream;
  port = await freePort();
  adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
  await upstream?.stop();
});

describe('embedded state store across a restart', () => {
  it('keeps a grant_for window: after a restart the subject is let in without a new request', async () => {
    airlock = await startAirlock(config('60s'));
    const ops = await issuer.token({ sub: 'olga', groups: ['ops'] });
    const dba = await issuer.token({ sub: 'bob', groups: ['dba'] });
    const child = spawnPsql({ port, token: ops }, ['-At', '-c', 'select 11']);
    let out = '';
    let err = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    let id: string | undefined;
    for (let i = 0; i < 100 && id === undefined; i++) {
      const res = await fetch(`${adminUrl}/v1/approvals`, { headers: { authorization: `Bearer ${dba}` } });
      id = ((await res.json()) as { approvals: Array<{ id: string }> }).approvals[0]?.id;
      if (id === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(id, err).toBeDefined();
    const { cmd, argv } = airlockCommand(['approvals', 'approve', id ?? '']);
    const approved = await run(cmd, argv, { env: { AIRLOCK_ADMIN_URL: adminUrl, AIRLOCK_TOKEN: dba } });
    expect(approved.code, approved.stderr).toBe(0);
    expect(await done, err).toBe(0);
    expect(out.trim()).toBe('11');

    expect(await airlock.stop()).toBe(0);
    // Restarted with a short connect timeout: without the kept grant the next connect would be refused after 2s.
    airlock = await startAirlock(config('2s'));
    const again = await psql({ port, token: ops }, ['-At', '-c', 'select 12']);
    expect(again.stderr).toBe('');
    expect(again.stdout.trim()).toBe('12');
    const pending = await fetch(`${adminUrl}/v1/approvals`, { headers: { authorization: `Bearer ${dba}` } });
    expect(JSON.stringify(await pending.json())).not.toContain('olga');

    // What is kept: the grant and the verdict, never a token or the upstream password.
    const kept = readFileSync(join(db.dir, 'state', 'state', 'grants.jsonl'), 'utf8') + readFileSync(join(db.dir, 'state', 'state', 'approvals.jsonl'), 'utf8');
    expect(kept).toContain(id);
    for (const secret of [ops, dba, 'state-pw']) expect(kept).not.toContain(secret);
  });

  it('does not let a subject in whose window was never granted (the 2s timeout refuses it)', async () => {
    const other = await issuer.token({ sub: 'oscar', groups: ['ops'] });
    const r = await psql({ port, token: other }, ['-At', '-c', 'select 13']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('no approver decided');
  });
});
