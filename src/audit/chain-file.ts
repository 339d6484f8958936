/**
 * The chain on disk, written by one thread (the audit writer worker) with synchronous
 * calls: a batch is built (seq, prev, hash, periodic signed checkpoints), written, and
 * fdatasync'ed before commit() returns, so there is never more than one sync in flight
 * and file order is seq order.
 *
 * Failure: a batch that cannot be written or synced (ENOSPC, EACCES, EROFS, a moved or
 * vanished directory) is cut back out of the files before commit() throws: a failed event
 * is never in the chain. A cut that cannot be made yet stays pending and blocks every
 * later write until it succeeds.
 */
import { accessSync, closeSync, constants, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, openSync, statSync, unlinkSync, watch, writeSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { recordHashOf, recordLine, canonicalJson } from './canonical.js';
import { dayOf, fileName } from './files.js';
import type { FileState } from './head.js';
import type { CheckpointSigner } from './signing.js';
import type { CheckpointEvent } from './types.js';
import type { DurableRecord, QueuedEvent, SignedCheckpoint } from './writer-messages.js';

interface Segment {
  file: FileState;
  created: boolean;
  preSize: number;
  lines: string[];
  opened: boolean;
}

export interface ChainFileOptions {
  dir: string;
  node: string;
  fsync: boolean;
  maxFileBytes: number;
  checkpointEvery: number;
  signer: CheckpointSigner | null;
  /** Test hook: runs before each batch's sync; may block (delay) or throw (fail the sync). */
  beforeSync?: () => void;
}

/**
 * Knows, without a stat per batch, whether the directory may have changed: an inotify
 * watch marks it dirty on any event other than our own writes to the current file, and a
 * dirty directory is checked exactly (writable, the path still names our open file) before
 * the next write. The watch is set up before the check, so a change after the check is
 * always seen. No watch (inotify limits): every batch is checked, as before.
 */
class DirectoryWatch {
  private watcher: FSWatcher | null = null;
  private dirty = true;

  constructor(private readonly dir: string) {}

  /** Throws when the directory cannot be written; returns true when `path` no longer names the open file `ino`. */
  mustReopen(path: string, open: { path: string; fd: number; ino: number } | null): boolean {
    if (this.watcher === null) this.startWatch();
    if (open === null || open.path !== path) {
      this.dirty = true;
      this.exactCheck();
      return true;
    }
    if (!this.dirty) {
      // Unlinked under us: the watch says so too, but an fstat of the open descriptor is cheap and exact.
      return fstatSync(open.fd).nlink === 0;
    }
    this.exactCheck();
    try {
      return statSync(path).ino !== open.ino;
    } catch {
      return true;
    }
  }

  private exactCheck(): void {
    // An open file would still take writes from a directory made read-only; refuse anyway.
    accessSync(this.dir, constants.W_OK);
    if (this.watcher !== null) this.dirty = false;
  }

  private ownFile: string | null = null;

  /** The file we write: its own 'change' events (our writes) do not make the directory dirty. */
  setOwnFile(name: string | null): void {
    this.ownFile = name;
  }

  private startWatch(): void {
    this.dirty = true;
    try {
      const w = watch(this.dir, { persistent: false }, (event, name) => {
        if (event === 'change' && name !== null && name === this.ownFile) return;
        this.dirty = true;
        // A moved or deleted directory's watch may be dead: start a new one on the path.
        if (event === 'rename') this.stopWatch();
      });
      w.on('error', () => this.stopWatch());
      this.watcher = w;
    } catch {
      this.watcher = null;
    }
  }

  stopWatch(): void {
    this.dirty = true;
    if (this.watcher === null) return;
    const w = this.watcher;
    this.watcher = null;
    w.close();
  }
}

export class ChainFile {
  /** The last durable record. */
  head = { seq: 0, hash: '' };
  private current: FileState | null;
  private file: { path: string; fd: number; ino: number } | null = null;
  private rollback: Array<{ path: string; size: number; created: boolean }> = [];
  private readonly watch: DirectoryWatch;
  /** Checkpoints of committed batches not yet taken by takeCheckpoints(). */
  private durableCheckpoints: SignedCheckpoint[] = [];

  constructor(
    private readonly opts: ChainFileOptions,
    head: { seq: number; hash: string },
    current: FileState | null,
  ) {
    this.head = { ...head };
    this.current = current === null ? null : { ...current };
    this.watch = new DirectoryWatch(opts.dir);
  }

  /**
   * Appends `events` (and a checkpoint when `seal`), durable when this returns. Throws
   * after cutting the batch back out; the head is then unchanged.
   */
  commit(events: QueuedEvent[], seal: { ts: string } | null = null): DurableRecord[] {
    this.applyRollback();
    const built = this.build(events, seal);
    const segments = built.segments;
    try {
      for (const [i, s] of segments.entries()) {
        const path = join(this.opts.dir, fileName(s.file.day, s.file.index));
        const fd = this.fileFor(path);
        s.opened = true;
        const data = Buffer.from(s.lines.join(''));
        for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
        this.opts.beforeSync?.();
        // A batch spanning a rotation: each file is synced before the next one opens.
        if (this.opts.fsync) {
          fdatasyncSync(fd);
          // A new file's name must survive a crash too.
          if (s.created) this.syncDir();
        }
        if (i === segments.length - 1) this.watch.setOwnFile(fileName(s.file.day, s.file.index));
      }
    } catch (e) {
      this.closeFile();
      for (const s of segments) {
        if (s.opened) this.rollback.push({ path: join(this.opts.dir, fileName(s.file.day, s.file.index)), size: s.preSize, created: s.created });
      }
      try {
        this.applyRollback();
      } catch {
        // Stays pending: no later batch is written until the cut succeeds.
      }
      throw e;
    }
    this.head = built.head;
    for (const c of built.checkpoints) this.durableCheckpoints.push(c);
    const last = segments[segments.length - 1];
    if (last !== undefined) this.current = { ...last.file };
    return built.records;
  }

  /** The signed checkpoints made durable since the last call, in seq order. */
  takeCheckpoints(): SignedCheckpoint[] {
    const out = this.durableCheckpoints;
    this.durableCheckpoints = [];
    return out;
  }

  close(): void {
    this.watch.stopWatch();
    this.closeFile();
  }

  private build(events: QueuedEvent[], seal: { ts: string } | null): { segments: Segment[]; head: { seq: number; hash: string }; records: DurableRecord[]; checkpoints: SignedCheckpoint[] } {
    let head = { ...this.head };
    let file = this.current === null ? null : { ...this.current };
    const segments: Segment[] = [];
    const records: DurableRecord[] = [];
    const checkpoints: SignedCheckpoint[] = [];
    const { node, maxFileBytes, checkpointEvery, signer } = this.opts;
    const push = (ts: string, eventJson: string): DurableRecord => {
      const seq = head.seq + 1;
      const hash = recordHashOf({ seq, ts, node, prev: head.hash }, eventJson);
      const line = `${recordLine({ seq, ts, node, prev: head.hash, hash, event: { type: '' } }, eventJson)}\n`;
      const bytes = Buffer.byteLength(line);
      // Days never go backwards in file names, even if the clock does.
      const day = file === null || dayOf(ts) > file.day ? dayOf(ts) : file.day;
      let seg = segments[segments.length - 1];
      if (file === null || day !== file.day || (file.size > 0 && file.size + bytes > maxFileBytes)) {
        const index = file !== null && day === file.day ? file.index + 1 : 0;
        file = { day, index, size: 0 };
        seg = { file, created: true, preSize: 0, lines: [], opened: false };
        segments.push(seg);
      } else if (seg === undefined) {
        seg = { file, created: false, preSize: file.size, lines: [], opened: false };
        segments.push(seg);
      }
      seg.lines.push(line);
      file.size += bytes;
      const record = { id: 0, seq, prev: head.hash, hash };
      head = { seq, hash };
      return record;
    };
    const checkpoint = (ts: string): void => {
      if (signer === null) return;
      const event: CheckpointEvent = { type: 'checkpoint', head: head.hash, headSeq: head.seq, alg: 'ed25519', key: signer.keyId, sig: signer.sign(head.hash) };
      const r = push(ts, canonicalJson(event));
      const f = file as FileState;
      checkpoints.push({ seq: r.seq, ts, headSeq: event.headSeq, head: event.head, key: event.key, sig: event.sig, file: fileName(f.day, f.index) });
    };
    for (const e of events) {
      if (checkpointEvery > 0 && (head.seq + 1) % checkpointEvery === 0) checkpoint(e.ts);
      records.push({ ...push(e.ts, e.eventJson), id: e.id });
    }
    if (seal !== null && head.seq > 0) checkpoint(seal.ts);
    return { segments, head, records, checkpoints };
  }

  /** The open descriptor for `path`, reopened if the path now names another file (moved, replaced, deleted). */
  private fileFor(path: string): number {
    if (!this.watch.mustReopen(path, this.file) && this.file !== null) return this.file.fd;
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

  private syncDir(): void {
    const fd = openSync(this.opts.dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Cuts every file a failed batch touched back to its size before it; what cannot be cut yet stays pending. */
  private applyRollback(): void {
    if (this.rollback.length === 0) return;
    const pending: typeof this.rollback = [];
    let failure: unknown = null;
    for (const r of this.rollback) {
      try {
        if (r.created) unlinkSync(r.path);
        else if (statSync(r.path).size > r.size) {
          const fd = openSync(r.path, 'r+');
          try {
            ftruncateSync(fd, r.size);
            if (this.opts.fsync) fdatasyncSync(fd);
          } finally {
            closeSync(fd);
          }
        }
      } catch (e) {
        if ((e as NodeJS.ErrnoException | null)?.code === 'ENOENT') continue;
        pending.push(r);
        failure = e;
      }
    }
    this.rollback = pending;
    if (failure !== null) throw failure;
  }
}
