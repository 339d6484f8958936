/**
 * A shared audit checkpoint key (issue 18): two daemons on one PostgreSQL state store with the
 * same audit.signing_key sign their checkpoints with it (one key id, in the logs and in the store),
 * and `audit verify --fleet --public-key` proves both logs against that one pinned key. A log
 * rewritten and re-signed with another key (its .pub beside it rewritten too) still passes plain
 * verify — which only proves consistency — and fails against the pinned key. The private key never
 * shows in what the daemons print, their logs, their audit files or the store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, startPgCluster, type PgCluster } from '../../app/dev/pgcluster.js';
import { startAppDb, type AppDb } from '../harness/appdb.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, airlockCommand, type RunningAirlock } from '../harness/airlock.js';
import { psql, run } from '../harness/clients.js';
import { keyId } from '../../src/audit/signing.js';
import { forgeLog } from '../../src/audit/testing.js';

interface Node {
  airlock: RunningAirlock;
  port: number;
  doc: Record<string, unknown>;
}

let db: AppDb;
let statePg: PgCluster;
let issuer: TestIssuer;
let stateUrl = '';
let urlFile = '';
let keyFile = '';
let pubFile = '';
let privatePem = '';
let sharedId = '';
const nodes: Node[] = [];
const cliOutput: string[] = [];

/** The base64 lines of the private key: none of them may appear anywhere airlock writes or prints. */
const keyLines = (): string[] => privatePem.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));

async function startNode(name: string, signingKey: string, opts: { expectFailure?: boolean } = {}): Promise<Node> {
  const port = await freePort();
  const doc = {
    state_dir: join(db.dir, `state-${name}`),
    state: { backend: 'postgres', url: `\${file:${urlFile}}`, poll_interval: '1s' },
    // A checkpoint every 8 records, so a few statements make several.
    audit: { checkpoint_every: 8, signing_key: signingKey },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [db.connection('appdb', port, { allow_groups: ['dev'] })],
  };
  const airlock = await startAirlock(doc, opts);
  return { airlock, port, doc };
}

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { cmd, argv } = airlockCommand(args);
  const r = await run(cmd, argv, {});
  cliOutput.push(r.stdout, r.stderr);
  return r;
}

async function storedKeyIds(): Promise<Array<{ node: string; key_id: string }>> {
  const state = new pg.Client({ connectionString: stateUrl });
  await state.connect();
  try {
    return (await state.query<{ node: string; key_id: string }>('SELECT DISTINCT node, key_id FROM airlock_audit_checkpoints ORDER BY node')).rows;
  } finally {
    await state.end();
  }
}

function auditRecords(n: Node): Array<{ seq: number; event: { type: string; key?: string } }> {
  const dir = join(n.airlock.stateDir, 'audit');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l !== ''))
    .map((l) => JSON.parse(l) as { seq: number; event: { type: string; key?: string } });
}

/** Every file under a directory, as text. */
function filesUnder(dir: string): Array<{ path: string; text: string }> {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((p) => statSync(p).isFile())
    .map((p) => ({ path: p, text: readFileSync(p, 'latin1') }));
}

beforeAll(async () => {
  issuer = await createTestIssuer();
  db = await startAppDb({ password: 'signkey-upstream-pw', setupSql: 'CREATE TABLE notes (id int); INSERT INTO notes VALUES (1);' });
  statePg = await startPgCluster();
  urlFile = join(db.dir, 'state-url');
  stateUrl = `postgres://${statePg.superuser}:${encodeURIComponent(statePg.superPassword)}@127.0.0.1:${statePg.port}/postgres`;
  writeFileSync(urlFile, stateUrl, { mode: 0o600 });
  // What `airlock audit keygen --out FILE` writes: the private key 0600 and its .pub beside it.
  keyFile = join(db.dir, 'audit-signing.key');
  pubFile = join(db.dir, 'audit-signing.pub');
  const made = await cli(['audit', 'keygen', '--out', keyFile]);
  expect(made.code, made.stderr).toBe(0);
  privatePem = readFileSync(keyFile, 'utf8');
  sharedId = keyId(createPublicKey(readFileSync(pubFile, 'utf8')));
  nodes.push(...(await Promise.all([startNode('a', `\${file:${keyFile}}`), startNode('b', `\${file:${keyFile}}`)])));
}, 180_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.airlock.stop()));
  await db?.upstream.stop();
  await statePg?.stop();
});

