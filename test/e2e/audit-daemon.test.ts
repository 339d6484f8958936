/**
 * Audit through the real daemon (issue 5): kill -9 under 20 concurrent clients, tampering
 * caught by `airlock audit verify`, an unwritable audit dir refusing statements, sessions
 * through the CLI and the admin API, the webhook exporter across an outage and a crash,
 * and no secret anywhere under state_dir or in the daemon's output.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import pg from 'pg';
import { startPgCluster, freePort, type PgCluster } from '../../app/dev/pgcluster.js';
import { readEvents } from '../../src/audit/index.js';
import type { AuditRecord } from '../../src/audit/types.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, airlockCommand, type RunningAirlock } from '../harness/airlock.js';
import { filesUnder } from '../harness/files.js';
import { run } from '../harness/clients.js';

const UPSTREAM_PASSWORD = 'upstream-pw-7f3a9c1e5b';
/** A value under a mask rule: recorded result rows hold only its masked form. */
const RAW_SSN = '078-05-1120';
let upstream: PgCluster;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let doc: Record<string, unknown>;
let stateDir: string;
let port = 0;
let adminUrl = '';
let alice = '';
let auditor = '';
let outsider = '';
const outputs: string[] = [];

/** A webhook receiver that refuses while `failing`, and keeps every accepted event. */
const hook = { failing: true, events: [] as Array<{ id: string; seq: number }>, server: null as Server | null };

function uniqueIds(): string[] {
  return [...new Set(hook.events.map((e) => e.id))];
}

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function records(dir = join(stateDir, 'audit')): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of readEvents(dir)) out.push(r);
  return out;
}

function client(token: string): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port, user: 'alice', database: 'appdb', password: token, connectionTimeoutMillis: 10_000 });
}

function cli(args: string[], configFile: string): ReturnType<typeof run> {
  const { cmd, argv } = airlockCommand([...args, '--config', configFile]);
  return run(cmd, argv, { env: { AIRLOCK_CONFIG: '' } });
}

async function restart(): Promise<void> {
  outputs.push(airlock.output());
  airlock = await startAirlock(doc);
}

beforeAll(async () => {
  issuer = await createTestIssuer();
  upstream = await startPgCluster();
  await upstream.psql('CREATE DATABASE appdb');
  await upstream.psql(`CREATE ROLE app LOGIN PASSWORD '${UPSTREAM_PASSWORD}'; ALTER DATABASE appdb OWNER TO app`);
  await upstream.psql(`SET ROLE app; CREATE TABLE hits (client int, n int); CREATE TABLE people (name text, ssn text); INSERT INTO people VALUES ('ann', '${RAW_SSN}')`, { db: 'appdb' });
  hook.server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (hook.failing) {
        res.writeHead(503).end();
        return;
      }
      for (const e of (JSON.parse(body) as { events: Array<{ id: string; seq: number }> }).events) hook.events.push({ id: e.id, seq: e.seq });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => hook.server?.listen(0, '127.0.0.1', () => r()));
  const hookPort = (hook.server.address() as AddressInfo).port;

  const dir = mkdtempSync(join(tmpdir(), 'airlock-audit-e2e-'));
  stateDir = join(dir, 'state');
  const pw = join(dir, 'pw');
  writeFileSync(pw, UPSTREAM_PASSWORD);
  chmodSync(pw, 0o600);
  port = await freePort();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  doc = {
    state_dir: stateDir,
    admin: { listen: `127.0.0.1:${adminPort}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    audit: { exporters: [{ type: 'webhook', url: `http://127.0.0.1:${hookPort}/audit`, flush_interval: 50, max_backoff: 300 }, { type: 'stdout' }] },
    connections: [
      {
        name: 'appdb',
        protocol: 'postgres',
        listen: `127.0.0.1:${port}`,
        upstream: { host: '127.0.0.1', port: upstream.port, database: 'appdb' },
        credentials: { type: 'static', username: 'app', password: `\${file:${pw}}` },
        allow_groups: ['dev'],
        record: { results: 'rows' },
      },
    ],
    rules: [{ name: 'ssn-masked', when: { groups: ['dev'] }, effect: 'mask', columns: ['public.people.ssn'], method: 'redact' }],
  };
  airlock = await startAirlock(doc);
  alice = await issuer.token({ sub: 'alice', groups: ['dev'] });
  auditor = await issuer.token({ sub: 'carol', groups: ['auditors'] });
  outsider = await issuer.token({ sub: 'mallory', groups: ['dev'] });
}, 180_000);

afterAll(async () => {
  await airlock?.stop();
  await upstream?.stop();
  hook.server?.closeAllConnections();
  hook.server?.close();
});

