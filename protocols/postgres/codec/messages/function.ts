/** The legacy fast-path function call: FunctionCall from the client, FunctionCallResponse from the server. */
import { MessageCode } from '../codes.js';
import { Reader } from '../reader.js';
import { Writer } from '../writer.js';

export interface FunctionCallMessage {
  type: 'FunctionCall';
  oid: number;
  argFormats: number[];
  /** Views of the frame (no copy); null is SQL NULL. */
  args: (Buffer | null)[];
  resultFormat: number;
}
export interface FunctionCallResponseMessage { type: 'FunctionCallResponse'; result: Buffer | null }

export function decodeFunctionCall(payload: Buffer): FunctionCallMessage {
  const r = new Reader(payload, 'FunctionCall');
  const oid = r.uint32();
  const nf = r.count16();
  const argFormats = new Array<number>(nf);
  for (let i = 0; i < nf; i++) argFormats[i] = r.int16();
  const na = r.count16();
  const args = new Array<Buffer | null>(na);
  for (let i = 0; i < na; i++) args[i] = r.nullableBytes();
  const resultFormat = r.int16();
  r.end();
  return { type: 'FunctionCall', oid, argFormats, args, resultFormat };
}

export function encodeFunctionCall(m: Omit<FunctionCallMessage, 'type'>): Buffer {
  const w = new Writer(MessageCode.FunctionCall).int32(m.oid).int16Array(m.argFormats).int16(m.args.length);
  for (const a of m.args) w.nullableBytes(a);
  return w.int16(m.resultFormat).finish();
}

export function decodeFunctionCallResponse(payload: Buffer): FunctionCallResponseMessage {
  const r = new Reader(payload, 'FunctionCallResponse');
  const result = r.nullableBytes();
  r.end();
  return { type: 'FunctionCallResponse', result };
}

export function encodeFunctionCallResponse(result: Buffer | null): Buffer {
  return new Writer(MessageCode.FunctionCallResponse).nullableBytes(result).finish();
}
