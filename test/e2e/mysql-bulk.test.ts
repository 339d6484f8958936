/**
 * MariaDB bulk execution (COM_STMT_BULK_EXECUTE, issue 26) and the "last prepared" statement id
 * (0xffffffff): airlock offers the bulk capability and judges a bulk as COM_STMT_EXECUTE of its
 * prepared statement — policy decided at prepare, a per_execution approval never stretched over
 * many rows, no rows returned unmasked — through the real `mariadb` connector and a raw client
 * against a real MariaDB. Checked by the upstream's own rows, not by what airlock says.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import * as mariadb from 'mariadb';
import { startLocalMaria, type LocalMaria } from '../harness/mariadb-local.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { freePort } from '../harness/ports.js';
import { makeTestCerts, type TestCerts } from '../harness/tls.js';
import { PacketReader, framePacket, type Packet } from '../../protocols/mysql/codec/framing.js';
import { Capability, MariadbCapability } from '../../protocols/mysql/codec/codes.js';
import { decodeHandshakeV10, encodeHandshakeResponse41 } from '../../protocols/mysql/codec/messages/handshake.js';

const UPSTREAM_PASSWORD = 'bulk-Upstream-pw-26';
let maria: LocalMaria;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let certs: TestCerts;
let port = 0;
let adminUrl = '';
let token = '';
let dba = '';

beforeAll(async () => {
  issuer = await createTestIssuer();
  certs = makeTestCerts();
  maria = await startLocalMaria({
    password: UPSTREAM_PASSWORD,
    setupSql: 'CREATE TABLE rows_in (id int primary key, v varchar(20)); CREATE TABLE sealed (id int primary key); CREATE TABLE held (id int primary key); CREATE TABLE people (id int primary key, ssn varchar(20)); INSERT INTO people VALUES (1, \'123-45-6789\');',
  });
  port = await freePort();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  airlock = await startAirlock({
    state_dir: join(maria.dir, 'state'),
    admin: { listen: `127.0.0.1:${adminPort}` },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [{ ...maria.connection('maria', port, { allow_groups: ['dev', 'dba'] }), tls: { cert: certs.cert, key: certs.key } }],
    rules: [
      { name: 'sealed-table', when: { groups: ['dev'], tables: ['appdb.sealed'] }, effect: 'deny', reason: 'sealed' },
      { name: 'held-each-time', when: { groups: ['dev'], statements: ['insert'], tables: ['appdb.held'] }, effect: 'approve', approvers: ['dba'], per_execution: true, timeout: '2s' },
      { name: 'mask-ssn', when: { groups: ['dev'] }, effect: 'mask', columns: ['appdb.people.ssn'], method: 'redact' },
    ],
  });
  token = await issuer.token({ sub: 'dana', groups: ['dev'] });
  dba = await issuer.token({ sub: 'bob', groups: ['dba'] });
  // airlock learns the upstream's MariaDB capabilities (bulk among them) at a first login.
  await (await connector()).end();
}, 180_000);

afterAll(async () => {
  await airlock?.stop();
  await maria?.stop();
});

const connector = (): Promise<mariadb.Connection> =>
  mariadb.createConnection({ host: '127.0.0.1', port, user: 'dana', password: token, database: 'appdb', ssl: { ca: readFileSync(certs.ca, 'utf8') } });
const direct = (): Promise<mariadb.Connection> =>
  mariadb.createConnection({ host: '127.0.0.1', port: maria.port, user: 'app', password: UPSTREAM_PASSWORD, database: 'appdb' });
const count = async (table: string): Promise<number> => Number((await maria.sql(`SELECT COUNT(*) FROM ${table}`, 'appdb')).trim().split('\n').pop());

/** Approves every pending request of `subject` as the dba, through the admin API, while `work` runs. */
async function approving<T>(subject: string, work: Promise<T>): Promise<T> {
  let done = false;
  const loop = (async () => {
    while (!done) {
      const res = await fetch(`${adminUrl}/v1/approvals`, { headers: { authorization: `Bearer ${dba}` } });
      const body = (await res.json()) as { approvals: Array<{ id: string; requester: { subject: string } }> };
      for (const a of body.approvals.filter((x) => x.requester.subject === subject)) {
        await fetch(`${adminUrl}/v1/approvals/${a.id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${dba}` } });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    return await work;
  } finally {
    done = true;
    await loop;
  }
}

/** A bare MySQL client: the packets a driver would not send (statement id 0xffffffff, bulk flags). */
class RawClient {
  private readonly reader = new PacketReader({ maxPacketBytes: 1 << 24 });
  private readonly packets: Packet[] = [];
  private wake: (() => void) | null = null;
  bulk = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.reader.push(c, (p) => this.packets.push(p));
      this.wake?.();
    });
  }

  static async open(): Promise<RawClient> {
    const socket = netConnect({ host: '127.0.0.1', port });
    await new Promise<void>((r) => socket.once('connect', () => r()));
    const c = new RawClient(socket);
    const hello = decodeHandshakeV10((await c.next()).payload);
    c.bulk = (hello.mariadbCapabilities & MariadbCapability.STMT_BULK_OPERATIONS) !== 0;
    const capabilities = Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.CONNECT_WITH_DB | Capability.TRANSACTIONS | (hello.capabilities & Capability.LONG_PASSWORD);
    const auth = Buffer.from(`${token}\0`);
    socket.write(framePacket(encodeHandshakeResponse41({ capabilities, maxPacketSize: 1 << 24, characterSet: 45, username: 'dana', authResponse: auth, database: 'appdb', authPluginName: 'mysql_clear_password', attributes: [], mariadbCapabilities: c.bulk ? MariadbCapability.STMT_BULK_OPERATIONS : 0 }), 1));
    for (;;) {
      const p = await c.next();
      if (p.payload[0] === 0x00) return c;
      if (p.payload[0] === 0xff) throw new Error(`login refused: ${p.payload.subarray(9).toString()}`);
      if (p.payload[0] === 0xfe) socket.write(framePacket(auth, p.seq + 1));
    }
  }

  async next(): Promise<Packet> {
    while (this.packets.length === 0) await new Promise<void>((r) => (this.wake = r));
    return this.packets.shift() as Packet;
  }

  /** Sends a command; returns its first answer packet (OK 0x00 / ERR 0xff) and drains a prepare's definitions. */
  async command(payload: Buffer): Promise<{ ok: boolean; statementId: number; error: string }> {
    this.socket.write(framePacket(payload, 0));
    const p = await this.next();
    if (p.payload[0] === 0xff) return { ok: false, statementId: 0, error: `${p.payload.readUInt16LE(1)} ${p.payload.subarray(9).toString()}` };
    if (payload[0] === 0x16) {
      const params = p.payload.readUInt16LE(7);
      const columns = p.payload.readUInt16LE(5);
      for (let i = 0; i < (params > 0 ? params + 1 : 0) + (columns > 0 ? columns + 1 : 0); i++) await this.next();
    }
    return { ok: true, statementId: p.payload.readUInt32LE(1), error: '' };
  }

  prepare(sql: string): Promise<{ ok: boolean; statementId: number; error: string }> {
    return this.command(Buffer.concat([Buffer.from([0x16]), Buffer.from(sql)]));
  }

  /** COM_STMT_EXECUTE of a statement with one INT parameter. */
  execute(id: number, value: number): Promise<{ ok: boolean; error: string }> {
    const b = Buffer.alloc(1 + 4 + 1 + 4 + 1 + 1 + 2 + 4);
    b.writeUInt8(0x17, 0);
    b.writeUInt32LE(id, 1);
    b.writeUInt32LE(1, 6);
    b.writeUInt8(0, 10); // null bitmap
    b.writeUInt8(1, 11); // types follow
    b.writeUInt16LE(3, 12); // MYSQL_TYPE_LONG
    b.writeInt32LE(value, 14);
    return this.command(b);
  }

  /** COM_STMT_BULK_EXECUTE of a statement with one INT parameter, one row per value. */
  bulkExecute(id: number, values: number[], flags = 0x80): Promise<{ ok: boolean; error: string }> {
    const head = Buffer.alloc(1 + 4 + 2 + 2);
    head.writeUInt8(0xfa, 0);
    head.writeUInt32LE(id, 1);
    head.writeUInt16LE(flags, 5);
    head.writeUInt16LE(3, 7);
    const rows = values.map((v) => {
      const r = Buffer.alloc(5);
      r.writeUInt8(0, 0); // indicator: none
      r.writeInt32LE(v, 1);
      return r;
    });
    return this.command(Buffer.concat([head, ...rows]));
  }

  end(): void {
    this.socket.destroy();
  }
}