describe('write-ahead audit through the daemon', () => {
  it('kill -9 with 20 writers and 10 readers: every statement the upstream ran, and every read whose rows a client saw, is in the audit log, and verify passes', async () => {
    const clients = Array.from({ length: 20 }, () => client(alice));
    // Readers run effect-free SELECTs, which are forwarded while their records sync (pipelined write-ahead).
    const readers = Array.from({ length: 10 }, () => client(alice));
    await Promise.all([...clients, ...readers].map((c) => c.connect()));
    for (const c of [...clients, ...readers]) c.on('error', () => undefined);
    const seen: string[] = [];
    const loops = clients.map(async (c, ci) => {
      for (let n = 0; ; n++) {
        try {
          await c.query(`INSERT INTO hits VALUES (${ci}, ${n})`);
        } catch {
          return;
        }
      }
    });
    const reads = readers.map(async (c, ci) => {
      for (let n = 0; ; n++) {
        const text = `SELECT ${ci} AS reader, ${n} AS n`;
        try {
          const r = await c.query(text);
          if (r.rows.length === 1) seen.push(text);
        } catch {
          return;
        }
      }
    });
    await until(async () => Number(await upstream.psql('select count(*) from hits', { db: 'appdb' })) >= 400, '400 upstream inserts');
    airlock.process.kill('SIGKILL');
    await Promise.all([...loops, ...reads]);
    await Promise.all([...clients, ...readers].map((c) => c.end().catch(() => undefined)));

    const ran = (await upstream.psql('select client, n from hits order by 1, 2', { db: 'appdb' })).split('\n').filter((l) => l !== '');
    expect(ran.length).toBeGreaterThanOrEqual(400);
    const audited = new Set(
      (await records())
        .filter((r) => r.event.type === 'action' && (r.event as { decision?: unknown }).decision === 'allow')
        .map((r) => String((r.event as { action?: { text?: unknown } }).action?.text)),
    );
    const missing = ran.map((l) => l.split('|')).filter(([c, n]) => !audited.has(`INSERT INTO hits VALUES (${c}, ${n})`));
    expect(missing).toEqual([]);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.filter((text) => !audited.has(text))).toEqual([]);

    await restart();
    const verify = await cli(['audit', 'verify'], airlock.configFile);
    expect(verify.stdout).toMatch(/^ok \d+ events/);
    expect(verify.code).toBe(0);
  }, 240_000);

  it('the webhook receiver, down through the crash, then back, gets every event in order, once per id', async () => {
    hook.failing = false;
    const c = client(alice);
    await c.connect();
    await c.query('SELECT 1');
    await c.end();
    const expected = (await records()).filter((r) => r.event.type !== 'checkpoint').map((r) => `${r.node}:${r.seq}`);
    await until(() => expected.every((id) => uniqueIds().includes(id)), 'every audit event at the receiver');
    // First arrivals are in seq order and cover the log from its first record.
    const seqs = uniqueIds().map((id) => Number(id.split(':').pop()));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(uniqueIds().slice(0, expected.length)).toEqual(expected);
    const health = (await (await fetch(`${adminUrl}/healthz`)).json()) as Record<string, unknown>;
    expect(health.status).toBe('ok');
  }, 120_000);

  it('an audit dir that cannot be written refuses the next statement (58030), the upstream never sees it, and the daemon recovers', async () => {
    const c = client(alice);
    await c.connect();
    c.on('error', () => undefined);
    await c.query('SELECT 1');
    const auditDir = join(stateDir, 'audit');
    renameSync(auditDir, `${auditDir}.away`);
    writeFileSync(auditDir, 'not a directory');
    try {
      const err = await c.query('INSERT INTO hits VALUES (999, 1)').then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: '58030' });
      expect(await upstream.psql('select count(*) from hits where client = 999', { db: 'appdb' })).toBe('0');
      expect(airlock.process.exitCode).toBeNull();
      expect((await fetch(`${adminUrl}/healthz`)).status).toBe(503);
    } finally {
      rmSync(auditDir);
      renameSync(`${auditDir}.away`, auditDir);
    }
    // The session may have been ended by the refusal; a statement after the restore succeeds either way.
    let after = c;
    const ok = await c.query('INSERT INTO hits VALUES (999, 2)').then(() => true, () => false);
    if (!ok) {
      after = client(alice);
      await after.connect();
      await after.query('INSERT INTO hits VALUES (999, 2)');
    }
    await Promise.all([c.end().catch(() => undefined), after.end().catch(() => undefined)]);
    expect(await upstream.psql('select n from hits where client = 999', { db: 'appdb' })).toBe('2');
    expect(airlock.process.exitCode).toBeNull();
    expect((await fetch(`${adminUrl}/healthz`)).status).toBe(200);
    const texts = (await records()).map((r) => (r.event as { action?: { text?: unknown } }).action?.text);
    expect(texts).toContain('INSERT INTO hits VALUES (999, 2)');
    expect(texts).not.toContain('INSERT INTO hits VALUES (999, 1)');
  }, 120_000);
});

