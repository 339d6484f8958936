/**
 * Prometheus /metrics and /readyz on the admin listener (issue 18): real counter values after
 * known traffic through the real daemon with psql, and the exposition checked by promtool.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { freePort, type PgCluster } from '../../app/dev/pgcluster.js';
import { startAppDb } from '../harness/appdb.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, airlockCommand, type RunningAirlock } from '../harness/airlock.js';
import { psql, run, spawnPsql } from '../harness/clients.js';

let upstream: PgCluster;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let adminUrl = '';
let port = 0;
let dev = '';
let dba = '';

beforeAll(async () => {
  issuer = await createTestIssuer();
  const db = await startAppDb({ password: 'metrics-pw', setupSql: 'CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES (1, $$x$$);' });
  upstream = db.upstream;
  port = await freePort();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  airlock = await startAirlock({
    state_dir: join(db.dir, 'state'),
    admin: { listen: `127.0.0.1:${adminPort}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [db.connection('appdb', port, { allow_groups: ['dev', 'dba'] })],
    rules: [
      { name: 'no-drop', when: { statements: ['drop'] }, effect: 'deny', reason: 'no drops' },
      { name: 'updates-need-a-dba', when: { statements: ['update'], groups: ['dev'] }, effect: 'approve', approvers: ['dba'], timeout: '60s' },
    ],
  });
  dev = await issuer.token({ sub: 'alice', groups: ['dev'] });
  dba = await issuer.token({ sub: 'bob', groups: ['dba'] });
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
  await upstream?.stop();
});

async function scrape(): Promise<string> {
  const res = await fetch(`${adminUrl}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return res.text();
}

/** The value of one sample; every label given must match. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

describe('/metrics', () => {
  it('counts 3 statements denied through psql as 3 denies, and their sessions', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await psql({ port, token: dev }, ['-At', '-c', 'DROP TABLE notes']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('no drops');
    }
    const ok = await psql({ port, token: dev }, ['-At', '-c', 'select count(*) from notes']);
    expect(ok.stdout.trim()).toBe('1');
    const text = await scrape();
    expect(sample(text, 'airlock_statements_total', { verdict: 'deny', kind: 'sql', connection: 'appdb' })).toBe(3);
    expect(sample(text, 'airlock_statements_total', { verdict: 'allow', kind: 'sql', connection: 'appdb' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'airlock_sessions_total', { protocol: 'postgres', connection: 'appdb' })).toBe(4);
    expect(sample(text, 'airlock_sessions_open', { protocol: 'postgres', connection: 'appdb' })).toBe(0);
    expect(sample(text, 'airlock_check_duration_seconds_count')).toBeGreaterThanOrEqual(4);
    expect(sample(text, 'airlock_audit_sync_duration_seconds_count')).toBeGreaterThanOrEqual(4);
    expect(sample(text, 'airlock_build_info', { version: '0.1.0' })).toBe(1);
    expect(sample(text, 'airlock_audit_queue_depth')).toBe(0);
    expect(sample(text, 'airlock_state_store_up')).toBe(1);
    expect(text).not.toContain('metrics-pw');
    expect(text).not.toContain('alice');
  });

  it('counts a held statement as pending, then as approved with its time to decision', async () => {
    const child = spawnPsql({ port, token: dev }, ['-At', '-c', 'UPDATE notes SET body = $$y$$ WHERE id = 1']);
    let err = '';
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    for (let i = 0; i < 100 && !/id ([0-9a-f]{8})/.test(err); i++) await new Promise((r) => setTimeout(r, 100));
    const id = /id ([0-9a-f]{8})/.exec(err)?.[1];
    expect(id, err).toBeDefined();
    const held = await scrape();
    expect(sample(held, 'airlock_approvals_pending')).toBe(1);
    expect(sample(held, 'airlock_statements_total', { verdict: 'held', kind: 'sql' })).toBe(1);
    expect(sample(held, 'airlock_sessions_open', { protocol: 'postgres' })).toBe(1);
    const { cmd, argv } = airlockCommand(['approvals', 'approve', id ?? '']);
    const approved = await run(cmd, argv, { env: { AIRLOCK_ADMIN_URL: adminUrl, AIRLOCK_TOKEN: dba } });
    expect(approved.code, approved.stderr).toBe(0);
    expect(await done).toBe(0);
    const after = await scrape();
    expect(sample(after, 'airlock_approvals_pending')).toBe(0);
    expect(sample(after, 'airlock_statements_total', { verdict: 'approved', kind: 'sql' })).toBe(1);
    expect(sample(after, 'airlock_approval_decision_seconds_count', { status: 'approved' })).toBe(1);
  });

  it('counts admin API errors by code', async () => {
    await fetch(`${adminUrl}/v1/approvals`);
    await fetch(`${adminUrl}/v1/approvals`);
    expect(sample(await scrape(), 'airlock_errors_total', { code: 'AIRLOCK_AUTH_MISSING' })).toBe(2);
  });

  const promtool = spawnSync('promtool', ['--version']).status === 0;
  it.skipIf(!promtool)('passes promtool check metrics (skipped when promtool, Debian package prometheus, is absent)', async () => {
    const text = await scrape();
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('/readyz and /healthz', () => {
  it('reports ready with the audit log writable and every listener up', async () => {
    const res = await fetch(`${adminUrl}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready', checks: { audit_writable: true, listeners_up: true, state_store_reachable: true } });
    expect((await fetch(`${adminUrl}/healthz`)).status).toBe(200);
  });
});