describe('COM_STMT_BULK_EXECUTE', () => {
  it('the connector\'s batch() runs as one bulk with the result it has directly', async () => {
    const rows = (base: number): Array<[number, string]> => Array.from({ length: 50 }, (_, i) => [base + i, `r${i}`]);
    const via = await connector();
    const d = await direct();
    try {
      const a = await via.batch('INSERT INTO rows_in VALUES (?, ?)', rows(1000));
      const b = await d.batch('INSERT INTO rows_in VALUES (?, ?)', rows(2000));
      expect(a).toEqual(b);
      expect(a).toMatchObject({ affectedRows: 50 });
    } finally {
      await via.end();
      await d.end();
    }
    expect(await count('rows_in')).toBe(100);
  });

  it('a statement a rule denies is refused at prepare; nothing runs', async () => {
    const via = await connector();
    try {
      await expect(via.batch('INSERT INTO sealed VALUES (?)', [[1], [2]])).rejects.toMatchObject({ errno: 1142 });
    } finally {
      await via.end();
    }
    expect(await count('sealed')).toBe(0);
  });

  it('a statement approved per execution is not run as a bulk (one approval, many rows): 1235, nothing runs', async () => {
    const c = await RawClient.open();
    try {
      expect(c.bulk).toBe(true);
      const prepared = await approving('dana', c.prepare('INSERT INTO held VALUES (?)'));
      expect(prepared.ok).toBe(true);
      const r = await c.bulkExecute(prepared.statementId, [1, 2, 3]);
      expect(r).toMatchObject({ ok: false, error: expect.stringMatching(/^1235 .*approved per execution/) });
    } finally {
      c.end();
    }
    expect(await count('held')).toBe(0);
  });

  it('a statement that returns rows, unit results, or an unknown statement id are refused', async () => {
    const c = await RawClient.open();
    try {
      const ret = await c.prepare('INSERT INTO rows_in (id) VALUES (?) RETURNING id');
      expect(await c.bulkExecute(ret.statementId, [5001, 5002])).toMatchObject({ ok: false, error: expect.stringMatching(/^1235 /) });
      const sel = await c.prepare('SELECT ssn FROM people WHERE id = ?');
      expect(await c.bulkExecute(sel.statementId, [1])).toMatchObject({ ok: false, error: expect.stringMatching(/^1235 /) });
      const ins = await c.prepare('INSERT INTO rows_in (id) VALUES (?)');
      expect(await c.bulkExecute(ins.statementId, [5003], 0x80 | 0x40)).toMatchObject({ ok: false, error: expect.stringMatching(/^1235 .*flags/) });
      expect(await c.bulkExecute(123456, [5004])).toMatchObject({ ok: false, error: expect.stringMatching(/^1243 /) });
      expect(await c.bulkExecute(ins.statementId, [5005, 5006])).toMatchObject({ ok: true });
    } finally {
      c.end();
    }
    expect((await maria.sql('SELECT GROUP_CONCAT(id ORDER BY id) FROM rows_in WHERE id > 5000', 'appdb')).trim().split('\n').pop()).toBe('5005,5006');
  });
});

