/**
 * The simple query and the result messages it shares with the extended protocol:
 * Query; RowDescription, DataRow, CommandComplete, EmptyQueryResponse.
 */
import { MessageCode } from '../codes.js';
import { Reader } from '../reader.js';
import { Writer } from '../writer.js';

export interface QueryMessage { type: 'Query'; sql: string }

export interface FieldDescription {
  name: string;
  /** OID of the table the column comes straight from, else 0. */
  tableOid: number;
  /** Attribute number of that column, else 0. */
  columnAttr: number;
  typeOid: number;
  typeSize: number;
  typeModifier: number;
  /** 0 text, 1 binary. */
  format: number;
}

export interface RowDescriptionMessage { type: 'RowDescription'; fields: FieldDescription[] }
/** Cells are views of the frame (no copy); null is SQL NULL. */
export interface DataRowMessage { type: 'DataRow'; cells: (Buffer | null)[] }
export interface CommandCompleteMessage { type: 'CommandComplete'; tag: string }
export interface EmptyQueryResponseMessage { type: 'EmptyQueryResponse' }

export function decodeQuery(payload: Buffer): QueryMessage {
  const r = new Reader(payload, 'Query');
  const sql = r.cstring();
  r.end();
  return { type: 'Query', sql };
}

export function encodeQuery(sql: string): Buffer {
  return new Writer(MessageCode.Query, Buffer.byteLength(sql) + 6).cstring(sql).finish();
}

export function decodeRowDescription(payload: Buffer): RowDescriptionMessage {
  const r = new Reader(payload, 'RowDescription');
  const n = r.count16();
  const fields: FieldDescription[] = new Array<FieldDescription>(n);
  for (let i = 0; i < n; i++) {
    fields[i] = {
      name: r.cstring(),
      tableOid: r.uint32(),
      columnAttr: r.int16(),
      typeOid: r.uint32(),
      typeSize: r.int16(),
      typeModifier: r.int32(),
      format: r.int16(),
    };
  }
  r.end();
  return { type: 'RowDescription', fields };
}

export function encodeRowDescription(fields: readonly FieldDescription[]): Buffer {
  const w = new Writer(MessageCode.RowDescription, 8 + fields.length * 32).int16(fields.length);
  for (const f of fields) {
    w.cstring(f.name).int32(f.tableOid).int16(f.columnAttr).int32(f.typeOid).int16(f.typeSize).int32(f.typeModifier).int16(f.format);
  }
  return w.finish();
}

export function decodeDataRow(payload: Buffer): DataRowMessage {
  const r = new Reader(payload, 'DataRow');
  const n = r.count16();
  const cells: (Buffer | null)[] = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) cells[i] = r.nullableBytes();
  r.end();
  return { type: 'DataRow', cells };
}

/** Text cells are written as UTF-8; a Buffer is written as it is (text or binary format). */
export function encodeDataRow(cells: readonly (string | Buffer | null)[]): Buffer {
  let size = 7;
  for (const c of cells) size += 4 + (c === null ? 0 : typeof c === 'string' ? Buffer.byteLength(c) : c.length);
  const w = new Writer(MessageCode.DataRow, size).int16(cells.length);
  for (const c of cells) w.nullableBytes(typeof c === 'string' ? Buffer.from(c) : c);
  return w.finish();
}

export function decodeCommandComplete(payload: Buffer): CommandCompleteMessage {
  const r = new Reader(payload, 'CommandComplete');
  const tag = r.cstring();
  r.end();
  return { type: 'CommandComplete', tag };
}

export function encodeCommandComplete(tag: string): Buffer {
  return new Writer(MessageCode.CommandComplete, 32).cstring(tag).finish();
}

export function encodeEmptyQueryResponse(): Buffer {
  return new Writer(MessageCode.EmptyQueryResponse, 5).finish();
}
