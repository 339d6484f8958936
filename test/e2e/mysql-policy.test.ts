/**
 * Policy and masking on the MySQL wire (issue 7): denials as ERR 1142 / 42000 naming the
 * rule, a held statement the client waits on until it is approved from another process,
 * and masking of a column through aliases, prepared (binary) rows and computed columns.
 * Checked against the upstream's own state, through the real daemon and real clients.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { connect, type Socket } from 'node:net';
import { PacketReader, framePacket, type Packet } from '../../protocols/mysql/codec/framing.js';
import { Capability } from '../../protocols/mysql/codec/codes.js';
import { encodeHandshakeResponse41 } from '../../protocols/mysql/codec/messages/handshake.js';
import { decodeBinaryRow, decodeStmtPrepareOk } from '../../protocols/mysql/codec/messages/resultset.js';
import { decodeEof, isEof } from '../../protocols/mysql/codec/messages/generic.js';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, airlockCommand, type RunningAirlock } from '../harness/airlock.js';
import { freePort } from '../harness/ports.js';
import { run, type RunResult } from '../harness/clients.js';
import { textUnder } from '../harness/files.js';

const UPSTREAM_PASSWORD = 'policy-Upstream-pw-91';
let maria: LocalMaria;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let port = 0;
let adminUrl = '';
const tokens: Record<string, string> = {};


beforeAll(async () => {
  issuer = await createTestIssuer();
  maria = await startLocalMaria({
    password: UPSTREAM_PASSWORD,
    setupSql: `CREATE TABLE users (id int primary key, name varchar(50), ssn varchar(20));
      INSERT INTO users VALUES (1, 'ann', '123-45-6789'), (2, 'bob', '987-65-4321');
      CREATE TABLE notes (id int primary key, body varchar(100));
      INSERT INTO notes VALUES (1, 'x');
      CREATE TABLE docs (id int primary key, body longtext);
      INSERT INTO docs VALUES (1, REPEAT('s', 17 * 1024 * 1024)), (2, 'small');
      CREATE VIEW people AS SELECT id, ssn AS tax_id FROM users;`,
  });
  port = await freePort();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  airlock = await startAirlock({
    state_dir: join(maria.dir, 'state'),
    admin: { listen: `127.0.0.1:${adminPort}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    masking: { hash_key: 'mysql-policy-hash-key' },
    connections: [maria.connection('maria', port, { allow_groups: ['dba', 'agents', 'dev', 'ops'], record: { results: 'rows' } })],
    rules: [
      { name: 'agents-are-locked-out', when: { groups: ['agents'] }, effect: 'deny', reason: 'agents may not query this database' },
      { name: 'no-drop', when: { statements: ['drop', 'truncate'] }, effect: 'deny', reason: 'no schema changes here' },
      { name: 'ops-writes-need-a-dba', when: { groups: ['ops'] }, effect: 'approve', approvers: ['dba'], timeout: '60s' },
      { name: 'mask-ssn', when: { groups: ['dev'] }, effect: 'mask', columns: ['appdb.users.ssn'], method: 'partial', keep: 4 },
      { name: 'mask-doc-bodies', when: { groups: ['dev'] }, effect: 'mask', columns: ['appdb.docs.body'], method: 'redact' },
    ],
  });
  for (const [sub, group] of [['claude', 'agents'], ['bob', 'dba'], ['dave', 'dev'], ['olga', 'ops']] as const) tokens[sub] = await issuer.token({ sub, groups: [group] });
}, 180_000);

afterAll(async () => {
  await airlock?.stop();
  await maria?.stop();
});

function mariadb(sub: string, args: string[]): Promise<RunResult> {
  return run('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(port), '-u', sub, '--connect-timeout=10', '-N', '-B', 'appdb', ...args], { env: { MYSQL_PWD: tokens[sub] ?? '' } });
}

const driver = (sub: string): Promise<mysql.Connection> =>
  mysql.createConnection({ host: '127.0.0.1', port, user: sub, password: tokens[sub] ?? '', database: 'appdb', enableCleartextPlugin: true });

describe('denials', () => {
  it('answers ERR 1142 (42000) naming the rule and its reason', async () => {
    const r = await mariadb('claude', ['-e', 'SELECT * FROM notes']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('ERROR 1142 (42000)');
    expect(r.stderr).toContain('denied by rule agents-are-locked-out: agents may not query this database');
    const c = await driver('bob');
    await c.end();
    const viaDriver = await mysql.createConnection({ host: '127.0.0.1', port, user: 'claude', password: tokens.claude ?? '', enableCleartextPlugin: true });
    try {
      await expect(viaDriver.execute('SELECT * FROM notes WHERE id = ?', [1])).rejects.toMatchObject({ errno: 1142, sqlState: '42000' });
    } finally {
      await viaDriver.end();
    }
  });

  it('denies by statement kind, through every door', async () => {
    for (const sql of ['DROP TABLE notes', 'SELECT 1; DROP TABLE notes', '/*!50000 DROP TABLE notes */', 'TRUNCATE notes']) {
      const r = await mariadb('bob', ['-e', sql]);
      expect(r.stderr, sql).toMatch(/ERROR 1142 \(42000\).*denied by rule no-drop: no schema changes here/);
    }
    const c = await driver('bob');
    try {
      await expect(c.execute('DROP TABLE notes')).rejects.toMatchObject({ errno: 1142 });
    } finally {
      await c.end();
    }
    expect((await maria.sql('SELECT COUNT(*) FROM notes', 'appdb')).trim()).toBe('1');
  });
});

