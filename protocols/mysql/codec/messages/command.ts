/**
 * Command phase requests (client → server): the first payload byte names the command
 * (codes.ts Command), the rest is its body. Decoded only as far as airlock needs:
 * statement text for policy, statement ids and thread ids for bookkeeping.
 */
import { Command } from '../codes.js';
import { Reader } from '../reader.js';
import { Writer } from '../writer.js';

export type ClientCommand =
  | { type: 'COM_QUIT' }
  | { type: 'COM_PING' }
  | { type: 'COM_STATISTICS' }
  | { type: 'COM_RESET_CONNECTION' }
  | { type: 'COM_CHANGE_USER' }
  | { type: 'COM_INIT_DB'; schema: string }
  | { type: 'COM_QUERY'; sql: string }
  | { type: 'COM_FIELD_LIST'; table: string; wildcard: string }
  | { type: 'COM_STMT_PREPARE'; sql: string }
  | { type: 'COM_STMT_EXECUTE'; statementId: number; flags: number }
  | { type: 'COM_STMT_FETCH'; statementId: number; rows: number }
  | { type: 'COM_STMT_CLOSE'; statementId: number }
  | { type: 'COM_STMT_RESET'; statementId: number }
  | { type: 'COM_STMT_SEND_LONG_DATA'; statementId: number; paramId: number }
  | { type: 'COM_PROCESS_KILL'; connectionId: number }
  | { type: 'COM_SET_OPTION'; option: number }
  | { type: 'COM_DEBUG' }
  | { type: 'other'; code: number };

export function decodeCommand(payload: Buffer): ClientCommand {
  const r = new Reader(payload, 'command');
  const code = r.uint8();
  switch (code) {
    case Command.COM_QUIT:
      return { type: 'COM_QUIT' };
    case Command.COM_PING:
      return { type: 'COM_PING' };
    case Command.COM_STATISTICS:
      return { type: 'COM_STATISTICS' };
    case Command.COM_RESET_CONNECTION:
      return { type: 'COM_RESET_CONNECTION' };
    case Command.COM_CHANGE_USER:
      return { type: 'COM_CHANGE_USER' };
    case Command.COM_DEBUG:
      return { type: 'COM_DEBUG' };
    case Command.COM_INIT_DB:
      return { type: 'COM_INIT_DB', schema: r.restString() };
    case Command.COM_QUERY:
      return { type: 'COM_QUERY', sql: r.restString() };
    case Command.COM_STMT_PREPARE:
      return { type: 'COM_STMT_PREPARE', sql: r.restString() };
    case Command.COM_FIELD_LIST: {
      const table = r.cbytesOrRest().toString('utf8');
      return { type: 'COM_FIELD_LIST', table, wildcard: r.restString() };
    }
    case Command.COM_STMT_EXECUTE: {
      const statementId = r.uint32();
      return { type: 'COM_STMT_EXECUTE', statementId, flags: r.uint8() };
    }
    case Command.COM_STMT_FETCH: {
      const statementId = r.uint32();
      return { type: 'COM_STMT_FETCH', statementId, rows: r.uint32() };
    }
    case Command.COM_STMT_CLOSE:
      return { type: 'COM_STMT_CLOSE', statementId: r.uint32() };
    case Command.COM_STMT_RESET:
      return { type: 'COM_STMT_RESET', statementId: r.uint32() };
    case Command.COM_STMT_SEND_LONG_DATA: {
      const statementId = r.uint32();
      return { type: 'COM_STMT_SEND_LONG_DATA', statementId, paramId: r.uint16() };
    }
    case Command.COM_PROCESS_KILL:
      return { type: 'COM_PROCESS_KILL', connectionId: r.uint32() };
    case Command.COM_SET_OPTION:
      return { type: 'COM_SET_OPTION', option: r.uint16() };
    default:
      return { type: 'other', code };
  }
}

export function encodeQuery(sql: string): Buffer {
  return new Writer(sql.length + 1).uint8(Command.COM_QUERY).string(sql).finish();
}

export function encodeStmtPrepare(sql: string): Buffer {
  return new Writer(sql.length + 1).uint8(Command.COM_STMT_PREPARE).string(sql).finish();
}

export function encodeInitDb(schema: string): Buffer {
  return new Writer(schema.length + 1).uint8(Command.COM_INIT_DB).string(schema).finish();
}

export function encodeSimpleCommand(code: number): Buffer {
  return Buffer.from([code]);
}

export function encodeStmtClose(statementId: number): Buffer {
  return new Writer(5).uint8(Command.COM_STMT_CLOSE).uint32(statementId).finish();
}

export function encodeProcessKill(connectionId: number): Buffer {
  return new Writer(5).uint8(Command.COM_PROCESS_KILL).uint32(connectionId).finish();
}
