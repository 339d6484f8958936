// The MySQL codec checked against bytes written by hand from the protocol reference (and,
// for the handshake, by mysql2's own packet builder), never by our encoders alone; every
// stream is split at every byte boundary.
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { generateKeyPairSync, privateDecrypt, constants, createPrivateKey, sign as cryptoSign } from 'node:crypto';
import { ed25519Sign } from '../../protocols/mysql/codec/messages/ed25519.js';
import { PacketReader, framePacket, packetCount, type Packet } from '../../protocols/mysql/codec/framing.js';
import { Capability, MAX_PACKET_PAYLOAD } from '../../protocols/mysql/codec/codes.js';
import { decodeHandshakeResponse, decodeHandshakeV10, encodeHandshakeResponse41, encodeHandshakeV10, encodeSslRequest } from '../../protocols/mysql/codec/messages/handshake.js';
import { decodeErr, decodeOk, encodeErr, encodeOk, decodeEof, encodeEof, isEof } from '../../protocols/mysql/codec/messages/generic.js';
import { decodeColumnDefinition, decodeTextRow, decodeBinaryRow, encodeBinaryRow, encodeTextRow, encodeColumnDefinition, decodeStmtPrepareOk } from '../../protocols/mysql/codec/messages/resultset.js';
import { decodeCommand } from '../../protocols/mysql/codec/messages/command.js';
import { decodeAuthSwitchRequest, encodeAuthSwitchRequest, nativePasswordScramble, decodeClearPassword, cachingSha2Scramble, rsaEncryptPassword } from '../../protocols/mysql/codec/messages/auth.js';
import { Reader } from '../../protocols/mysql/codec/reader.js';
import { AirlockError } from '../../src/util/errors.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const require = createRequire(import.meta.url);
// mysql2's packet builders are not exported; load them by path as an independent reference.
const mysql2Lib = (f: string): unknown => require(new URL(`../../node_modules/mysql2/lib/${f}`, import.meta.url).pathname);

interface Seen { seq: number; payload: string; raw: string }
const seen = (p: Packet): Seen => ({ seq: p.seq, payload: p.payload.toString('hex'), raw: p.raw.toString('hex') });

function frameAll(chunks: Buffer[], max = 1 << 20): Seen[] {
  const r = new PacketReader({ maxPacketBytes: max });
  const out: Seen[] = [];
  for (const c of chunks) r.push(c, (p) => out.push(seen(p)));
  expect(r.buffered).toBe(0);
  return out;
}

function splits(stream: Buffer): Buffer[][] {
  const out: Buffer[][] = [[stream]];
  for (let i = 1; i < stream.length; i++) out.push([stream.subarray(0, i), stream.subarray(i)]);
  for (let i = 1; i < stream.length; i += 3) for (let j = i + 1; j < stream.length; j += 5) out.push([stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]);
  out.push([...stream].map((b) => Buffer.from([b])));
  return out;
}

// COM_QUERY "select 1" (seq 0), then a result: column count 1, a column definition, EOF, row "1", EOF.
const serverResult = hex(`
  01 00 00 01  01
  17 00 00 02  03646566 00 00 00 0131 00 0c 3f00 01000000 08 8100 00 0000
  05 00 00 03  fe 0000 0200
  02 00 00 04  01 31
  05 00 00 05  fe 0000 0200`);