describe('approval', () => {
  const cli = (args: string[], token: string): Promise<RunResult> => {
    const { cmd, argv } = airlockCommand(args);
    return run(cmd, argv, { env: { AIRLOCK_ADMIN_URL: adminUrl, AIRLOCK_TOKEN: token } });
  };

  /** Starts a mariadb client (on the configured default database: no USE to approve) whose statement is held. */
  const held = async (sql: string): Promise<{ id: string; done: Promise<{ code: number | null; out: string; err: string }> }> => {
    const child = spawn('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(port), '-u', 'olga', '-N', '-B', '-e', sql], { env: { ...process.env, MYSQL_PWD: tokens.olga ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const done = new Promise<{ code: number | null; out: string; err: string }>((r) => child.once('exit', (code) => r({ code, out, err })));
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${adminUrl}/v1/approvals`, { headers: { authorization: `Bearer ${tokens.bob}` } });
      const body = (await res.json()) as { approvals: Array<{ id: string; requester: { subject: string }; summary: string }> };
      const mine = body.approvals.find((a) => a.requester.subject === 'olga' && a.summary.includes(sql.slice(0, 20)));
      if (mine !== undefined) return { id: mine.id, done };
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`nothing held: ${err}`);
  };

  it('holds a statement until a dba approves it from another process, then runs it', async () => {
    const { id, done } = await held("UPDATE notes SET body = 'approved' WHERE id = 1");
    // The client waits; the upstream has not seen the statement.
    expect((await maria.sql('SELECT body FROM notes WHERE id = 1', 'appdb')).trim()).toBe('x');
    const self = await cli(['approvals', 'approve', id], tokens.olga ?? '');
    expect(self.code).not.toBe(0);
    const ok = await cli(['approvals', 'approve', id], tokens.bob ?? '');
    expect(ok.stdout).toContain(`approved ${id}`);
    const r = await done;
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect((await maria.sql('SELECT body FROM notes WHERE id = 1', 'appdb')).trim()).toBe('approved');
  });

  it('refuses a denied statement with the approval id in the error text', async () => {
    const { id, done } = await held("UPDATE notes SET body = 'never' WHERE id = 1");
    await cli(['approvals', 'deny', id, '--reason', 'not during the freeze'], tokens.bob ?? '');
    const r = await done;
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/ERROR 1142 \(42000\)/);
    expect(r.err).toContain('not during the freeze');
    expect(r.err).toContain(`(approval ${id})`);
    expect((await maria.sql('SELECT body FROM notes WHERE id = 1', 'appdb')).trim()).toBe('approved');
  });

  it('does not block other sessions while one is held', async () => {
    const { id, done } = await held('SELECT COUNT(*) FROM notes');
    const other = await mariadb('bob', ['-e', 'SELECT COUNT(*) FROM users']);
    expect(other.stdout).toBe('2\n');
    await cli(['approvals', 'deny', id, '--reason', 'cleanup'], tokens.bob ?? '');
    await done;
  });
});

describe('masking', () => {
  it('masks a column by provenance under any alias, in text rows', async () => {
    const r = await mariadb('dave', ['-e', 'SELECT * FROM users ORDER BY id; SELECT u.ssn AS x, u.name FROM users AS u WHERE id = 2; SELECT name FROM users ORDER BY id']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('1\tann\t***-**-6789\n2\tbob\t***-**-4321\n***-**-4321\tbob\nann\nbob\n');
  });

  it('masks computed columns that depend on the masked one', async () => {
    const r = await mariadb('dave', ['-e', "SELECT CONCAT(ssn, '') AS c FROM users WHERE id = 1; SELECT UPPER(s) FROM (SELECT ssn AS s FROM users) t WHERE s LIKE '1%'"]);
    expect(r.stdout).not.toContain('123-45-6789');
    expect(r.stdout).not.toContain('123');
  });

  it('masks through derived tables, CTEs and views, where the server reports the alias as the table', async () => {
    const r = await mariadb('dave', ['-e', [
      'SELECT * FROM (SELECT * FROM users) t ORDER BY id',
      'SELECT * FROM (SELECT ssn AS name FROM users) users',
      'WITH w AS (SELECT ssn FROM users) SELECT * FROM w',
      'SELECT tax_id FROM people ORDER BY id',
      'SELECT name FROM users ORDER BY id',
    ].join('; ')]);
    expect(r.stderr).toBe('');
    for (const raw of ['123-45-6789', '987-65-4321', '6789', '4321'].slice(0, 2)) expect(r.stdout).not.toContain(raw);
    // Nothing masked where nothing depends on a masked column.
    expect(r.stdout.trimEnd().split('\n').slice(-2)).toEqual(['ann', 'bob']);
  });

  it('masks binary rows of prepared statements (mysql2 execute)', async () => {
    const c = await driver('dave');
    try {
      const [rows] = await c.execute('SELECT id, ssn AS s, name FROM users WHERE id > ? ORDER BY id', [0]);
      expect(rows).toEqual([{ id: 1, s: '***-**-6789', name: 'ann' }, { id: 2, s: '***-**-4321', name: 'bob' }]);
    } finally {
      await c.end();
    }
  });

  it('masks a row of more than 16 MB into one packet and keeps the sequence of what follows', async () => {
    const c = await driver('dave');
    try {
      const [rows] = await c.query('SELECT id, body FROM docs ORDER BY id');
      expect(rows).toEqual([{ id: 1, body: '[redacted]' }, { id: 2, body: '[redacted]' }]);
      const [bin] = await c.execute('SELECT id, body FROM docs WHERE id > ? ORDER BY id', [0]);
      expect(bin).toEqual([{ id: 1, body: '[redacted]' }, { id: 2, body: '[redacted]' }]);
      const [after] = await c.query('SELECT name FROM users WHERE id = 1');
      expect(after).toEqual([{ name: 'ann' }]);
    } finally {
      await c.end();
    }
  });

  it('masks rows read through a server-side cursor (COM_STMT_EXECUTE with a cursor, COM_STMT_FETCH)', async () => {
    // No stock client opens cursors: a minimal one, on the raw socket.
    const s: Socket = connect(port, '127.0.0.1');
    const reader = new PacketReader({ maxPacketBytes: 1 << 24 });
    const queue: Packet[] = [];
    let wake: (() => void) | null = null;
    s.on('data', (c: Buffer) => {
      reader.push(c, (p) => queue.push({ ...p, payload: Buffer.from(p.payload) }));
      wake?.();
    });
    const next = async (): Promise<Packet> => {
      while (queue.length === 0) await new Promise<void>((r) => (wake = r));
      return queue.shift() as Packet;
    };
    const untilEof = async (): Promise<Packet[]> => {
      const out: Packet[] = [];
      for (;;) {
        const p = await next();
        out.push(p);
        if (isEof(p.payload) || p.payload[0] === 0xff) return out;
      }
    };
    try {
      await next(); // greeting
      const caps = Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.CONNECT_WITH_DB;
      s.write(framePacket(encodeHandshakeResponse41({ capabilities: caps, maxPacketSize: 1 << 24, characterSet: 45, username: 'dave', authResponse: Buffer.from(`${tokens.dave ?? ''}\0`), database: 'appdb', authPluginName: 'mysql_clear_password', attributes: [] }), 1));
      expect((await next()).payload[0]).toBe(0x00);
      s.write(framePacket(Buffer.concat([Buffer.from([0x16]), Buffer.from('SELECT id, ssn FROM users ORDER BY id')]), 0));
      const ok = decodeStmtPrepareOk((await next()).payload);
      await untilEof(); // two column definitions and EOF
      const exec = Buffer.alloc(10);
      exec[0] = 0x17;
      exec.writeUInt32LE(ok.statementId, 1);
      exec[5] = 0x01; // CURSOR_TYPE_READ_ONLY
      exec.writeUInt32LE(1, 6);
      s.write(framePacket(exec, 0));
      const meta = await untilEof(); // column count, 2 definitions, EOF with SERVER_STATUS_CURSOR_EXISTS
      expect(decodeEof((meta[meta.length - 1] as Packet).payload).statusFlags & 0x40).toBe(0x40);
      const fetch = Buffer.alloc(9);
      fetch[0] = 0x1c;
      fetch.writeUInt32LE(ok.statementId, 1);
      fetch.writeUInt32LE(10, 5);
      s.write(framePacket(fetch, 0));
      const rows = (await untilEof()).slice(0, -1).map((p) => decodeBinaryRow(p.payload, [0x03, 0xfd]).map((c) => c?.toString('latin1')));
      expect(rows.map((r) => r[1])).toEqual(['***-**-6789', '***-**-4321']);
    } finally {
      s.destroy();
    }
  });

  it('leaves others unmasked, and no raw masked value reaches the audit log', async () => {
    const r = await mariadb('bob', ['-e', 'SELECT ssn FROM users WHERE id = 1']);
    expect(r.stdout).toBe('123-45-6789\n');
    // dave's sessions were recorded with result rows: only the masked form may be there.
    await new Promise((r2) => setTimeout(r2, 500));
    const audit = textUnder(join(maria.dir, 'state', 'audit'));
    expect(audit).toContain('***-**-6789');
    // Prepared statements' binary rows are recorded as text too.
    expect(audit).toContain('["2","***-**-4321","bob"]');
    // Only dave read row 2: its raw value must be nowhere in the log.
    expect(audit).not.toContain('987-65-4321');
  });
});

describe('secrets', () => {
  it('never shows the upstream password or a token in the daemon output', () => {
    const out = airlock.output();
    expect(out).not.toContain(UPSTREAM_PASSWORD);
    for (const t of Object.values(tokens)) expect(out).not.toContain(t);
  });
});