describe('the "last prepared" statement id (0xffffffff)', () => {
  it('is judged as the statement it names: a per_execution approval is asked again', async () => {
    const c = await RawClient.open();
    try {
      const prepared = await approving('dana', c.prepare('INSERT INTO held VALUES (?)'));
      expect(prepared.ok).toBe(true);
      // The prepare's approval covers one execution.
      expect(await c.execute(prepared.statementId, 10)).toMatchObject({ ok: true });
      // The next, by the "last prepared" id, asks again: nobody approves, it is refused.
      expect(await c.execute(0xffffffff, 11)).toMatchObject({ ok: false, error: expect.stringMatching(/^1142 /) });
      expect(await approving('dana', c.execute(0xffffffff, 12))).toMatchObject({ ok: true });
    } finally {
      c.end();
    }
    expect((await maria.sql('SELECT GROUP_CONCAT(id ORDER BY id) FROM held', 'appdb')).trim().split('\n').pop()).toBe('10,12');
  });

  it('with no statement prepared (or after a refused prepare) is refused, not sent', async () => {
    const c = await RawClient.open();
    try {
      expect(await c.execute(0xffffffff, 1)).toMatchObject({ ok: false, error: expect.stringMatching(/^1243 /) });
      expect(await c.prepare('INSERT INTO sealed VALUES (?)')).toMatchObject({ ok: false });
      expect(await c.execute(0xffffffff, 1)).toMatchObject({ ok: false, error: expect.stringMatching(/^1243 /) });
    } finally {
      c.end();
    }
    expect(await count('sealed')).toBe(0);
  });
});