describe('PacketReader', () => {
  it('frames a stream identically at every byte boundary', () => {
    const expected = frameAll([serverResult]);
    expect(expected.map((p) => p.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(expected[3]?.payload).toBe('0131');
    for (const chunks of splits(serverResult)) expect(frameAll(chunks)).toEqual(expected);
  });

  it('joins a 16 MB continuation and splits it back the same way', () => {
    const payload = Buffer.alloc(MAX_PACKET_PAYLOAD + 10, 0x61);
    payload[0] = 0x03;
    // Built by hand: ff ff ff seq, 16 MB - 1 bytes; then 0a 00 00 seq+1, 10 bytes.
    const wire = Buffer.concat([hex('ffffff07'), payload.subarray(0, MAX_PACKET_PAYLOAD), hex('0a000008'), payload.subarray(MAX_PACKET_PAYLOAD)]);
    expect(framePacket(payload, 7).equals(wire)).toBe(true);
    const r = new PacketReader({ maxPacketBytes: 32 << 20 });
    const got: Packet[] = [];
    for (let off = 0; off < wire.length; off += 65536) r.push(wire.subarray(off, off + 65536), (p) => got.push(p));
    expect(got).toHaveLength(1);
    expect(got[0]?.seq).toBe(7);
    expect(got[0]?.lastSeq).toBe(8);
    expect(got[0]?.payload.equals(payload)).toBe(true);
    expect(got[0]?.raw.equals(wire)).toBe(true);
  });

  it('ends a payload of exactly 16 MB - 1 with an empty packet', () => {
    expect(packetCount(MAX_PACKET_PAYLOAD)).toBe(2);
    const wire = framePacket(Buffer.alloc(MAX_PACKET_PAYLOAD, 1), 0);
    expect(wire.subarray(wire.length - 4).toString('hex')).toBe('00000001');
  });

  it('caps a packet before buffering it', () => {
    const r = new PacketReader({ maxPacketBytes: 1000 });
    expect(() => r.push(hex('e9 03 00 00'), () => undefined)).toThrow(AirlockError);
  });

  it('refuses continuation pieces out of order', () => {
    const r = new PacketReader({ maxPacketBytes: 32 << 20 });
    const wire = Buffer.concat([hex('ffffff00'), Buffer.alloc(MAX_PACKET_PAYLOAD), hex('01000005'), hex('00')]);
    expect(() => r.push(wire, () => undefined)).toThrow(/out of order/);
  });
});

describe('handshake', () => {
  it('decodes HandshakeV10 as mysql2 builds it and our encoder matches the layout', () => {
    const Handshake = mysql2Lib('packets/handshake.js') as new (a: Record<string, unknown>) => { toPacket(seq: number): { buffer: Buffer } };
    const scramble = Buffer.from('0123456789abcdefghij');
    const caps = Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.LONG_PASSWORD;
    const theirs = new Handshake({ protocolVersion: 10, serverVersion: '8.0.0-x', capabilityFlags: caps, connectionId: 77, authPluginData1: scramble.subarray(0, 8), authPluginData2: scramble.subarray(8), characterSet: 45, statusFlags: 2 }).toPacket(0).buffer;
    const h = decodeHandshakeV10(theirs.subarray(4));
    expect(h).toMatchObject({ serverVersion: '8.0.0-x', connectionId: 77, capabilities: caps, characterSet: 45, statusFlags: 2, authPluginName: 'mysql_native_password' });
    expect(h.authPluginData.equals(scramble)).toBe(true);
    const ours = encodeHandshakeV10({ serverVersion: '8.0.0-x', connectionId: 77, authPluginData: scramble, capabilities: caps, characterSet: 45, statusFlags: 2, authPluginName: 'mysql_native_password' });
    expect(ours.equals(theirs.subarray(4))).toBe(true);
  });

  it('decodes a MariaDB handshake with extended capabilities', () => {
    // 10.11 style: CLIENT_MYSQL cleared, 4 extended capability bytes at the end of the reserved block.
    const p = hex(`0a 352e352e352d31302e31312e31392d4d617269614442 00 2a000000 3132333435363738 00
      fef7 2d 0200 ff81 15 000000000000 1d000000 393031323334353637383930 00 6d7973716c5f6e61746976655f70617373776f726400`);
    const h = decodeHandshakeV10(p);
    expect(h.serverVersion).toBe('5.5.5-10.11.19-MariaDB');
    expect(h.connectionId).toBe(42);
    expect(h.mariadbCapabilities).toBe(0x1d);
    expect(h.authPluginData.toString()).toBe('12345678901234567890');
    expect(h.authPluginName).toBe('mysql_native_password');
  });

  it('tells an SSLRequest from a HandshakeResponse41 and reads every field', () => {
    const caps = Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.CONNECT_WITH_DB | Capability.CONNECT_ATTRS | Capability.SSL;
    expect(decodeHandshakeResponse(encodeSslRequest(caps, 1 << 24, 45))).toEqual({ type: 'SSLRequest', capabilities: caps, maxPacketSize: 1 << 24, characterSet: 45, mariadbCapabilities: 0 });
    // By hand: caps, max packet, charset, 23 zero bytes, "bob\0", lenenc "tok", "db\0", "mysql_clear_password\0", attrs {a: b}
    const wire = Buffer.concat([
      Buffer.from(Uint32Array.of(caps).buffer), hex('00000001 2d'), Buffer.alloc(23), Buffer.from('bob\0'), hex('03'), Buffer.from('tok'),
      Buffer.from('db\0mysql_clear_password\0'), hex('04 0161 0162'),
    ]);
    const m = decodeHandshakeResponse(wire);
    expect(m).toMatchObject({ type: 'HandshakeResponse41', username: 'bob', database: 'db', authPluginName: 'mysql_clear_password', attributes: [['a', 'b']] });
    if (m.type !== 'HandshakeResponse41') throw new Error('x');
    expect(m.authResponse.toString()).toBe('tok');
    expect(encodeHandshakeResponse41(m).equals(wire)).toBe(true);
  });

  it('refuses a pre-4.1 response and truncations with one named error', () => {
    expect(() => decodeHandshakeResponse(hex('00000000 00000001 2d'))).toThrow(/pre-4.1/);
    const caps = Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION;
    const good = Buffer.concat([Buffer.from(Uint32Array.of(caps).buffer), hex('00000001 2d'), Buffer.alloc(23), Buffer.from('bob\0'), hex('14'), Buffer.alloc(20, 1)]);
    for (let i = 0; i < good.length; i++) {
      try {
        decodeHandshakeResponse(good.subarray(0, i));
      } catch (e) {
        expect(e).toBeInstanceOf(AirlockError);
        expect((e as AirlockError).code).toBe('AIRLOCK_PROTOCOL');
      }
    }
  });
});

describe('auth', () => {
  it('reads an AuthSwitchRequest and writes one', () => {
    const wire = hex('fe 6d7973716c5f636c6561725f70617373776f7264 00 3132 00');
    expect(decodeAuthSwitchRequest(wire)).toEqual({ type: 'AuthSwitchRequest', pluginName: 'mysql_clear_password', pluginData: Buffer.from('12') });
    expect(encodeAuthSwitchRequest('mysql_clear_password', Buffer.from('12')).equals(wire)).toBe(true);
  });

  it('computes the mysql_native_password scramble as mysql2 does', () => {
    const auth41 = mysql2Lib('auth_41.js') as { calculateToken(p: string, a: Buffer, b: Buffer): Buffer };
    const scramble = Buffer.from('abcdefgh0123456789AB');
    expect(nativePasswordScramble(Buffer.from('s3cret'), scramble).equals(auth41.calculateToken('s3cret', scramble.subarray(0, 8), scramble.subarray(8)))).toBe(true);
  });

  it('computes the caching_sha2_password fast-path scramble as mysql2 does', () => {
    type Plugin = (o?: object) => (c: { connection: { config: { password: string } } }) => (data: Buffer) => Buffer;
    const plugin = mysql2Lib('auth_plugins/caching_sha2_password.js') as Plugin;
    const scramble = Buffer.from('0123456789ABCDEFGHIJ');
    const theirs = plugin()({ connection: { config: { password: 'pässword' } } })(Buffer.concat([scramble, Buffer.from([0])]));
    expect(cachingSha2Scramble(Buffer.from('pässword'), scramble).equals(theirs)).toBe(true);
  });

  it('encrypts the caching_sha2 full-path password with the server key (RSA-OAEP over password XOR scramble)', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const scramble = Buffer.from('abcdefghijklmnopqrst');
    const plain = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING }, rsaEncryptPassword(Buffer.from('s3cret'), scramble, pem));
    const expected = Buffer.from('s3cret\0').map((b, i) => b ^ (scramble[i % 20] as number));
    expect(plain.equals(Buffer.from(expected))).toBe(true);
  });

  it('signs the client_ed25519 scramble as RFC 8032 Ed25519 does for a 32-byte secret', () => {
    // With a 32-byte password MariaDB's scheme is exactly Ed25519 with that password as the seed.
    const seed = Buffer.from('0123456789abcdef0123456789abcdef');
    const message = Buffer.from('scramble-scramble-scramble-32byt');
    const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
    const expected = cryptoSign(null, message, createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
    expect(ed25519Sign(seed, message).toString('hex')).toBe(expected.toString('hex'));
  });

  it('reads a clear password with or without its NUL', () => {
    expect(decodeClearPassword(Buffer.from('tok\0'))).toBe('tok');
    expect(decodeClearPassword(Buffer.from('tok'))).toBe('tok');
    expect(() => decodeClearPassword(Buffer.from('to\0k\0'))).toThrow(AirlockError);
  });
});

