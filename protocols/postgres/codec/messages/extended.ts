/**
 * The extended query protocol: Parse, Bind, Describe, Execute, Close, Sync, Flush from the
 * client and ParseComplete, BindComplete, CloseComplete, NoData, ParameterDescription,
 * PortalSuspended from the server; Terminate lives here too, as the other bodiless message.
 */
import { MessageCode } from '../codes.js';
import { Reader, malformed } from '../reader.js';
import { Writer } from '../writer.js';

/** 'S' a prepared statement, 'P' a portal. */
export type TargetKind = 'S' | 'P';

export interface ParseMessage { type: 'Parse'; name: string; sql: string; paramTypes: number[] }
export interface BindMessage {
  type: 'Bind';
  portal: string;
  statement: string;
  paramFormats: number[];
  /** Views of the frame (no copy); null is SQL NULL. */
  params: (Buffer | null)[];
  resultFormats: number[];
}
export interface DescribeMessage { type: 'Describe'; kind: TargetKind; name: string }
export interface ExecuteMessage { type: 'Execute'; portal: string; maxRows: number }
export interface CloseMessage { type: 'Close'; kind: TargetKind; name: string }
export interface SyncMessage { type: 'Sync' }
export interface FlushMessage { type: 'Flush' }
export interface TerminateMessage { type: 'Terminate' }

export interface ParseCompleteMessage { type: 'ParseComplete' }
export interface BindCompleteMessage { type: 'BindComplete' }
export interface CloseCompleteMessage { type: 'CloseComplete' }
export interface NoDataMessage { type: 'NoData' }
export interface PortalSuspendedMessage { type: 'PortalSuspended' }
export interface ParameterDescriptionMessage { type: 'ParameterDescription'; paramTypes: number[] }

function int16Array(r: Reader): number[] {
  const n = r.count16();
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = r.int16();
  return out;
}

function oidArray(r: Reader): number[] {
  const n = r.count16();
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = r.uint32();
  return out;
}

function targetKind(r: Reader, what: string): TargetKind {
  const k = String.fromCharCode(r.uint8());
  if (k !== 'S' && k !== 'P') throw malformed(`${what}: target must be 'S' or 'P', not ${JSON.stringify(k)}`);
  return k;
}

export function decodeParse(payload: Buffer): ParseMessage {
  const r = new Reader(payload, 'Parse');
  const name = r.cstring();
  const sql = r.cstring();
  const paramTypes = oidArray(r);
  r.end();
  return { type: 'Parse', name, sql, paramTypes };
}

export function encodeParse(name: string, sql: string, paramTypes: readonly number[] = []): Buffer {
  const w = new Writer(MessageCode.Parse, Buffer.byteLength(sql) + name.length + 16).cstring(name).cstring(sql).int16(paramTypes.length);
  for (const t of paramTypes) w.int32(t);
  return w.finish();
}

export function decodeBind(payload: Buffer): BindMessage {
  const r = new Reader(payload, 'Bind');
  const portal = r.cstring();
  const statement = r.cstring();
  const paramFormats = int16Array(r);
  const n = r.count16();
  const params = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) params[i] = r.nullableBytes();
  const resultFormats = int16Array(r);
  r.end();
  return { type: 'Bind', portal, statement, paramFormats, params, resultFormats };
}

export function encodeBind(m: Omit<BindMessage, 'type'>): Buffer {
  const w = new Writer(MessageCode.Bind, 64).cstring(m.portal).cstring(m.statement).int16Array(m.paramFormats).int16(m.params.length);
  for (const p of m.params) w.nullableBytes(p);
  return w.int16Array(m.resultFormats).finish();
}

export function decodeDescribe(payload: Buffer): DescribeMessage {
  const r = new Reader(payload, 'Describe');
  const kind = targetKind(r, 'Describe');
  const name = r.cstring();
  r.end();
  return { type: 'Describe', kind, name };
}

export function encodeDescribe(kind: TargetKind, name: string): Buffer {
  return new Writer(MessageCode.Describe).uint8(kind.charCodeAt(0)).cstring(name).finish();
}

export function decodeExecute(payload: Buffer): ExecuteMessage {
  const r = new Reader(payload, 'Execute');
  const portal = r.cstring();
  const maxRows = r.int32();
  r.end();
  return { type: 'Execute', portal, maxRows };
}

export function encodeExecute(portal: string, maxRows = 0): Buffer {
  return new Writer(MessageCode.Execute).cstring(portal).int32(maxRows).finish();
}

export function decodeClose(payload: Buffer): CloseMessage {
  const r = new Reader(payload, 'Close');
  const kind = targetKind(r, 'Close');
  const name = r.cstring();
  r.end();
  return { type: 'Close', kind, name };
}

export function encodeClose(kind: TargetKind, name: string): Buffer {
  return new Writer(MessageCode.Close).uint8(kind.charCodeAt(0)).cstring(name).finish();
}

/** A message with no body; anything after the length is malformed. */
export function expectEmpty(payload: Buffer, what: string): void {
  new Reader(payload, what).end();
}

const bodiless = (type: number): Buffer => new Writer(type, 5).finish();

export const encodeSync = (): Buffer => bodiless(MessageCode.Sync);
export const encodeFlush = (): Buffer => bodiless(MessageCode.Flush);
export const encodeTerminate = (): Buffer => bodiless(MessageCode.Terminate);
export const encodeParseComplete = (): Buffer => bodiless(MessageCode.ParseComplete);
export const encodeBindComplete = (): Buffer => bodiless(MessageCode.BindComplete);
export const encodeCloseComplete = (): Buffer => bodiless(MessageCode.CloseComplete);
export const encodeNoData = (): Buffer => bodiless(MessageCode.NoData);
export const encodePortalSuspended = (): Buffer => bodiless(MessageCode.PortalSuspended);

export function decodeParameterDescription(payload: Buffer): ParameterDescriptionMessage {
  const r = new Reader(payload, 'ParameterDescription');
  const paramTypes = oidArray(r);
  r.end();
  return { type: 'ParameterDescription', paramTypes };
}

export function encodeParameterDescription(paramTypes: readonly number[]): Buffer {
  const w = new Writer(MessageCode.ParameterDescription).int16(paramTypes.length);
  for (const t of paramTypes) w.int32(t);
  return w.finish();
}
