/**
 * SQL policy on the wire (issue 3): deny rules that hold against evasions, checked by the
 * upstream's own state, and just-in-time approval of a held statement from another process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, type PgCluster } from '../../app/dev/pgcluster.js';
import { startAppDb } from '../harness/appdb.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, airlockCommand, type RunningAirlock } from '../harness/airlock.js';
import { psql, run, spawnPsql } from '../harness/clients.js';

let upstream: PgCluster;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let agent: string;
let dba: string;
let dev: string;
let adminUrl: string;
let port = 0;

beforeAll(async () => {
  issuer = await createTestIssuer();
  const db = await startAppDb({
    password: 'policy-pw',
    setupSql: "CREATE TABLE orders (id int primary key, amount int); INSERT INTO orders SELECT g, g * 10 FROM generate_series(1, 5) g; CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES (1, 'x'); CREATE SCHEMA secret; CREATE TABLE secret.keys (k text); INSERT INTO secret.keys VALUES ('k1');",
  });
  upstream = db.upstream;
  port = await freePort();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  airlock = await startAirlock({
    state_dir: join(db.dir, 'state'),
    admin: { listen: `127.0.0.1:${adminPort}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [
      db.connection('appdb', port, { allow_groups: ['dba', 'agents', 'dev', 'ops'] }),
    ],
    rules: [
      { name: 'no-ddl-for-agents', when: { groups: ['agents'], statements: ['drop', 'truncate', 'alter', 'create', 'grant', 'revoke'] }, effect: 'deny', reason: 'agents may not change the schema' },
      { name: 'no-unbounded-writes', when: { statements: ['update', 'delete'], without_where: true }, effect: 'deny' },
      { name: 'no-secret-schema', when: { tables: ['secret.*'] }, effect: 'deny', reason: 'the secret schema is off limits' },
      { name: 'opaque-is-denied', when: { opaque: true, groups: ['agents', 'dev'] }, effect: 'deny' },
      { name: 'orders-writes-need-a-dba', when: { statements: ['insert', 'update', 'delete', 'merge'], tables: ['public.orders'], groups: ['dev'] }, effect: 'approve', approvers: ['dba'], timeout: '60s' },
      { name: 'notes-inserts-each-time', when: { statements: ['insert'], tables: ['public.notes'], groups: ['dev'] }, effect: 'approve', approvers: ['dba'], per_execution: true, timeout: '60s' },
      { name: 'orders-reads-once', when: { statements: ['select'], tables: ['public.orders'], groups: ['dev'] }, effect: 'approve', approvers: ['dba'], timeout: '60s' },
      { name: 'ops-connect', when: { statements: ['connect'], groups: ['ops'] }, effect: 'approve', approvers: ['dba'], grant_for: '1h', timeout: '60s' },
      { name: 'notes-writes-need-a-dba-quickly', when: { statements: ['update'], tables: ['public.notes'], groups: ['dev'] }, effect: 'approve', approvers: ['dba'], timeout: '3s' },
    ],
  });
  agent = await issuer.token({ sub: 'claude', groups: ['agents'] });
  dba = await issuer.token({ sub: 'bob', groups: ['dba'] });
  dev = await issuer.token({ sub: 'alice', groups: ['dev'] });
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
  await upstream?.stop();
});

const ordersCount = (): Promise<string> => upstream.psql('select count(*) from orders', { db: 'appdb' });
const notesExists = (): Promise<string> => upstream.psql("select count(*) from pg_tables where tablename = 'notes'", { db: 'appdb' });

describe('deny rules on the wire', () => {
  const evasions: Array<[string, string]> = [
    ['plain', 'DROP TABLE notes'],
    ['case and whitespace', 'dRoP\n\t  TaBlE   notes'],
    ['block comment', '/* harmless */ DROP /* x */ TABLE notes'],
    ['nested comment', '/* outer /* inner */ still comment */ DROP TABLE notes'],
    ['line comment before', '-- just a select\nDROP TABLE notes'],
    ['second statement', 'SELECT 1; DROP TABLE notes'],
    ['dollar-quoted first statement', "SELECT $$ ; $$; DROP TABLE notes"],
    ['quoted identifier', 'DROP TABLE "notes"'],
    ['schema-qualified', 'DROP TABLE public.notes'],
    ['unicode identifier', 'DROP TABLE U&"n\\006Ftes"'],
    ['backslash ending a standard string', "SELECT 'a\\'; DROP TABLE notes; --'"],
    ['data-modifying CTE', 'WITH d AS (DELETE FROM notes RETURNING *) SELECT * FROM d'],
    ['EXPLAIN ANALYZE of a write', 'EXPLAIN ANALYZE DELETE FROM notes'],
    ['DO block', "DO $$ BEGIN EXECUTE 'DROP TABLE notes'; END $$"],
    ['PREPARE + EXECUTE', 'PREPARE p AS DELETE FROM notes; EXECUTE p'],
  ];
  for (const [name, sql] of evasions) {
    it(`stops ${name}`, async () => {
      const r = await psql({ port, token: agent }, ['-At', '-c', sql]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/airlock: denied by rule [\w()-]+/);
      expect(await notesExists()).toBe('1');
      expect(await upstream.psql('select count(*) from notes', { db: 'appdb' })).toBe('1');
    });
  }

  it('follows standard_conforming_strings = off (a backslash-quoted string hiding a statement)', async () => {
    const hidden = "SELECT 'a\\', ' ; DROP TABLE notes ; --'";
    const r = await psql({ port, token: agent }, ['-At', '-c', 'SET standard_conforming_strings = off', '-c', hidden]);
    expect(r.stderr).toMatch(/airlock: denied by rule/);
    expect(await notesExists()).toBe('1');
    // Pipelined: both statements sent before any answer (node-postgres pipelines queries).
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'claude', database: 'appdb', password: agent });
    await c.connect();
    try {
      const a = c.query('SET standard_conforming_strings = off');
      const b = c.query(hidden).catch((e: unknown) => e);
      await a;
      expect(await b).toMatchObject({ code: '42501' });
      expect(await notesExists()).toBe('1');
    } finally {
      await c.end();
    }
  });

  it('names the rule and its reason, with SQLSTATE 42501, and the session stays usable', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'claude', database: 'appdb', password: agent });
    await c.connect();
    try {
      const e = (await c.query('DROP TABLE notes').catch((x: unknown) => x)) as { code?: string; message?: string };
      expect(e.code).toBe('42501');
      expect(e.message).toContain('no-ddl-for-agents');
      expect(e.message).toContain('agents may not change the schema');
      expect((await c.query('select count(*)::int as n from notes')).rows[0]?.n).toBe(1);
      // Extended protocol: a denied Parse fails like a Postgres error and the next one works.
      await expect(c.query({ text: 'DELETE FROM notes', values: [] })).rejects.toMatchObject({ code: '42501' });
      await expect(c.query({ text: 'DELETE FROM secret.keys WHERE k = $1', values: ['k1'] })).rejects.toMatchObject({ code: '42501' });
      expect((await c.query({ text: 'select $1::int + 1 as n', values: [1] })).rows[0]?.n).toBe(2);
      // Inside a transaction the transaction is aborted, as Postgres would.
      await c.query('BEGIN');
      await expect(c.query('TRUNCATE notes')).rejects.toMatchObject({ code: '42501' });
      await expect(c.query('select 1')).rejects.toMatchObject({ code: '25P02' });
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
  });

  it('denies UPDATE/DELETE without WHERE and a table rule through search_path games', async () => {
    const r = await psql({ port, token: dba }, ['-At', '-c', 'UPDATE notes SET body = body']);
    expect(r.stderr).toContain('no-unbounded-writes');
    const sp = await psql({ port, token: dba }, ['-At', '-c', 'SET search_path = secret, public', '-c', 'SELECT * FROM keys']);
    expect(sp.stderr).toContain('no-secret-schema');
    expect(sp.stdout).not.toContain('k1');
  });

  it('lets harmless look-alikes through', async () => {
    for (const sql of ["SELECT 'drop table notes'", "SELECT E'\\'; DROP TABLE notes; --'", 'EXPLAIN DELETE FROM notes WHERE id = 1', 'SELECT /* DELETE FROM notes */ 1', "SELECT $x$ DROP TABLE notes $x$"]) {
      const r = await psql({ port, token: agent }, ['-At', '-c', sql]);
      expect(r.stderr, sql).toBe('');
    }
  });
});