describe('generic packets', () => {
  const caps41 = Capability.PROTOCOL_41 | Capability.TRANSACTIONS;
  it('OK, ERR and EOF', () => {
    expect(decodeOk(hex('00 01 fc0001 0200 0000'), caps41)).toMatchObject({ affectedRows: 1n, lastInsertId: 256n, statusFlags: 2, warnings: 0, info: '' });
    expect(encodeOk({ statusFlags: 2 }, caps41).toString('hex')).toBe('00000002000000');
    const err = hex('ff 1504 23 3238303030') ;
    expect(decodeErr(Buffer.concat([err, Buffer.from('Access denied')]))).toEqual({ type: 'ERR', code: 1045, sqlState: '28000', message: 'Access denied' });
    expect(encodeErr({ code: 1045, sqlState: '28000', message: 'Access denied' }).equals(Buffer.concat([err, Buffer.from('Access denied')]))).toBe(true);
    expect(decodeErr(hex('ff 1504 4e6f'))).toEqual({ type: 'ERR', code: 1045, sqlState: 'HY000', message: 'No' });
    expect(encodeEof(0x22).toString('hex')).toBe('fe00002200');
    expect(decodeEof(hex('fe 0100 0a00'))).toEqual({ type: 'EOF', warnings: 1, statusFlags: 10 });
    expect(isEof(hex('fe 0000 0200'))).toBe(true);
    expect(isEof(hex('fe 0100000000000000 61'))).toBe(false);
  });

  it('reads the session-track info of an OK', () => {
    const caps = caps41 | Capability.SESSION_TRACK;
    // status 0x4002 (SESSION_STATE_CHANGED|AUTOCOMMIT), info "", state: type 1 (schema) "db"
    const ok = decodeOk(hex('00 00 00 0240 0000 00 05 01 03 02 6462'), caps);
    expect(ok.sessionState?.toString('hex')).toBe('0103026462');
  });
});

