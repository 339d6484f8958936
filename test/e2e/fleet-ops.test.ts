/**
 * Fleet operations on a shared PostgreSQL state store (issue 18): two airlock daemons, one state
 * PostgreSQL, one upstream PostgreSQL (and a WebSocket upstream). `airlock sessions kill`
 * against node B ends a psql session, and a WebSocket session, that node A holds; `airlock audit verify --fleet` proves every node's log against the
 * checkpoints the nodes published to the store, and names the node whose log was cut.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import WebSocket, { WebSocketServer } from 'ws';
import { freePort, startPgCluster, type PgCluster } from '../../app/dev/pgcluster.js';
import { startAppDb, type AppDb } from '../harness/appdb.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, airlockCommand, type RunningAirlock } from '../harness/airlock.js';
import { psql, run, spawnPsql } from '../harness/clients.js';

interface Node {
  airlock: RunningAirlock;
  port: number;
  wsPort: number;
  adminUrl: string;
}

let wss: WebSocketServer;

let db: AppDb;
let statePg: PgCluster;
let issuer: TestIssuer;
let stateUrl = '';
const nodes: Node[] = [];
let dev = '';
let admin = '';
let auditor = '';

async function startNode(name: string, urlFile: string): Promise<Node> {
  const port = await freePort();
  const wsPort = await freePort();
  const adminPort = await freePort();
  const airlock = await startAirlock({
    state_dir: join(db.dir, `state-${name}`),
    state: { backend: 'postgres', url: `\${file:${urlFile}}`, poll_interval: '1s' },
    admin: { listen: `127.0.0.1:${adminPort}`, admins: ['ops'] },
    // A checkpoint every 8 records, so a few statements make several.
    audit: { auditors: ['dba', 'ops'], checkpoint_every: 8 },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [
      db.connection('appdb', port, { allow_groups: ['dev'] }),
      { name: 'ws', protocol: 'http', listen: `127.0.0.1:${wsPort}`, upstream: { base_url: `http://127.0.0.1:${(wss.address() as { port: number }).port}` }, credentials: { type: 'none' }, allow_groups: ['dev'] },
    ],
    rules: [{ name: 'sockets', when: { connections: ['ws'], http: { websocket: true } }, effect: 'allow' }],
  });
  return { airlock, port, wsPort, adminUrl: `http://127.0.0.1:${adminPort}` };
}

beforeAll(async () => {
  issuer = await createTestIssuer();
  db = await startAppDb({ password: 'fleetops-upstream-pw', setupSql: 'CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES (1, $$x$$);' });
  statePg = await startPgCluster();
  wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  wss.on('connection', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const urlFile = join(db.dir, 'state-url');
  stateUrl = `postgres://${statePg.superuser}:${encodeURIComponent(statePg.superPassword)}@127.0.0.1:${statePg.port}/postgres`;
  writeFileSync(urlFile, stateUrl, { mode: 0o600 });
  nodes.push(...(await Promise.all([startNode('a', urlFile), startNode('b', urlFile)])));
  dev = await issuer.token({ sub: 'alice', groups: ['dev'] });
  admin = await issuer.token({ sub: 'olga', groups: ['ops'] });
  auditor = await issuer.token({ sub: 'bob', groups: ['dba'] });
}, 180_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.airlock.stop()));
  await db?.upstream.stop();
  await statePg?.stop();
  wss?.close();
});

const cli = (adminUrl: string, args: string[], token: string) => {
  const { cmd, argv } = airlockCommand(args);
  return run(cmd, argv, { env: { AIRLOCK_ADMIN_URL: adminUrl, AIRLOCK_TOKEN: token } });
};

interface Listed {
  session: string;
  node: string;
  endedAt: string | null;
  endReason: string | null;
}

async function sessionsVia(n: Node): Promise<Listed[]> {
  const r = await cli(n.adminUrl, ['sessions', 'list', '--subject', 'alice', '--json'], auditor);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Listed[];
}

/** A psql on `n` running a long statement; resolves with the session id once the index lists it as open. */
async function longPsql(n: Node, known: Set<string>): Promise<{ id: string; done: Promise<{ code: number | null; err: string }> }> {
  const child = spawnPsql({ port: n.port, token: dev }, ['-At', '-v', 'ON_ERROR_STOP=1', '-c', 'SELECT pg_sleep(120)']);
  let err = '';
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const done = new Promise<{ code: number | null; err: string }>((r) => child.once('exit', (code) => r({ code, err })));
  for (let i = 0; i < 100; i++) {
    const open = (await sessionsVia(nodes[1] as Node)).find((s) => s.endedAt === null && !known.has(s.session));
    if (open !== undefined) return { id: open.session, done };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error(`the psql session never showed in the index: ${err}`);
}

describe('sessions kill across nodes', () => {
  it('ends a psql session held by node A when an admin kills it through node B; the index and A\'s audit log say who', async () => {
    const [a, b] = nodes as [Node, Node];
    const known = new Set((await sessionsVia(b)).map((s) => s.session));
    const victim = await longPsql(a, known);
    // Neither the caller nor an auditor may kill; the admin may.
    expect((await cli(b.adminUrl, ['sessions', 'kill', victim.id], dev)).stderr).toContain('403');
    expect((await cli(b.adminUrl, ['sessions', 'kill', victim.id], auditor)).stderr).toContain('only admins');
    const killed = await cli(b.adminUrl, ['sessions', 'kill', victim.id, '--reason', 'incident 42'], admin);
    expect(killed.code, killed.stderr).toBe(0);
    expect(killed.stdout).toMatch(new RegExp(`^killed ${victim.id} on node \\S+ \\(killed by olga\\)`));
    // psql got the termination in its own protocol (FATAL 57P01), and exits.
    const r = await victim.done;
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('an administrator (olga) ended the session');
    // The CLI returned only once A confirmed: the index already shows the end, seen from either node.
    for (const n of nodes) {
      const row = (await sessionsVia(n)).find((s) => s.session === victim.id);
      expect(row).toMatchObject({ endReason: 'killed by olga', endedAt: expect.any(String) });
      expect(row?.node).toBe(killed.stdout.split(' ')[4]);
    }
    // Node A's own audit log records who killed it, from which node, and why; then the end.
    const auditFiles = readdirSync(join(a.airlock.stateDir, 'audit')).filter((f) => f.endsWith('.jsonl'));
    const events = auditFiles.flatMap((f) => readFileSync(join(a.airlock.stateDir, 'audit', f), 'utf8').split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { event: Record<string, unknown> }).event));
    const killedEvent = events.find((e) => e.type === 'session.killed' && e.session === victim.id);
    expect(killedEvent).toMatchObject({ by: { subject: 'olga', issuer: issuer.issuer }, reason: 'incident 42', requestedOn: expect.stringContaining(':') });
    expect(events.find((e) => e.type === 'session.end' && e.session === victim.id)).toMatchObject({ reason: 'killed by olga' });
  }, 60_000);

  it('ends a WebSocket session held by node A when an admin kills it through node B: close 1008 naming who', async () => {
    const [a, b] = nodes as [Node, Node];
    const known = new Set((await sessionsVia(b)).map((s) => s.session));
    const ws = new WebSocket(`ws://127.0.0.1:${a.wsPort}/stream`, { headers: { authorization: `Bearer ${dev}` } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send('hello');
    await new Promise<void>((r) => ws.once('message', () => r()));
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    let id = '';
    for (let i = 0; i < 100 && id === ''; i++) {
      id = (await sessionsVia(b)).find((s) => s.endedAt === null && !known.has(s.session))?.session ?? '';
      if (id === '') await new Promise((r) => setTimeout(r, 100));
    }
    expect(id).not.toBe('');
    const killed = await cli(b.adminUrl, ['sessions', 'kill', id], admin);
    expect(killed.code, killed.stderr).toBe(0);
    expect(await closed).toEqual({ code: 1008, reason: 'airlock: an administrator (olga) ended the session' });
    expect((await sessionsVia(b)).find((s) => s.session === id)).toMatchObject({ endReason: 'killed by olga' });
  });

  it('kills a session on the node asked directly, and says clearly when a session is unknown, over, or its node is gone', async () => {
    const [a, b] = nodes as [Node, Node];
    const known = new Set((await sessionsVia(b)).map((s) => s.session));
    const local = await longPsql(b, known);
    const killed = await cli(b.adminUrl, ['sessions', 'kill', local.id], admin);
    expect(killed.code, killed.stderr).toBe(0);
    expect((await local.done).err).toContain('an administrator (olga) ended the session');
    // Already over: said so, exit 1.
    const again = await cli(a.adminUrl, ['sessions', 'kill', local.id], admin);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('has already ended (killed by olga)');
    const unknown = await cli(a.adminUrl, ['sessions', 'kill', 'feedfacefeedface'], admin);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('no session feedfacefeedface');
    // A node that holds a session but is no longer connected to the store (it died): 504 at once, not a wait.
    const state = new pg.Client({ connectionString: stateUrl });
    // A node that is connected (named as nodes name their store connection) but never answers.
    const mute = new pg.Client({ connectionString: stateUrl, application_name: 'airlock mute-host:4343' });
    await state.connect();
    await mute.connect();
    try {
      await state.query(`INSERT INTO airlock_sessions (id, node, subject, issuer, connection, protocol, client, started_at) VALUES ('0badc0de0badc0de', 'gone-host:4242', 'alice', 'x', 'appdb', 'postgres', '127.0.0.1:1', 1), ('5ca1ab1e5ca1ab1e', 'mute-host:4343', 'alice', 'x', 'appdb', 'postgres', '127.0.0.1:1', 1)`);
      const gone = await cli(a.adminUrl, ['sessions', 'kill', '0badc0de0badc0de', '--timeout', '60s'], admin);
      expect(gone.code).not.toBe(0);
      expect(gone.stderr).toContain('504');
      expect(gone.stderr).toContain('node gone-host:4242, which holds session 0badc0de0badc0de, is not connected to the state store');
      const silent = await cli(a.adminUrl, ['sessions', 'kill', '5ca1ab1e5ca1ab1e', '--timeout', '2s'], admin);
      expect(silent.code).not.toBe(0);
      expect(silent.stderr).toContain('504 node mute-host:4343 did not take the kill request for session 5ca1ab1e5ca1ab1e within 2s; the request is withdrawn');
      // Withdrawn: the node cannot carry it out late.
      expect((await state.query(`SELECT status FROM airlock_session_kills WHERE session_id = '5ca1ab1e5ca1ab1e'`)).rows).toEqual([{ status: 'expired' }]);
    } finally {
      await state.end();
      await mute.end();
    }
  }, 60_000);
});

describe('audit verify --fleet', () => {
  const verify = (args: string[]) => {
    const { cmd, argv } = airlockCommand(['audit', 'verify', '--fleet', '--config', (nodes[1] as Node).airlock.configFile, ...args]);
    return run(cmd, argv, {});
  };
  const nodeIdOf = (n: Node): string => readFileSync(join(n.airlock.stateDir, 'node-id'), 'utf8').trim();
  async function storedSeq(node: string): Promise<number> {
    const state = new pg.Client({ connectionString: stateUrl });
    await state.connect();
    try {
      const r = await state.query<{ seq: string | null }>('SELECT max(seq) AS seq FROM airlock_audit_checkpoints WHERE node = $1', [node]);
      return Number(r.rows[0]?.seq ?? 0);
    } finally {
      await state.end();
    }
  }

  it('passes for both nodes after traffic on both: each published its signed checkpoints to the store', async () => {
    for (const n of nodes) {
      for (let i = 0; i < 4; i++) {
        const r = await psql({ port: n.port, token: dev }, ['-Atc', `SELECT ${i}`]);
        expect(r.code, r.stderr).toBe(0);
      }
    }
    for (const n of nodes) {
      // Published from the main thread after the checkpoint is durable: wait for it to arrive.
      for (let i = 0; i < 100 && (await storedSeq(nodeIdOf(n))) === 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(await storedSeq(nodeIdOf(n))).toBeGreaterThan(0);
    }
    const r = await verify([]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const n of nodes) expect(lines.find((l) => l.startsWith(`${nodeIdOf(n)}: ok `))).toContain(join(n.airlock.stateDir, 'audit'));
    for (const n of nodes) expect(n.airlock.output()).not.toContain(statePg.superPassword);
    expect(r.stdout + r.stderr).not.toContain(statePg.superPassword);
  }, 60_000);

  it('a checkpoint made while the store is down is published once it is back; the statements never waited for it', async () => {
    const b = nodes[1] as Node;
    const idB = nodeIdOf(b);
    const failed = async (): Promise<number> => {
      const text = await (await fetch(`${b.adminUrl}/metrics`)).text();
      return Number(/^airlock_audit_checkpoint_publish_total\{outcome="failed"\} (\d+)/m.exec(text)?.[1] ?? 0);
    };
    const open = new pg.Client({ host: '127.0.0.1', port: b.port, user: 'alice', database: 'appdb', password: dev });
    await open.connect();
    const before = await storedSeq(idB);
    try {
      await statePg.pause();
      // Two records per SELECT (the action, its result): several checkpoints at 8 records each.
      for (let i = 0; i < 12; i++) expect((await open.query(`SELECT ${i} AS i`)).rows).toEqual([{ i }]);
      for (let i = 0; i < 150 && (await failed()) === 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(await failed()).toBeGreaterThan(0);
    } finally {
      await statePg.resume();
    }
    // Retried with backoff once the store is back (at most 30 s between tries).
    for (let i = 0; i < 400 && (await storedSeq(idB)) <= before; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await storedSeq(idB)).toBeGreaterThan(before);
    await open.end();
    const r = await verify([]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(b.airlock.output()).not.toContain(statePg.superPassword);
  }, 90_000);

  it("fails naming node A once A's log is cut before its last stored checkpoint (which the chain alone cannot show)", async () => {
    const [a, b] = nodes as [Node, Node];
    const idA = nodeIdOf(a);
    // A clean stop seals A's log with a checkpoint and publishes it before the store closes.
    await a.airlock.stop();
    const auditA = join(a.airlock.stateDir, 'audit');
    const files = readdirSync(auditA).filter((f) => f.endsWith('.jsonl')).sort();
    const lastFile = join(auditA, files[files.length - 1] as string);
    const lines = readFileSync(lastFile, 'utf8').split('\n').filter((l) => l !== '');
    const seal = JSON.parse(lines[lines.length - 1] as string) as { seq: number; event: { type: string } };
    expect(seal.event.type).toBe('checkpoint');
    expect(await storedSeq(idA)).toBe(seal.seq);
    // Drop the last three records: the chain that is left is still a valid chain.
    writeFileSync(lastFile, `${lines.slice(0, -3).join('\n')}\n`);
    const plain = await run(airlockCommand([]).cmd, airlockCommand(['audit', 'verify', '--config', a.airlock.configFile]).argv, {});
    expect(plain.code, plain.stdout).toBe(0);
    const r = await verify([]);
    expect(r.code).toBe(1);
    const out = r.stdout.trim().split('\n');
    expect(out).toHaveLength(2);
    expect(out.find((l) => l.startsWith(`${idA}: FAIL `))).toContain(`ends at seq ${seal.seq - 3}, before its last checkpoint in the state store (seq ${seal.seq}`);
    expect(out.find((l) => l.startsWith(`${nodeIdOf(b)}: ok `))).toBeDefined();
    // A log that cannot be read is a failure of its own, named; --node-dir points elsewhere.
    const missing = await verify(['--node-dir', `${idA}=${join(db.dir, 'no-such-dir')}`]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain(`${idA}: FAIL cannot read its audit log at ${join(db.dir, 'no-such-dir')} (ENOENT)`);
  }, 60_000);
});
