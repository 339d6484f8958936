/**
 * Postgres driver fidelity (issue 26): what node-postgres and psql see through airlock is
 * what they see connected directly — a Terminate before the startup packet, one FATAL error
 * (not two) when the server ends the session, and startup `options` passed or refused by name,
 * never dropped — and a syntax error answered with PostgreSQL's 42601.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../harness/ports.js';
import { startAppDb, type AppDb } from '../harness/appdb.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { psql, run } from '../harness/clients.js';
import { encodeStartupMessage } from '../../protocols/postgres/codec/frontend.js';

const APP_PASSWORD = `app-pw-${Math.random().toString(36).slice(2)}-secret`;
let db: AppDb;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let port = 0;
let laxPort = 0;
let token = '';

interface Target {
  port: number;
  user: string;
  password: string;
}
const direct = (): Target => ({ port: db.upstream.port, user: 'app', password: APP_PASSWORD });
const gateway = (): Target => ({ port, user: 'alice', password: token });
const clientFor = (t: Target, extra: Partial<pg.ClientConfig> = {}): pg.Client =>
  new pg.Client({ host: '127.0.0.1', port: t.port, user: t.user, password: t.password, database: 'appdb', ...extra });

beforeAll(async () => {
  issuer = await createTestIssuer();
  db = await startAppDb({ password: APP_PASSWORD, setupSql: 'CREATE SCHEMA foo; CREATE TABLE foo.marker (v text); INSERT INTO foo.marker VALUES (\'in foo\')' });
  port = await freePort();
  laxPort = await freePort();
  airlock = await startAirlock({
    state_dir: join(db.dir, 'state'),
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [db.connection('appdb', port, { allow_groups: ['dba'] }), db.connection('appdb-lax', laxPort, { allow_groups: ['dba'] })],
    rules: [{ name: 'lax-may-send-anything', when: { groups: ['dba'], connections: ['appdb-lax'], unparsed: true }, effect: 'allow' }],
  });
  token = await issuer.token({ sub: 'alice', groups: ['dba'] });
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
  await db?.upstream.stop();
});

/** Sends bytes on a raw socket and collects everything until the peer closes. */
function rawExchange(p: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port: p });
    const got: Buffer[] = [];
    s.on('data', (c: Buffer) => got.push(c));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(got)));
    s.on('connect', () => s.write(bytes));
  });
}