describe('result sets', () => {
  it('column definitions, text rows and binary rows', () => {
    const def = decodeColumnDefinition(hex('03646566 056170706462 0175 0575736572730373736e 0373736e 0c 2d00 ff000000 fd 0000 00 0000').subarray(0));
    expect(def).toMatchObject({ catalog: 'def', schema: 'appdb', table: 'u', orgTable: 'users', name: 'ssn', orgName: 'ssn', columnType: 0xfd });
    expect(encodeColumnDefinition(def)).toEqual(hex('03646566 056170706462 0175 0575736572730373736e 0373736e 0c 2d00 ff000000 fd 0000 00 0000'));
    const row = hex('03616263 fb 00');
    expect(decodeTextRow(row, 3)).toEqual([Buffer.from('abc'), null, Buffer.alloc(0)]);
    expect(encodeTextRow([Buffer.from('abc'), null, Buffer.alloc(0)]).equals(row)).toBe(true);
    expect(() => decodeTextRow(row, 4)).toThrow(AirlockError);
    expect(() => decodeTextRow(row, 2)).toThrow(/trailing/);
    // Binary: LONG 7, NULL varchar, VAR_STRING "hi", DATETIME (4-byte form), DOUBLE
    const types = [0x03, 0xfd, 0xfd, 0x0c, 0x05];
    const bin = hex('00 08 07000000 026869 04 e8070102 000000000000f03f');
    const cells = decodeBinaryRow(bin, types);
    expect(cells.map((c) => (c === null ? null : c.toString('hex')))).toEqual(['07000000', null, '6869', 'e8070102', '000000000000f03f']);
    expect(encodeBinaryRow(cells, types).equals(bin)).toBe(true);
  });

  it('COM_STMT_PREPARE_OK', () => {
    expect(decodeStmtPrepareOk(hex('00 01000000 0200 0100 00 0000'))).toEqual({ type: 'COM_STMT_PREPARE_OK', statementId: 1, columns: 2, params: 1, warnings: 0 });
  });
});

describe('commands', () => {
  it('decodes the commands airlock looks into', () => {
    expect(decodeCommand(Buffer.from('\x03select 1', 'latin1'))).toEqual({ type: 'COM_QUERY', sql: 'select 1' });
    expect(decodeCommand(hex('17 05000000 00 01000000'))).toEqual({ type: 'COM_STMT_EXECUTE', statementId: 5, flags: 0 });
    expect(decodeCommand(hex('0c 2a000000'))).toEqual({ type: 'COM_PROCESS_KILL', connectionId: 42 });
    expect(decodeCommand(hex('04 7573657273 00 25'))).toEqual({ type: 'COM_FIELD_LIST', table: 'users', wildcard: '%' });
    expect(decodeCommand(hex('11 616c696365 00'))).toEqual({ type: 'COM_CHANGE_USER' });
    expect(() => decodeCommand(hex('19 0100'))).toThrow(AirlockError);
    expect(() => decodeCommand(Buffer.alloc(0))).toThrow(AirlockError);
  });

  it('refuses a length-encoded integer that is not one', () => {
    expect(() => new Reader(hex('ff'), 'x').lenenc()).toThrow(AirlockError);
    expect(() => new Reader(hex('fe ffffffffffffffff'), 'x').lenenc()).toThrow(/too large/);
  });
});
