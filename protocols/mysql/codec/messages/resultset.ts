/**
 * Result set packets: the column count, Protocol::ColumnDefinition41, text rows
 * (ProtocolText::ResultsetRow) and binary rows (ProtocolBinary::ResultsetRow), and the
 * COM_STMT_PREPARE_OK that opens a prepared statement's metadata.
 */
import { ColumnType } from '../codes.js';
import { Reader, malformed } from '../reader.js';
import { Writer } from '../writer.js';

export interface ColumnDefinition {
  catalog: string;
  /** The database the column's table lives in ("" for computed columns). */
  schema: string;
  /** The table as named in the query (an alias, possibly). */
  table: string;
  /** The table's real name ("" for computed columns). */
  orgTable: string;
  name: string;
  /** The column's real name ("" for computed columns). */
  orgName: string;
  characterSet: number;
  columnLength: number;
  columnType: number;
  flags: number;
  decimals: number;
  /**
   * MariaDB extended metadata (present when EXTENDED_METADATA was negotiated and the server
   * sent it): the type's name (`uuid`, `inet6`, `point` …) and its format (`json`).
   */
  extendedTypeName?: string;
  extendedFormat?: string;
}

export function decodeColumnCount(payload: Buffer): number {
  const r = new Reader(payload, 'column count');
  const n = r.lenenc();
  // MySQL caps a result at 4096 columns; MariaDB likewise. Anything more is not a real count.
  if (n === 0 || n > 4096) throw malformed(`column count ${n}`);
  return n;
}

export function encodeColumnCount(n: number): Buffer {
  return new Writer(9).lenenc(n).finish();
}

/** Keys of the extended metadata block (MariaDB "Result Set Packets": Column Definition Packet). */
const EXTENDED_TYPE_NAME = 0;
const EXTENDED_FORMAT = 1;

/** `extendedMetadata`: MariadbCapability.EXTENDED_METADATA is in force, so a block follows org_name. */
export function decodeColumnDefinition(payload: Buffer, extendedMetadata = false): ColumnDefinition {
  const r = new Reader(payload, 'ColumnDefinition41');
  const catalog = r.lenencString();
  const schema = r.lenencString();
  const table = r.lenencString();
  const orgTable = r.lenencString();
  const name = r.lenencString();
  const orgName = r.lenencString();
  const extended: Pick<ColumnDefinition, 'extendedTypeName' | 'extendedFormat'> = {};
  if (extendedMetadata) {
    const block = new Reader(r.lenencBytes(), 'ColumnDefinition41 extended metadata');
    while (block.remaining > 0) {
      const key = block.uint8();
      const value = block.lenencString();
      if (key === EXTENDED_TYPE_NAME) extended.extendedTypeName = value;
      else if (key === EXTENDED_FORMAT) extended.extendedFormat = value;
    }
  }
  const fixed = r.lenenc();
  // Always 0x0c: anything else is a packet read with the wrong layout (an extended metadata block not expected, or missing).
  if (fixed !== 0x0c) throw malformed(`ColumnDefinition41: fixed-length fields of length ${fixed}`);
  const characterSet = r.uint16();
  const columnLength = r.uint32();
  const columnType = r.uint8();
  const flags = r.uint16();
  const decimals = r.uint8();
  return { catalog, schema, table, orgTable, name, orgName, ...extended, characterSet, columnLength, columnType, flags, decimals };
}

export function encodeColumnDefinition(c: ColumnDefinition, extendedMetadata = false): Buffer {
  const w = new Writer(64)
    .lenencString(c.catalog)
    .lenencString(c.schema)
    .lenencString(c.table)
    .lenencString(c.orgTable)
    .lenencString(c.name)
    .lenencString(c.orgName);
  if (extendedMetadata) {
    const block = new Writer(16);
    if (c.extendedTypeName !== undefined) block.uint8(EXTENDED_TYPE_NAME).lenencString(c.extendedTypeName);
    if (c.extendedFormat !== undefined) block.uint8(EXTENDED_FORMAT).lenencString(c.extendedFormat);
    w.lenencBytes(block.finish());
  }
  return w
    .lenenc(0x0c)
    .uint16(c.characterSet)
    .uint32(c.columnLength)
    .uint8(c.columnType)
    .uint16(c.flags)
    .uint8(c.decimals)
    .uint16(0)
    .finish();
}

/** A text row's cells: the bytes of each value (views), null for SQL NULL (0xfb). */
export function decodeTextRow(payload: Buffer, columns: number): Array<Buffer | null> {
  const r = new Reader(payload, 'text row');
  const cells: Array<Buffer | null> = new Array(columns);
  for (let i = 0; i < columns; i++) {
    if (r.peek() === 0xfb) {
      r.skip(1);
      cells[i] = null;
    } else cells[i] = r.lenencBytes();
  }
  r.end();
  return cells;
}

