/**
 * Following the server's answer to one command, packet by packet (MySQL "Client/Server
 * Protocol": COM_QUERY Response, Binary Protocol Resultset, COM_STMT_PREPARE Response):
 * where it ends (the relay takes the next command only then), which result set and
 * statement a row belongs to (for masking), what to record, and the server's LOCAL INFILE
 * request: relayed only for the file an allowed LOAD DATA LOCAL statement names, else refused. Packets that need nothing are handed on as the bytes that arrived.
 */
import { createHash, type Hash } from 'node:crypto';
import type { LocalInfileSummary, Session, SessionEvent } from '../../src/core/session-types.js';
import { AirlockError } from '../../src/util/errors.js';
import type { StatementAnalysis } from '../../parsers/sql/types.js';
import { framePacket, packetCount, renumber, type Packet } from './codec/framing.js';
import { Capability, ColumnType, Command, ErrorNumber, PacketHeader, ServerStatus, commandName } from './codec/codes.js';
import { decodeEof, decodeErr, decodeOk, encodeErr, isEof } from './codec/messages/generic.js';
import { decodeBinaryRow, decodeColumnCount, decodeColumnDefinition, decodeStmtPrepareOk, decodeTextRow, type ColumnDefinition } from './codec/messages/resultset.js';
import type { MysqlErrorFields } from './errors.js';
import type { ResultMasker, RowPlan } from './result-masking.js';

/** What a prepared statement is known as, by the server's statement id. */
export interface Prepared {
  statement: StatementAnalysis | null;
  /** Each execution asks again (per_execution approval); the first one is covered. */
  perExecution: { statements: StatementAnalysis[]; credit: number } | null;
  /** Columns of the cursor opened by the last execute (for COM_STMT_FETCH). */
  cursor: { columns: ColumnDefinition[]; plan: RowPlan } | null;
}

export type Phase =
  | 'first' // start of a (next) result: OK, ERR, LOCAL INFILE or a column count
  | 'columns'
  | 'columnsEof'
  | 'rows'
  | 'prepare'
  | 'prepareTail'
  | 'fieldList'
  | 'single'
  | 'discard'
  | 'infile'; // the client is sending the file the server asked for: nothing may come from the server

/** A LOAD DATA LOCAL file on its way from the client to the server. */
export interface Infile {
  file: string;
  bytes: number;
  hash: Hash;
}

export interface Response {
  command: number;
  phase: Phase;
  binary: boolean;
  statements: StatementAnalysis[];
  index: number;
  columnsLeft: number;
  columns: ColumnDefinition[];
  plan: RowPlan;
  /** Prepared statement this answer belongs to (execute, fetch, prepare). */
  prepared: Prepared | null;
  /** Prepare: packets of parameter and column metadata still to come. */
  tailLeft: number;
  /** Shift applied to sequence ids after a rewritten packet changed the packet count. */
  seqShift: number;
  /** The client's answer after an airlock-refused LOCAL INFILE request. */
  refusal: { error: MysqlErrorFields; seq: number } | null;
  /** The LOCAL INFILE file of the current result, once the server asked for it. */
  infile: Infile | null;
  /** Called on each OK of the answer, with its status flags (MORE_RESULTS_EXISTS: not the last). */
  onOk: ((statusFlags: number) => void) | null;
  started: number;
  rows: number;
  bytes: number;
  data: string[][];
  dataBytes: number;
  truncated: boolean;
  done: () => void;
}

export interface ResponseOptions {
  phase?: Phase;
  binary?: boolean;
  statements?: StatementAnalysis[];
  prepared?: Prepared | null;
  onOk?: ((statusFlags: number) => void) | null;
  /** COM_STMT_FETCH: the rows of the cursor the prepared statement's last execute opened. */
  fetch?: boolean;
}