describe('airlock audit verify on a tampered copy', () => {
  function tamperedCopy(edit: (lines: string[]) => string[]): { config: string; file: string } {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-tamper-'));
    cpSync(join(stateDir, 'audit'), join(dir, 'audit'), { recursive: true });
    // Checkpoint signatures are checked against the public key beside the audit dir.
    cpSync(join(stateDir, 'audit-signing.pub'), join(dir, 'audit-signing.pub'));
    const files = readdirSync(join(dir, 'audit')).filter((f) => f.endsWith('.jsonl')).sort();
    const name = files[0] ?? '';
    const path = join(dir, 'audit', name);
    const lines = readFileSync(path, 'utf8').split('\n').slice(0, -1);
    writeFileSync(path, edit(lines).map((l) => `${l}\n`).join(''));
    const config = join(dir, 'airlock.yaml');
    writeFileSync(config, stringify({ state_dir: dir }));
    return { config, file: name };
  }

  it('passes on an untouched copy', async () => {
    const { config } = tamperedCopy((l) => l);
    const r = await cli(['audit', 'verify'], config);
    expect(r.code).toBe(0);
  });

  const cases: Array<[string, (lines: string[]) => string[], number]> = [
    ['an edited line', (l) => l.map((x, i) => (i === 9 ? x.replace('"node":"', '"node":"X') : x)), 10],
    ['a deleted line', (l) => l.filter((_, i) => i !== 9), 10],
    ['two lines swapped', (l) => l.map((x, i) => (i === 9 ? (l[10] ?? x) : i === 10 ? (l[9] ?? x) : x)), 10],
  ];
  for (const [what, edit, line] of cases) {
    it(`fails on ${what} and names file:line`, async () => {
      const { config, file } = tamperedCopy(edit);
      const r = await cli(['audit', 'verify'], config);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`${file}:${line}:`);
      expect(r.stdout).not.toContain('no public key');
    });
  }
});

describe('sessions through the CLI and the admin API', () => {
  let sessionId = '';

  it('GET /v1/sessions needs an auditor; an auditor sees the sessions and one session in full', async () => {
    const c = client(alice);
    await c.connect();
    await c.query('SELECT count(*) FROM hits');
    await c.end();
    const denied = await fetch(`${adminUrl}/v1/sessions`, { headers: { authorization: `Bearer ${outsider}` } });
    expect(denied.status).toBe(403);
    const list = await fetch(`${adminUrl}/v1/sessions?subject=alice&connection=appdb&since=1h`, { headers: { authorization: `Bearer ${auditor}` } });
    expect(list.status).toBe(200);
    const sessions = ((await list.json()) as { sessions: Array<{ session: string; subject: string; actions: number }> }).sessions;
    expect(sessions.length).toBeGreaterThan(20);
    expect(sessions.every((s) => s.subject === 'alice')).toBe(true);
    const last = sessions.find((s) => s.actions === 1 && s.session !== undefined) ?? sessions[sessions.length - 1];
    sessionId = last?.session ?? '';
    const show = await fetch(`${adminUrl}/v1/sessions/${sessionId}`, { headers: { authorization: `Bearer ${auditor}` } });
    expect(show.status).toBe(200);
    const body = (await show.json()) as { session: string; events: AuditRecord[] };
    expect(body.events.map((e) => e.event.type)).toContain('session.start');
    expect((await fetch(`${adminUrl}/v1/sessions/${sessionId}`, { headers: { authorization: `Bearer ${outsider}` } })).status).toBe(403);
  }, 60_000);

  it('airlock sessions list / show / replay', async () => {
    const list = await cli(['sessions', 'list', '--since', '1h', '--subject', 'alice', '--connection', 'appdb'], airlock.configFile);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(sessionId);
    const none = await cli(['sessions', 'list', '--subject', 'nobody'], airlock.configFile);
    expect(none.stdout).not.toContain(sessionId);
    const show = await cli(['sessions', 'show', sessionId], airlock.configFile);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('SELECT count(*) FROM hits');
    const replay = await cli(['sessions', 'replay', sessionId, '--speed', '1000'], airlock.configFile);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain('SELECT count(*) FROM hits');
    const missing = await cli(['sessions', 'show', 'no-such-session'], airlock.configFile);
    expect(missing.code).toBe(1);
  }, 60_000);
});

describe('secrets', () => {
  it('no token, upstream password or masked raw value in any file under state_dir or in anything the daemon printed', async () => {
    const c = client(alice);
    await c.connect();
    const masked = await c.query<{ name: string; ssn: string | null }>('SELECT name, ssn FROM people');
    await c.end();
    expect(masked.rows[0]?.name).toBe('ann');
    expect(masked.rows[0]?.ssn).not.toBe(RAW_SSN);
    await until(() => readFileSync(join(stateDir, 'audit-spool', 'events.jsonl'), 'utf8').includes('SELECT name, ssn FROM people'), 'the result in the spool');
    const secrets = [RAW_SSN, UPSTREAM_PASSWORD, alice, auditor, outsider, ...[alice, auditor, outsider].map((t) => t.split('.')[2] ?? t)];
    const files = filesUnder(stateDir);
    expect(files.some((f) => f.includes('audit-spool'))).toBe(true);
    for (const f of files) {
      const text = readFileSync(f).toString('latin1');
      for (const s of secrets) expect(text.includes(s), `${f} holds a secret`).toBe(false);
    }
    const printed = [...outputs, airlock.output()].join('\n');
    // The stdout exporter did print the audit events, so this covers them too.
    expect(printed).toContain('"audit":');
    for (const s of secrets) expect(printed.includes(s)).toBe(false);
  });
});
