/**
 * What the audit log (main thread) and its writer (a worker thread) say to each other.
 * The main thread hands over each event already in canonical, scrubbed form: a Secret's
 * toJSON() and the password scrub run where the event object lives, never on a structured
 * clone of it (a clone would drop the prototype and with it toJSON, i.e. leak the secret).
 */
import type { KeyObject } from 'node:crypto';

export interface WriterConfig {
  dir: string;
  node: string;
  fsync: boolean;
  maxFileBytes: number;
  checkpointEvery: number;
  /** null: no checkpoints. */
  keyFile: string | null;
  /** audit.signing_key (a KeyObject crosses to the worker thread as a clone); null: the per-node key in keyFile. */
  signingKey: KeyObject | null;
}

/** One event to append: `ts` is stamped by the caller's clock, so records keep the caller's time. */
export interface QueuedEvent {
  id: number;
  ts: string;
  eventJson: string;
}

export type ToWriter =
  | { type: 'append'; events: QueuedEvent[] }
  /** Seal the tail with a checkpoint, make everything durable, close the file, then say 'closed'. */
  | { type: 'close'; ts: string };

/** What the main thread needs to make an AuditRecord (it still holds the event's JSON). */
export interface DurableRecord {
  id: number;
  seq: number;
  prev: string;
  hash: string;
}

/**
 * A batch's records on the way back, column by column: record i is ids[i] at seqs[i] with
 * prevs[i] and hashes[i]. Arrays of numbers and strings cross threads in a fraction of the
 * time an object per record takes (structured clone), and most records are never read back.
 */
export interface DurableBatch {
  ids: number[];
  seqs: number[];
  prevs: string[];
  hashes: string[];
}

export function durableBatch(records: readonly DurableRecord[]): DurableBatch {
  const b: DurableBatch = { ids: [], seqs: [], prevs: [], hashes: [] };
  for (const r of records) {
    b.ids.push(r.id);
    b.seqs.push(r.seq);
    b.prevs.push(r.prev);
    b.hashes.push(r.hash);
  }
  return b;
}

/** A signed checkpoint the writer made, once durable: the main thread may publish it (a fleet's state store). */
export interface SignedCheckpoint {
  /** The checkpoint record's own seq. */
  seq: number;
  ts: string;
  /** The record it signs (the one before it). */
  headSeq: number;
  head: string;
  key: string;
  sig: string;
  /** The audit file it is in. */
  file: string;
}

export type FromWriter =
  | { type: 'ready'; head: { seq: number; hash: string }; torn: { file: string; offset: number; bytes: number } | null }
  | { type: 'open-failed'; code: string | null; message: string }
  /** Every record of one batch is written and synced; batches arrive in seq order. */
  | { type: 'durable'; records: DurableBatch; head: { seq: number; hash: string }; checkpoints: SignedCheckpoint[] }
  /** The batch could not be made durable; its lines have been cut back out of the files. */
  | { type: 'refused'; ids: number[]; errno: string; message: string }
  /** The tail is sealed (its checkpoint, if one was made, is in `checkpoints`) and the file closed. */
  | { type: 'closed'; checkpoints: SignedCheckpoint[] };
