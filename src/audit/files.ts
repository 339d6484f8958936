/**
 * Audit file layout: `YYYY-MM-DD.NNN.jsonl`, one sequence per UTC day, NNN rising on
 * rotation by size. Order is (day, number) — compared as numbers, so NNN may outgrow
 * three digits.
 */
import { createReadStream } from 'node:fs';
import { open, readdir } from 'node:fs/promises';

const NAME = /^(\d{4}-\d{2}-\d{2})\.(\d{3,})\.jsonl$/;

export interface AuditFileName {
  name: string;
  day: string;
  index: number;
}

export function parseFileName(name: string): AuditFileName | null {
  const m = NAME.exec(name);
  if (m === null) return null;
  return { name, day: m[1] ?? '', index: Number(m[2]) };
}

export function fileName(day: string, index: number): string {
  return `${day}.${String(index).padStart(3, '0')}.jsonl`;
}

export function dayOf(ts: string): string {
  return ts.slice(0, 10);
}

export function compareFiles(a: AuditFileName, b: AuditFileName): number {
  if (a.day !== b.day) return a.day < b.day ? -1 : 1;
  return a.index - b.index;
}

/** The audit files of a directory in chain order; an absent directory has none. */
export async function listAuditFiles(dir: string): Promise<AuditFileName[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return names
    .map(parseFileName)
    .filter((f): f is AuditFileName => f !== null)
    .sort(compareFiles);
}

export interface FileTail {
  /** The last complete line (without its newline), or null when the file has none. */
  line: string | null;
  /** Byte offset just past the last newline: where a torn tail starts. */
  end: number;
  /** Bytes after the last newline (an unfinished line). */
  torn: number;
}

/** Reads backwards in chunks, so a large file costs only its last line. */
export async function readTail(path: string): Promise<FileTail> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const chunk = 64 * 1024;
    let pos = size;
    let buf = Buffer.alloc(0);
    let lastNl = -1;
    // Find the last newline: everything after it is torn.
    while (pos > 0 && lastNl < 0) {
      const start = Math.max(0, pos - chunk);
      const part = Buffer.alloc(pos - start);
      await fh.read(part, 0, part.length, start);
      buf = Buffer.concat([part, buf]);
      pos = start;
      lastNl = buf.lastIndexOf(0x0a);
    }
    if (lastNl < 0) return { line: null, end: 0, torn: size };
    const end = pos + lastNl + 1;
    // Then the newline before it: the start of the last complete line.
    // (lastIndexOf with a negative offset would count from the end, hence the guard.)
    const before = (b: Buffer, at: number): number => (at <= 0 ? -1 : b.lastIndexOf(0x0a, at - 1));
    let prevNl = before(buf, lastNl);
    while (prevNl < 0 && pos > 0) {
      const start = Math.max(0, pos - chunk);
      const part = Buffer.alloc(pos - start);
      await fh.read(part, 0, part.length, start);
      buf = Buffer.concat([part, buf]);
      lastNl += part.length;
      pos = start;
      prevNl = before(buf, lastNl);
    }
    const line = buf.subarray(prevNl + 1, lastNl).toString('utf8');
    return { line, end, torn: size - end };
  } finally {
    await fh.close();
  }
}

export interface FileLine {
  text: string;
  /** 1-based. */
  line: number;
  /** False for an unfinished last line (no newline). */
  complete: boolean;
}

/** The lines of a file, streamed: memory stays bounded by the longest line. */
export async function* readLines(path: string): AsyncGenerator<FileLine> {
  let carry: Buffer[] = [];
  let line = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    let from = 0;
    for (let nl = chunk.indexOf(0x0a, from); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
      carry.push(chunk.subarray(from, nl));
      line++;
      yield { text: Buffer.concat(carry).toString('utf8'), line, complete: true };
      carry = [];
      from = nl + 1;
    }
    if (from < chunk.length) carry.push(chunk.subarray(from));
  }
  if (carry.length > 0) yield { text: Buffer.concat(carry).toString('utf8'), line: line + 1, complete: false };
}
