/**
 * ErrorResponse and NoticeResponse: a list of (field code, string) pairs ended by a zero byte.
 * (protocol-error-fields)
 */
import { ErrorField, MessageCode, type ErrorFieldName } from '../codes.js';
import { Reader, malformed } from '../reader.js';
import { Writer } from '../writer.js';

/** The fields by the names of codes.ts ErrorField; severity, code (SQLSTATE) and message are always present. */
export type ErrorFields = { severity: string; code: string; message: string } & Partial<Record<Exclude<ErrorFieldName, 'severity' | 'code' | 'message'>, string>>;

export interface ErrorResponseMessage { type: 'ErrorResponse'; fields: ErrorFields }
export interface NoticeResponseMessage { type: 'NoticeResponse'; fields: ErrorFields }

const FIELD_ORDER = Object.keys(ErrorField) as ErrorFieldName[];
const NAME_BY_CODE = new Map<number, ErrorFieldName>(FIELD_ORDER.map((name) => [ErrorField[name], name]));

function encodeFields(type: number, f: ErrorFields): Buffer {
  // Severity goes twice: localised ('S') and, for clients that parse it, non-localised ('V').
  const all: ErrorFields = { ...f, severityNonLocalized: f.severityNonLocalized ?? f.severity };
  const w = new Writer(type, 128);
  for (const name of FIELD_ORDER) {
    const v = all[name];
    if (v !== undefined) w.uint8(ErrorField[name]).cstring(v);
  }
  return w.uint8(0).finish();
}

function decodeFields(payload: Buffer, what: string): ErrorFields {
  const r = new Reader(payload, what);
  const out: Partial<Record<ErrorFieldName, string>> = {};
  for (let code = r.uint8(); code !== 0; code = r.uint8()) {
    const value = r.cstring();
    const name = NAME_BY_CODE.get(code);
    // The spec asks frontends to ignore field types they do not know.
    if (name !== undefined) out[name] = value;
  }
  r.end();
  const { severity, code, message } = out;
  if (severity === undefined || code === undefined || message === undefined) throw malformed(`${what}: severity, code or message missing`);
  return { ...out, severity, code, message };
}

export function encodeErrorResponse(fields: ErrorFields): Buffer {
  return encodeFields(MessageCode.ErrorResponse, fields);
}

export function encodeNoticeResponse(fields: ErrorFields): Buffer {
  return encodeFields(MessageCode.NoticeResponse, fields);
}

export function decodeErrorResponse(payload: Buffer): ErrorResponseMessage {
  return { type: 'ErrorResponse', fields: decodeFields(payload, 'ErrorResponse') };
}

export function decodeNoticeResponse(payload: Buffer): NoticeResponseMessage {
  return { type: 'NoticeResponse', fields: decodeFields(payload, 'NoticeResponse') };
}