describe('just-in-time approval', () => {
  const cli = async (args: string[], token: string): Promise<{ code: number | null; stdout: string; stderr: string }> => {
    const { cmd, argv } = airlockCommand(args);
    return run(cmd, argv, { env: { AIRLOCK_ADMIN_URL: adminUrl, AIRLOCK_TOKEN: token } });
  };

  const holdUpdate = async (sql = 'UPDATE orders SET amount = amount + 1 WHERE id = 1'): Promise<{ id: string; done: Promise<{ code: number | null; out: string; err: string }> }> => {
    const child = spawnPsql({ port, token: dev }, ['-At', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
    let out = '';
    let err = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const done = new Promise<{ code: number | null; out: string; err: string }>((r) => child.once('exit', (code) => r({ code, out, err })));
    for (let i = 0; i < 100 && !/id ([0-9a-f]{8})/.test(err); i++) await new Promise((r) => setTimeout(r, 100));
    const id = /id ([0-9a-f]{8})/.exec(err)?.[1];
    if (id === undefined) throw new Error(`no approval notice: ${err}`);
    return { id, done };
  };

  it('holds a statement until a dba approves it with the CLI, then runs it', async () => {
    const before = await upstream.psql('select amount from orders where id = 1', { db: 'appdb' });
    const { id, done } = await holdUpdate();
    // Still waiting: the upstream has not seen it.
    expect(await upstream.psql('select amount from orders where id = 1', { db: 'appdb' })).toBe(before);
    const list = await cli(['approvals', 'list', '--json'], dba);
    expect(list.stdout).toContain(id);
    expect(list.stdout).toContain('UPDATE orders');
    // The requester may not approve their own statement.
    const self = await cli(['approvals', 'approve', id], dev);
    expect(self.code).not.toBe(0);
    const ok = await cli(['approvals', 'approve', id], dba);
    expect(ok.stdout).toContain(`approved ${id}`);
    const r = await done;
    expect(r.code).toBe(0);
    expect(r.out).toContain('UPDATE 1');
    expect(Number(await upstream.psql('select amount from orders where id = 1', { db: 'appdb' }))).toBe(Number(before) + 1);
  });

  it('refuses the statement with the approver reason when denied through the API', async () => {
    const before = await upstream.psql('select amount from orders where id = 1', { db: 'appdb' });
    const { id, done } = await holdUpdate();
    const res = await fetch(`${adminUrl}/v1/approvals/${id}/deny`, { method: 'POST', headers: { authorization: `Bearer ${dba}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'not during the freeze' }) });
    expect(res.status).toBe(200);
    const r = await done;
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('not during the freeze');
    expect(await upstream.psql('select amount from orders where id = 1', { db: 'appdb' })).toBe(before);
  });

  it('refuses the statement when nobody decides in time', async () => {
    const { done } = await holdUpdate("UPDATE notes SET body = 'changed' WHERE id = 1");
    const r = await done;
    expect(r.code).not.toBe(0);
    expect(r.err, r.err).toMatch(/airlock: denied by rule notes-writes-need-a-dba-quickly: no approver decided within 3s/);
    expect(await upstream.psql('select body from notes where id = 1', { db: 'appdb' })).toBe('x');
    expect(await ordersCount()).toBe('5');
  });

  it('does not block other sessions while one is held', async () => {
    const { id, done } = await holdUpdate();
    const other = await psql({ port, token: dba }, ['-At', '-c', 'select count(*) from orders']);
    expect(other.stdout.trim()).toBe('5');
    await cli(['approvals', 'deny', id, '--reason', 'cleanup'], dba);
    await done;
  });

  /** Approves every pending request of `subject` as the dba, through the API; returns how many. */
  const approveAll = async (subject: string): Promise<number> => {
    const res = await fetch(`${adminUrl}/v1/approvals`, { headers: { authorization: `Bearer ${dba}` } });
    const body = (await res.json()) as { approvals: Array<{ id: string; requester: { subject: string } }> };
    let n = 0;
    for (const a of body.approvals.filter((x) => x.requester.subject === subject)) {
      const r = await fetch(`${adminUrl}/v1/approvals/${a.id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${dba}` } });
      if (r.status === 200) n++;
    }
    return n;
  };
  /** Runs `work` while approving whatever it holds, and counts the approvals. */
  const approving = async <T>(subject: string, work: Promise<T>): Promise<{ value: T; approvals: number }> => {
    let approvals = 0;
    let done = false;
    const loop = (async () => {
      while (!done) {
        approvals += await approveAll(subject);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      return { value: await work, approvals };
    } finally {
      done = true;
      await loop;
      approvals += 0;
    }
  };

  it('asks once per statement text with the extended protocol, unless the rule says per_execution', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'alice', database: 'appdb', password: dev });
    await c.connect();
    try {
      // Default: approved once; node-postgres re-Parses the same unnamed text and is let through.
      const once = await approving('alice', (async () => {
        for (let i = 0; i < 3; i++) await c.query('SELECT count(*) FROM orders WHERE id > $1', [i]);
      })());
      expect(once.approvals).toBe(1);
      // per_execution: a named statement executed three times is approved three times.
      const each = await approving('alice', (async () => {
        for (let i = 0; i < 3; i++) await c.query({ name: 'ins', text: 'INSERT INTO notes VALUES ($1, $2)', values: [100 + i, 'approved'] });
      })());
      expect(each.approvals).toBe(3);
      expect(await upstream.psql('select count(*) from notes where id >= 100', { db: 'appdb' })).toBe('3');
    } finally {
      await c.end();
    }
  });

  it('holds a connection until approved, then grants the subject access for grant_for', async () => {
    const ops = await issuer.token({ sub: 'olga', groups: ['ops'] });
    const first = await approving('olga', psql({ port, token: ops }, ['-At', '-c', 'select 11']));
    expect(first.value.stdout.trim(), first.value.stderr).toBe('11');
    expect(first.approvals).toBe(1);
    // Within the window: no new request.
    const second = await psql({ port, token: ops }, ['-At', '-c', 'select 12']);
    expect(second.stdout.trim()).toBe('12');
    const pending = await fetch(`${adminUrl}/v1/approvals`, { headers: { authorization: `Bearer ${dba}` } });
    expect(JSON.stringify(await pending.json())).not.toContain('olga');
  });

  it('requires a bearer token on the admin API and answers problem+json', async () => {
    const res = await fetch(`${adminUrl}/v1/approvals`);
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
  });
});
