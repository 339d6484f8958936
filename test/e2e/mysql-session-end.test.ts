/**
 * When the MySQL upstream ends a session (issue 26) — a KILL of the session's own connection,
 * a KILL CONNECTION from another session, the server shutting down — the client gets what it
 * gets directly: the server's own error once (1927 "Connection was killed", the server's ERR
 * packet) or a plain close, never airlock's 1429 added, and the connection closes so a pool
 * drops it. Each case runs through airlock and directly against the same real MariaDB.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import mysql from 'mysql2/promise';
import * as mariadbConnector from 'mariadb';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { freePort } from '../harness/ports.js';
import { makeTestCerts, type TestCerts } from '../harness/tls.js';

const UPSTREAM_PASSWORD = 'session-end-Upstream-pw-26';
let maria: LocalMaria;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let certs: TestCerts;
let port = 0;
let token = '';
// Outside the server's directory: the last test stops the server (which removes its directory).
const stateDir = mkdtempSync(join(tmpdir(), 'airlock-session-end-'));

beforeAll(async () => {
  issuer = await createTestIssuer();
  certs = makeTestCerts();
  maria = await startLocalMaria({ password: UPSTREAM_PASSWORD });
  await maria.sql("GRANT PROCESS, CONNECTION ADMIN ON *.* TO 'app'@'%'");
  port = await freePort();
  airlock = await startAirlock({
    state_dir: stateDir,
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [{ ...maria.connection('maria', port, { allow_groups: ['dev'] }), tls: { cert: certs.cert, key: certs.key } }],
    rules: [],
  });
  token = await issuer.token({ sub: 'dana', groups: ['dev'] });
}, 180_000);

afterAll(async () => {
  await airlock?.stop();
  await maria?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

type Via = 'airlock' | 'direct';
const mysql2To = (via: Via): Promise<mysql.Connection> =>
  via === 'airlock'
    ? mysql.createConnection({ host: '127.0.0.1', port, user: 'dana', password: token, database: 'appdb', enableCleartextPlugin: true })
    : mysql.createConnection({ host: '127.0.0.1', port: maria.port, user: 'app', password: UPSTREAM_PASSWORD, database: 'appdb' });
const connectorTo = (via: Via): Promise<mariadbConnector.Connection> =>
  via === 'airlock'
    ? mariadbConnector.createConnection({ host: '127.0.0.1', port, user: 'dana', password: token, database: 'appdb', ssl: { ca: readFileSync(certs.ca, 'utf8') } })
    : mariadbConnector.createConnection({ host: '127.0.0.1', port: maria.port, user: 'app', password: UPSTREAM_PASSWORD, database: 'appdb' });

const errOf = (e: unknown): { errno?: number; code?: string } => {
  const x = e as { errno?: number; code?: string };
  return { errno: x.errno, code: x.code };
};
const settle = (p: Promise<unknown>): Promise<unknown> => p.then(() => 'ok', errOf);

/** Waits for the driver's end of the connection (mysql2 emits 'end' on close or error). */
const closed = (c: mysql.Connection): Promise<void> =>
  new Promise((resolve) => {
    const raw = (c as unknown as { connection: { stream: NodeJS.EventEmitter & { destroyed: boolean } } }).connection.stream;
    if (raw.destroyed) resolve();
    else raw.once('close', () => resolve());
  });

/** mysql2: KILL of the connection's own id; what the query and the connection's events show. */
async function killOwn(via: Via): Promise<unknown> {
  const c = await mysql2To(via);
  const errors: unknown[] = [];
  c.on('error', (e) => errors.push(errOf(e)));
  const killed = await settle(c.query(`KILL ${c.threadId}`));
  await closed(c);
  const after = await settle(c.query('SELECT 1'));
  return { killed, errors, after };
}

describe('the upstream ends a MySQL session', () => {
  it("KILL of the session's own id: the server's 1927 once, then the close (mysql2)", async () => {
    const via = await killOwn('airlock');
    expect(via).toEqual(await killOwn('direct'));
    expect((via as { killed: { errno: number } }).killed.errno).toBe(1927);
  });

  it("KILL of the session's own id: the connector's error is the server's fatal 1927", async () => {
    const run = async (via: Via): Promise<unknown> => {
      const c = await connectorTo(via);
      c.on('error', () => undefined);
      const killed = await c.query(`KILL ${c.threadId}`).then(() => 'ok', (e: { errno: number; fatal: boolean }) => ({ errno: e.errno, fatal: e.fatal }));
      return { killed };
    };
    const via = await run('airlock');
    expect(via).toEqual(await run('direct'));
    expect(via).toEqual({ killed: { errno: 1927, fatal: true } });
  });

  it('KILL CONNECTION from another session: the idle connection closes as it does directly, no error of airlock\'s', async () => {
    const run = async (via: Via): Promise<unknown> => {
      const c = await mysql2To(via);
      const errors: unknown[] = [];
      c.on('error', (e) => errors.push(errOf(e)));
      const [rows] = (await c.query('SELECT CONNECTION_ID() AS id')) as unknown as [Array<{ id: number }>];
      await maria.sql(`KILL CONNECTION ${rows[0]?.id}`);
      await closed(c);
      return { errors, after: await settle(c.query('SELECT 1')) };
    };
    const via = await run('airlock');
    expect(via).toEqual(await run('direct'));
    expect(JSON.stringify(via)).not.toContain('1429');
  });

  it('KILL CONNECTION from another session during a query: the server\'s close, no error of airlock\'s', async () => {
    const run = async (via: Via): Promise<unknown> => {
      const c = await mysql2To(via);
      const errors: unknown[] = [];
      c.on('error', (e) => errors.push(errOf(e)));
      const [rows] = (await c.query('SELECT CONNECTION_ID() AS id')) as unknown as [Array<{ id: number }>];
      const slow = settle(c.query('SELECT SLEEP(30)'));
      // The sleep has started once the server lists it.
      for (;;) {
        const list = await maria.sql(`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ${rows[0]?.id} AND INFO LIKE 'SELECT SLEEP%'`);
        if (list.trim().endsWith('1')) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await maria.sql(`KILL CONNECTION ${rows[0]?.id}`);
      const killed = await slow;
      await closed(c);
      return { killed, errors };
    };
    const via = await run('airlock');
    expect(via).toEqual(await run('direct'));
    expect(JSON.stringify(via)).not.toContain('1429');
  });

  // Last: it stops the server.
  it('the server shutting down: what reaches an idle client is what reaches it directly', async () => {
    const a = await mysql2To('airlock');
    const d = await mysql2To('direct');
    const seen = { airlock: [] as unknown[], direct: [] as unknown[] };
    a.on('error', (e) => seen.airlock.push(errOf(e)));
    d.on('error', (e) => seen.direct.push(errOf(e)));
    await maria.stop();
    await Promise.all([closed(a), closed(d)]);
    expect(seen.airlock).toEqual(seen.direct);
    expect(JSON.stringify(seen.airlock)).not.toContain('1429');
  });
});
