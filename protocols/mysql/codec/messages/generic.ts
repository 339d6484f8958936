/**
 * Generic response packets: Protocol::OK_Packet, Protocol::ERR_Packet, Protocol::EOF_Packet.
 * Their layout depends on the negotiated capabilities (PROTOCOL_41, SESSION_TRACK), so the
 * decoders take them.
 */
import { Capability, PacketHeader, ServerStatus } from '../codes.js';
import { Reader, malformed } from '../reader.js';
import { Writer } from '../writer.js';

export interface OkPacket {
  type: 'OK';
  /** 0x00, or 0xfe for the OK that ends a result set under DEPRECATE_EOF. */
  header: number;
  affectedRows: bigint;
  lastInsertId: bigint;
  statusFlags: number;
  warnings: number;
  info: string;
  /** Session state changes (SESSION_TRACK + SERVER_SESSION_STATE_CHANGED), raw. */
  sessionState: Buffer | null;
}

export interface ErrPacket {
  type: 'ERR';
  code: number;
  sqlState: string;
  message: string;
}

export interface EofPacket {
  type: 'EOF';
  warnings: number;
  statusFlags: number;
}

export function isErr(payload: Buffer): boolean {
  return payload[0] === PacketHeader.ERR;
}

/** An EOF packet (not a row that begins with 0xfe: those are 9 bytes or longer). */
export function isEof(payload: Buffer): boolean {
  return payload[0] === PacketHeader.EOF && payload.length < 9;
}

/** The OK that ends a result set under DEPRECATE_EOF: 0xfe and shorter than a max-size packet. */
export function isEofOk(payload: Buffer): boolean {
  return payload[0] === PacketHeader.EOF && payload.length < 0xffffff;
}

export function decodeOk(payload: Buffer, capabilities: number): OkPacket {
  const r = new Reader(payload, 'OK_Packet');
  const header = r.uint8();
  if (header !== PacketHeader.OK && header !== PacketHeader.EOF) throw malformed('OK_Packet: header');
  const affectedRows = r.lenencBig();
  const lastInsertId = r.lenencBig();
  let statusFlags = 0;
  let warnings = 0;
  if ((capabilities & Capability.PROTOCOL_41) !== 0) {
    statusFlags = r.uint16();
    warnings = r.uint16();
  } else if ((capabilities & Capability.TRANSACTIONS) !== 0) statusFlags = r.uint16();
  let info = '';
  let sessionState: Buffer | null = null;
  if ((capabilities & Capability.SESSION_TRACK) !== 0) {
    if (r.remaining > 0) info = r.lenencString();
    if ((statusFlags & ServerStatus.SESSION_STATE_CHANGED) !== 0 && r.remaining > 0) sessionState = r.lenencBytes();
  } else info = r.restString();
  return { type: 'OK', header, affectedRows, lastInsertId, statusFlags, warnings, info, sessionState };
}

export function encodeOk(
  m: { header?: number; affectedRows?: bigint; lastInsertId?: bigint; statusFlags: number; warnings?: number; info?: string },
  capabilities: number,
): Buffer {
  const w = new Writer(16)
    .uint8(m.header ?? PacketHeader.OK)
    .lenenc(m.affectedRows ?? 0n)
    .lenenc(m.lastInsertId ?? 0n)
    .uint16(m.statusFlags & ~ServerStatus.SESSION_STATE_CHANGED)
    .uint16(m.warnings ?? 0);
  const info = m.info ?? '';
  if ((capabilities & Capability.SESSION_TRACK) !== 0) {
    if (info !== '') w.lenencString(info);
  } else w.string(info);
  return w.finish();
}

export function decodeErr(payload: Buffer): ErrPacket {
  const r = new Reader(payload, 'ERR_Packet');
  if (r.uint8() !== PacketHeader.ERR) throw malformed('ERR_Packet: header');
  const code = r.uint16();
  let sqlState = 'HY000';
  // The SQLSTATE marker is present under PROTOCOL_41, except in errors sent before the handshake.
  if (r.remaining >= 6 && r.peek() === 0x23) {
    r.skip(1);
    sqlState = r.bytes(5).toString('latin1');
  }
  return { type: 'ERR', code, sqlState, message: r.restString() };
}

/** Always in the 4.1 form: every client airlock accepts speaks PROTOCOL_41. */
export function encodeErr(m: { code: number; sqlState: string; message: string }): Buffer {
  if (!/^[0-9A-Z]{5}$/.test(m.sqlState)) throw new Error(`bad SQLSTATE ${m.sqlState}`);
  return new Writer(m.message.length + 16).uint8(PacketHeader.ERR).uint16(m.code).uint8(0x23).string(m.sqlState).string(m.message).finish();
}

export function decodeEof(payload: Buffer): EofPacket {
  const r = new Reader(payload, 'EOF_Packet');
  if (r.uint8() !== PacketHeader.EOF) throw malformed('EOF_Packet: header');
  if (r.remaining < 4) return { type: 'EOF', warnings: 0, statusFlags: 0 };
  return { type: 'EOF', warnings: r.uint16(), statusFlags: r.uint16() };
}

export function encodeEof(statusFlags: number, warnings = 0): Buffer {
  return new Writer(5).uint8(PacketHeader.EOF).uint16(warnings).uint16(statusFlags).finish();
}

/** Status flags of a packet that ends a response (OK, EOF, or the 0xfe OK); null for others. */
export function terminatorStatus(payload: Buffer, capabilities: number): number | null {
  const h = payload[0];
  if (h === PacketHeader.EOF && payload.length < 9) return decodeEof(payload).statusFlags;
  if (h === PacketHeader.OK || h === PacketHeader.EOF) return decodeOk(payload, capabilities).statusFlags;
  return null;
}
