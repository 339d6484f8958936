/**
 * The write-ahead audit log: one hash chain per node, JSON lines, group commit.
 *
 * Durability: append() resolves only after its line is written and fdatasync'ed, and
 * after every earlier append has resolved. Appends that arrive while syncs are running
 * wait and go out together as the next batch; up to `maxSyncsInFlight` batches may be
 * syncing at once (their lines are written in seq order; they resolve in seq order).
 *
 * Failure: a batch that cannot be written or synced (ENOSPC, EACCES, EROFS, a vanished
 * directory) fails, and so does every batch after it. Once nothing is in flight the files
 * are cut back to the last durable record, then those appends reject with
 * AIRLOCK_AUDIT_UNAVAILABLE: a failed event is never in the chain. `healthy` is false
 * from the failure until a later batch succeeds; each append retries, so the log
 * recovers by itself when the disk becomes writable again.
 *
 * Crash: see head.ts (a torn last line is cut off and recorded on open).
 */
import { accessSync, closeSync, constants, fdatasync, fstatSync, openSync, statSync, writeSync } from 'node:fs';
import { mkdir, open, stat, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { Logger } from '../util/log.js';
import { AirlockError } from '../util/errors.js';
import { canonicalJson, canonicalScrubbedJson, recordHashOf, recordLine } from './canonical.js';
import { dayOf, fileName, listAuditFiles } from './files.js';
import { findHead, lastRecordOf, truncateFile, type FileState } from './head.js';
import { scrubRecorded } from './scrub.js';
import { loadOrCreateSigner, type CheckpointSigner } from './signing.js';
import { GENESIS_HASH, type AuditEventBody, type AuditRecord, type CheckpointEvent, type PrunedEvent } from './types.js';

/** Longest an event appended with appendLazy() waits for a batch to join. */
const LAZY_FLUSH_MS = 20;

export interface AuditLogOptions {
  /** `state_dir/audit`. */
  dir: string;
  node?: string;
  /** fdatasync each batch (default true). Off: written, but a power loss may lose the tail. */
  fsync?: boolean;
  /** Rotate to the next file of the day past this size (default 64 MiB). */
  maxFileBytes?: number;
  /** A signed checkpoint whenever seq is a multiple of this (default 1000; 0: none). */
  checkpointEvery?: number;
  /** Default: `audit-signing.key` beside the audit directory (i.e. in state_dir). */
  keyFile?: string;
  logger?: Logger;
  /**
   * Batches whose sync may overlap (default 4). Concurrent fdatasyncs of one file share
   * journal commits, so a second batch need not wait a whole sync before starting its own.
   */
  maxSyncsInFlight?: number;
}

interface Pending {
  /** The event in canonical form, password literals scrubbed: what is hashed and written. */
  eventJson: string;
  resolve: (r: AuditRecord) => void;
  reject: (e: Error) => void;
}

/** A queued item: an event from a caller, or a checkpoint asked for by close(). */
type Item = Pending | { checkpoint: true; resolve: () => void; reject: (e: Error) => void };

interface Segment {
  file: FileState;
  created: boolean;
  preSize: number;
  lines: string[];
  opened: boolean;
}

/**
 * A record whose event object is parsed from its canonical JSON only when someone reads it
 * (an exporter, a caller of append): most records are only ever written.
 */
function lazyRecord(seq: number, ts: string, node: string, prev: string, eventJson: string): AuditRecord {
  let event: AuditEventBody | null = null;
  const hash = recordHashOf({ seq, ts, node, prev }, eventJson);
  return {
    seq,
    ts,
    node,
    prev,
    hash,
    get event(): AuditEventBody {
      event ??= JSON.parse(eventJson) as AuditEventBody;
      return event;
    },
  };
}

const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024;
const fdatasyncAsync = promisify(fdatasync);

function errnoCode(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : 'error';
}

export class AuditLog {
  private queue: Item[] = [];
  private pumping: Promise<void> | null = null;
  /** Where the next batch is built from: includes batches written but not yet synced. */
  private head = { seq: 0, hash: GENESIS_HASH };
  private current: FileState | null = null;
  /** What is durable: every append up to here has resolved. */
  private durable: { head: { seq: number; hash: string }; current: FileState | null } = { head: this.head, current: null };
  /** Batches written whose sync has not finished; each settles in issue order. */
  private readonly inFlight = new Set<Promise<void>>();
  private tail: Promise<void> = Promise.resolve();
  private issued = 0;
  /** The first batch number that failed: it and every later one are refused, then rolled back. */
  private failedFrom: number | null = null;
  /** Appends of failed batches, rejected once the rollback has run. */
  private refused: Array<{ reject: (e: Error) => void; error: Error }> = [];
  private file: { path: string; fd: number; ino: number } | null = null;
  /** Files to cut back before anything else is written, left by a batch that failed. */
  private rollback: Array<{ path: string; size: number; created: boolean }> = [];
  private isHealthy = true;
  private readonly counters = { appends: 0, batches: 0, failures: 0 };
  private closed = false;
  private readonly node: string;
  private readonly fsync: boolean;
  private readonly maxFileBytes: number;
  private readonly checkpointEvery: number;
  private readonly maxSyncsInFlight: number;
  /** Exporter hook (src/audit/exporters): told of each record once it is durable, in seq order. */
  private readonly recordListeners = new Set<(r: AuditRecord) => void>();

  private constructor(
    readonly dir: string,
    opts: AuditLogOptions,
    private readonly signer: CheckpointSigner | null,
    private readonly logger: Logger | undefined,
  ) {
    this.node = opts.node ?? hostname();
    this.fsync = opts.fsync ?? true;
    this.maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.checkpointEvery = opts.checkpointEvery ?? 1000;
    this.maxSyncsInFlight = Math.max(1, opts.maxSyncsInFlight ?? 4);
  }

  static async open(opts: AuditLogOptions): Promise<AuditLog> {
    await mkdir(opts.dir, { recursive: true, mode: 0o700 });
    const every = opts.checkpointEvery ?? 1000;
    const keyFile = opts.keyFile ?? join(dirname(opts.dir), 'audit-signing.key');
    const signer = every > 0 ? await loadOrCreateSigner(keyFile) : null;
    const log = new AuditLog(opts.dir, opts, signer, opts.logger);
    const found = await findHead(opts.dir, opts.fsync ?? true);
    log.head = found.head;
    log.current = found.current;
    log.durable = { head: { ...found.head }, current: found.current === null ? null : { ...found.current } };
    const torn = found.torn;
    if (torn !== null) {
      log.logger?.warn(torn, 'audit: cut off an unfinished last line left by a crash');
      await log.append({ type: 'audit.recovered', ...torn });
    }
    return log;
  }

  get healthy(): boolean {
    return this.isHealthy;
  }

  /** Appends written, batches (one sync each) and failed batches since open: group commit at work. */
  get stats(): { appends: number; batches: number; failures: number } {
    return { ...this.counters };
  }

  /** The last record written: seq and hash. */
  get position(): { seq: number; hash: string } {
    return { ...this.durable.head };
  }

  /**
   * Appends an event that nothing waits on (a result summary, a session end): it joins the
   * next batch a write-ahead append starts, or a batch of its own within LAZY_FLUSH_MS. The
   * chain and its order are the same; only the time of the sync differs.
   */
  appendLazy(event: AuditEventBody): Promise<AuditRecord> {
    return this.enqueue(event, true);
  }

  append(event: AuditEventBody): Promise<AuditRecord> {
    return this.enqueue(event, false);
  }

  private lazyTimer: NodeJS.Timeout | null = null;

  private enqueue(event: AuditEventBody, lazy: boolean): Promise<AuditRecord> {
    if (this.closed) return Promise.reject(new AirlockError('AIRLOCK_AUDIT_UNAVAILABLE', 'the audit log is closed'));
    if (event === null || typeof event !== 'object' || Array.isArray(event) || typeof (event as { type?: unknown }).type !== 'string') {
      return Promise.reject(new AirlockError('AIRLOCK_INTERNAL', 'audit event has no type'));
    }
    let eventJson: string;
    try {
      eventJson = canonicalScrubbedJson(event, scrubRecorded);
    } catch (e) {
      return Promise.reject(new AirlockError('AIRLOCK_INTERNAL', 'audit event is not serialisable', { cause: e }));
    }
    return new Promise<AuditRecord>((resolve, reject) => {
      this.queue.push({ eventJson, resolve, reject });
      if (!lazy) this.kick();
      else if (this.lazyTimer === null) {
        this.lazyTimer = setTimeout(() => {
          this.lazyTimer = null;
          this.kick();
        }, LAZY_FLUSH_MS);
        this.lazyTimer.unref();
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.lazyTimer !== null) {
      clearTimeout(this.lazyTimer);
      this.lazyTimer = null;
      this.kick();
    }
    // Seal the tail with a signature, so a clean shutdown leaves nothing unsigned.
    if (this.signer !== null && this.head.seq > 0) {
      await new Promise<void>((resolve) => {
        this.queue.push({ checkpoint: true, resolve, reject: () => resolve() });
        this.kick();
      });
    }
    while (this.pumping !== null || this.inFlight.size > 0) {
      await this.pumping;
      await Promise.all(this.inFlight);
    }
    this.closeFile();
  }

  /**
   * Calls `listener` with every appended record after it is durable (not checkpoints), in seq
   * order, synchronously from the append's resolution. A listener that throws is ignored:
   * exporters never fail or delay an append. Returns an unsubscribe function.
   */
  onRecord(listener: (r: AuditRecord) => void): () => void {
    this.recordListeners.add(listener);
    return () => this.recordListeners.delete(listener);
  }

  private notify(r: AuditRecord): void {
    for (const l of this.recordListeners) {
      try {
        l(r);
      } catch (e) {
        this.logger?.warn({ err: e }, 'audit: a record listener threw');
      }
    }
  }

  /** Runs prune now and then every `everyMs` (default hourly); returns a stop function. Failures are logged, not thrown. */
  scheduleRetention(olderThanMs: number, everyMs = 3_600_000): () => void {
    const run = (): void => {
      this.prune(olderThanMs).catch((e: unknown) => this.logger?.error({ err: e }, 'audit: retention prune failed'));
    };
    run();
    const timer = setInterval(run, everyMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * Deletes whole files whose UTC day ended more than `olderThanMs` ago (never the newest
   * file). Write-ahead like everything else: the `audit.pruned` event naming the files and
   * the record they end with is durable before the first file goes.
   */
  async prune(olderThanMs: number): Promise<string[]> {
    const cutoff = Date.now() - olderThanMs;
    const files = await listAuditFiles(this.dir);
    const prunable = files.slice(0, -1).filter((f) => Date.parse(`${f.day}T00:00:00Z`) + 86_400_000 <= cutoff);
    if (prunable.length === 0) return [];
    const before = await lastRecordOf(this.dir, prunable);
    const event: PrunedEvent = { type: 'audit.pruned', files: prunable.map((f) => f.name), before };
    await this.append(event);
    for (const f of prunable) await unlink(join(this.dir, f.name));
    this.logger?.info({ files: event.files }, 'audit: pruned files past retention');
    return event.files;
  }

  private kick(): void {
    if (this.pumping !== null) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      // With a failure pending, the last batch in flight to settle kicks (to roll back) instead.
      const room = this.inFlight.size < this.maxSyncsInFlight && (this.failedFrom === null || this.inFlight.size === 0);
      if ((this.queue.length > 0 || this.failedFrom !== null) && room) this.kick();
    });
  }

  /** Issues queued appends as batches while there is room for another sync in flight. */
  private async pump(): Promise<void> {
    // Let appends issued in the same tick join the first batch.
    await Promise.resolve();
    if (this.failedFrom !== null && this.inFlight.size === 0) await this.recover();
    while (this.queue.length > 0 && this.inFlight.size < this.maxSyncsInFlight) {
      if (this.failedFrom !== null) {
        // Roll back only once nothing is in flight; the last one to settle kicks again.
        if (this.inFlight.size > 0) return;
        await this.recover();
      }
      const batch = this.queue;
      this.queue = [];
      await this.issue(batch);
    }
  }

  /** After a failure, with nothing in flight: cut the files back and build from the durable head again. */
  private async recover(): Promise<void> {
    this.closeFile();
    await this.applyRollback().catch(() => undefined);
    this.head = { ...this.durable.head };
    this.current = this.durable.current === null ? null : { ...this.durable.current };
    this.failedFrom = null;
    // Callers hear of the failure once their lines are out of the files (or the cut is pending and blocks all writes).
    const refused = this.refused;
    this.refused = [];
    for (const r of refused) r.reject(r.error);
  }

  /** Writes a batch (synchronously, so file order is seq order) and starts its sync. */
  private async issue(batch: Item[]): Promise<void> {
    const n = ++this.issued;
    let segments: Segment[] = [];
    let fd = -1;
    let newFile = false;
    try {
      await this.applyRollback();
      // An open file would still take writes from a directory made read-only; refuse anyway.
      accessSync(this.dir, constants.W_OK);
      const built = this.build(batch);
      segments = built.segments;
      for (const [i, s] of segments.entries()) {
        const path = join(this.dir, fileName(s.file.day, s.file.index));
        // Reopening closes a descriptor: never under a sync still running on it.
        if (this.needsReopen(path) && this.inFlight.size > 0) {
          await Promise.all(this.inFlight);
          if (this.failedFrom !== null) throw new AirlockError('AIRLOCK_AUDIT_UNAVAILABLE', 'an earlier batch failed');
        }
        fd = this.fileFor(path);
        s.opened = true;
        const data = Buffer.from(s.lines.join(''));
        for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
        newFile = s.created;
        // A batch spanning a rotation: the earlier file is synced before the next one opens.
        if (i < segments.length - 1 && this.fsync) {
          await fdatasyncAsync(fd);
          if (s.created) await this.syncDir();
        }
      }
      this.head = built.head;
      const last = segments[segments.length - 1];
      if (last !== undefined) this.current = last.file;
      this.track(n, batch, segments, built, this.sync(fd, newFile));
    } catch (e) {
      // Nothing more is built on this batch's head: later appends wait for the rollback.
      this.failedFrom = this.failedFrom === null ? n : Math.min(this.failedFrom, n);
      this.track(n, batch, segments, null, Promise.reject(e));
    }
  }

  private async sync(fd: number, newFile: boolean): Promise<void> {
    if (!this.fsync || fd < 0) return;
    await fdatasyncAsync(fd);
    // A new file's name must survive a crash too.
    if (newFile) await this.syncDir();
  }

  /** Settles a batch after its sync and every earlier batch: in order, and never past a failure. */
  private track(
    n: number,
    batch: Item[],
    segments: Segment[],
    built: { head: { seq: number; hash: string }; records: Array<AuditRecord | null> } | null,
    synced: Promise<void>,
  ): void {
    const previous = this.tail;
    const done = (async (): Promise<void> => {
      let error: unknown = null;
      await synced.catch((e: unknown) => {
        error = e;
      });
      await previous;
      if (error === null && this.failedFrom !== null && this.failedFrom < n) error = new Error('an earlier batch failed');
      if (error !== null || built === null) {
        this.fail(n, batch, segments, error);
        return;
      }
      const file = segments[segments.length - 1]?.file;
      this.durable = { head: built.head, current: file === undefined ? this.durable.current : { ...file } };
      if (!this.isHealthy) this.logger?.info('audit: the log is writable again');
      this.isHealthy = true;
      this.counters.batches++;
      this.counters.appends += batch.length;
      for (const r of built.records) if (r !== null && this.recordListeners.size > 0) this.notify(r);
      built.records.forEach((r, i) => {
        const item = batch[i];
        if (item === undefined) return;
        if ('eventJson' in item) item.resolve(r as AuditRecord);
        else item.resolve();
      });
    })();
    this.tail = done;
    this.inFlight.add(done);
    void done.finally(() => {
      this.inFlight.delete(done);
      this.kick();
    });
  }

  private fail(n: number, batch: Item[], segments: Segment[], e: unknown): void {
    this.failedFrom = this.failedFrom === null ? n : Math.min(this.failedFrom, n);
    // Only files this batch actually opened can hold any of its bytes.
    for (const s of segments) {
      if (s.opened) this.rollback.push({ path: join(this.dir, fileName(s.file.day, s.file.index)), size: s.preSize, created: s.created });
    }
    if (this.isHealthy) this.logger?.error({ err: e }, 'audit: the log cannot be written; actions are refused until it can');
    this.isHealthy = false;
    this.counters.failures++;
    const error = new AirlockError('AIRLOCK_AUDIT_UNAVAILABLE', `the audit log cannot be written (${errnoCode(e)})`, { cause: e });
    for (const item of batch) this.refused.push({ reject: item.reject, error });
  }

  /** Assigns seq/prev/hash, inserts periodic checkpoints and splits the lines into files. */
  private build(batch: Item[]): { segments: Segment[]; head: { seq: number; hash: string }; records: Array<AuditRecord | null> } {
    let head = { ...this.head };
    let file = this.current;
    const segments: Segment[] = [];
    const records: Array<AuditRecord | null> = [];
    const push = (eventJson: string): AuditRecord => {
      const seq = head.seq + 1;
      const ts = new Date().toISOString();
      const record = lazyRecord(seq, ts, this.node, head.hash, eventJson);
      const line = `${recordLine(record, eventJson)}\n`;
      const bytes = Buffer.byteLength(line);
      // Days never go backwards in file names, even if the clock does.
      const day = file === null || dayOf(ts) > file.day ? dayOf(ts) : file.day;
      let seg = segments[segments.length - 1];
      if (file === null || day !== file.day || (file.size > 0 && file.size + bytes > this.maxFileBytes)) {
        const index = file !== null && day === file.day ? file.index + 1 : 0;
        file = { day, index, size: 0 };
        seg = { file, created: true, preSize: 0, lines: [], opened: false };
        segments.push(seg);
      } else if (seg === undefined) {
        file = { ...file };
        seg = { file, created: false, preSize: file.size, lines: [], opened: false };
        segments.push(seg);
      }
      seg.lines.push(line);
      file.size += bytes;
      head = { seq, hash: record.hash };
      return record;
    };
    const checkpoint = (): void => {
      if (this.signer === null) return;
      const event: CheckpointEvent = { type: 'checkpoint', head: head.hash, headSeq: head.seq, alg: 'ed25519', key: this.signer.keyId, sig: this.signer.sign(head.hash) };
      push(canonicalJson(event));
    };
    for (const item of batch) {
      if ('eventJson' in item) {
        if (this.checkpointEvery > 0 && (head.seq + 1) % this.checkpointEvery === 0) checkpoint();
        records.push(push(item.eventJson));
      } else {
        checkpoint();
        records.push(null);
      }
    }
    return { segments, head, records };
  }

  private needsReopen(path: string): boolean {
    if (this.file === null || this.file.path !== path) return true;
    try {
      return statSync(path).ino !== this.file.ino;
    } catch {
      return true;
    }
  }

  /**
   * The open descriptor for `path`, reopened if the path now names another file (moved,
   * replaced, deleted). Metadata calls and writes are synchronous (microseconds, into the
   * page cache); only syncs go to the thread pool.
   */
  private fileFor(path: string): number {
    if (this.file !== null && !this.needsReopen(path)) return this.file.fd;
    this.closeFile();
    const fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
    this.file = { path, fd, ino: fstatSync(fd).ino };
    return fd;
  }

  private closeFile(): void {
    if (this.file === null) return;
    try {
      closeSync(this.file.fd);
    } catch {
      // Closing a descriptor whose disk failed tells us nothing new.
    }
    this.file = null;
  }

  private async syncDir(): Promise<void> {
    const fh = await open(this.dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Cuts every file a failed batch touched back to its size before it; what cannot be cut yet stays pending. */
  private async applyRollback(): Promise<void> {
    const pending: typeof this.rollback = [];
    let failure: unknown = null;
    for (const r of this.rollback) {
      try {
        if (r.created) await unlink(r.path);
        else if ((await stat(r.path)).size > r.size) await truncateFile(r.path, r.size, this.fsync);
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') continue;
        pending.push(r);
        failure = e;
      }
    }
    this.rollback = pending;
    if (failure !== null) throw failure;
  }
}
