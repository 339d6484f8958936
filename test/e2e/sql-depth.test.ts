/**
 * SQL nested deeper than airlock can read (issue 25, item 6), through the real daemon with
 * the pg and mysql2 drivers against real PostgreSQL and MariaDB: the statement is refused
 * with a reason (SQLSTATE 54001 / MySQL 1436, "nested too deeply for airlock to read"), not
 * "internal error", and the same session goes on answering.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { startAppDb, type AppDb } from '../harness/appdb.js';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { freePort } from '../harness/ports.js';

let issuer: TestIssuer;
let db: AppDb;
let maria: LocalMaria;
let airlock: RunningAirlock;
let token = '';
const ports: Record<string, number> = {};

beforeAll(async () => {
  issuer = await createTestIssuer();
  db = await startAppDb({ password: 'depth-pg-pw' });
  maria = await startLocalMaria({ password: 'depth-maria-pw' });
  ports.pg = await freePort();
  ports.my = await freePort();
  airlock = await startAirlock({
    state_dir: join(db.dir, 'state'),
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [db.connection('appdb', ports.pg, { allow_groups: ['dev'] }), maria.connection('maria', ports.my, { allow_groups: ['dev'] })],
    // Even a rule that admits unparsed SQL does not let an unreadable statement through.
    rules: [{ name: 'unparsed-ok', when: { unparsed: true }, effect: 'allow' }],
  });
  token = await issuer.token({ sub: 'dave', groups: ['dev'] });
}, 180_000);

afterAll(async () => {
  await airlock?.stop();
  await db?.upstream.stop();
  await maria?.stop();
});

const nested = (open: string, close: string, n: number): string => `SELECT ${open.repeat(n)}1${close.repeat(n)}`;

describe('postgres', () => {
  it('SELECT ARRAY[ARRAY[… 3000 deep …]] is refused with 54001 and a reason; the session goes on', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: ports.pg, user: 'dave', database: 'appdb', password: token });
    await c.connect();
    try {
      for (const text of [nested('ARRAY[', ']', 3000), nested('abs(', ')', 3000), nested('(SELECT ', ')', 3000)]) {
        const err = await c.query(text).then(() => null, (e: unknown) => e as { code?: string; message?: string });
        expect(err?.code).toBe('54001');
        expect(err?.message).toContain('nested too deeply for airlock to read');
      }
      // the extended protocol too (Parse)
      const err = await c.query({ text: nested('ARRAY[', ']', 3000), values: [] }).then(() => null, (e: unknown) => e as { code?: string });
      expect(err?.code).toBe('54001');
      expect((await c.query('SELECT 41 + 1 AS n')).rows).toEqual([{ n: 42 }]);
    } finally {
      await c.end();
    }
  });
});

describe('mysql', () => {
  it('a statement nested 3000 deep is refused with 1436 and a reason; the session goes on', async () => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: ports.my, user: 'dave', password: token, database: 'appdb', enableCleartextPlugin: true });
    try {
      for (const text of [nested('abs(', ')', 3000), nested('(SELECT ', ')', 3000)]) {
        const err = await c.query(text).then(() => null, (e: unknown) => e as { errno?: number; message?: string });
        expect(err?.errno).toBe(1436);
        expect(err?.message).toContain('nested too deeply for airlock to read');
      }
      const err = await c.prepare(nested('abs(', ')', 3000)).then(() => null, (e: unknown) => e as { errno?: number });
      expect(err?.errno).toBe(1436);
      const [rows] = await c.query('SELECT 41 + 1 AS n');
      expect(rows).toEqual([{ n: 42 }]);
    } finally {
      await c.end();
    }
  });
});
