/**
 * The command phase of one MySQL session. MySQL is strictly request/response: a command
 * (sequence id 0) and the server's answer to it. The relay takes one client command at a
 * time, checks what policy needs checked (statement text of COM_QUERY and
 * COM_STMT_PREPARE, COM_INIT_DB, COM_FIELD_LIST), forwards it or answers it itself, and
 * follows the answer packet by packet (response.ts) to know where it ends, which result
 * set a row belongs to, and what to record. Packets that need nothing leave as the bytes
 * that arrived, batched per upstream chunk.
 */
import type { Socket } from 'node:net';
import type { Session } from '../../src/session-types.js';
import type { FinalDecision } from '../../src/types.js';
import { AirlockError, asAirlockError } from '../../src/errors.js';
import type { StatementAnalysis } from '../../parsers/sql/types.js';
import { PacketReader, framePacket, packetCount, renumber, type Packet } from './codec/framing.js';
import { Command, ErrorNumber, PacketHeader, ServerStatus, commandName } from './codec/codes.js';
import { decodeCommand } from './codec/messages/command.js';
import { decodeEof, decodeErr, decodeOk, encodeErr, encodeOk, isEof } from './codec/messages/generic.js';
import { decodeColumnCount, decodeColumnDefinition, decodeStmtPrepareOk, decodeTextRow, type ColumnDefinition } from './codec/messages/resultset.js';
import { mysqlErrorFor, type MysqlErrorFields } from './errors.js';
import type { ResultMasker, RowPlan } from './result-masking.js';

/** What a prepared statement is known as, by the server's statement id. */
interface Prepared {
  statement: StatementAnalysis | null;
  /** Each execution asks again (per_execution approval); the first one is covered. */
  perExecution: { statements: StatementAnalysis[]; credit: number } | null;
  /** Columns of the cursor opened by the last execute (for COM_STMT_FETCH). */
  cursor: { columns: ColumnDefinition[]; plan: RowPlan } | null;
}

type Phase =
  | 'first' // start of a (next) result: OK, ERR, LOCAL INFILE or a column count
  | 'columns'
  | 'columnsEof'
  | 'rows'
  | 'prepare'
  | 'prepareTail'
  | 'fieldList'
  | 'single'
  | 'discard';

interface Response {
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
  /** Prepare: packets of parameter and column metadata still to come, and which are columns. */
  tailLeft: number;
  tailColumnsFrom: number;
  prepareColumns: ColumnDefinition[];
  prepareText: StatementAnalysis | null;
  /** Shift applied to sequence ids after a rewritten packet changed the packet count. */
  seqShift: number;
  /** The client's answer after an airlock-refused LOCAL INFILE request. */
  refusal: MysqlErrorFields | null;
  onOk: (() => void) | null;
  started: number;
  rows: number;
  bytes: number;
  data: string[][];
  dataBytes: number;
  truncated: boolean;
  done: () => void;
}

export interface KillRequest {
  targetConnectionId: number;
  query: boolean;
}

export interface RelayOptions {
  session: Session;
  client: Socket;
  upstream: Socket;
  /** Capabilities in force on both legs. */
  capabilities: number;
  maxPacketBytes: number;
  clientLeftover?: Buffer;
  upstreamLeftover?: Buffer;
  masker: ResultMasker | null;
  /** The database in use (unqualified names resolve in it). */
  database: string | null;
  /** Runs a KILL of one of airlock's connection ids; null when done, else the error for the client. */
  kill: (req: KillRequest) => Promise<MysqlErrorFields | null>;
  onEnd: (reason: string) => void;
}

/** Commands refused outright: they bypass statement policy or change identity. */
const REFUSED = new Set<number>([
  Command.COM_CHANGE_USER, Command.COM_CREATE_DB, Command.COM_DROP_DB, Command.COM_REFRESH, Command.COM_SHUTDOWN,
  Command.COM_PROCESS_INFO, Command.COM_DEBUG, Command.COM_BINLOG_DUMP, Command.COM_BINLOG_DUMP_GTID, Command.COM_TABLE_DUMP,
  Command.COM_REGISTER_SLAVE, Command.COM_CONNECT, Command.COM_CONNECT_OUT, Command.COM_DELAYED_INSERT, Command.COM_TIME,
  Command.COM_SLEEP, Command.COM_DAEMON,
]);

