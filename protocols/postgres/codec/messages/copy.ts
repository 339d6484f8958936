/**
 * COPY: CopyData and CopyDone in both directions, CopyFail from the client, and the
 * server's CopyInResponse / CopyOutResponse / CopyBothResponse.
 */
import { MessageCode } from '../codes.js';
import { Reader, malformed } from '../reader.js';
import { Writer } from '../writer.js';

/** Views of the frame (no copy). */
export interface CopyDataMessage { type: 'CopyData'; data: Buffer }
export interface CopyDoneMessage { type: 'CopyDone' }
export interface CopyFailMessage { type: 'CopyFail'; message: string }

export type CopyResponseType = 'CopyInResponse' | 'CopyOutResponse' | 'CopyBothResponse';
export interface CopyResponseMessage {
  type: CopyResponseType;
  /** 0 text, 1 binary, for the whole copy. */
  format: number;
  columnFormats: number[];
}

const RESPONSE_CODE: Record<CopyResponseType, number> = {
  CopyInResponse: MessageCode.CopyInResponse,
  CopyOutResponse: MessageCode.CopyOutResponse,
  CopyBothResponse: MessageCode.CopyBothResponse,
};

export function decodeCopyData(payload: Buffer): CopyDataMessage {
  return { type: 'CopyData', data: payload };
}

export function encodeCopyData(data: Buffer): Buffer {
  return new Writer(MessageCode.CopyData, data.length + 5).bytes(data).finish();
}

export function encodeCopyDone(): Buffer {
  return new Writer(MessageCode.CopyDone, 5).finish();
}

export function decodeCopyFail(payload: Buffer): CopyFailMessage {
  const r = new Reader(payload, 'CopyFail');
  const message = r.cstring();
  r.end();
  return { type: 'CopyFail', message };
}

export function encodeCopyFail(message: string): Buffer {
  return new Writer(MessageCode.CopyFail).cstring(message).finish();
}

export function decodeCopyResponse(type: CopyResponseType, payload: Buffer): CopyResponseMessage {
  const r = new Reader(payload, type);
  const format = r.uint8();
  const n = r.count16();
  const columnFormats = new Array<number>(n);
  for (let i = 0; i < n; i++) columnFormats[i] = r.int16();
  r.end();
  if (format > 1) throw malformed(`${type}: unknown format ${format}`);
  return { type, format, columnFormats };
}

export function encodeCopyResponse(type: CopyResponseType, format: number, columnFormats: readonly number[]): Buffer {
  return new Writer(RESPONSE_CODE[type]).uint8(format).int16Array(columnFormats).finish();
}

export const encodeCopyInResponse = (format: number, columnFormats: readonly number[]): Buffer => encodeCopyResponse('CopyInResponse', format, columnFormats);
export const encodeCopyOutResponse = (format: number, columnFormats: readonly number[]): Buffer => encodeCopyResponse('CopyOutResponse', format, columnFormats);
export const encodeCopyBothResponse = (format: number, columnFormats: readonly number[]): Buffer => encodeCopyResponse('CopyBothResponse', format, columnFormats);
