/**
 * The command phase of one MySQL session. MySQL is strictly request/response: a command
 * (sequence id 0) and the server's answer to it. The relay takes one client command at a
 * time, checks what policy needs checked (statement text of COM_QUERY and
 * COM_STMT_PREPARE, COM_INIT_DB, COM_FIELD_LIST), forwards it or answers it itself, and
 * hands the answer to the ResponseFollower (response.ts), which knows where it ends.
 * Packets that need nothing leave as the bytes that arrived, batched per upstream chunk.
 * A COM_QUERY of one effect-free SELECT (src/audit/effect-free-mysql.ts) is forwarded while
 * its audit record syncs; its answer is held, with reading paused, until the record is durable.
 */
import type { Socket } from 'node:net';
import type { Session } from '../../src/core/session-types.js';
import type { FinalDecision } from '../../src/core/types.js';
import { AirlockError, asAirlockError } from '../../src/util/errors.js';
import type { RelationRef, StatementAnalysis } from '../../parsers/sql/types.js';
import { PacketReader, framePacket, renumber, type Packet } from './codec/framing.js';
import { Command, ErrorNumber, PacketHeader, ServerStatus, commandName } from './codec/codes.js';
import { decodeCommand } from './codec/messages/command.js';
import { encodeErr, encodeOk } from './codec/messages/generic.js';
import { mysqlErrorFor, type MysqlErrorFields } from './errors.js';
import type { ResultMasker } from './result-masking.js';
import { ResponseFollower, infileSummary, newResponse, type Prepared, type Response, type ResponseOptions } from './response.js';
import { mysqlSettingChanges, userVariablesTouched } from '../../parsers/sql/mysql/settings.js';
import { statementReaderFor, type StatementReader } from './charsets.js';
import { isEffectFreeMysql, mayBeEffectFreeMysql } from '../../src/audit/effect-free-mysql.js';
import type { MysqlCatalog } from './catalog.js';
import type { UpstreamOptions } from './upstream.js';

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
  /** MariaDB extended metadata negotiated on both legs (column definitions carry its block). */
  extendedMetadata: boolean;
  /** MariaDB STMT_BULK_OPERATIONS negotiated on both legs (COM_STMT_BULK_EXECUTE). */
  bulk: boolean;
  maxPacketBytes: number;
  /** LOAD DATA LOCAL: the longest file the client may send (local_infile.max_bytes). */
  maxLocalInfileBytes: number;
  clientLeftover?: Buffer;
  upstreamLeftover?: Buffer;
  masker: ResultMasker | null;
  /** The client character set the handshake named (charsets.ts), null when airlock cannot read it. */
  clientCharset: string | null;
  /** airlock's connection id of this session (the one its client saw) and the upstream's. */
  connectionId: number;
  upstreamId: number;
  /** Runs a KILL of one of airlock's connection ids; null when done, else the error for the client. */
  kill: (req: KillRequest) => Promise<MysqlErrorFields | null>;
  onEnd: (reason: string) => void;
  /** Which relations are views (the pipelined write-ahead needs base tables); null: never pipeline. */
  views?: { catalog: MysqlCatalog; upstream: UpstreamOptions } | null;
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

/** MariaDB: the statement id that names the statement prepared last on the connection. */
const LAST_PREPARED = 0xffffffff;
/** COM_STMT_BULK_EXECUTE flags: SEND_TYPES_TO_SERVER (the one airlock passes), SEND_UNIT_RESULTS. */
const BULK_SEND_TYPES = 0x80;

