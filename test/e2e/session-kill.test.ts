/**
 * `POST /v1/sessions/{id}/kill` on a single node with the embedded store (issue 18): an admin ends
 * a MySQL session mid-statement; the client gets error 1927 (ER_CONNECTION_KILLED, what KILL
 * CONNECTION gives it directly) and the audit log records who ended it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import mysql from 'mysql2/promise';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { freePort } from '../harness/ports.js';
import { readEvents } from '../../src/audit/index.js';

const UPSTREAM_PASSWORD = 'session-kill-Upstream-pw-18';
let maria: LocalMaria;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let port = 0;
let adminUrl = '';
const stateDir = mkdtempSync(join(tmpdir(), 'airlock-session-kill-'));

beforeAll(async () => {
  issuer = await createTestIssuer();
  maria = await startLocalMaria({ password: UPSTREAM_PASSWORD });
  port = await freePort();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  airlock = await startAirlock({
    state_dir: stateDir,
    admin: { listen: `127.0.0.1:${adminPort}` },
    audit: { auditors: ['admins'] },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [maria.connection('maria', port, { allow_groups: ['dev'] })],
  });
}, 180_000);

afterAll(async () => {
  await airlock?.stop();
  await maria?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('sessions kill on one node (embedded store)', () => {
  it('ends a MySQL session mid-statement with 1927; only admins may; an unknown id is a 404', async () => {
    const dev = await issuer.token({ sub: 'dana', groups: ['dev'] });
    const admin = await issuer.token({ sub: 'olga', groups: ['admins'] });
    const kill = (id: string, token: string) =>
      fetch(`${adminUrl}/v1/sessions/${id}/kill`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'runaway query' }) });
    const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'dana', password: dev, database: 'appdb', enableCleartextPlugin: true });
    conn.on('error', () => undefined);
    const sleeping = conn.query('SELECT SLEEP(60)').then(
      () => null,
      (e: { errno?: number; message?: string }) => e,
    );
    const listed = (await (await fetch(`${adminUrl}/v1/sessions?subject=dana`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { sessions: Array<{ session: string; endedAt: string | null }> };
    const id = listed.sessions.find((s) => s.endedAt === null)?.session ?? '';
    expect(id).not.toBe('');
    expect((await kill(id, dev)).status).toBe(403);
    const res = await kill(id, admin);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ killed: { session: id, endReason: 'killed by olga' } });
    const err = await sleeping;
    expect(err).toMatchObject({ errno: 1927, message: expect.stringContaining('an administrator (olga) ended the session') });
    const events: unknown[] = [];
    for await (const r of readEvents(join(stateDir, 'audit'), { session: id })) events.push(r.event);
    expect(events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'session.killed', by: { subject: 'olga', issuer: issuer.issuer }, reason: 'runaway query' }),
        expect.objectContaining({ type: 'session.end', reason: 'killed by olga' }),
      ]),
    );
    const unknown = await kill('feedfacefeedface', admin);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { title: string }).title).toBe('no open session feedfacefeedface on this node');
    expect(airlock.output()).not.toContain(UPSTREAM_PASSWORD);
  }, 60_000);
});