/** Commands with a one-packet answer (OK, ERR, EOF or a string). */
const SINGLE = new Set<number>([Command.COM_PING, Command.COM_STMT_RESET, Command.COM_SET_OPTION, Command.COM_STATISTICS, Command.COM_RESET_CONNECTION, Command.COM_INIT_DB]);

const SIMPLE_KILL = /^\s*kill\s+(?:(query|connection)\s+)?(\d{1,10})\s*;?\s*$/i;
const USE_DB = /^\s*use\s+(?:`((?:[^`]|``)+)`|([A-Za-z0-9_$]+))\s*;?\s*$/i;

/** A statement after which the server may read text differently (sql_mode, character set), or that cannot be known. */
function changesReading(s: StatementAnalysis): boolean {
  return (s.unparsed || s.opaque || s.kinds.includes('set')) && /sql_mode|@@|character|charset|\bnames\b/i.test(s.text);
}

function changesCharset(s: StatementAnalysis): boolean {
  return (s.unparsed || s.opaque || s.kinds.includes('set')) && /character_set_client|character\s+set|charset|\bnames\b/i.test(s.text);
}

const RECORD_ROWS_MAX = 1000;
const RECORD_ROWS_MAX_BYTES = 1024 * 1024;
const INBOX_PAUSE_PACKETS = 256;

export class Relay {
  private readonly session: Session;
  private readonly client: Socket;
  private readonly upstream: Socket;
  private readonly clientReader: PacketReader;
  private readonly upstreamReader: PacketReader;
  private readonly inbox: Packet[] = [];
  private pumping = false;
  private ended = false;
  private response: Response | null = null;
  private readonly prepared = new Map<number, Prepared>();
  private readonly masker: ResultMasker | null;
  private readonly recordRows: boolean;
  private out: Buffer[] = [];
  private database: string | null;

  constructor(private readonly opts: RelayOptions) {
    this.session = opts.session;
    this.client = opts.client;
    this.upstream = opts.upstream;
    this.clientReader = new PacketReader({ maxPacketBytes: opts.maxPacketBytes });
    this.upstreamReader = new PacketReader({ maxPacketBytes: opts.maxPacketBytes });
    this.masker = opts.masker;
    this.database = opts.database;
    const record = opts.session.connection.record;
    this.recordRows = 'results' in record && record.results === 'rows';
  }

  start(): void {
    const { client, upstream } = this;
    client.on('data', (chunk: Buffer) => this.fromClient(chunk));
    upstream.on('data', (chunk: Buffer) => this.fromUpstream(chunk));
    client.on('drain', () => upstream.resume());
    upstream.on('drain', () => {
      if (!this.pumping) client.resume();
    });
    client.on('close', () => this.end('client closed the connection'));
    client.on('error', () => this.end('client connection error'));
    upstream.on('close', () => this.upstreamLost());
    upstream.on('error', () => this.upstreamLost());
    this.session.signal.addEventListener('abort', () => this.fatal(asAirlockError(this.session.signal.reason)), { once: true });
    if (this.opts.upstreamLeftover !== undefined && this.opts.upstreamLeftover.length > 0) this.fromUpstream(this.opts.upstreamLeftover);
    if (this.opts.clientLeftover !== undefined && this.opts.clientLeftover.length > 0) this.fromClient(this.opts.clientLeftover);
    client.resume();
    upstream.resume();
  }

  // ---- client → upstream -------------------------------------------------

  private fromClient(chunk: Buffer): void {
    if (this.ended) return;
    this.session.stats.bytesFromClient += chunk.length;
    try {
      this.clientReader.push(chunk, (p) => this.inbox.push(p));
    } catch (e) {
      this.fatal(asAirlockError(e));
      return;
    }
    if (this.inbox.length > INBOX_PAUSE_PACKETS) this.client.pause();
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      let p: Packet | undefined;
      while ((p = this.inbox.shift()) !== undefined && !this.ended) {
        await this.command(p);
      }
      if (!this.ended && this.client.isPaused() && !this.upstream.writableNeedDrain) this.client.resume();
    } catch (e) {
      this.fatal(asAirlockError(e));
    } finally {
      this.pumping = false;
    }
  }

  /** One client command, answered in full before the next is taken. */
  private async command(p: Packet): Promise<void> {
    if (p.seq !== 0) throw new AirlockError('AIRLOCK_PROTOCOL', 'a command must start with sequence id 0', { fatal: true });
    const cmd = decodeCommand(p.payload);
    const code = p.payload[0] as number;
    switch (cmd.type) {
      case 'COM_QUIT':
        this.upstream.write(p.raw);
        this.end('client quit');
        return;
      case 'COM_QUERY':
        return this.query(p, cmd.sql);
      case 'COM_STMT_PREPARE':
        return this.prepare(p, cmd.sql);
      case 'COM_STMT_EXECUTE': {
        const prepared = this.prepared.get(cmd.statementId) ?? null;
        if (prepared?.perExecution) {
          const pe = prepared.perExecution;
          if (pe.credit > 0) pe.credit--;
          else {
            const refusal = await this.decideAll(pe.statements, false);
            if (this.ended) return;
            if (refusal !== null) return this.answer(refusal, code);
          }
        }
        return this.forward(p, { binary: true, prepared, statements: prepared?.statement ? [prepared.statement] : [] });
      }
      case 'COM_STMT_FETCH':
        return this.forward(p, { phase: 'rows', binary: true, prepared: this.prepared.get(cmd.statementId) ?? null, fetch: true });
      case 'COM_STMT_CLOSE':
        this.prepared.delete(cmd.statementId);
        this.upstream.write(p.raw);
        return;
      case 'COM_STMT_SEND_LONG_DATA':
        this.upstream.write(p.raw);
        return;
      case 'COM_INIT_DB': {
        const refusal = await this.decideText(`USE \`${cmd.schema.replace(/`/g, '``')}\``);
        if (this.ended) return;
        if (refusal !== null) return this.answer(refusal, code);
        return this.forward(p, { phase: 'single', onOk: () => this.useDatabase(cmd.schema) });
      }
      case 'COM_FIELD_LIST': {
        const refusal = await this.decideText(`SHOW COLUMNS FROM \`${cmd.table.replace(/`/g, '``')}\``);
        if (this.ended) return;
        if (refusal !== null) return this.answer(refusal, code);
        return this.forward(p, { phase: 'fieldList' });
      }
      case 'COM_PROCESS_KILL':
        return this.kill(code, { targetConnectionId: cmd.connectionId, query: false });
      case 'COM_RESET_CONNECTION':
        return this.forward(p, { phase: 'single', onOk: () => this.prepared.clear() });
      default:
        break;
    }
    if (REFUSED.has(code) || !SINGLE.has(code)) {
      const why =
        code === Command.COM_CHANGE_USER
          ? 'COM_CHANGE_USER is refused: an airlock session keeps its identity; reconnect with another token'
          : `${commandName(code)} is not supported through airlock`;
      this.session.record({ type: 'protocol', detail: `refused ${commandName(code)}` });
      return this.answer({ code: ErrorNumber.ER_UNKNOWN_COM_ERROR, sqlState: '08S01', message: `airlock: ${why}` }, code);
    }
    return this.forward(p, { phase: 'single' });
  }

  private async query(p: Packet, sql: string): Promise<void> {
    const analysis = this.session.analyzeSql(sql, 'mysql');
    const statements = analysis.statements.filter((s) => !s.kinds.includes('empty'));
    const kill = SIMPLE_KILL.exec(sql);
    const mentionsKill = statements.some((s) => s.kinds.includes('kill') || (s.unparsed && /\bkill\b/i.test(s.text)));
    const refusal = await this.decideAll(analysis.statements, false);
    if (this.ended) return;
    if (refusal !== null) return this.answer(refusal, Command.COM_QUERY);
    // The client sees airlock's connection ids: a KILL is mapped, never passed as written.
    if (kill !== null) return this.kill(Command.COM_QUERY, { targetConnectionId: Number(kill[2]), query: (kill[1] ?? '').toLowerCase() === 'query' });
    if (mentionsKill) {
      return this.answer({ code: ErrorNumber.ER_NOT_SUPPORTED_YET, sqlState: '42000', message: 'airlock: KILL takes the form KILL [QUERY | CONNECTION] <id>, alone in its statement' }, Command.COM_QUERY);
    }
    // How the server reads the statements after one that changes sql_mode (NO_BACKSLASH_ESCAPES,
    // ANSI_QUOTES) is not how they were analysed: such a change must come last in its text.
    // (With both readings analysed, the statement list holds each reading in turn: "last" is by position in the text.)
    const tail = sql.replace(/[\s;]+$/, '');
    if (statements.some((s) => changesReading(s) && !tail.endsWith(s.text.replace(/[\s;]+$/, '').trim()))) {
      return this.answer({ code: ErrorNumber.ER_NOT_SUPPORTED_YET, sqlState: '42000', message: 'airlock: a statement that changes sql_mode or the character set must be the last in its query' }, Command.COM_QUERY);
    }
    let onOk: (() => void) | null = null;
    if (statements.some((s) => changesCharset(s))) {
      // Multibyte client character sets (GBK, SJIS, BIG5 …) can hide a quote in a trail byte.
      onOk = () => this.session.setParameter('client_encoding', 'UNKNOWN');
    }
    if (statements.some((s) => s.kinds.includes('use'))) {
      const m = statements.length === 1 ? USE_DB.exec(sql) : null;
      if (m === null) {
        return this.answer({ code: ErrorNumber.ER_NOT_SUPPORTED_YET, sqlState: '42000', message: 'airlock: USE must name one database, alone in its statement' }, Command.COM_QUERY);
      }
      const db = m[1] !== undefined ? m[1].replace(/``/g, '`') : (m[2] ?? '');
      onOk = () => this.useDatabase(db);
    }
    return this.forward(p, { statements, onOk });
  }

  private async prepare(p: Packet, sql: string): Promise<void> {
    const analysis = this.session.analyzeSql(sql, 'mysql');
    const statements = analysis.statements.filter((s) => !s.kinds.includes('empty'));
    let approved: FinalDecision | null = null;
    const refusal = await this.decideAll(analysis.statements, true, (d) => (approved = d));
    if (this.ended) return;
    if (refusal !== null) return this.answer(refusal, Command.COM_STMT_PREPARE);
    if (statements.some((s) => s.kinds.includes('kill') || s.kinds.includes('use'))) {
      return this.answer({ code: ErrorNumber.ER_NOT_SUPPORTED_YET, sqlState: '42000', message: 'airlock: KILL and USE cannot be prepared through airlock' }, Command.COM_STMT_PREPARE);
    }
    const d = approved as FinalDecision | null;
    const perExecution = d !== null && d.effect === 'allow' && d.approved?.perExecution === true ? { statements, credit: 1 } : null;
    const prepared: Prepared = { statement: statements.length === 1 ? (statements[0] ?? null) : null, perExecution, cursor: null };
    return this.forward(p, { phase: 'prepare', prepared });
  }

  /** Every statement must be allowed; the first refusal wins (returned as the client's error). */
  private async decideAll(statements: StatementAnalysis[], reuse: boolean, onAllow?: (d: FinalDecision) => void): Promise<MysqlErrorFields | null> {
    let approvalId: string | null = null;
    for (const statement of statements) {
      let d: FinalDecision;
      try {
        d = await this.session.check({ kind: 'sql', dialect: 'mysql', text: statement.text, statement }, (h) => {
          // MySQL has no asynchronous notice: the id goes to the log now and into the error text if refused.
          approvalId = h.approvalId;
          this.session.logger.info({ approval: h.approvalId, rule: h.rule }, 'mysql statement held for approval');
        }, reuse);
      } catch (e) {
        const err = asAirlockError(e);
        if (err.fatal) throw err;
        return mysqlErrorFor(err);
      }
      if (d.effect === 'deny') {
        const suffix = approvalId === null ? '' : ` (approval ${approvalId})`;
        return mysqlErrorFor(new AirlockError('AIRLOCK_DENIED', `denied by rule ${d.rule}: ${d.reason}${suffix}`, { rule: d.rule }));
      }
      if (d.approved !== undefined || onAllow !== undefined) onAllow?.(d);
    }
    return null;
  }

  private decideText(text: string): Promise<MysqlErrorFields | null> {
    return this.decideAll(this.session.analyzeSql(text, 'mysql').statements, false);
  }

  private useDatabase(db: string): void {
    this.database = db;
    this.session.setParameter('search_path', `"${db.replace(/"/g, '""')}"`);
  }

  private async kill(code: number, req: KillRequest): Promise<void> {
    let failure: MysqlErrorFields | null;
    try {
      failure = await this.opts.kill(req);
    } catch (e) {
      failure = mysqlErrorFor(asAirlockError(e));
    }
    if (this.ended) return;
    if (failure !== null) return this.answer(failure, code);
    const ok = encodeOk({ statusFlags: ServerStatus.AUTOCOMMIT }, this.opts.capabilities);
    this.writeClient(framePacket(ok, 1));
    this.session.record({ type: 'result', command: 'KILL', rows: 0, bytes: ok.length + 4, durationMs: 0 });
  }

  /** An answer airlock gives itself (sequence id 1: the first packet of the response). */
  private answer(err: MysqlErrorFields, code: number): void {
    const buf = framePacket(encodeErr(err), 1);
    this.writeClient(buf);
    this.session.record({ type: 'result', command: commandName(code), rows: 0, bytes: buf.length, durationMs: 0, errorCode: err.sqlState });
  }

  private forward(
    p: Packet,
    o: { phase?: Phase; binary?: boolean; statements?: StatementAnalysis[]; prepared?: Prepared | null; onOk?: (() => void) | null; fetch?: boolean },
  ): Promise<void> {
    return new Promise<void>((resolve) => {
      const prepared = o.prepared ?? null;
      const cursor = o.fetch === true ? prepared?.cursor ?? null : null;
      this.response = {
        command: p.payload[0] as number,
        phase: o.phase ?? 'first',
        binary: o.binary ?? false,
        statements: o.statements ?? [],
        index: 0,
        columnsLeft: 0,
        columns: cursor?.columns ?? [],
        plan: cursor?.plan ?? null,
        prepared,
        tailLeft: 0,
        tailColumnsFrom: 0,
        prepareColumns: [],
        prepareText: prepared?.statement ?? null,
        seqShift: 0,
        refusal: null,
        onOk: o.onOk ?? null,
        started: Date.now(),
        rows: 0,
        bytes: 0,
        data: [],
        dataBytes: 0,
        truncated: false,
        done: resolve,
      };
      // A fetch on a cursor whose columns were never seen cannot be judged: its rows are withheld.
      if (o.fetch === true && cursor === null && this.masker !== null) this.response.plan = [];
      this.upstream.write(p.raw);
    });
  }

  // ---- upstream → client -------------------------------------------------

  private fromUpstream(chunk: Buffer): void {
    if (this.ended) return;
    try {
      this.upstreamReader.push(chunk, (p) => this.upstreamPacket(p));
    } catch (e) {
      this.flushClient();
      this.fatal(asAirlockError(e));
      return;
    }
    this.flushClient();
  }

  private flushClient(): void {
    const parts = this.out;
    if (parts.length === 0) return;
    this.out = [];
    let ok = true;
    if (parts.length === 1) ok = this.writeClient(parts[0] as Buffer);
    else if (parts.length > 8) ok = this.writeClient(Buffer.concat(parts));
    else {
      this.client.cork();
      for (const p of parts) ok = this.writeClient(p);
      this.client.uncork();
    }
    if (!ok) this.upstream.pause();
  }

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
    this.queueOut(bytes);
  }

  /** Packets that lie next to each other in the chunk they came in leave as one view, uncopied. */
  private queueOut(bytes: Buffer): void {
    const last = this.out[this.out.length - 1];
    if (last !== undefined && last.buffer === bytes.buffer && last.byteOffset + last.length === bytes.byteOffset) {
      this.out[this.out.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + bytes.length);
    } else this.out.push(bytes);
  }

  private upstreamPacket(p: Packet): void {
    const r = this.response;
    if (r === null) {
      // Nothing asked: the server may say why it is closing (an ERR); anything else is a violation.
      if (p.payload[0] === PacketHeader.ERR) {
        this.queueOut(p.raw);
        return;
      }
      throw new AirlockError('AIRLOCK_PROTOCOL', 'the upstream sent a packet no command asked for', { fatal: true });
    }
    const h = p.payload[0];
    switch (r.phase) {
      case 'single':
        if (h === PacketHeader.OK) r.onOk?.();
        if (h === PacketHeader.ERR) return this.finish(r, p, 'error');
        this.emit(r, p, null);
        return this.finish(r, p, 'ok');
      case 'discard':
        return this.discard(r, p);
      case 'first':
        if (h === PacketHeader.OK) {
          r.onOk?.();
          this.emit(r, p, null);
          const ok = decodeOk(p.payload, this.opts.capabilities);
          return this.endOfResult(r, ok.statusFlags, Number(ok.affectedRows));
        }
        if (h === PacketHeader.ERR) return this.finish(r, p, 'error');
        if (h === PacketHeader.LOCAL_INFILE) return this.refuseLocalInfile(r, p);
        r.columnsLeft = decodeColumnCount(p.payload);
        r.columns = [];
        r.phase = 'columns';
        this.emit(r, p, null);
        return;
      case 'columns':
        if (h === PacketHeader.ERR) return this.finish(r, p, 'error');
        if (this.masker !== null || this.recordRows) r.columns.push(decodeColumnDefinition(p.payload));
        this.emit(r, p, null);
        if (--r.columnsLeft === 0) {
          r.phase = 'columnsEof';
          if (this.masker !== null) r.plan = this.masker.plan(r.columns, r.statements[r.index] ?? null);
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
        if (r.prepared !== null) this.prepared.set(ok.statementId, r.prepared);
        const paramPackets = ok.params > 0 ? ok.params + 1 : 0;
        r.tailLeft = paramPackets + (ok.columns > 0 ? ok.columns + 1 : 0);
        r.tailColumnsFrom = paramPackets;
        this.emit(r, p, null);
        if (r.tailLeft === 0) return this.finish(r, p, 'ok');
        r.phase = 'prepareTail';
        return;
      }
      case 'prepareTail':
        this.emit(r, p, null);
        if (--r.tailLeft === 0) return this.finish(r, p, 'ok');
        return;
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
    const payload = plan !== null && this.masker !== null ? this.masker.row(p.payload, plan, r.binary) : null;
    this.emit(r, p, payload);
    if (this.recordRows && !r.binary) {
      if (r.dataBytes < RECORD_ROWS_MAX_BYTES && r.data.length < RECORD_ROWS_MAX) {
        const sent = payload ?? p.payload;
        r.data.push(decodeTextRow(sent, r.columns.length).map((c) => (c === null ? null : c.toString('utf8'))) as string[]);
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
    if (noBackslash !== this.session.sqlSettings.standardConformingStrings) this.session.setParameter('standard_conforming_strings', noBackslash ? 'on' : 'off');
  }

  private record(r: Response, rows: number, errorCode: string | undefined): void {
    const st = r.statements[r.index];
    const command = st !== undefined ? (st.kinds[0] ?? 'other').toUpperCase() : commandName(r.command);
    const masked = this.masker?.maskedColumns(r.plan) ?? [];
    this.session.record({
      type: 'result',
      command,
      rows,
      bytes: r.bytes,
      durationMs: Date.now() - r.started,
      ...(errorCode === undefined ? {} : { errorCode }),
      ...(masked.length > 0 ? { maskedColumns: masked } : {}),
      ...(this.recordRows ? { data: r.data, truncated: r.truncated } : {}),
    });
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
      const scrubbed = this.masker?.scrubError(err) ?? null;
      this.emit(r, p, scrubbed === null ? null : encodeErr(scrubbed));
      this.record(r, r.rows, err.sqlState);
    } else if (r.command !== Command.COM_QUERY && r.command !== Command.COM_STMT_EXECUTE) this.record(r, r.rows, undefined);
    this.done(r);
  }

  private done(r: Response): void {
    if (this.response === r) this.response = null;
    r.done();
  }

  /**
   * The server asks for a file from the client's disk (LOCAL INFILE). airlock never
   * negotiates CLIENT_LOCAL_FILES upstream, so a server that asks anyway is refused: an
   * empty packet (no data) goes up, the client is answered with an error, and the rest of
   * the server's answer is read and dropped.
   */
  private refuseLocalInfile(r: Response, p: Packet): void {
    this.upstream.write(framePacket(Buffer.alloc(0), p.lastSeq + 1));
    r.refusal = { code: ErrorNumber.ER_LOAD_INFILE_CAPABILITY_DISABLED, sqlState: '42000', message: 'airlock: LOAD DATA LOCAL INFILE is refused: airlock does not read files from the client' };
    r.phase = 'discard';
    this.session.record({ type: 'protocol', detail: 'refused a LOCAL INFILE request from the upstream' });
  }

  private discard(r: Response, p: Packet): void {
    const h = p.payload[0];
    let more = false;
    if (h === PacketHeader.OK) more = (decodeOk(p.payload, this.opts.capabilities).statusFlags & ServerStatus.MORE_RESULTS_EXISTS) !== 0;
    else if (isEof(p.payload)) more = (decodeEof(p.payload).statusFlags & ServerStatus.MORE_RESULTS_EXISTS) !== 0;
    else if (h !== PacketHeader.ERR) return;
    if (more) return;
    const refusal = r.refusal;
    if (refusal !== null) {
      const buf = framePacket(encodeErr(refusal), 1);
      this.out.push(buf);
      this.session.record({ type: 'result', command: 'LOAD', rows: 0, bytes: buf.length, durationMs: Date.now() - r.started, errorCode: refusal.sqlState });
    }
    this.done(r);
  }

  private writeClient(buf: Buffer): boolean {
    this.session.stats.bytesToClient += buf.length;
    return this.client.write(buf);
  }

  // ---- endings -----------------------------------------------------------

  private upstreamLost(): void {
    if (this.ended) return;
    this.fatal(new AirlockError('AIRLOCK_UPSTREAM_LOST', `the upstream of connection "${this.session.connection.name}" closed the connection`, { fatal: true }));
  }

  /** Sends an ERR to the client (when a response is awaited, in sequence) and ends the session. */
  fatal(e: AirlockError): void {
    if (this.ended) return;
    if (e.code === 'AIRLOCK_INTERNAL') this.session.logger.error({ err: e.cause }, 'internal error in mysql relay');
    if (!this.client.destroyed) this.client.write(framePacket(encodeErr(mysqlErrorFor(e)), this.response === null ? 0 : 1));
    this.end(e.code);
  }

  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.response?.done();
    this.response = null;
    this.client.end();
    this.upstream.end();
    setTimeout(() => {
      this.client.destroy();
      this.upstream.destroy();
    }, 1000).unref();
    this.opts.onEnd(reason);
  }
}