describe('a Terminate before the startup packet', () => {
  const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

  it('is answered by a silent close, as PostgreSQL does (also when it arrives one byte at a time)', async () => {
    expect((await rawExchange(db.upstream.port, TERMINATE)).length).toBe(0);
    expect((await rawExchange(port, TERMINATE)).length).toBe(0);
    const s = netConnect({ host: '127.0.0.1', port });
    const got: Buffer[] = [];
    s.on('data', (c: Buffer) => got.push(c));
    await new Promise<void>((r) => s.on('connect', () => r()));
    for (const b of TERMINATE) {
      s.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    await new Promise<void>((r) => s.on('close', () => r()));
    expect(Buffer.concat(got).length).toBe(0);
  });

  it('node-postgres end() during connect settles the same way direct and through airlock', async () => {
    // end() while connecting writes the Terminate before the StartupMessage; the connect promise
    // never settles then (node-postgres), so what is compared is end(), 'error' events and rejections.
    const outcome = async (t: Target): Promise<{ end: string; errors: string[]; unhandled: string[] }> => {
      const unhandled: string[] = [];
      const onUnhandled = (e: unknown): number => unhandled.push(String(e));
      process.on('unhandledRejection', onUnhandled);
      const c = clientFor(t);
      const errors: string[] = [];
      c.on('error', (e: Error) => errors.push(e.message));
      c.connect().catch((e: Error) => errors.push(`connect: ${e.message}`));
      const end = await c.end().then(() => 'ended', (e: Error) => `rejected ${e.message}`);
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      process.off('unhandledRejection', onUnhandled);
      return { end, errors, unhandled };
    };
    const want = await outcome(direct());
    expect(want).toEqual({ end: 'ended', errors: [], unhandled: [] });
    expect(await outcome(gateway())).toEqual(want);
  });
});

describe('a FATAL error from the server', () => {
  /** pg_terminate_backend on the session's own backend: the server sends 57P01 and closes. */
  const outcome = async (t: Target): Promise<{ results: string[]; errors: string[] }> => {
    const c = clientFor(t);
    const errors: string[] = [];
    c.on('error', (e: Error & { code?: string }) => errors.push(`${e.code ?? ''} ${e.message}`));
    await c.connect();
    const label = (p: Promise<unknown>): Promise<string> =>
      p.then(() => 'ok', (e: Error & { code?: string; severity?: string }) => `${e.code ?? '-'} ${e.severity ?? '-'} ${e.message}`);
    // A queued query behind the one that ends the session must get the driver's own error.
    const results = await Promise.all([label(c.query('SELECT pg_terminate_backend(pg_backend_pid())')), label(c.query('SELECT 1'))]);
    await new Promise((r) => setTimeout(r, 100));
    await c.end().catch(() => undefined);
    return { results, errors };
  };

  it('reaches the driver once, with its own SQLSTATE; queued queries see what they see directly', async () => {
    const want = await outcome(direct());
    expect(want.results[0]).toMatch(/^57P01 FATAL/);
    expect(await outcome(gateway())).toEqual(want);
  });

  it('psql prints the same single FATAL error direct and through airlock', async () => {
    const viaPsql = async (t: Target): Promise<{ code: number | null; stderr: string }> => {
      const r = await run('psql', ['-X', '-At', '-d', `host=127.0.0.1 port=${t.port} dbname=appdb user=${t.user} sslmode=disable`, '-c', 'SELECT pg_terminate_backend(pg_backend_pid())'], { env: { PGPASSWORD: t.password } });
      return { code: r.code, stderr: r.stderr };
    };
    const want = await viaPsql(direct());
    expect(want.stderr).toContain('FATAL:  terminating connection due to administrator command');
    const got = await viaPsql(gateway());
    expect(got).toEqual(want);
    expect(got.stderr.match(/FATAL/g)?.length).toBe(1);
  });

  it('a pool drops the terminated client and serves the next query', async () => {
    const poolOutcome = async (t: Target): Promise<string[]> => {
      const pool = new pg.Pool({ host: '127.0.0.1', port: t.port, user: t.user, password: t.password, database: 'appdb', max: 1 });
      const seen: string[] = [];
      pool.on('error', (e: Error & { code?: string }) => seen.push(`pool error ${e.code ?? e.message}`));
      seen.push(await pool.query('SELECT pg_terminate_backend(pg_backend_pid())').then(() => 'ok', (e: Error & { code?: string }) => `query ${e.code ?? e.message}`));
      seen.push(String((await pool.query('SELECT 41 + 1 AS v')).rows[0]?.v));
      await pool.end();
      return seen;
    };
    const want = await poolOutcome(direct());
    expect(await poolOutcome(gateway())).toEqual(want);
  });
});

describe('a server refusing the session at startup', () => {
  const refusal = async (t: Target, extra: Partial<pg.ClientConfig> = {}): Promise<{ code: string | undefined; severity: string | undefined }> => {
    const c = clientFor(t, extra);
    c.on('error', () => undefined);
    const e = await c.connect().then(() => null, (err: Error & { code?: string; severity?: string }) => err);
    await c.end().catch(() => undefined);
    return { code: e?.code, severity: e?.severity };
  };

  it("gives the client the server's SQLSTATE (22023 for a bad setting value, 53300 for too many connections)", async () => {
    const bad = { options: '-c work_mem=lots' };
    expect(await refusal(direct(), bad)).toEqual({ code: '22023', severity: 'FATAL' });
    expect(await refusal(gateway(), bad)).toEqual({ code: '22023', severity: 'FATAL' });
    await db.upstream.psql('ALTER ROLE app CONNECTION LIMIT 1');
    const holder = clientFor(direct());
    await holder.connect();
    try {
      expect(await refusal(direct())).toEqual({ code: '53300', severity: 'FATAL' });
      expect(await refusal(gateway())).toEqual({ code: '53300', severity: 'FATAL' });
    } finally {
      await holder.end();
      await db.upstream.psql('ALTER ROLE app CONNECTION LIMIT -1');
    }
  });
});

describe('startup options', () => {
  const show = async (t: Target, options: string): Promise<string[]> => {
    const c = clientFor(t, { options });
    await c.connect();
    try {
      const r = await c.query<{ sp: string; iso: string; v: string }>('SELECT current_setting(\'search_path\') AS sp, current_setting(\'default_transaction_isolation\') AS iso, (SELECT v FROM marker) AS v');
      const row = r.rows[0];
      return [row?.sp ?? '', row?.iso ?? '', row?.v ?? ''];
    } finally {
      await c.end();
    }
  };

  it('-c name=value and --name=value settings on the list reach the server (node-postgres options)', async () => {
    const options = '-c search_path=foo -c default_transaction_isolation=serializable';
    expect(await show(direct(), options)).toEqual(['foo', 'serializable', 'in foo']);
    expect(await show(gateway(), options)).toEqual(['foo', 'serializable', 'in foo']);
    expect(await show(gateway(), '--search-path=foo --default_transaction_isolation=repeatable\\ read')).toEqual(['foo', 'repeatable read', 'in foo']);
  });

  it('PGOPTIONS with psql', async () => {
    const r = await psql({ port, token }, ['-At', '-c', 'SHOW default_transaction_isolation'], { env: { PGOPTIONS: '-c default_transaction_isolation=serializable' } });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('serializable');
  });

  it('refuses a setting off the list with 42501 naming it, for -c, --name and plain startup parameters', async () => {
    for (const options of ['-c role=postgres', '-c session_authorization=postgres', '--default-transaction-read-only=off', '-c session_preload_libraries=x', '-B 100']) {
      const c = clientFor(gateway(), { options });
      c.on('error', () => undefined);
      const err = await c.connect().then(() => null, (e: Error & { code?: string }) => e);
      await c.end().catch(() => undefined);
      expect(err?.code, options).toBe('42501');
      const name = options.replace(/^(-c |--)/, '').split('=')[0]?.replace(/-/g, '_') ?? '';
      expect(err?.message, options).toContain(options === '-B 100' ? '"-B"' : `"${name}"`);
    }
    const r = await run('psql', ['-X', '-At', '-d', `host=127.0.0.1 port=${port} dbname=appdb user=alice sslmode=disable options='-c row_security=off'`, '-c', 'SELECT 1'], { env: { PGPASSWORD: token } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('"row_security"');
    expect(r.stderr).not.toContain(token);
    // A plain startup parameter off the list (PostgreSQL would apply `role` as a setting).
    const answer = await rawExchange(port, encodeStartupMessage({ user: 'alice', database: 'appdb', role: 'postgres' }));
    expect(answer[0]).toBe(0x45); // ErrorResponse, before any password request
    expect(answer.toString('latin1')).toContain('C42501');
    expect(answer.toString('latin1')).toContain('"role"');
  });
});

describe('a syntax error', () => {
  const failure = async (t: Target, q: pg.QueryConfig): Promise<{ code?: string; message: string; after: unknown }> => {
    const c = clientFor(t);
    await c.connect();
    try {
      const e = (await c.query(q).then(() => null, (x: unknown) => x)) as { code?: string; message: string } | null;
      if (e === null) throw new Error(`${q.text} succeeded`);
      return { code: e.code, message: e.message, after: (await c.query('SELECT 1 AS v')).rows };
    } finally {
      await c.end();
    }
  };

  it("is refused with PostgreSQL's 42601 and airlock's reason (simple and extended protocol); the session goes on", async () => {
    for (const q of [{ text: 'SELEC 1' }, { text: 'SELEC $1', values: [1] }]) {
      expect((await failure(direct(), q)).code).toBe('42601');
      expect(await failure(gateway(), q)).toEqual({ code: '42601', message: 'airlock: syntax error at or near "SELEC" at character 1; the statement was not sent to the server', after: [{ v: 1 }] });
    }
    const unterminated = await failure(gateway(), { text: "SELECT 'abc" });
    expect(unterminated.code).toBe('42601');
    expect(unterminated.message).toMatch(/^airlock: syntax error \(unterminated quoted string .*\); the statement was not sent to the server$/);
  });

  it('is sent to the server when a rule allows unparsed text there: the server answers', async () => {
    const lax = { ...gateway(), port: laxPort };
    const e = await failure(lax, { text: 'SELEC 1' });
    expect(e).toEqual({ ...(await failure(direct(), { text: 'SELEC 1' })) });
  });
});