const SIMPLE_KILL = /^\s*kill\s+(?:(query|connection)\s+)?(\d{1,10})\s*;?\s*$/i;
const USE_DB = /^\s*use\s+(?:`((?:[^`]|``)+)`|([A-Za-z0-9_$]+))\s*;?\s*$/i;

/** A statement that may create, replace or drop a relation: what the catalog knew of views may be stale after it. */
function changesRelations(s: StatementAnalysis): boolean {
  return s.opaque || s.unparsed || s.kinds.some((k) => k === 'create' || k === 'alter' || k === 'drop');
}

/** A statement after which the server may read text differently (sql_mode, character set). */
function changesReading(s: StatementAnalysis): boolean {
  const c = mysqlSettingChanges(s);
  return c.sqlMode || c.clientCharset !== undefined;
}

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
  private readonly follower: ResponseFollower;
  /** The client is sending a LOCAL INFILE file: its packets go to the server, not to the command queue. */
  private infile: { r: Response; expect: number; shift: number } | null = null;
  /** Reads statement text in the session's character_set_client; null: a set airlock cannot read (ASCII only). */
  private reader: StatementReader | null = null;
  /** Prepared statements whose execution sets the client character set to a value their text does not tell. */
  private readonly setsCharset = new WeakSet<Prepared>();
  /** The client character set in force (null: one airlock cannot read, or unknown). */
  private charset: string | null = null;
  /**
   * User variables known to hold a character set: `SET @saved_cs_client = @@character_set_client`
   * … `SET character_set_client = @saved_cs_client`, as mysqldump writes around each table. A
   * variable is forgotten as soon as a statement names it, or may write it unseen (a trigger, a
   * routine, a statement airlock cannot read).
   */
  private readonly charsetVariables = new Map<string, string | null>();
  /** The user variables each prepared statement touches, forgotten again at each execution. */
  private readonly preparedVariables = new WeakMap<Prepared, Set<string> | 'any'>();
  /** The statement the server's "last prepared" id (0xffffffff) names; null when not known. */
  private lastPrepared: Prepared | null = null;
  /** A pipelined command's record is not yet durable: what the upstream sends is held here, reading paused. */
  private awaitingDurable = false;
  private readonly heldUpstream: Buffer[] = [];
  /** The pipelined command whose record could not be made durable: its answer is dropped, this error sent instead. */
  private unaudited: { response: Response; error: MysqlErrorFields } | null = null;


  constructor(private readonly opts: RelayOptions) {
    this.session = opts.session;
    this.client = opts.client;
    this.upstream = opts.upstream;
    this.clientReader = new PacketReader({ maxPacketBytes: opts.maxPacketBytes });
    this.upstreamReader = new PacketReader({ maxPacketBytes: opts.maxPacketBytes });
    this.masker = opts.masker;
    const record = opts.session.connection.record;
    this.recordRows = 'results' in record && record.results === 'rows';
    this.follower = new ResponseFollower({
      session: this.session,
      capabilities: opts.capabilities,
      extendedMetadata: opts.extendedMetadata,
      masker: this.masker,
      recordRows: this.recordRows,
      prepared: this.prepared,
      out: (bytes) => this.queueOut(bytes),
      toUpstream: (bytes) => this.upstream.write(bytes),
      finished: (r) => {
        if (this.response === r) this.response = null;
        if (this.unaudited?.response === r) this.unauditedEnded(this.unaudited.error);
      },
      startInfile: (r, clientSeq, shift) => {
        this.infile = { r, expect: clientSeq, shift };
      },
    });
    this.setClientCharset(opts.clientCharset);
  }

  /**
   * The character set the server now reads statement text in. In one airlock reads exactly
   * (charsets.ts) text is decoded as the server decodes it; in any other, text that is not
   * plain ASCII is not analysed (the session refuses it).
   */
  private setClientCharset(charset: string | null): void {
    this.charset = charset;
    this.reader = statementReaderFor(charset);
    // The session's name for "every byte below 0x80 is ASCII, and airlock reads the rest".
    this.session.setParameter('client_encoding', this.reader === null ? 'UNKNOWN' : 'SQL_ASCII');
  }

  private forgetVariables(touched: Set<string> | 'any'): void {
    if (touched === 'any') this.charsetVariables.clear();
    else for (const v of touched) this.charsetVariables.delete(v);
  }

  private statementText(bytes: Buffer): string {
    return this.reader === null ? bytes.toString('utf8') : this.reader(bytes);
  }

  start(): void {
    const { client, upstream } = this;
    client.on('data', (chunk: Buffer) => this.fromClient(chunk));
    upstream.on('data', (chunk: Buffer) => this.fromUpstream(chunk));
    client.on('drain', () => {
      if (!this.awaitingDurable) upstream.resume();
    });
    upstream.on('drain', () => {
      if (!this.pumping || this.infile !== null) client.resume();
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
      this.clientReader.push(chunk, (p) => (this.infile !== null ? this.infilePacket(p) : this.inbox.push(p)));
    } catch (e) {
      this.fatal(asAirlockError(e));
      return;
    }
    if (this.inbox.length > INBOX_PAUSE_PACKETS) this.client.pause();
    void this.pump();
  }

  /**
   * One packet of the file the server asked for (LOCAL INFILE), on its way up; an empty one
   * ends it. Past local_infile.max_bytes the server's connection is dropped before the file's
   * end reaches it, so the statement is aborted there rather than run on part of the file.
   */
  private infilePacket(p: Packet): void {
    const f = this.infile as { r: Response; expect: number; shift: number };
    const file = f.r.infile;
    if (file === null) throw new AirlockError('AIRLOCK_INTERNAL', 'LOCAL INFILE data with no file in progress', { fatal: true });
    if (p.seq !== f.expect) throw new AirlockError('AIRLOCK_PROTOCOL', `LOCAL INFILE data out of order (sequence id ${p.seq}, expected ${f.expect})`, { fatal: true });
    f.expect = (p.lastSeq + 1) & 0xff;
    file.bytes += p.payload.length;
    if (file.bytes > this.opts.maxLocalInfileBytes) return this.infileTooLarge(f.r, f.expect);
    file.hash.update(p.payload);
    if (!this.upstream.write(f.shift === 0 ? p.raw : renumber(p.raw, p.seq - f.shift))) this.client.pause();
    if (p.payload.length === 0) {
      this.infile = null;
      this.follower.infileEnded(f.r);
    }
  }

  private infileTooLarge(r: Response, seq: number): void {
    const file = r.infile;
    this.upstream.destroy();
    const limit = this.opts.maxLocalInfileBytes;
    const err = mysqlErrorFor(new AirlockError('AIRLOCK_TOO_LARGE', `LOAD DATA LOCAL: the file is longer than local_infile.max_bytes (${limit} bytes); the statement was aborted and the session ends`));
    const buf = framePacket(encodeErr(err), seq);
    this.session.record({
      type: 'result',
      command: 'LOAD_DATA',
      rows: 0,
      bytes: buf.length,
      durationMs: Date.now() - r.started,
      errorCode: err.sqlState,
      ...(file === null ? {} : { localInfile: infileSummary(file, false) }),
    });
    this.infile = null;
    if (!this.client.destroyed) this.writeClient(buf);
    this.end('AIRLOCK_TOO_LARGE');
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
        return this.readable(() => this.query(p, this.statementText(p.payload.subarray(1))), code);
      case 'COM_STMT_PREPARE':
        return this.readable(() => this.prepare(p, this.statementText(p.payload.subarray(1))), code);
      case 'COM_STMT_EXECUTE': {
        if (cmd.statementId === LAST_PREPARED && this.lastPrepared === null) return this.unknownStatement(cmd.statementId, code);
        const prepared = this.preparedFor(cmd.statementId);
        if (prepared?.perExecution) {
          const pe = prepared.perExecution;
          if (pe.credit > 0) pe.credit--;
          else {
            const refusal = await this.decideAll(pe.statements, false);
            if (this.ended) return;
            if (refusal !== null) return this.answer(refusal, code);
          }
        }
        const statements = prepared?.statement ? [prepared.statement] : [];
        if (this.masker !== null) await this.masker.prepare(statements);
        if (this.ended) return;
        const unknownCharset = prepared !== null && this.setsCharset.has(prepared);
        this.forgetVariables(prepared === null ? 'any' : (this.preparedVariables.get(prepared) ?? 'any'));
        if (statements.length === 0 || statements.some(changesRelations)) this.opts.views?.catalog.forget();
        await this.forward(p, { binary: true, prepared, statements, onOk: unknownCharset ? () => this.setClientCharset(null) : null });
        if (statements.length === 0 || statements.some(changesRelations)) this.opts.views?.catalog.forget();
        return;
      }
      case 'COM_STMT_FETCH':
        return this.forward(p, { phase: 'rows', binary: true, prepared: this.preparedFor(cmd.statementId), fetch: true });
      case 'COM_STMT_CLOSE':
        if (this.preparedFor(cmd.statementId) === this.lastPrepared) this.lastPrepared = null;
        this.prepared.delete(cmd.statementId);
        this.upstream.write(p.raw);
        return;
      case 'COM_STMT_SEND_LONG_DATA':
        this.upstream.write(p.raw);
        return;
      case 'COM_INIT_DB': {
        // The name is in the client's character set, like statement text.
        const schema = this.statementText(p.payload.subarray(1));
        const refusal = await this.decideText(`USE \`${schema.replace(/`/g, '``')}\``);
        if (this.ended) return;
        if (refusal !== null) return this.answer(refusal, code);
        return this.forward(p, { phase: 'single', onOk: () => this.useDatabase(schema) });
      }
      case 'COM_FIELD_LIST': {
        const end = p.payload.indexOf(0, 1);
        const table = this.statementText(p.payload.subarray(1, end < 0 ? p.payload.length : end));
        const refusal = await this.decideText(`SHOW COLUMNS FROM \`${table.replace(/`/g, '``')}\``);
        if (this.ended) return;
        if (refusal !== null) return this.answer(refusal, code);
        return this.forward(p, { phase: 'fieldList' });
      }
      case 'COM_PROCESS_KILL': {
        // The old command form of KILL CONNECTION: the same policy as the statement.
        const refusal = await this.decideText(`KILL CONNECTION ${cmd.connectionId}`);
        if (this.ended) return;
        if (refusal !== null) return this.answer(refusal, code);
        return this.kill(code, { targetConnectionId: cmd.connectionId, query: false }, []);
      }
      case 'COM_RESET_CONNECTION':
        // The session is as it was at login: the handshake's character set again.
        return this.forward(p, { phase: 'single', onOk: () => { this.prepared.clear(); this.lastPrepared = null; this.charsetVariables.clear(); this.setClientCharset(this.opts.clientCharset); } });
      default:
        break;
    }
    if (code === Command.COM_STMT_BULK_EXECUTE && this.opts.bulk) return this.bulk(p);
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

  /** A statement nested too deeply for airlock to read is refused with an error packet; the session goes on. */
  private async readable(command: () => Promise<void>, code: number): Promise<void> {
    try {
      await command();
    } catch (e) {
      const err = asAirlockError(e);
      if (err.code !== 'AIRLOCK_TOO_COMPLEX' || err.fatal) throw e;
      this.session.record({ type: 'protocol', detail: 'refused a statement nested too deeply to read' });
      return this.answer(mysqlErrorFor(err), code);
    }
  }

  private async query(p: Packet, sql: string): Promise<void> {
    const analysis = this.session.analyzeSql(sql, 'mysql');
    const statements = analysis.statements.filter((s) => !s.kinds.includes('empty'));
    const kill = SIMPLE_KILL.exec(sql);
    const mentionsKill = statements.some((s) => s.kinds.includes('kill') || (s.unparsed && /\bkill\b/i.test(s.text)));
    let durable: Promise<void> | null = null;
    // With the audit off nothing is synced, so there is nothing to pipeline behind and no view look-up to make.
    const pipelined = this.session.audited && statements.length === 1 && (await this.effectFree(statements[0] as StatementAnalysis));
    if (this.ended) return;
    const refusal = await this.decideAll(analysis.statements, false, undefined, pipelined ? (d) => (durable = d) : undefined);
    if (this.ended) return;
    if (refusal !== null) return this.answer(refusal, Command.COM_QUERY);
    // The client sees airlock's connection ids: a KILL is mapped, never passed as written.
    if (kill !== null) return this.kill(Command.COM_QUERY, { targetConnectionId: Number(kill[2]), query: (kill[1] ?? '').toLowerCase() === 'query' }, statements);
    if (mentionsKill) {
      // The ids a client sees are airlock's; the KILL runs on a side connection with the target's
      // own lease, which a KILL inside a multi-statement text sent upstream could not do.
      return this.answer({ code: ErrorNumber.ER_NOT_SUPPORTED_YET, sqlState: '42000', message: 'airlock: KILL takes the form KILL [QUERY | CONNECTION] <id>, alone in its query (not among other statements); nothing was run' }, Command.COM_QUERY);
    }
    // How the server reads the statements after one that changes sql_mode (NO_BACKSLASH_ESCAPES,
    // ANSI_QUOTES) is not how they were analysed: such a change must come last in its text.
    // (With both readings analysed, the statement list holds each reading in turn: "last" is by position in the text.)
    const changing = statements.filter(changesReading);
    const tail = changing.length === 0 ? '' : sql.replace(/[\s;]+$/, '');
    if (changing.some((s) => !tail.endsWith(s.text.replace(/[\s;]+$/, '').trim()))) {
      return this.answer({ code: ErrorNumber.ER_NOT_SUPPORTED_YET, sqlState: '42000', message: 'airlock: a statement that changes sql_mode or the character set must be the last in its query' }, Command.COM_QUERY);
    }
    const after: Array<() => void> = [];
    // A statement whose effects are unknown may change the character set unseen (EXECUTE of a
    // prepared SET NAMES): from here on it is unknown, and so is what a later save reads.
    if (statements.some((s) => s.opaque || s.unparsed)) this.setClientCharset(null);
    const current = this.charset;
    let charset: string | null | undefined;
    const saves: string[] = [];
    for (const s of statements) {
      const c = mysqlSettingChanges(s);
      if (c.clientCharset !== undefined) {
        const from = c.clientCharsetFrom;
        charset = from !== undefined && this.charsetVariables.has(from) ? (this.charsetVariables.get(from) ?? null) : c.clientCharset;
      }
      this.forgetVariables(userVariablesTouched(s));
      saves.push(...c.savesCharsetTo);
    }
    // A change must end its query, so what a save in it reads is the set in force now.
    if (saves.length > 0) after.push(() => saves.forEach((v) => this.charsetVariables.set(v, current)));
    if (charset !== undefined) {
      // Multibyte client character sets (GBK, SJIS, BIG5 …) can hide a quote in a trail byte:
      // only a set airlock reads exactly keeps non-ASCII text readable.
      after.push(() => this.setClientCharset(charset));
    }
    if (statements.some((s) => s.kinds.includes('use'))) {
      const m = statements.length === 1 ? USE_DB.exec(sql) : null;
      if (m === null) {
        return this.answer({ code: ErrorNumber.ER_NOT_SUPPORTED_YET, sqlState: '42000', message: 'airlock: USE must name one database, alone in its statement' }, Command.COM_QUERY);
      }
      const db = m[1] !== undefined ? m[1].replace(/``/g, '`') : (m[2] ?? '');
      after.push(() => this.useDatabase(db));
    }
    if (this.masker !== null) await this.masker.prepare(statements);
    if (this.ended) return;
    // Applied once the last statement has succeeded (its OK has no MORE_RESULTS_EXISTS).
    const onOk = after.length === 0 ? null : (status: number) => {
      if ((status & ServerStatus.MORE_RESULTS_EXISTS) === 0) after.forEach((f) => f());
    };
    const ddl = statements.some(changesRelations);
    if (ddl) this.opts.views?.catalog.forget();
    await this.forward(p, { statements, onOk }, durable);
    if (ddl) this.opts.views?.catalog.forget();
  }

  /**
   * Whether a statement may be forwarded while its record syncs: effect-free by its text, and
   * every relation it reads known to be a base table (looked up now if not known; a look-up
   * that fails, or cannot start while another runs, leaves it durable-before-forwarded).
   */
  private async effectFree(st: StatementAnalysis): Promise<boolean> {
    const views = this.opts.views;
    if (views === undefined || views === null || !mayBeEffectFreeMysql(st)) return false;
    const candidates = (ref: RelationRef): string[] => this.session.resolveRelation(ref).filter((n) => !n.startsWith('pg_temp.') && !n.startsWith('pg_catalog.'));
    const names = st.reads.flatMap(candidates);
    if (names.some((n) => views.catalog.isView(n) === undefined)) {
      try {
        if (!(await views.catalog.loadIfIdle(names, views.upstream))) return false;
      } catch (e) {
        this.session.logger.warn({ code: asAirlockError(e).code }, 'view look-up for the pipelined audit failed');
        return false;
      }
    }
    return isEffectFreeMysql(st, (ref) => {
      const c = candidates(ref);
      return c.length > 0 && c.every((n) => views.catalog.isView(n) === false);
    });
  }

  private async prepare(p: Packet, sql: string): Promise<void> {
    const analysis = this.session.analyzeSql(sql, 'mysql');
    const statements = analysis.statements.filter((s) => !s.kinds.includes('empty'));
    let approved: FinalDecision | null = null;
    const refusal = await this.decideAll(analysis.statements, true, (d) => {
      if (approved === null || (d.effect === 'allow' && d.approved?.perExecution === true)) approved = d;
    });
    if (this.ended) return;
    if (refusal !== null) return this.answer(refusal, Command.COM_STMT_PREPARE);
    if (statements.some((s) => s.kinds.includes('kill') || s.kinds.includes('use'))) {
      return this.answer({ code: ErrorNumber.ER_NOT_SUPPORTED_YET, sqlState: '42000', message: 'airlock: KILL and USE cannot be prepared through airlock' }, Command.COM_STMT_PREPARE);
    }
    const d = approved as FinalDecision | null;
    const perExecution = d !== null && d.effect === 'allow' && d.approved?.perExecution === true ? { statements, credit: 1 } : null;
    const prepared: Prepared = { statement: statements.length === 1 ? (statements[0] ?? null) : null, perExecution, cursor: null };
    // `SET character_set_client = ?`: the value comes with each execution.
    if (statements.some((s) => mysqlSettingChanges(s).clientCharset !== undefined)) this.setsCharset.add(prepared);
    const touched = statements.map((s) => userVariablesTouched(s));
    const names = new Set<string>();
    for (const t of touched) if (t !== 'any') t.forEach((v) => names.add(v));
    this.preparedVariables.set(prepared, touched.includes('any') ? 'any' : names);
    this.forgetVariables(this.preparedVariables.get(prepared) ?? 'any');
    if (this.masker !== null) await this.masker.prepare(statements);
    if (this.ended) return;
    // The server's "last prepared" statement is this one once its OK has arrived, none if refused.
    this.lastPrepared = null;
    await this.forward(p, { phase: 'prepare', prepared });
    if ([...this.prepared.values()].includes(prepared)) this.lastPrepared = prepared;
  }

  private preparedFor(id: number): Prepared | null {
    return id === LAST_PREPARED ? this.lastPrepared : (this.prepared.get(id) ?? null);
  }

  private unknownStatement(id: number, code: number): void {
    this.answer({ code: ErrorNumber.ER_UNKNOWN_STMT_HANDLER, sqlState: 'HY000', message: `airlock: unknown prepared statement handler (${id}) given to ${commandName(code)}; the command was not sent to the server` }, code);
  }

  /**
   * COM_STMT_BULK_EXECUTE (MariaDB): one prepared statement run for many rows of parameters,
   * judged as COM_STMT_EXECUTE of that statement — its policy was decided at prepare, and its
   * masking plan is the execute's. Fail closed where an execute-by-execute judgement could not
   * be kept: a statement approved per execution (one approval must not run many rows), a
   * statement that returns rows (RETURNING, SELECT) or whose text airlock did not see as one
   * statement, and any flag but SEND_TYPES_TO_SERVER (unit results come as a result set).
   */
  private async bulk(p: Packet): Promise<void> {
    const code = Command.COM_STMT_BULK_EXECUTE;
    if (p.payload.length < 7) throw new AirlockError('AIRLOCK_PROTOCOL', 'COM_STMT_BULK_EXECUTE shorter than its header', { fatal: true });
    const id = p.payload.readUInt32LE(1);
    const flags = p.payload.readUInt16LE(5);
    const prepared = this.preparedFor(id);
    if (prepared === null) return this.unknownStatement(id, code);
    const refuse = (why: string): void => this.answer({ code: ErrorNumber.ER_NOT_SUPPORTED_YET, sqlState: '42000', message: `airlock: ${why}; nothing was run` }, code);
    if ((flags & ~BULK_SEND_TYPES) !== 0) return refuse(`COM_STMT_BULK_EXECUTE flags 0x${flags.toString(16)} are not supported (only SEND_TYPES_TO_SERVER)`);
    if (prepared.perExecution !== null) return refuse('a statement approved per execution cannot run as a bulk; execute it row by row');
    const statement = prepared.statement;
    if (statement === null || statement.outputs !== null) return refuse('a bulk execute is accepted for a single statement that returns no rows (INSERT, UPDATE, DELETE without RETURNING)');
    if (this.masker !== null) await this.masker.prepare([statement]);
    if (this.ended) return;
    const unknownCharset = this.setsCharset.has(prepared);
    this.forgetVariables(this.preparedVariables.get(prepared) ?? 'any');
    return this.forward(p, { binary: true, prepared, statements: [statement], onOk: unknownCharset ? () => this.setClientCharset(null) : null });
  }

  /**
   * Every statement must be allowed; the first refusal wins (returned as the client's error).
   * With `pipelined` (one effect-free statement): an allowed statement does not wait for its
   * record, and `pipelined` is given the promise that settles when the record is durable.
   */
  private async decideAll(statements: StatementAnalysis[], reuse: boolean, onAllow?: (d: FinalDecision) => void, pipelined?: (durable: Promise<void>) => void): Promise<MysqlErrorFields | null> {
    let approvalId: string | null = null;
    for (const statement of statements) {
      let d: FinalDecision;
      const onHold = (h: { approvalId: string; rule: string }): void => {
        // MySQL has no asynchronous notice: the id goes to the log now and into the error text if refused.
        approvalId = h.approvalId;
        this.session.logger.info({ approval: h.approvalId, rule: h.rule }, 'mysql statement held for approval');
      };
      const action = { kind: 'sql', dialect: 'mysql', text: statement.text, statement } as const;
      try {
        if (pipelined !== undefined && !statement.kinds.includes('empty')) {
          const checked = await this.session.checkEffectFree(action, onHold);
          d = checked.decision;
          if (d.effect === 'allow') pipelined(checked.durable);
        } else d = await this.session.check(action, onHold, reuse);
      } catch (e) {
        const err = asAirlockError(e);
        if (err.fatal) throw err;
        return mysqlErrorFor(err);
      }
      if (d.effect === 'deny' && statement.syntaxError !== undefined) {
        // Text the server would reject as well (whichever rule its unknown effects met): the
        // client gets the error the server would give.
        return { code: ErrorNumber.ER_PARSE_ERROR, sqlState: '42000', message: `airlock: You have an error in your SQL syntax (${statement.syntaxError}); the statement was not sent to the server` };
      }
      if (d.effect === 'deny') {
        const suffix = approvalId === null ? '' : ` (approval ${approvalId})`;
        return mysqlErrorFor(new AirlockError('AIRLOCK_DENIED', `denied by rule ${d.rule}: ${d.reason}${suffix}`, { rule: d.rule }));
      }
      onAllow?.(d);
    }
    return null;
  }

  private decideText(text: string): Promise<MysqlErrorFields | null> {
    return this.decideAll(this.session.analyzeSql(text, 'mysql').statements, false);
  }

  private useDatabase(db: string): void {
    this.session.setParameter('search_path', `"${db.replace(/"/g, '""')}"`);
  }

  private async kill(code: number, req: KillRequest, statements: StatementAnalysis[]): Promise<void> {
    if (req.targetConnectionId === this.opts.connectionId) {
      // The session's own connection: the server runs the KILL on itself and answers as it does
      // directly (1927 "Connection was killed", then it closes; or the QUERY form's answer).
      const sql = `KILL ${req.query ? 'QUERY' : 'CONNECTION'} ${this.opts.upstreamId}`;
      const own = framePacket(Buffer.concat([Buffer.from([Command.COM_QUERY]), Buffer.from(sql, 'latin1')]), 0);
      return this.forward({ seq: 0, lastSeq: 0, raw: own, payload: own.subarray(4) }, { statements });
    }
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

  /** Sends a command upstream; settles once its answer has ended. `durable`: pipelined, its answer is held until then. */
  private forward(p: Packet, o: ResponseOptions, durable: Promise<void> | null = null): Promise<void> {
    return new Promise<void>((resolve) => {
      const r = newResponse(p.payload[0] as number, o, this.masker !== null, resolve);
      this.response = r;
      if (durable !== null) this.holdUntilDurable(r, durable);
      this.upstream.write(p.raw);
    });
  }

  /**
   * Pipelined write-ahead: the command is on its way, and every byte the upstream sends is
   * held (reading paused, so it is bounded by one read) until its record is durable. If the
   * sync fails, its answer is read to its end and dropped, and the client gets the audit error
   * in its place; the session goes on, as after any refused statement.
   */
  private holdUntilDurable(r: Response, durable: Promise<void>): void {
    this.awaitingDurable = true;
    durable
      .catch((e: unknown) => {
        this.unaudited = { response: r, error: mysqlErrorFor(asAirlockError(e)) };
      })
      .finally(() => {
        this.awaitingDurable = false;
        this.releaseHeld();
      });
  }

  private releaseHeld(): void {
    if (this.ended) return;
    for (const chunk of this.heldUpstream.splice(0)) this.fromUpstream(chunk);
    if (!this.ended && !this.awaitingDurable && !this.client.writableNeedDrain) this.upstream.resume();
  }

  /** The answer of a command whose record never became durable has ended: nothing of it went out; the error does. */
  private unauditedEnded(err: MysqlErrorFields): void {
    this.unaudited = null;
    const buf = framePacket(encodeErr(err), 1);
    this.out.push(buf);
    this.session.record({ type: 'result', command: 'SELECT', rows: 0, bytes: buf.length, durationMs: 0, errorCode: err.sqlState });
  }

  // ---- upstream → client -------------------------------------------------

  private fromUpstream(chunk: Buffer): void {
    if (this.ended) return;
    if (this.awaitingDurable) {
      this.heldUpstream.push(chunk);
      this.upstream.pause();
      return;
    }
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

  /** Packets that lie next to each other in the chunk they came in leave as one view, uncopied. */
  private queueOut(bytes: Buffer): void {
    if (this.unaudited !== null) return;
    const last = this.out[this.out.length - 1];
    if (last !== undefined && last.buffer === bytes.buffer && last.byteOffset + last.length === bytes.byteOffset) {
      this.out[this.out.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + bytes.length);
    } else this.out.push(bytes);
  }

  private upstreamPacket(p: Packet): void {
    const r = this.response;
    if (r !== null) return this.follower.packet(r, p);
    // Nothing asked: the server may say why it is closing (an ERR); anything else is a violation.
    if (p.payload[0] !== PacketHeader.ERR) throw new AirlockError('AIRLOCK_PROTOCOL', 'the upstream sent a packet no command asked for', { fatal: true });
    this.queueOut(p.raw);
  }

  private writeClient(buf: Buffer): boolean {
    this.session.stats.bytesToClient += buf.length;
    return this.client.write(buf);
  }

  // ---- endings -----------------------------------------------------------

  /**
   * The upstream closed. The client gets what reached airlock (the server's ERR, if it said why:
   * 1927 "Connection was killed", a shutdown) and then the close, as it would directly: MariaDB
   * closes a connection killed mid-query without a word, and drivers report that themselves
   * (mysql2's PROTOCOL_CONNECTION_LOST). No error of airlock's is added; the audit log has the end.
   */
  private upstreamLost(): void {
    if (this.ended) return;
    this.flushClient();
    this.end('AIRLOCK_UPSTREAM_LOST');
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