export function newResponse(command: number, o: ResponseOptions, masking: boolean, done: () => void): Response {
  const prepared = o.prepared ?? null;
  const cursor = o.fetch === true ? (prepared?.cursor ?? null) : null;
  return {
    command,
    phase: o.phase ?? 'first',
    binary: o.binary ?? false,
    statements: o.statements ?? [],
    index: 0,
    columnsLeft: 0,
    columns: cursor?.columns ?? [],
    // A fetch on a cursor whose columns were never seen cannot be judged: an empty plan refuses its rows.
    plan: cursor !== null ? cursor.plan : o.fetch === true && masking ? [] : null,
    prepared,
    tailLeft: 0,
    seqShift: 0,
    refusal: null,
    infile: null,
    onOk: o.onOk ?? null,
    started: Date.now(),
    rows: 0,
    bytes: 0,
    data: [],
    dataBytes: 0,
    truncated: false,
    done,
  };
}

/** What the follower needs of the relay. */
export interface FollowerHost {
  readonly session: Session;
  /** Capabilities in force on both legs (OK packet layout). */
  readonly capabilities: number;
  /** MariaDB extended metadata is in force: column definitions carry its block. */
  readonly extendedMetadata?: boolean;
  readonly masker: ResultMasker | null;
  readonly recordRows: boolean;
  readonly prepared: Map<number, Prepared>;
  /** Queues bytes for the client. */
  out(bytes: Buffer): void;
  toUpstream(bytes: Buffer): void;
  /** The answer is complete. */
  finished(r: Response): void;
  /**
   * The server's LOCAL INFILE request went to the client: the client's next packets, from
   * sequence id `clientSeq`, are the file, each renumbered by `-shift` for the server.
   */
  startInfile(r: Response, clientSeq: number, shift: number): void;
}

/** A binary-protocol value as the text the text protocol would have sent (for the audit record). */
function binaryText(v: Buffer | null, type: number): string | null {
  if (v === null) return null;
  switch (type) {
    case ColumnType.TINY:
      return String(v.readInt8(0));
    case ColumnType.SHORT:
    case ColumnType.YEAR:
      return String(v.readInt16LE(0));
    case ColumnType.LONG:
    case ColumnType.INT24:
      return String(v.readInt32LE(0));
    case ColumnType.LONGLONG:
      return String(v.readBigInt64LE(0));
    case ColumnType.FLOAT:
      return String(v.readFloatLE(0));
    case ColumnType.DOUBLE:
      return String(v.readDoubleLE(0));
    case ColumnType.DATE:
    case ColumnType.DATETIME:
    case ColumnType.TIMESTAMP:
    case ColumnType.TIME:
      return `0x${v.toString('hex')}`;
    default:
      return v.toString('utf8');
  }
}

const RECORD_ROWS_MAX = 1000;
const RECORD_ROWS_MAX_BYTES = 1024 * 1024;

export class ResponseFollower {
  constructor(private readonly host: FollowerHost) {}

  /** Queues a packet for the client: as it arrived, renumbered, or replaced. */
  private emit(r: Response, p: Packet, payload: Buffer | null): void {
    let bytes: Buffer;
    if (payload === null) {
      bytes = r.seqShift === 0 ? p.raw : renumber(p.raw, p.seq + r.seqShift);
    } else {
      const seq = p.seq + r.seqShift;
      bytes = framePacket(payload, seq);
      r.seqShift += packetCount(payload.length) - (((p.lastSeq - p.seq) & 0xff) + 1);
    }
    r.bytes += bytes.length;
    this.host.out(bytes);
  }