export function encodeTextRow(cells: ReadonlyArray<Buffer | null>): Buffer {
  const w = new Writer(64);
  for (const c of cells) {
    if (c === null) w.uint8(0xfb);
    else w.lenencBytes(c);
  }
  return w.finish();
}

/** Bytes of a fixed-width binary value, or -1 for the length-prefixed forms. */
function binaryWidth(type: number): number {
  switch (type) {
    case ColumnType.NULL:
      return 0;
    case ColumnType.TINY:
      return 1;
    case ColumnType.SHORT:
    case ColumnType.YEAR:
      return 2;
    case ColumnType.LONG:
    case ColumnType.INT24:
    case ColumnType.FLOAT:
      return 4;
    case ColumnType.LONGLONG:
    case ColumnType.DOUBLE:
      return 8;
    default:
      return -1;
  }
}

/** DATE, DATETIME, TIMESTAMP and TIME carry a one-byte length, then that many bytes. */
function isTemporal(type: number): boolean {
  return type === ColumnType.DATE || type === ColumnType.DATETIME || type === ColumnType.TIMESTAMP || type === ColumnType.TIME
    || type === ColumnType.NEWDATE || type === ColumnType.TIMESTAMP2 || type === ColumnType.DATETIME2 || type === ColumnType.TIME2;
}

/**
 * A binary row's cells (views): a fixed-width value's bytes, a temporal value's bytes
 * without its length byte, a string's bytes without its length; null for SQL NULL.
 */
export function decodeBinaryRow(payload: Buffer, types: readonly number[]): Array<Buffer | null> {
  const r = new Reader(payload, 'binary row');
  if (r.uint8() !== 0x00) throw malformed('binary row: header');
  const n = types.length;
  const bitmap = r.bytes((n + 7 + 2) >> 3);
  const cells: Array<Buffer | null> = new Array(n);
  for (let i = 0; i < n; i++) {
    const bit = i + 2;
    if (((bitmap[bit >> 3] as number) & (1 << (bit & 7))) !== 0) {
      cells[i] = null;
      continue;
    }
    const type = types[i] as number;
    const width = binaryWidth(type);
    if (width >= 0) cells[i] = r.bytes(width);
    else if (isTemporal(type)) cells[i] = r.bytes(r.uint8());
    else cells[i] = r.lenencBytes();
  }
  r.end();
  return cells;
}

export function encodeBinaryRow(cells: ReadonlyArray<Buffer | null>, types: readonly number[]): Buffer {
  const n = types.length;
  const bitmap = Buffer.alloc((n + 7 + 2) >> 3);
  const w = new Writer(64).uint8(0x00);
  const body = new Writer(64);
  for (let i = 0; i < n; i++) {
    const c = cells[i] ?? null;
    const type = types[i] as number;
    if (c === null) {
      const bit = i + 2;
      bitmap[bit >> 3] = (bitmap[bit >> 3] as number) | (1 << (bit & 7));
      continue;
    }
    const width = binaryWidth(type);
    if (width >= 0) {
      if (c.length !== width) throw new Error(`a binary value of type ${type} is ${width} bytes`);
      body.bytes(c);
    } else if (isTemporal(type)) {
      if (c.length > 255) throw new Error('temporal value too long');
      body.uint8(c.length).bytes(c);
    } else body.lenencBytes(c);
  }
  return w.bytes(bitmap).bytes(body.finish()).finish();
}

export interface StmtPrepareOk {
  type: 'COM_STMT_PREPARE_OK';
  statementId: number;
  columns: number;
  params: number;
  warnings: number;
}

export function decodeStmtPrepareOk(payload: Buffer): StmtPrepareOk {
  const r = new Reader(payload, 'COM_STMT_PREPARE_OK');
  if (r.uint8() !== 0x00) throw malformed('COM_STMT_PREPARE_OK: header');
  const statementId = r.uint32();
  const columns = r.uint16();
  const params = r.uint16();
  let warnings = 0;
  if (r.remaining >= 3) {
    r.skip(1);
    warnings = r.uint16();
  }
  return { type: 'COM_STMT_PREPARE_OK', statementId, columns, params, warnings };
}

export function encodeStmtPrepareOk(m: Omit<StmtPrepareOk, 'type'>): Buffer {
  return new Writer(12).uint8(0).uint32(m.statementId).uint16(m.columns).uint16(m.params).uint8(0).uint16(m.warnings).finish();
}
