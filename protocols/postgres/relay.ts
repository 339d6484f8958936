/**
 * The proxy phase of one Postgres session: frames flow both ways, relayed as the bytes
 * that arrived unless policy needs them. Every statement a client sends (simple Query,
 * Parse, FunctionCall) is checked before it is forwarded; a denied statement is replaced
 * by a marker text that makes the upstream fail exactly where Postgres would fail the
 * statement, and the upstream's error for that marker is replaced by airlock's own —
 * so ordering, pipelining and transaction state stay what the server says they are.
 * The policy on what the client sends is statement-check.ts, the audit summary of results
 * result-summary.ts, the output buffers out-buffer.ts; the flow and its lifecycle stay here.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Session } from '../../src/core/session-types.js';
import type { FinalDecision } from '../../src/core/types.js';
import { AirlockError, asAirlockError } from '../../src/util/errors.js';
import { FrameReader, type Frame } from './codec/framing.js';
import { MessageCode } from './codec/codes.js';
import { decodeFrontend, encodeParse, encodeQuery } from './codec/frontend.js';
import { decodeErrorResponse, encodeErrorResponse, encodeNoticeResponse } from './codec/backend.js';
import { pgErrorFor, pgSyntaxError, type PgErrorFields } from './errors.js';
import type { ResultMasker } from './result-masking.js';
import type { PgCatalog } from './catalog.js';
import type { StatementAnalysis } from '../../parsers/sql/types.js';
import { Segments, Slab } from './out-buffer.js';
import { ResultSummary } from './result-summary.js';
import { checkExecution, decideStatements, type EffectTracker } from './statement-check.js';

interface Unit {
  /** A marker in the statement text that stands in for a denied statement. */
  deniedMarker: Buffer | null;
  error: PgErrorFields | null;
  /** An effect-free Query forwarded while its audit record syncs, and that sync failed: the client gets this instead of the result. */
  unaudited?: PgErrorFields;
  /** Forwarded a statement that may change the catalog the effect judgement uses (EffectTracker). */
  changesCatalog?: boolean;
}

export interface RelayOptions {
  session: Session;
  client: Socket;
  upstream: Socket;
  maxMessageBytes: number;
  /** Bytes that arrived from each side before the relay took over. */
  clientLeftover?: Buffer;
  upstreamLeftover?: Buffer;
  onEnd: (reason: string) => void;
  /** Set for identities under a mask rule: follows results and rewrites what must be masked. */
  masker?: ResultMasker | null;
  catalog?: PgCatalog | null;
  /** The effect catalog's view of this session (pipelined write-ahead). */
  effects: EffectTracker;
}

export class Relay {
  private readonly session: Session;
  private readonly client: Socket;
  private readonly upstream: Socket;
  private readonly clientReader: FrameReader;
  private readonly upstreamReader: FrameReader;
  private readonly inbox: Frame[] = [];
  private pumping = false;
  private ended = false;
  /** Response units in flight: one per forwarded Query or Sync, closed by ReadyForQuery. */
  private readonly units: Unit[] = [];
  /** The extended-protocol unit being built until the next Sync. */
  private open: Unit = { deniedMarker: null, error: null };
  private readonly toClient = new Segments();
  private readonly masker: ResultMasker | null;
  /** Upstream frames held while a catalog look-up for a RowDescription runs. */
  private readonly heldUpstream: Frame[] = [];
  private upstreamHeld = false;
  /** Effect-free Queries forwarded whose audit records are not yet durable: nothing from upstream is delivered meanwhile. */
  private awaitingDurable = 0;

  constructor(private readonly opts: RelayOptions) {
    this.session = opts.session;
    this.client = opts.client;
    this.upstream = opts.upstream;
    this.clientReader = new FrameReader({ maxMessageBytes: opts.maxMessageBytes, maxStartupBytes: 0, startup: false });
    this.upstreamReader = new FrameReader({ maxMessageBytes: opts.maxMessageBytes, maxStartupBytes: 0, startup: false });
    this.masker = opts.masker ?? null;
    if (this.masker !== null) {
      const slab = new Slab();
      this.masker.allocate = (size) => slab.allocOut(size);
    }
    const record = opts.session.connection.record;
    this.summary = new ResultSummary(opts.session, this.masker, 'results' in record && record.results === 'rows');
  }

