/**
 * `airlock audit verify`: walks every file in order and reports the first broken link.
 *
 * Each line must be a canonical record whose hash is right; seq rises by one and prev
 * is the previous record's hash, across file boundaries; every checkpoint's signature
 * over the head it names must check against the key its id names: one beside the log
 * (`audit-signing.pub`, and earlier ones), or, when the caller pinned keys, one of those
 * (verify-keys.ts says what each proves).
 *
 * Start of the chain: seq 1 with a prev of 64 zeros, or — after retention pruned older
 * files — a start vouched for by an `audit.pruned` event later in the log: either its
 * `before` is exactly the first record's predecessor (seq and hash), or it names the
 * first remaining file among those it deleted (a prune interrupted between files).
 *
 * What a chain cannot show: lines cut from the very end. Checkpoints bound that loss to
 * what came after the last one; exporting the log off the host removes it.
 */
import { join } from 'node:path';
import { listAuditFiles, readLines } from './files.js';
import { checkRecordLine, fieldsOf } from './record.js';
import { defaultKeyFile, publicKeyPath } from './signing.js';
import { keysBesideLog, type CheckpointKeys } from './verify-keys.js';
import { GENESIS_HASH, type AuditRecord, type VerifyResult } from './types.js';

export interface VerifyOptions {
  /** Default: `audit-signing.key` beside the audit directory; only its `.pub` (and retired ones) are read. */
  keyFile?: string;
  /** Pinned keys (`--public-key`): checkpoints are checked against these, never against keys beside the log. */
  keys?: CheckpointKeys;
  /** Called with each checkpoint once its signature and the chain up to it checked out. */
  onCheckpoint?: (record: AuditRecord) => void;
  /** The log is still being written: an unfinished last line of the last file is where it ends for now, not a fault. */
  liveTail?: boolean;
  /** Told the last record's seq (0 for an empty log) when the whole chain checked out. */
  onEnd?: (lastSeq: number) => void;
}

interface Start {
  file: string;
  fileName: string;
  line: number;
  seq: number;
  prev: string;
}

function checkpointProblem(r: AuditRecord, keys: CheckpointKeys | null, keyFile: string): string | null {
  const e = fieldsOf(r.event);
  if (typeof e.head !== 'string' || typeof e.sig !== 'string' || typeof e.headSeq !== 'number') return 'checkpoint is malformed';
  if (e.head !== r.prev || e.headSeq !== r.seq - 1) return 'checkpoint does not sign the record before it';
  if (keys === null) return `checkpoint cannot be checked: no public key at ${publicKeyPath(keyFile)}`;
  const good = typeof e.key === 'string' ? keys.verify(e.key, e.head, e.sig) : null;
  if (good === null) {
    const expected = keys.ids.length === 1 ? `expected ${keys.ids[0] ?? ''}` : `expected one of ${keys.ids.join(', ')}`;
    if (keys.pinned) return `checkpoint is signed by key ${String(e.key)}, which is not a pinned key (${expected}, from ${keys.source})`;
    return `checkpoint is signed by another key (${String(e.key)}, ${expected})`;
  }
  if (!good) return 'checkpoint signature is not valid';
  return null;
}

function vouches(event: AuditRecord['event'], start: Start): boolean {
  const e = fieldsOf(event);
  if (e.type !== 'audit.pruned') return false;
  const before = e.before as { seq?: unknown; hash?: unknown } | undefined;
  if (before !== undefined && before.seq === start.seq - 1 && before.hash === start.prev) return true;
  return Array.isArray(e.files) && e.files.includes(start.fileName);
}

export async function verifyAudit(dir: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const keyFile = opts.keyFile ?? defaultKeyFile(dir);
  const keys = opts.keys ?? (await keysBesideLog(keyFile));
  const files = await listAuditFiles(dir);
  let last: AuditRecord | null = null;
  let start: Start | null = null;
  let vouched = false;
  let count = 0;
  for (const [i, f] of files.entries()) {
    const path = join(dir, f.name);
    for await (const l of readLines(path)) {
      const fail = (problem: string): VerifyResult => ({ ok: false, file: path, line: l.line, problem });
      if (!l.complete && opts.liveTail === true && i === files.length - 1) break;
      if (!l.complete) return fail('unfinished last line (a torn write; reopening the log cuts it off)');
      const checked = checkRecordLine(l.text);
      if ('problem' in checked) return fail(checked.problem);
      const r = checked.record;
      if (last === null) {
        if (r.seq === 1 && r.prev !== GENESIS_HASH) return fail('seq 1 does not start from the genesis hash');
        if (r.seq !== 1) start = { file: path, fileName: f.name, line: l.line, seq: r.seq, prev: r.prev };
      } else {
        if (r.seq !== last.seq + 1) return fail(`expected seq ${last.seq + 1}, found ${r.seq} (a record was deleted, inserted or moved)`);
        if (r.prev !== last.hash) return fail(`prev does not match the hash of seq ${last.seq} (the chain is broken here)`);
      }
      if (r.event.type === 'checkpoint') {
        const problem = checkpointProblem(r, keys, keyFile);
        if (problem !== null) return fail(problem);
        opts.onCheckpoint?.(r);
      }
      if (start !== null && !vouched) vouched = vouches(r.event, start);
      last = r;
      count++;
    }
  }
  if (start !== null && !vouched) {
    return {
      ok: false,
      file: start.file,
      line: start.line,
      problem: `the chain starts at seq ${start.seq} and no audit.pruned event vouches for the missing records`,
    };
  }
  opts.onEnd?.(last === null ? 0 : last.seq);
  return { ok: true, count };
}