  /** One packet of the answer to the command in flight. */
  packet(r: Response, p: Packet): void {
    const h = p.payload[0];
    switch (r.phase) {
      case 'single':
        if (h === PacketHeader.OK) {
          const status = decodeOk(p.payload, this.host.capabilities).statusFlags;
          r.onOk?.(status);
          // COM_RESET_CONNECTION puts sql_mode back to the server's default: read the text
          // that follows as the server will (a stale NO_BACKSLASH_ESCAPES would hide a statement).
          this.followStatus(status);
        }
        if (h === PacketHeader.ERR) return this.finish(r, p, 'error');
        this.emit(r, p, null);
        return this.finish(r, p, 'ok');
      case 'discard':
        return this.discard(r, p);
      case 'first':
        if (h === PacketHeader.OK) {
          const ok = decodeOk(p.payload, this.host.capabilities);
          r.onOk?.(ok.statusFlags);
          this.emit(r, p, null);
          return this.endOfResult(r, ok.statusFlags, Number(ok.affectedRows));
        }
        if (h === PacketHeader.ERR) return this.finish(r, p, 'error');
        if (h === PacketHeader.LOCAL_INFILE) return this.localInfile(r, p);
        r.columnsLeft = decodeColumnCount(p.payload);
        r.columns = [];
        r.phase = 'columns';
        this.emit(r, p, null);
        return;
      case 'columns':
        if (h === PacketHeader.ERR) return this.finish(r, p, 'error');
        if (this.host.masker !== null || this.host.recordRows) r.columns.push(decodeColumnDefinition(p.payload, this.host.extendedMetadata === true));
        this.emit(r, p, null);
        if (--r.columnsLeft === 0) {
          r.phase = 'columnsEof';
          if (this.host.masker !== null) r.plan = this.host.masker.plan(r.columns, r.statements[r.index] ?? null);
        }
        return;
      case 'columnsEof': {
        if (!isEof(p.payload)) throw new AirlockError('AIRLOCK_PROTOCOL', 'expected EOF after the column definitions', { fatal: true });
        this.emit(r, p, null);
        const status = decodeEof(p.payload).statusFlags;
        if (r.binary && r.prepared !== null) r.prepared.cursor = { columns: r.columns, plan: r.plan };
        // An execute that opened a cursor ends here: the rows come with COM_STMT_FETCH.
        if (r.binary && (status & ServerStatus.CURSOR_EXISTS) !== 0) return this.finish(r, p, 'cursor');
        r.phase = 'rows';
        return;
      }
      case 'rows':
        if (h === PacketHeader.ERR) return this.finish(r, p, 'error');
        if (isEof(p.payload)) {
          this.emit(r, p, null);
          return this.endOfResult(r, decodeEof(p.payload).statusFlags, r.rows);
        }
        return this.row(r, p);
      case 'prepare': {
        if (h === PacketHeader.ERR) return this.finish(r, p, 'error');
        const ok = decodeStmtPrepareOk(p.payload);
        if (r.prepared !== null) this.host.prepared.set(ok.statementId, r.prepared);
        const paramPackets = ok.params > 0 ? ok.params + 1 : 0;
        r.tailLeft = paramPackets + (ok.columns > 0 ? ok.columns + 1 : 0);
        this.emit(r, p, null);
        if (r.tailLeft === 0) return this.finish(r, p, 'ok');
        r.phase = 'prepareTail';
        return;
      }
      case 'prepareTail':
        this.emit(r, p, null);
        if (--r.tailLeft === 0) return this.finish(r, p, 'ok');
        return;
      case 'infile':
        throw new AirlockError('AIRLOCK_PROTOCOL', 'the upstream answered while the client was still sending its LOCAL INFILE file', { fatal: true });
      case 'fieldList':
        if (h === PacketHeader.ERR) return this.finish(r, p, 'error');
        this.emit(r, p, null);
        if (isEof(p.payload)) return this.finish(r, p, 'ok');
        return;
      default:
        return;
    }
  }

