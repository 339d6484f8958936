/** SIGHUP reload and SIGTERM drain of the real daemon, with psql as the client. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPgCluster, freePort, type PgCluster } from '../../app/dev/pgcluster.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { psql } from '../harness/clients.js';
import { auditEvents } from '../harness/files.js';

let upstream: PgCluster;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let token: string;
let doc: Record<string, unknown>;
let pwFile: string;
const ports: Record<string, number> = {};

const conn = (name: string, port: number): Record<string, unknown> => ({
  name,
  protocol: 'postgres',
  listen: `127.0.0.1:${port}`,
  upstream: { host: '127.0.0.1', port: upstream.port, database: 'appdb' },
  credentials: { type: 'static', username: 'app', password: `\${file:${pwFile}}` },
  allow_groups: ['dba'],
});

beforeAll(async () => {
  issuer = await createTestIssuer();
  upstream = await startPgCluster();
  await upstream.psql('CREATE DATABASE appdb');
  await upstream.psql("CREATE ROLE app LOGIN PASSWORD 'lifecycle-pw'; ALTER DATABASE appdb OWNER TO app");
  const dir = mkdtempSync(join(tmpdir(), 'airlock-life-'));
  pwFile = join(dir, 'pw');
  writeFileSync(pwFile, 'lifecycle-pw');
  chmodSync(pwFile, 0o600);
  ports.a = await freePort();
  ports.b = await freePort();
  doc = {
    state_dir: join(dir, 'state'),
    drain_timeout: '3s',
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [conn('a', ports.a)],
  };
  airlock = await startAirlock(doc);
  token = await issuer.token({ sub: 'alice', groups: ['dba'] });
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
  await upstream?.stop();
});

describe('daemon lifecycle', () => {
  it('SIGHUP starts new listeners, stops removed ones and keeps the old config when the new one is invalid', async () => {
    expect((await psql({ port: ports.a ?? 0, token }, ['-At', '-c', 'select 1'])).stdout.trim()).toBe('1');
    airlock.rewriteConfig({ ...doc, connections: [conn('b', ports.b ?? 0)] });
    airlock.signal('SIGHUP');
    await airlock.waitForLog((l) => l.msg === 'configuration reloaded');
    expect((await psql({ port: ports.b ?? 0, token }, ['-At', '-c', 'select 2'])).stdout.trim()).toBe('2');
    expect((await psql({ port: ports.a ?? 0, token }, ['-At', '-c', 'select 1'])).code).not.toBe(0);

    // A live session gets the reloaded rules on its next statement.
    const live = new pg.Client({ host: '127.0.0.1', port: ports.b, user: 'alice', database: 'appdb', password: token });
    await live.connect();
    expect((await live.query('select 1 as x')).rows[0]?.x).toBe(1);
    airlock.rewriteConfig({ ...doc, connections: [conn('b', ports.b ?? 0)], rules: [{ name: 'no-selects-now', when: { statements: ['select'] }, effect: 'deny' }] });
    airlock.signal('SIGHUP');
    await airlock.waitForLog((l) => l.msg === 'configuration reloaded' && airlock.logs().filter((x) => x.msg === 'configuration reloaded').length >= 2);
    await expect(live.query('select 1')).rejects.toMatchObject({ code: '42501' });
    await live.end();
    airlock.rewriteConfig({ ...doc, connections: [conn('b', ports.b ?? 0)] });
    airlock.signal('SIGHUP');
    for (let i = 0; i < 50 && airlock.logs().filter((x) => x.msg === 'configuration reloaded').length < 3; i++) await new Promise((r) => setTimeout(r, 100));

    airlock.rewriteConfig({ ...doc, connections: 'not a list' });
    airlock.signal('SIGHUP');
    await airlock.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('reload refused'));
    expect((await psql({ port: ports.b ?? 0, token }, ['-At', '-c', 'select 3'])).stdout.trim()).toBe('3');
  });

  it('SIGTERM stops accepting, lets a session finish within the drain timeout, then ends it', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: ports.b, user: 'alice', database: 'appdb', password: token });
    c.on('error', () => undefined);
    await c.connect();
    // Idle sessions too: the drain timeout ends them all at once, as a shutdown of a busy node does.
    const idle = await Promise.all(
      Array.from({ length: 40 }, async () => {
        const i = new pg.Client({ host: '127.0.0.1', port: ports.b, user: 'alice', database: 'appdb', password: token });
        i.on('error', () => undefined);
        await i.connect();
        return i;
      }),
    );
    const slow = c.query('select pg_sleep(1) as done');
    await new Promise((r) => setTimeout(r, 200));
    airlock.signal('SIGTERM');
    const res = await slow;
    expect(res.rows.length).toBe(1);
    // The drain timeout (3 s) then ends the idle session with 57P01.
    const ended = await new Promise<string>((resolve) => {
      c.once('error', (e: Error & { code?: string }) => resolve(e.code ?? e.message));
      c.once('end', () => resolve('end'));
    });
    expect(['57P01', 'end']).toContain(ended);
    expect(await airlock.stop()).toBe(0);
    // Every session that started has its end in the audit log: ends are written before the log closes.
    const events = auditEvents(join(airlock.stateDir, 'audit'));
    const started = events.filter((e) => e.type === 'session.start').map((e) => e.session);
    const endedIds = new Set(events.filter((e) => e.type === 'session.end').map((e) => e.session));
    expect(started.length).toBeGreaterThan(0);
    expect(started.filter((id) => !endedIds.has(id))).toEqual([]);
    expect(airlock.output()).not.toContain('audit of session end failed');
    await Promise.all(idle.map((i) => i.end().catch(() => undefined)));
  });
});
