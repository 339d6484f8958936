/**
 * A bounded on-disk queue of audit records awaiting delivery: `events.jsonl` (one record a
 * line, appended in seq order) and `state.json` (the last seq delivered or dropped).
 *
 * The state names a seq, not a byte offset, so compacting the file (rewriting it with only
 * the undelivered tail) can never skew it. A crash may lose the state's last update: those
 * records go out again (at-least-once; the receiver deduplicates by id). A crash may also
 * lose spool lines not yet written: the exporter catches up from the audit log itself
 * (`lastSeq`), which is durable before any record reaches here.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { appendFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditRecord } from '../types.js';

export interface SpoolEntry {
  seq: number;
  /** The record as sent: JSON with an `id` field. */
  line: string;
  bytes: number;
  onDisk: boolean;
}

interface SpoolState {
  /** Every record up to here was delivered or dropped. */
  handled: number;
  /** The highest seq ever spooled, and its time (catch-up starts after it). */
  last: number;
  lastTs: string | null;
  dropped: number;
}

const EVENTS = 'events.jsonl';
const STATE = 'state.json';
const COMPACT_MIN_BYTES = 1024 * 1024;

function loadState(dir: string): SpoolState | null {
  try {
    const v = JSON.parse(readFileSync(join(dir, STATE), 'utf8')) as Partial<SpoolState>;
    return {
      handled: typeof v.handled === 'number' ? v.handled : 0,
      last: typeof v.last === 'number' ? v.last : 0,
      lastTs: typeof v.lastTs === 'string' ? v.lastTs : null,
      dropped: typeof v.dropped === 'number' ? v.dropped : 0,
    };
  } catch {
    return null;
  }
}

export class Spool {
  readonly pending: SpoolEntry[] = [];
  private pendingBytes = 0;
  private fileBytes = 0;
  private state: SpoolState;
  /** Disk writes, one after another, so the file keeps seq order. */
  private chain: Promise<void> = Promise.resolve();
  private stateDirty = false;
  readonly fresh: boolean;
  /** Set when a write to the spool directory failed (the in-memory queue still delivers). */
  diskError: unknown = null;

  private constructor(
    readonly dir: string,
    private readonly maxBytes: number,
    state: SpoolState | null,
  ) {
    this.fresh = state === null;
    this.state = state ?? { handled: 0, last: 0, lastTs: null, dropped: 0 };
  }

  static open(dir: string, maxBytes: number): Spool {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const spool = new Spool(dir, maxBytes, loadState(dir));
    let text = '';
    try {
      text = readFileSync(join(dir, EVENTS), 'utf8');
    } catch {
      // No spool file yet.
    }
    spool.fileBytes = Buffer.byteLength(text);
    for (const line of text.split('\n')) {
      // A torn last line (crash mid-write) is not JSON: the audit log catch-up resends it.
      let seq: unknown;
      try {
        seq = (JSON.parse(line) as { seq?: unknown }).seq;
      } catch {
        continue;
      }
      if (typeof seq !== 'number' || seq <= spool.state.handled) continue;
      if (spool.pending.length > 0 && seq <= (spool.pending[spool.pending.length - 1]?.seq ?? 0)) continue;
      spool.push({ seq, line, bytes: Buffer.byteLength(line) + 1, onDisk: true });
      if (seq > spool.state.last) spool.state.last = seq;
    }
    spool.enforceBound();
    return spool;
  }

  get dropped(): number {
    return this.state.dropped;
  }

  /** The last seq spooled (or delivered): records at or below it are duplicates. */
  get lastSeq(): number {
    return Math.max(this.state.last, this.state.handled);
  }

  get lastTs(): string | null {
    return this.state.lastTs;
  }

  /** Starts the spool at `seq` without exporting what came before (first start). */
  startAt(seq: number): void {
    this.state.handled = Math.max(this.state.handled, seq);
    this.state.last = Math.max(this.state.last, seq);
    this.saveState();
  }

  /** Adds a record unless it is already spooled; false for a duplicate. */
  add(record: AuditRecord, id: string): boolean {
    if (record.seq <= this.lastSeq) return false;
    const line = JSON.stringify({ id, ...record });
    const entry: SpoolEntry = { seq: record.seq, line, bytes: Buffer.byteLength(line) + 1, onDisk: false };
    this.push(entry);
    this.state.last = record.seq;
    this.state.lastTs = record.ts;
    this.stateDirty = true;
    this.enqueue(async () => {
      await appendFile(join(this.dir, EVENTS), `${line}\n`, { mode: 0o600 });
      this.fileBytes += entry.bytes;
      entry.onDisk = true;
    });
    this.enforceBound();
    return true;
  }

  /** Everything up to `seq` was delivered. */
  ack(seq: number): void {
    while (this.pending.length > 0 && (this.pending[0]?.seq ?? Infinity) <= seq) this.shift();
    this.state.handled = Math.max(this.state.handled, seq);
    this.saveState();
    if (this.fileBytes - this.pendingBytes > Math.max(COMPACT_MIN_BYTES, this.pendingBytes)) this.compact();
  }

  /** Waits for every queued disk write. */
  async flush(): Promise<void> {
    if (this.stateDirty) this.saveState();
    await this.chain;
  }

  private push(e: SpoolEntry): void {
    this.pending.push(e);
    this.pendingBytes += e.bytes;
  }

  private shift(): SpoolEntry | undefined {
    const e = this.pending.shift();
    if (e !== undefined) this.pendingBytes -= e.bytes;
    return e;
  }

  /** Over the bound, the oldest records go, and the count says how many. */
  private enforceBound(): void {
    let droppedNow = 0;
    while (this.pendingBytes > this.maxBytes && this.pending.length > 1) {
      const e = this.shift();
      if (e === undefined) break;
      this.state.handled = Math.max(this.state.handled, e.seq);
      droppedNow++;
    }
    if (droppedNow > 0) {
      this.state.dropped += droppedNow;
      this.saveState();
    }
  }

  private saveState(): void {
    this.stateDirty = false;
    this.enqueue(async () => {
      const tmp = join(this.dir, `${STATE}.tmp`);
      await writeFile(tmp, JSON.stringify(this.state), { mode: 0o600 });
      await rename(tmp, join(this.dir, STATE));
    });
  }

  /** Rewrites the file with only the undelivered records already on disk (later ones are still queued to append). */
  private compact(): void {
    this.enqueue(async () => {
      const kept = this.pending.filter((e) => e.onDisk);
      const text = kept.map((e) => `${e.line}\n`).join('');
      const tmp = join(this.dir, `${EVENTS}.tmp`);
      await writeFile(tmp, text, { mode: 0o600 });
      await rename(tmp, join(this.dir, EVENTS));
      this.fileBytes = Buffer.byteLength(text);
    });
  }

  private enqueue(step: () => Promise<void>): void {
    this.chain = this.chain.then(step).then(
      () => {
        this.diskError = null;
      },
      (e: unknown) => {
        this.diskError = e;
      },
    );
  }
}