  private row(r: Response, p: Packet): void {
    r.rows++;
    const plan = r.plan;
    // An empty plan: a fetch on a cursor whose columns airlock never saw; nothing can be judged.
    if (plan !== null && plan.length === 0) throw new AirlockError('AIRLOCK_PROTOCOL', 'rows for a cursor whose columns airlock has not seen', { fatal: true });
    const payload = plan !== null && this.host.masker !== null ? this.host.masker.row(p.payload, plan, r.binary) : null;
    this.emit(r, p, payload);
    if (this.host.recordRows) {
      // What the client received (masked), as text, capped.
      // (A fetch on a cursor whose columns were not seen cannot be read: noted as truncated.)
      if (r.dataBytes < RECORD_ROWS_MAX_BYTES && r.data.length < RECORD_ROWS_MAX && r.columns.length > 0) {
        const sent = payload ?? p.payload;
        const types = r.columns.map((c) => c.columnType);
        const cells = r.binary ? decodeBinaryRow(sent, types).map((c, i) => binaryText(c, types[i] ?? 0)) : decodeTextRow(sent, r.columns.length).map((c) => (c === null ? null : c.toString('utf8')));
        r.data.push(cells as string[]);
        r.dataBytes += sent.length;
      } else r.truncated = true;
    }
  }

  /** The end of one result (OK or EOF after rows): record it, then the next result or the end. */
  private endOfResult(r: Response, status: number, rows: number): void {
    this.followStatus(status);
    this.record(r, rows, undefined);
    if ((status & ServerStatus.MORE_RESULTS_EXISTS) !== 0) {
      r.index++;
      r.rows = 0;
      r.phase = 'first';
      r.plan = null;
      r.columns = [];
      return;
    }
    this.done(r);
  }

  /** Under NO_BACKSLASH_ESCAPES a backslash in a string is a character, as with standard_conforming_strings. */
  private followStatus(status: number): void {
    const noBackslash = (status & ServerStatus.NO_BACKSLASH_ESCAPES) !== 0;
    if (noBackslash !== this.host.session.sqlSettings.standardConformingStrings) this.host.session.setParameter('standard_conforming_strings', noBackslash ? 'on' : 'off');
  }

  /** The statement an answer belongs to: null when not known, undefined for a command that is no statement. */
  private statementOf(r: Response): StatementAnalysis | null | undefined {
    if (r.command !== Command.COM_QUERY && r.command !== Command.COM_STMT_PREPARE && r.command !== Command.COM_STMT_EXECUTE && r.command !== Command.COM_STMT_BULK_EXECUTE && r.command !== Command.COM_STMT_FETCH) return undefined;
    return r.statements[r.index] ?? r.prepared?.statement ?? null;
  }

  private record(r: Response, rows: number, errorCode: string | undefined): void {
    this.host.masker?.statementEnded(this.statementOf(r));
    const st = r.statements[r.index];
    const command = st !== undefined ? (st.kinds[0] ?? 'other').toUpperCase() : commandName(r.command);
    const masked = this.host.masker?.maskedColumns(r.plan) ?? [];
    // The optional fields are set one by one, in this order (no object spread per statement).
    const event: Extract<SessionEvent, { type: 'result' }> = { type: 'result', command, rows, bytes: r.bytes, durationMs: Date.now() - r.started };
    if (errorCode !== undefined) event.errorCode = errorCode;
    if (masked.length > 0) event.maskedColumns = masked;
    if (this.host.recordRows) {
      event.data = r.data;
      event.truncated = r.truncated;
    }
    if (r.infile !== null) event.localInfile = infileSummary(r.infile, true);
    this.host.session.record(event);
    r.infile = null;
    r.bytes = 0;
    r.data = [];
    r.dataBytes = 0;
    r.truncated = false;
    r.started = Date.now();
  }

  /** A response's last packet: an ERR (scrubbed), or the packet that completes it. */
  private finish(r: Response, p: Packet, how: 'ok' | 'error' | 'cursor'): void {
    if (how === 'error') {
      const err = decodeErr(p.payload);
      const scrubbed = this.host.masker?.scrubError(err, this.statementOf(r)) ?? null;
      this.emit(r, p, scrubbed === null ? null : encodeErr(scrubbed));
      this.record(r, r.rows, err.sqlState);
    } else if (r.command !== Command.COM_QUERY && r.command !== Command.COM_STMT_EXECUTE && r.command !== Command.COM_STMT_BULK_EXECUTE) this.record(r, r.rows, undefined);
    this.done(r);
  }