describe('audit.signing_key shared by two nodes', () => {
  it("both nodes' checkpoints carry the shared key's id, in their logs and in the store; verify --fleet passes against the pinned public key", async () => {
    const dev = await issuer.token({ sub: 'alice', groups: ['dev'] });
    for (const n of nodes) {
      for (let i = 0; i < 4; i++) {
        const r = await psql({ port: n.port, token: dev }, ['-Atc', `SELECT ${i}`]);
        expect(r.code, r.stderr).toBe(0);
      }
    }
    // Published from the main thread once durable: wait until both nodes' are in the store.
    for (let i = 0; i < 100 && new Set((await storedKeyIds()).map((r) => r.node)).size < 2; i++) await new Promise((r) => setTimeout(r, 100));
    const stored = await storedKeyIds();
    expect(new Set(stored.map((r) => r.node)).size).toBe(2);
    expect(new Set(stored.map((r) => r.key_id))).toEqual(new Set([sharedId]));
    for (const n of nodes) {
      const keys = auditRecords(n).filter((r) => r.event.type === 'checkpoint').map((r) => r.event.key);
      expect(keys.length).toBeGreaterThan(0);
      expect(new Set(keys)).toEqual(new Set([sharedId]));
      // The public half is still written beside each log (the default verify reads it); no per-node key is made.
      expect(readFileSync(join(n.airlock.stateDir, 'audit-signing.pub'), 'utf8')).toBe(readFileSync(pubFile, 'utf8'));
      expect(readdirSync(n.airlock.stateDir)).not.toContain('audit-signing.key');
    }
    const config = (nodes[1] as Node).airlock.configFile;
    const r = await cli(['audit', 'verify', '--fleet', '--config', config, '--public-key', pubFile]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toMatch(new RegExp(`: ok \\d+ records; chain verified through its last stored checkpoint \\(seq \\d+, key ${sharedId}, pinned\\)`));
    // Another key pinned: every node fails, named, at its first checkpoint.
    const other = join(db.dir, 'other.pub');
    writeFileSync(other, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    const wrong = await cli(['audit', 'verify', '--fleet', '--config', config, '--public-key', other]);
    expect(wrong.code).toBe(1);
    const failed = wrong.stdout.trim().split('\n');
    expect(failed).toHaveLength(2);
    for (const l of failed) expect(l).toMatch(new RegExp(`: FAIL .*checkpoint is signed by key ${sharedId}, which is not a pinned key`));
  }, 90_000);

  it("a log re-signed with another key (and its .pub rewritten) passes plain verify but fails with the pinned key, alone and in the fleet", async () => {
    const a = nodes[0] as Node;
    // Stopped cleanly: its log is sealed with a checkpoint, published to the store.
    await a.airlock.stop();
    const configA = a.airlock.configFile;
    expect((await cli(['audit', 'verify', '--config', configA, '--public-key', pubFile])).stdout).toMatch(new RegExp(`^ok \\d+ events; every checkpoint signed by a pinned key, the last at seq \\d+ \\(key ${sharedId}\\)\\n$`));
    const forger = generateKeyPairSync('ed25519');
    const forgedId = keyId(forger.publicKey);
    await forgeLog(join(a.airlock.stateDir, 'audit'), forger.privateKey, forgedId, (r) =>
      r.event.type === 'action' ? { ...r.event, action: { kind: 'sql', text: 'SELECT nothing to see here' } } : r.event,
    );
    writeFileSync(join(a.airlock.stateDir, 'audit-signing.pub'), forger.publicKey.export({ type: 'spki', format: 'pem' }));
    const plain = await cli(['audit', 'verify', '--config', configA]);
    expect(plain.code, plain.stdout).toBe(0);
    expect(plain.stdout).toMatch(/^ok \d+ events\n$/);
    const pinned = await cli(['audit', 'verify', '--config', configA, '--public-key', pubFile]);
    expect(pinned.code).toBe(1);
    expect(pinned.stdout).toContain(`checkpoint is signed by key ${forgedId}, which is not a pinned key (expected ${sharedId}, from ${pubFile})`);
    const fleet = await cli(['audit', 'verify', '--fleet', '--config', (nodes[1] as Node).airlock.configFile, '--public-key', pubFile]);
    expect(fleet.code).toBe(1);
    const lines = fleet.stdout.trim().split('\n');
    const idA = readFileSync(join(a.airlock.stateDir, 'node-id'), 'utf8').trim();
    expect(lines.find((l) => l.startsWith(`${idA}: FAIL `))).toContain(`which is not a pinned key`);
    expect(lines.filter((l) => l.includes(': ok '))).toHaveLength(1);
  }, 60_000);

  it('a signing_key that is not an Ed25519 private key stops the start with a clear error naming the setting, never the key', async () => {
    const cases: Array<[string, string, string]> = [
      ['public.pem', readFileSync(pubFile, 'utf8'), 'audit.signing_key: this is a public key'],
      ['rsa.pem', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'audit.signing_key: this is a rsa key'],
    ];
    for (const [name, text, message] of cases) {
      const file = join(db.dir, name);
      writeFileSync(file, text, { mode: 0o600 });
      const n = await startNode(`bad-${name}`, `\${file:${file}}`, { expectFailure: true });
      const code = await new Promise<number | null>((r) => (n.airlock.process.exitCode !== null ? r(n.airlock.process.exitCode) : n.airlock.process.once('exit', (c) => r(c))));
      expect(code).not.toBe(0);
      expect(n.airlock.output()).toContain(message);
      for (const l of text.split('\n').filter((x) => x !== '' && !x.startsWith('-----'))) expect(n.airlock.output()).not.toContain(l);
    }
    const missing = await startNode('bad-missing', `\${file:${join(db.dir, 'no-such.key')}}`, { expectFailure: true });
    await new Promise<void>((r) => (missing.airlock.process.exitCode !== null ? r() : missing.airlock.process.once('exit', () => r())));
    expect(missing.airlock.output()).toContain(`audit.signing_key: secret file ${join(db.dir, 'no-such.key')} cannot be read`);
  }, 60_000);

  it('a reload with another signing_key keeps the running key and says a restart is needed', async () => {
    const b = nodes[1] as Node;
    const other = join(db.dir, 'other-signing.key');
    writeFileSync(other, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    b.airlock.rewriteConfig({ ...b.doc, audit: { checkpoint_every: 8, signing_key: `\${file:${other}}` } });
    b.airlock.signal('SIGHUP');
    await b.airlock.waitForLog((l) => l.msg === 'configuration reloaded');
    expect(b.airlock.logs().some((l) => typeof l.msg === 'string' && l.msg.includes('audit.signing_key changed'))).toBe(true);
    const dev = await issuer.token({ sub: 'alice', groups: ['dev'] });
    for (let i = 0; i < 5; i++) expect((await psql({ port: b.port, token: dev }, ['-Atc', `SELECT ${i}`])).code).toBe(0);
    await b.airlock.stop();
    // Every checkpoint, the one sealing the log at stop included, is still the shared key's.
    const keys = auditRecords(b).filter((r) => r.event.type === 'checkpoint').map((r) => r.event.key);
    expect(new Set(keys)).toEqual(new Set([sharedId]));
    const r = await cli(['audit', 'verify', '--config', b.airlock.configFile, '--public-key', pubFile]);
    expect(r.code, r.stdout).toBe(0);
  }, 60_000);

  it('no byte of the private key appears in daemon output, logs, audit files, state dirs, the store or CLI output', async () => {
    const lines = keyLines();
    expect(lines.length).toBeGreaterThan(0);
    const state = new pg.Client({ connectionString: stateUrl });
    await state.connect();
    let dump = '';
    try {
      for (const t of ['airlock_audit_checkpoints', 'airlock_audit_nodes']) dump += JSON.stringify((await state.query(`SELECT * FROM ${t}`)).rows);
    } finally {
      await state.end();
    }
    expect(dump).toContain(sharedId);
    const places = [
      ...nodes.map((n) => ({ path: `output of ${n.airlock.stateDir}`, text: n.airlock.output() })),
      ...nodes.flatMap((n) => filesUnder(n.airlock.stateDir)),
      { path: 'state store', text: dump },
      { path: 'cli', text: cliOutput.join('\n') },
    ];
    for (const p of places) for (const l of lines) expect(p.text.includes(l), p.path).toBe(false);
  }, 60_000);
});
