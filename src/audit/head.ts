/**
 * Finding the head of the chain when the log is opened, and the last record of a run of
 * files (for retention).
 *
 * A kill -9 or power loss can leave an unfinished last line: the batch's write was cut
 * short, so none of its appends had resolved and nothing was forwarded on its strength.
 * It is cut off (the caller records an `audit.recovered` event). Any other damage to the
 * head — a complete line that is not a valid record — is refused: the chain is not
 * continued from a head that cannot be trusted.
 */
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AirlockError } from '../util/errors.js';
import { listAuditFiles, readTail, type AuditFileName } from './files.js';
import { checkRecordLine } from './record.js';
import { GENESIS_HASH } from './types.js';

export interface FileState {
  day: string;
  index: number;
  size: number;
}

export interface FoundHead {
  head: { seq: number; hash: string };
  /** The newest file (written next, unless the day or size says rotate), or none. */
  current: FileState | null;
  /** What was cut off the newest file, if anything. */
  torn: { file: string; offset: number; bytes: number } | null;
}

export async function truncateFile(path: string, size: number, sync: boolean): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.truncate(size);
    if (sync) await fh.datasync();
  } finally {
    await fh.close();
  }
}

export async function findHead(dir: string, sync: boolean): Promise<FoundHead> {
  const files = await listAuditFiles(dir);
  const newest = files[files.length - 1];
  if (newest === undefined) return { head: { seq: 0, hash: GENESIS_HASH }, current: null, torn: null };
  let head = { seq: 0, hash: GENESIS_HASH };
  let torn: FoundHead['torn'] = null;
  let first = true;
  for (let i = files.length - 1; i >= 0; i--) {
    const f = files[i];
    if (f === undefined) continue;
    const path = join(dir, f.name);
    const tail = await readTail(path);
    if (tail.line === null && tail.torn === 0) continue;
    if (tail.torn > 0) {
      // Only the file being written when the process died can end mid-line.
      if (!first) throw new AirlockError('AIRLOCK_AUDIT_UNAVAILABLE', `${f.name} ends in an unfinished line but is not the newest file; run airlock audit verify`);
      await truncateFile(path, tail.end, sync);
      torn = { file: f.name, offset: tail.end, bytes: tail.torn };
    }
    first = false;
    if (tail.line === null) continue;
    const checked = checkRecordLine(tail.line);
    if ('problem' in checked) {
      throw new AirlockError('AIRLOCK_AUDIT_UNAVAILABLE', `the last record of ${f.name} is not valid (${checked.problem}); run airlock audit verify`);
    }
    head = { seq: checked.record.seq, hash: checked.record.hash };
    break;
  }
  const current = { day: newest.day, index: newest.index, size: (await stat(join(dir, newest.name))).size };
  return { head, current, torn };
}

/** seq and hash of the last record in `files` (the record the next file's first `prev` names). */
export async function lastRecordOf(dir: string, files: AuditFileName[]): Promise<{ seq: number; hash: string }> {
  for (let i = files.length - 1; i >= 0; i--) {
    const f = files[i];
    if (f === undefined) continue;
    const tail = await readTail(join(dir, f.name));
    if (tail.line === null) continue;
    const checked = checkRecordLine(tail.line);
    if ('problem' in checked) throw new AirlockError('AIRLOCK_AUDIT_UNAVAILABLE', `${f.name}: ${checked.problem}; run airlock audit verify`);
    return { seq: checked.record.seq, hash: checked.record.hash };
  }
  return { seq: 0, hash: GENESIS_HASH };
}