  private done(r: Response): void {
    this.host.finished(r);
    r.done();
  }

  /**
   * The server asks for a file from the client's disk (LOCAL INFILE). It may have only the
   * file the statement in progress names, and only when that statement is a LOAD DATA LOCAL
   * (which policy admitted: no rule naming load_data_local, no forwarding) and the client
   * enabled LOCAL INFILE. Then the request goes to the client and its file to the server;
   * anything else is refused.
   */
  private localInfile(r: Response, p: Packet): void {
    const granted = this.grantedFile(r, p.payload.subarray(1));
    if (typeof granted !== 'object') return this.refuseLocalInfile(r, p, granted);
    this.emit(r, p, null);
    r.phase = 'infile';
    r.infile = { file: granted.file, bytes: 0, hash: createHash('sha256') };
    this.host.startInfile(r, (p.lastSeq + r.seqShift + 1) & 0xff, r.seqShift);
  }

  /** The file the server may have, or why it may not have the one it asked for. */
  private grantedFile(r: Response, requested: Buffer): { file: string } | string {
    if ((this.host.capabilities & Capability.LOCAL_FILES) === 0) return 'the client did not enable it (mariadb --local-infile=1; mysql2: flags LOCAL_FILES and infileStreamFactory)';
    const st = r.statements[r.index];
    if (r.binary || st === undefined || !st.kinds.includes('load_data_local')) return 'the server asked for a file while no allowed LOAD DATA LOCAL statement was running';
    if (st.localFile === undefined) return 'the statement does not name its file as one single-quoted string';
    if (!requested.equals(Buffer.from(st.localFile, 'utf8'))) return 'the server asked for a file other than the one the statement names';
    return { file: st.localFile };
  }

  /** The client's file has ended (its empty packet went to the server): the server's OK or ERR comes next. */
  infileEnded(r: Response): void {
    r.phase = 'first';
  }

  /**
   * A refused request: an empty packet (no data) goes up, the client is answered with an
   * error, and the rest of the server's answer is read and dropped.
   */
  private refuseLocalInfile(r: Response, p: Packet, why: string): void {
    this.host.toUpstream(framePacket(Buffer.alloc(0), p.lastSeq + 1));
    // The client's ERR takes the place of the request in its sequence (after earlier results of a multi-statement).
    r.refusal = {
      error: { code: ErrorNumber.ER_LOAD_INFILE_CAPABILITY_DISABLED, sqlState: '42000', message: `airlock: LOAD DATA LOCAL INFILE is refused: ${why}` },
      seq: p.seq + r.seqShift,
    };
    r.phase = 'discard';
    this.host.session.record({ type: 'protocol', detail: `refused a LOCAL INFILE request from the upstream: ${why}` });
  }

  private discard(r: Response, p: Packet): void {
    const h = p.payload[0];
    let more = false;
    if (h === PacketHeader.OK) more = (decodeOk(p.payload, this.host.capabilities).statusFlags & ServerStatus.MORE_RESULTS_EXISTS) !== 0;
    else if (isEof(p.payload)) more = (decodeEof(p.payload).statusFlags & ServerStatus.MORE_RESULTS_EXISTS) !== 0;
    else if (h !== PacketHeader.ERR) return;
    if (more) return;
    const refusal = r.refusal;
    if (refusal !== null) {
      const buf = framePacket(encodeErr(refusal.error), refusal.seq);
      this.host.out(buf);
      this.host.session.record({ type: 'result', command: 'LOAD', rows: 0, bytes: buf.length, durationMs: Date.now() - r.started, errorCode: refusal.error.sqlState });
    }
    this.done(r);
  }

}

export function infileSummary(f: Infile, whole: boolean): LocalInfileSummary {
  return { file: f.file, bytes: f.bytes, sha256: whole ? f.hash.digest('hex') : null };
}