  /** The audit summary of the result flowing to the client. */
  private readonly summary: ResultSummary;
  /** Prepared statements approved under a per_execution rule: each Execute asks again. */
  private readonly perExecution = new Map<string, { statements: StatementAnalysis[]; credit: number }>();
  /**
   * Prepared statements that may change the catalog when run (DDL; DML or calls where user code
   * may run DDL): the Parse marked it once, but each Bind runs it again, unchecked — a DDL
   * prepared early and run later by Bind/Execute alone would otherwise leave the effect
   * catalog trusted (a table turned into a view, and a SELECT of it pipelined).
   */
  private readonly catalogChangers = new Map<string, StatementAnalysis[]>();
  /** Portal → prepared statement name, for the per_execution check at Execute. */
  private readonly portals = new Map<string, string>();

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
      this.clientReader.push(chunk, (f) => this.inbox.push(f));
    } catch (e) {
      this.fatal(asAirlockError(e));
      return;
    }
    if (this.pumping && this.inbox.length > INBOX_PAUSE_FRAMES) this.client.pause();
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      let frame: Frame | undefined;
      while ((frame = this.inbox.shift()) !== undefined && !this.ended) {
        const t = frame.type;
        if ((this.perExecution.size > 0 || this.catalogChangers.size > 0) && (t === MessageCode.Bind || t === MessageCode.Execute)) {
          const m = decodeFrontend(frame);
          if (m.type === 'Bind') {
            this.portals.set(m.portal, m.statement);
            const changer = this.catalogChangers.get(m.statement);
            if (changer !== undefined) this.mayChangeCatalog(changer, this.open);
          } else if (m.type === 'Execute') {
            const held = this.perExecution.get(this.portals.get(m.portal) ?? '\u0000');
            // The approval given at Parse covers the first execution.
            if (held !== undefined && held.credit > 0) held.credit--;
            else if (held !== undefined) {
              this.flushUpstream();
              const ok = await this.approveExecution(held.statements);
              if (this.ended) return;
              if (!ok) continue;
            }
          }
        }
        if (t === MessageCode.Query || t === MessageCode.Parse || t === MessageCode.FunctionCall) {
          this.flushUpstream();
          // Frames behind a statement being checked wait in the inbox; the socket is paused
          // only when too many pile up (pausing per statement costs two syscalls).
          if (this.inbox.length > INBOX_PAUSE_FRAMES) this.client.pause();
          await this.checked(frame);
          if (this.ended) return;
          continue;
        }
        this.masker?.onClientFrame(frame, () => decodeFrontend(frame as Frame) as unknown as { type: string });
        if (t === MessageCode.Sync) {
          this.units.push(this.open);
          this.open = { deniedMarker: null, error: null };
        } else if (t === MessageCode.Terminate) {
          this.toUpstream.add(frame.raw);
          this.flushUpstream();
          this.end('client terminated');
          return;
        } else if (!FORWARDED.has(t)) {
          this.flushUpstream();
          throw new AirlockError('AIRLOCK_PROTOCOL', `unexpected message type ${JSON.stringify(String.fromCharCode(t))}`, { fatal: true });
        }
        // Pass-through frames that arrived together leave together, as the bytes that arrived.
        this.toUpstream.add(frame.raw);
      }
      this.flushUpstream();
      if (this.upstream.writableNeedDrain) this.client.pause();
      else if (this.client.isPaused()) this.client.resume();
    } catch (e) {
      this.fatal(asAirlockError(e));
    } finally {
      this.pumping = false;
    }
  }

  private readonly toUpstream = new Segments();

  private flushUpstream(): void {
    const parts = this.toUpstream.take();
    if (parts.length === 0) return;
    const up = this.upstream;
    if (parts.length === 1 && parts[0] !== undefined) up.write(parts[0]);
    else if (parts.length > 8) up.write(Buffer.concat(parts));
    else {
      up.cork();
      for (const p of parts) up.write(p);
      up.uncork();
    }
  }

  /** Query, Parse or FunctionCall: analyse, decide, then forward the frame or its stand-in. */
  private async checked(frame: Frame): Promise<void> {
    const msg = decodeFrontend(frame);
    let text: string;
    if (msg.type === 'Query' || msg.type === 'Parse') text = msg.sql;
    else text = '';
    let decision: FinalDecision | null = null;
    let failure: AirlockError | null = null;
    let statements: StatementAnalysis[] = [];
    let durable: Promise<void> | null = null;
    let denied: StatementAnalysis | undefined;
    let proven = false;
    try {
      ({ decision, statements, durable, denied, proven } = await decideStatements(this.session, this.opts.effects, msg.type === 'FunctionCall' ? null : text, msg.type === 'Parse', (notice) => this.notice(notice)));
    } catch (e) {
      failure = asAirlockError(e);
      if (failure.fatal) throw failure;
    }
    const allowed = decision !== null && decision.effect === 'allow';
    const simpleCycle = msg.type !== 'Parse'; // Query and FunctionCall each end with their own ReadyForQuery
    if (this.masker !== null) {
      if (allowed) await this.masker.prepare(statements);
      if (msg.type === 'Parse') this.masker.onParse(msg.name, allowed ? (statements[0] ?? null) : null);
      else this.masker.onQuery(allowed && msg.type === 'Query' ? statements : []);
    }
    if (msg.type === 'Parse') {
      if (allowed && decision?.effect === 'allow' && decision.approved?.perExecution === true) this.perExecution.set(msg.name, { statements, credit: 1 });
      else this.perExecution.delete(msg.name);
      if (allowed && this.opts.effects.mayChangeWhenRun(statements)) this.catalogChangers.set(msg.name, statements);
      else this.catalogChangers.delete(msg.name);
    }
    if (allowed) {
      const unit: Unit = { deniedMarker: null, error: null };
      if (simpleCycle) this.units.push(unit);
      if (durable !== null) this.holdUntilDurable(unit, durable);
      // Its answer is the ReadyForQuery of its Query/FunctionCall, or of the Sync that ends its batch.
      const answeredBy = simpleCycle ? unit : this.open;
      if (!proven) this.mayChangeCatalog(msg.type === 'FunctionCall' ? null : statements, answeredBy);
      this.upstream.write(frame.raw);
      return;
    }
    const err =
      failure ??
      (decision !== null && decision.effect === 'deny'
        ? new AirlockError('AIRLOCK_DENIED', `denied by rule ${decision.rule}: ${decision.reason}`, { rule: decision.rule })
        : new AirlockError('AIRLOCK_DENIED'));
    const marker = `airlock_denied_${randomBytes(6).toString('hex')}`;
    // Text the server would reject as well (whichever rule its unknown effects met): the client
    // gets the error the server would give, 42601, with airlock's reason.
    const syntaxError = failure === null && decision?.effect === 'deny' ? denied?.syntaxError : undefined;
    const error = syntaxError === undefined ? pgErrorFor(err, false) : pgSyntaxError(syntaxError);
    const unit: Unit = { deniedMarker: Buffer.from(marker), error };
    if (simpleCycle) {
      this.units.push(unit);
      this.upstream.write(encodeQuery(marker));
    } else if (msg.type === 'Parse') {
      // Inside the extended protocol: fail at this point of the batch, as Postgres would.
      if (this.open.deniedMarker === null) this.open = { ...unit, changesCatalog: this.open.changesCatalog };
      this.upstream.write(encodeParse(msg.name, marker));
    }
  }

  /** Statements not proven effect-free go up, answered in `unit`: the effect catalog is marked changed if they may change it. */
  private mayChangeCatalog(statements: StatementAnalysis[] | null, unit: Unit): void {
    if (this.opts.effects.forwarded(statements, false) && unit.changesCatalog !== true) {
      unit.changesCatalog = true;
      this.opts.effects.started();
    }
  }

  /**
   * An Execute of a statement approved under a per_execution rule asks again. Refused: the
   * Execute becomes a marker Parse that fails where the Execute would have run, so the
   * server skips the rest of the batch up to Sync and the client gets airlock's error.
   */
  private async approveExecution(statements: StatementAnalysis[]): Promise<boolean> {
    const refusal = await checkExecution(this.session, statements, (text) => this.notice(text));
    if (refusal === null) return true;
    const marker = `airlock_denied_${randomBytes(6).toString('hex')}`;
    if (this.open.deniedMarker === null) this.open = { deniedMarker: Buffer.from(marker), error: pgErrorFor(refusal, false), changesCatalog: this.open.changesCatalog };
    this.upstream.write(encodeParse('', marker));
    return false;
  }

  /**
   * Pipelined write-ahead: the Query is forwarded now, and every upstream frame from here on
   * is held (reading paused, so it is bounded by one read) until its record is durable. If
   * the sync fails, its result is dropped and the client gets 58030 instead.
   */
  private holdUntilDurable(unit: Unit, durable: Promise<void>): void {
    this.awaitingDurable++;
    const settled = (): void => {
      this.awaitingDurable--;
      this.releaseHeld();
    };
    // One reaction per statement (not a catch and a finally chained).
    durable.then(settled, (e: unknown) => {
      try {
        unit.unaudited = pgErrorFor(asAirlockError(e), false);
      } finally {
        settled();
      }
    });
  }

  private notice(text: string): void {
    this.writeClient(encodeNoticeResponse({ severity: 'NOTICE', code: '00000', message: text }));
  }

  // ---- upstream → client -------------------------------------------------

  private fromUpstream(chunk: Buffer): void {
    if (this.ended) return;
    try {
      this.upstreamReader.push(chunk, (f) => this.upstreamArrived(f));
    } catch (e) {
      this.fatal(asAirlockError(e));
      return;
    }
    this.flushToClient();
  }

  /** A frame from upstream: handled now, or held while a catalog look-up runs. */
  private upstreamArrived(f: Frame): void {
    if (this.upstreamHeld || this.awaitingDurable > 0) {
      this.heldUpstream.push(f);
      this.upstream.pause();
      return;
    }
    const m = this.masker;
    if (m !== null && this.opts.catalog) {
      const oids = m.needsCatalog(f);
      if (oids.length > 0) {
        this.upstreamHeld = true;
        this.heldUpstream.push(f);
        this.upstream.pause();
        void this.lookUp(oids);
        return;
      }
    }
    this.upstreamFrame(f);
  }

  private async lookUp(oids: number[]): Promise<void> {
    try {
      await this.opts.catalog?.load(oids, this.session.lease, (sql) => this.session.analyzeSql(sql, 'postgres'));
    } catch (e) {
      // Fail closed: columns of relations that could not be named are masked.
      this.session.logger.warn({ code: asAirlockError(e).code }, 'catalog look-up for masking failed');
    }
    if (this.ended) return;
    this.upstreamHeld = false;
    this.releaseHeld();
  }

  /** Handles the frames held back, once neither a catalog look-up nor an audit sync holds them. */
  private releaseHeld(): void {
    if (this.ended || this.upstreamHeld || this.awaitingDurable > 0) return;
    const held = this.heldUpstream.splice(0);
    try {
      for (let i = 0; i < held.length; i++) {
        const f = held[i] as Frame;
        if (this.upstreamHeld || this.awaitingDurable > 0) this.heldUpstream.push(f);
        else this.upstreamArrived(f);
      }
    } catch (e) {
      this.fatal(asAirlockError(e));
      return;
    }
    this.flushToClient();
    if (!this.upstreamHeld && this.awaitingDurable === 0 && !this.client.writableNeedDrain) this.upstream.resume();
  }

  private flushToClient(): void {
    const parts = this.toClient.take();
    if (parts.length === 0) return;
    let ok = true;
    if (parts.length === 1 && parts[0] !== undefined) ok = this.writeClient(parts[0]);
    // Many pieces (masked rows between forwarded ones): one copy beats a write per piece.
    else if (parts.length > 8) ok = this.writeClient(Buffer.concat(parts));
    else {
      this.client.cork();
      for (const p of parts) ok = this.writeClient(p);
      this.client.uncork();
    }
    if (!ok) this.upstream.pause();
  }

  private upstreamFrame(f: Frame): void {
    const failed = this.units[0]?.unaudited;
    if (failed !== undefined) {
      // Its record never became durable: nothing of the result, the audit error in its place.
      this.masker?.onUpstreamFrame(f);
      if (f.type !== MessageCode.ReadyForQuery) return;
      const own = encodeErrorResponse(failed);
      this.toClient.addOwn(own);
      this.session.record({ type: 'result', rows: 0, bytes: own.length, durationMs: 0, errorCode: failed.code });
      this.summary.reset();
    }
    switch (f.type) {
      case MessageCode.ReadyForQuery:
        // The status byte follows the 5-byte header (read from raw: no payload view made).
        this.opts.effects.readyForQuery(this.units.shift()?.changesCatalog === true, f.raw[5] ?? 0);
        break;
      case MessageCode.ErrorResponse: {
        const unit = this.units[0];
        if (unit?.deniedMarker != null && unit.error !== null && f.payload.includes(unit.deniedMarker)) {
          this.masker?.onUpstreamFrame(f);
          const own = encodeErrorResponse(unit.error);
          this.toClient.addOwn(own);
          this.summary.summarise(f, own);
          return;
        }
        // The server's FATAL (or PANIC) is the session's last word: the close that follows
        // must not add a second fatal error of airlock's own (drivers would report two).
        const severity = decodeErrorResponse(f.payload).fields.severityNonLocalized;
        if (severity === 'FATAL' || severity === 'PANIC') this.upstreamEnded = true;
        break;
      }
      case MessageCode.ParameterStatus: {
        const z1 = f.payload.indexOf(0);
        if (z1 > 0) {
          const z2 = f.payload.indexOf(0, z1 + 1);
          this.session.setParameter(f.payload.toString('utf8', 0, z1), f.payload.toString('utf8', z1 + 1, z2 < 0 ? undefined : z2));
        }
        break;
      }
      default:
        break;
    }
    if (this.masker !== null) {
      const replaced = this.masker.onUpstreamFrame(f);
      if (replaced !== null) {
        // Rows rewritten into the slab one after another merge into one piece.
        this.toClient.add(replaced);
        this.summary.summarise(f, replaced);
        return;
      }
    }
    this.toClient.add(f.raw);
    this.summary.summarise(f, f.raw);
  }

  private writeClient(buf: Buffer): boolean {
    this.session.stats.bytesToClient += buf.length;
    return this.client.write(buf);
  }

  // ---- endings -----------------------------------------------------------

  /** Set once the upstream has sent a FATAL error: its close is then the expected end. */
  private upstreamEnded = false;

  private upstreamLost(): void {
    if (this.ended) return;
    if (this.upstreamEnded) {
      this.end('upstream ended the session (FATAL)');
      return;
    }
    this.fatal(new AirlockError('AIRLOCK_UPSTREAM_LOST', `the upstream of connection "${this.session.connection.name}" closed the connection`, { fatal: true }));
  }

  /** Sends a FATAL ErrorResponse to the client and ends the session. */
  fatal(e: AirlockError): void {
    if (this.ended) return;
    if (e.code === 'AIRLOCK_INTERNAL') this.session.logger.error({ err: e.cause }, 'internal error in postgres relay');
    if (!this.client.destroyed) this.client.write(encodeErrorResponse(pgErrorFor(e, true)));
    this.end(e.code);
  }

  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.client.end();
    this.upstream.end();
    setTimeout(() => {
      this.client.destroy();
      this.upstream.destroy();
    }, 1000).unref();
    this.opts.onEnd(reason);
  }
}

/** Client frames queued behind a statement check before the client socket is paused. */
const INBOX_PAUSE_FRAMES = 256;

const FORWARDED = new Set<number>([
  MessageCode.Bind, MessageCode.Describe, MessageCode.Execute, MessageCode.Close, MessageCode.Flush,
  MessageCode.CopyData, MessageCode.CopyDone, MessageCode.CopyFail,
]);
