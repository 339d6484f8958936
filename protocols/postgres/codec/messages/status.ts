/**
 * Session status from the server: ParameterStatus, BackendKeyData, ReadyForQuery,
 * NegotiateProtocolVersion and the asynchronous NotificationResponse.
 */
import { MessageCode, type TransactionStatus } from '../codes.js';
import { Reader, malformed } from '../reader.js';
import { Writer } from '../writer.js';

export interface ParameterStatusMessage { type: 'ParameterStatus'; name: string; value: string }
export interface BackendKeyDataMessage { type: 'BackendKeyData'; pid: number; secret: number }
export interface ReadyForQueryMessage { type: 'ReadyForQuery'; status: TransactionStatus }
export interface NegotiateProtocolVersionMessage { type: 'NegotiateProtocolVersion'; newestVersion: number; unrecognised: string[] }
export interface NotificationResponseMessage { type: 'NotificationResponse'; pid: number; channel: string; payload: string }

export function decodeParameterStatus(payload: Buffer): ParameterStatusMessage {
  const r = new Reader(payload, 'ParameterStatus');
  const name = r.cstring();
  const value = r.cstring();
  r.end();
  return { type: 'ParameterStatus', name, value };
}

export function encodeParameterStatus(name: string, value: string): Buffer {
  return new Writer(MessageCode.ParameterStatus).cstring(name).cstring(value).finish();
}

export function decodeBackendKeyData(payload: Buffer): BackendKeyDataMessage {
  const r = new Reader(payload, 'BackendKeyData');
  const pid = r.int32();
  const secret = r.int32();
  r.end();
  return { type: 'BackendKeyData', pid, secret };
}

export function encodeBackendKeyData(pid: number, secret: number): Buffer {
  return new Writer(MessageCode.BackendKeyData, 16).int32(pid).int32(secret).finish();
}

export function decodeReadyForQuery(payload: Buffer): ReadyForQueryMessage {
  const r = new Reader(payload, 'ReadyForQuery');
  const s = String.fromCharCode(r.uint8());
  r.end();
  if (s !== 'I' && s !== 'T' && s !== 'E') throw malformed(`ReadyForQuery: unknown transaction status ${JSON.stringify(s)}`);
  return { type: 'ReadyForQuery', status: s };
}

export function encodeReadyForQuery(status: TransactionStatus): Buffer {
  return new Writer(MessageCode.ReadyForQuery, 8).uint8(status.charCodeAt(0)).finish();
}

export function decodeNegotiateProtocolVersion(payload: Buffer): NegotiateProtocolVersionMessage {
  const r = new Reader(payload, 'NegotiateProtocolVersion');
  const newestVersion = r.int32();
  const n = r.int32();
  if (n < 0) throw malformed(`NegotiateProtocolVersion: negative count ${n}`);
  const unrecognised: string[] = [];
  for (let i = 0; i < n; i++) unrecognised.push(r.cstring());
  r.end();
  return { type: 'NegotiateProtocolVersion', newestVersion, unrecognised };
}

/**
 * `newestVersion` as PostgreSQL and libpq put it on the wire: the whole version number
 * (0x30000 for 3.0), although the spec text calls the field the newest minor version.
 */
export function encodeNegotiateProtocolVersion(newestVersion: number, unrecognised: readonly string[]): Buffer {
  const w = new Writer(MessageCode.NegotiateProtocolVersion).int32(newestVersion).int32(unrecognised.length);
  for (const o of unrecognised) w.cstring(o);
  return w.finish();
}

export function decodeNotificationResponse(payload: Buffer): NotificationResponseMessage {
  const r = new Reader(payload, 'NotificationResponse');
  const pid = r.int32();
  const channel = r.cstring();
  const text = r.cstring();
  r.end();
  return { type: 'NotificationResponse', pid, channel, payload: text };
}

export function encodeNotificationResponse(pid: number, channel: string, payload: string): Buffer {
  return new Writer(MessageCode.NotificationResponse).int32(pid).cstring(channel).cstring(payload).finish();
}
