/**
 * The Postgres gateway end to end: real PostgreSQL (scram), the real airlock CLI, and
 * real clients (psql, pgbench, node-postgres) — issue 2.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as netConnect } from 'node:net';
import { mkdtempSync, writeFileSync, readFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPgCluster, freePort, type PgCluster } from '../../app/dev/pgcluster.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { psql, run, spawnPsql } from '../harness/clients.js';
import { makeTestCerts } from '../harness/tls.js';

let upstream: PgCluster;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let token: string;
const appPassword = `app-pw-${Math.random().toString(36).slice(2)}-secret`;
const ports: Record<string, number> = {};
const tokensUsed: string[] = [];

async function tokenFor(sub: string, groups: string[], ttlSeconds = 600): Promise<string> {
  const t = await issuer.token({ sub, groups }, { ttlSeconds });
  tokensUsed.push(t);
  return t;
}

beforeAll(async () => {
  issuer = await createTestIssuer();
  upstream = await startPgCluster();
  await upstream.psql('CREATE DATABASE appdb');
  await upstream.psql(`CREATE ROLE app LOGIN PASSWORD '${appPassword}'`);
  await upstream.psql('GRANT ALL ON SCHEMA public TO app; ALTER DATABASE appdb OWNER TO app', { db: 'appdb' });
  await upstream.psql(
    "SET ROLE app; CREATE TABLE customers (id int primary key, name text, email text); INSERT INTO customers VALUES (1,'Ada','ada@example.com'),(2,'Alan','alan@example.org'),(3,'Grace','grace@example.net'),(4,'Edsger','e@example.com')",
    { db: 'appdb' },
  );
  const dir = mkdtempSync(join(tmpdir(), 'airlock-e2e-'));
  const pwFile = join(dir, 'app-password');
  writeFileSync(pwFile, `${appPassword}\n`);
  chmodSync(pwFile, 0o600);
  const certs = makeTestCerts();
  for (const n of ['appdb', 'downdb', 'public', 'tlsdb', 'admin']) ports[n] = await freePort();
  const deadPort = await freePort();
  const conn = (name: string, listen: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    name,
    protocol: 'postgres',
    listen,
    upstream: { host: '127.0.0.1', port: upstream.port, database: 'appdb' },
    credentials: { type: 'static', username: 'app', password: `\${file:${pwFile}}` },
    allow_groups: ['dba', 'agents'],
    ...extra,
  });
  airlock = await startAirlock({
    state_dir: join(dir, 'state'),
    admin: { listen: `127.0.0.1:${ports.admin}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [
      conn('appdb', `127.0.0.1:${ports.appdb}`),
      conn('downdb', `127.0.0.1:${ports.downdb}`, { upstream: { host: '127.0.0.1', port: deadPort, database: 'appdb' } }),
      conn('public', `0.0.0.0:${ports.public}`),
      conn('tlsdb', `0.0.0.0:${ports.tlsdb}`, { tls: { cert: certs.cert, key: certs.key } }),
    ],
  });
  token = await tokenFor('alice', ['dba']);
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
  await upstream?.stop();
});

const target = (): { port: number; token: string } => ({ port: ports.appdb ?? 0, token });

describe('postgres gateway through psql', () => {
  it('runs a query like a direct connection', async () => {
    const r = await psql(target(), ['-At', '-c', 'select count(*) from customers']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('4');
  });

  it('takes a 2.5 KB token in PGPASSWORD', async () => {
    const groups = ['dba', ...Array.from({ length: 120 }, (_, i) => `team-with-a-long-name-${i}`)];
    const big = await tokenFor('alice', groups);
    expect(big.length).toBeGreaterThan(2500);
    const r = await psql({ port: ports.appdb ?? 0, token: big }, ['-At', '-c', 'select 7']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('7');
  });

  it('runs a file of many statements, several on one line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-psql-'));
    const f = join(dir, 'script.sql');
    writeFileSync(f, [
      'CREATE TEMP TABLE t (a int, b text);',
      "INSERT INTO t VALUES (1, 'one'); INSERT INTO t VALUES (2, 'two; not a split');",
      'BEGIN; UPDATE t SET b = upper(b) WHERE a = 1; COMMIT;',
      "SELECT string_agg(b, ',' ORDER BY a) FROM t;",
    ].join('\n'));
    const r = await psql(target(), ['-At', '-f', f]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').pop()).toBe('ONE,two; not a split');
  });

  it('answers psql catalog queries (\\d)', async () => {
    const r = await psql(target(), ['-c', '\\d customers']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Table "public.customers"');
    expect(r.stdout).toContain('email');
  });

  it('copies both ways with \\copy, and streams a large COPY', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-copy-'));
    const src = join(dir, 'in.csv');
    const lines = Array.from({ length: 100_000 }, (_, i) => `${i},name ${i}`);
    writeFileSync(src, `${lines.join('\n')}\n`);
    const out = join(dir, 'out.csv');
    const r = await psql(target(), [
      '-c', 'CREATE TABLE IF NOT EXISTS copied (id int, name text)',
      '-c', 'TRUNCATE copied',
      '-c', `\\copy copied FROM '${src}' WITH (FORMAT csv)`,
      '-c', `\\copy (SELECT * FROM copied ORDER BY id) TO '${out}' WITH (FORMAT csv)`,
    ]);
    expect(r.stderr).toBe('');
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(src, 'utf8'));
    expect(await upstream.psql('select count(*) from copied', { db: 'appdb' })).toBe('100000');
  });

  it('passes a large result intact', async () => {
    const r = await psql(target(), ['-At', '-c', "select g, repeat('x', 200) from generate_series(1, 300000) g"]);
    expect(r.code).toBe(0);
    const rows = r.stdout.trimEnd().split('\n');
    expect(rows.length).toBe(300_000);
    expect(rows[299_999]).toBe(`300000|${'x'.repeat(200)}`);
  });

  it('cancels a running statement (psql sends CancelRequest on SIGINT)', async () => {
    const child = spawnPsql(target(), ['-c', 'select pg_sleep(30)']);
    let err = '';
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    await new Promise((r) => setTimeout(r, 1500));
    const started = Date.now();
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(err).toContain('canceling statement due to user request');
    expect(code).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(25_000);
  });
});

describe('postgres gateway through pgbench', () => {
  it('initialises and runs in simple, extended and prepared modes', async () => {
    const conn = { PGPASSWORD: token, PGHOST: '127.0.0.1', PGPORT: String(ports.appdb), PGUSER: 'alice', PGDATABASE: 'appdb', PGSSLMODE: 'disable' };
    const init = await run('pgbench', ['-i', '-s', '1', '-q'], { env: conn });
    expect(init.code, init.stderr).toBe(0);
    for (const mode of ['simple', 'extended', 'prepared']) {
      const r = await run('pgbench', ['-M', mode, '-c', '4', '-j', '2', '-t', '50', '-n'], { env: conn });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('number of transactions actually processed: 200/200');
      expect(r.stdout).toContain('number of failed transactions: 0');
    }
  });
});

describe('postgres gateway through node-postgres', () => {
  const client = (t = token): pg.Client => new pg.Client({ host: '127.0.0.1', port: ports.appdb, user: 'alice', database: 'appdb', password: t });

  it('runs parameterised and named prepared queries', async () => {
    const c = client();
    await c.connect();
    try {
      const r = await c.query('select name from customers where id = $1', [2]);
      expect(r.rows).toEqual([{ name: 'Alan' }]);
      for (const id of [1, 3, 4]) {
        const p = await c.query({ name: 'by-id', text: 'select name, $2::text as tag from customers where id = $1', values: [id, `t${id}`] });
        expect(p.rows[0]?.tag).toBe(`t${id}`);
      }
      const bin = await c.query({ text: 'select $1::bytea as b', values: [Buffer.from([0, 1, 2, 255])] });
      expect(bin.rows[0]?.b).toEqual(Buffer.from([0, 1, 2, 255]));
      await expect(c.query('select * from no_such_table')).rejects.toMatchObject({ code: '42P01' });
      const after = await c.query('select 1 as one');
      expect(after.rows[0]?.one).toBe(1);
    } finally {
      await c.end();
    }
  });

  it('delivers LISTEN/NOTIFY notifications', async () => {
    const listener = client();
    const notifier = client();
    await listener.connect();
    await notifier.connect();
    try {
      const got = new Promise<pg.Notification>((r) => listener.once('notification', r));
      await listener.query('LISTEN airlock_chan');
      await notifier.query("NOTIFY airlock_chan, 'hello through airlock'");
      const n = await got;
      expect(n.channel).toBe('airlock_chan');
      expect(n.payload).toBe('hello through airlock');
    } finally {
      await listener.end();
      await notifier.end();
    }
  });

  it('reports an upstream that drops the session mid-way, and keeps serving', async () => {
    const c = client();
    await c.connect();
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    const pid = (await c.query('select pg_backend_pid() as pid')).rows[0]?.pid as number;
    await upstream.psql(`select pg_terminate_backend(${pid})`);
    await expect(c.query('select 1')).rejects.toBeTruthy();
    await c.end().catch(() => undefined);
    const again = await psql(target(), ['-At', '-c', 'select 42']);
    expect(again.stdout.trim()).toBe('42');
  });
});

describe('authentication and refusal', () => {
  const refused = async (t: string, port = ports.appdb ?? 0): Promise<string> => {
    const r = await psql({ port, token: t }, ['-At', '-c', 'select 1']);
    expect(r.code).not.toBe(0);
    return r.stderr;
  };

  it('refuses bad tokens with a reason and keeps serving', async () => {
    expect(await refused('garbage')).toContain('the token is not valid');
    expect(await refused(await tokenFor('alice', ['dba'], -120))).toContain('the token has expired');
    const wrongAud = await issuer.token({ aud: 'other' });
    tokensUsed.push(wrongAud);
    expect(await refused(wrongAud)).toContain('wrong audience');
    expect(await refused('')).toMatch(/password|token/);
    const r = await psql(target(), ['-At', '-c', 'select 1']);
    expect(r.stdout.trim()).toBe('1');
  });

  it('refuses a caller outside allow_groups with 28000 naming the connection', async () => {
    const t = await tokenFor('mallory', ['marketing']);
    const err = await refused(t);
    expect(err).toContain('may not use connection "appdb"');
    const c = new pg.Client({ host: '127.0.0.1', port: ports.appdb, user: 'x', database: 'appdb', password: t });
    await expect(c.connect()).rejects.toMatchObject({ code: '28000' });
  });

  it('reports an unreachable upstream with 08001 naming the connection', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: ports.downdb, user: 'alice', database: 'appdb', password: token });
    const e = (await c.connect().catch((x: unknown) => x)) as { code?: string; message?: string };
    expect(e.code).toBe('08001');
    expect(e.message).toContain('downdb');
  });

  it('refuses to take a token in clear on a non-loopback listener, and accepts it over TLS', async () => {
    expect(await refused(token, ports.public)).toContain('only over TLS');
    const r = await psql({ port: ports.tlsdb ?? 0, token, sslmode: 'require' }, ['-At', '-c', 'select ssl from pg_stat_ssl where pid = pg_backend_pid()']);
    expect(r.stderr).toBe('');
    // airlock terminates TLS; the upstream leg here is plain (tls: disable).
    expect(r.stdout.trim()).toBe('f');
  });

  it('ends a malformed session with 08P01 and survives', async () => {
    const reply = await new Promise<Buffer>((resolve) => {
      const s = netConnect(ports.appdb ?? 0, '127.0.0.1');
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => {
        chunks.push(c);
        const all = Buffer.concat(chunks);
        if (all[0] === 0x52 && all.length >= 9 && chunks.length === 1) {
          // AuthenticationCleartextPassword: answer with a frame that claims 2 GB.
          s.write(Buffer.from([0x70, 0x7f, 0xff, 0xff, 0xff]));
        }
      });
      s.on('close', () => resolve(Buffer.concat(chunks)));
      s.on('error', () => resolve(Buffer.concat(chunks)));
      const params = Buffer.from('user\0alice\0database\0appdb\0\0');
      const head = Buffer.alloc(8);
      head.writeInt32BE(8 + params.length, 0);
      head.writeInt32BE(196608, 4);
      s.write(Buffer.concat([head, params]));
    });
    expect(reply.toString('latin1')).toContain('08P01');
    const r = await psql(target(), ['-At', '-c', 'select 2']);
    expect(r.stdout.trim()).toBe('2');
  });

  it('ends a session when its token expires', async () => {
    const short = await tokenFor('alice', ['dba'], 4);
    const c = new pg.Client({ host: '127.0.0.1', port: ports.appdb, user: 'alice', database: 'appdb', password: short });
    c.on('error', () => undefined);
    await c.connect();
    expect((await c.query('select 1 as x')).rows[0]?.x).toBe(1);
    await new Promise((r) => setTimeout(r, 5_000));
    await expect(c.query('select 1')).rejects.toBeTruthy();
    await c.end().catch(() => undefined);
  });
});

describe('logs and secrets', () => {
  it('logs session start and end with identity, client address, duration and bytes', async () => {
    await psql(target(), ['-At', '-c', 'select 1']);
    const end = await airlock.waitForLog((l) => l.event === 'session.end' && l.subject === 'alice');
    expect(end).toMatchObject({ connection: expect.any(String), durationMs: expect.any(Number), bytesFromClient: expect.any(Number), bytesToClient: expect.any(Number) });
    const start = airlock.logs().find((l) => l.event === 'session.start');
    expect(start).toMatchObject({ identity: { subject: expect.any(String), groups: expect.any(Array) }, client: { address: expect.any(String) } });
  });

  it('never prints the upstream password or a token', () => {
    const out = airlock.output();
    expect(out.length).toBeGreaterThan(0);
    expect(out).not.toContain(appPassword);
    for (const t of tokensUsed) {
      expect(out).not.toContain(t);
      // Not even the signature part alone.
      expect(out).not.toContain(t.split('.')[2] ?? 'never');
    }
  });
});
