/**
 * Shell recordings as asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/):
 * a JSON header line, then `[seconds, "o" | "i" | "r", data]` events, written as they
 * happen to state_dir/recordings/<session>.cast. The file's SHA-256 and size go into the
 * hash-chained audit log when it closes, so an edited recording is detectable.
 */
import { createWriteStream, mkdirSync, readFileSync, existsSync, type WriteStream } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import { join } from 'node:path';

export function recordingPath(stateDir: string, sessionId: string): string {
  return join(stateDir, 'recordings', `${sessionId}.cast`);
}

export class CastWriter {
  private readonly out: WriteStream;
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private readonly started = Date.now();
  private closed = false;

  constructor(
    readonly file: string,
    header: { width: number; height: number; term?: string; title?: string },
  ) {
    mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
    this.out = createWriteStream(file, { mode: 0o600 });
    this.line({ version: 2, width: header.width, height: header.height, timestamp: Math.floor(this.started / 1000), ...(header.term === undefined ? {} : { env: { TERM: header.term } }), ...(header.title === undefined ? {} : { title: header.title }) });
  }

  private line(value: unknown): void {
    if (this.closed) return;
    const text = `${JSON.stringify(value)}\n`;
    this.hash.update(text);
    this.bytes += Buffer.byteLength(text);
    this.out.write(text);
  }

  output(data: string): void {
    if (data !== '') this.line([(Date.now() - this.started) / 1000, 'o', data]);
  }

  input(data: string): void {
    if (data !== '') this.line([(Date.now() - this.started) / 1000, 'i', data]);
  }

  resize(width: number, height: number): void {
    this.line([(Date.now() - this.started) / 1000, 'r', `${width}x${height}`]);
  }

  /** Closes the file; resolves with what the audit log records of it. */
  close(): Promise<{ file: string; bytes: number; sha256: string }> {
    if (this.closed) return Promise.resolve({ file: this.file, bytes: this.bytes, sha256: '' });
    this.closed = true;
    const sha256 = this.hash.digest('hex');
    return new Promise((resolve) => this.out.end(() => resolve({ file: this.file, bytes: this.bytes, sha256 })));
  }
}

export interface CastEvent {
  at: number;
  kind: string;
  data: string;
}

/** Reads a recording: its header and events (lines that do not parse are skipped). */
export function readCast(file: string): { header: Record<string, unknown>; events: CastEvent[] } | null {
  if (!existsSync(file)) return null;
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
  let header: Record<string, unknown> = {};
  const events: CastEvent[] = [];
  lines.forEach((l, i) => {
    try {
      const v = JSON.parse(l) as unknown;
      if (i === 0 && v !== null && typeof v === 'object' && !Array.isArray(v)) header = v as Record<string, unknown>;
      else if (Array.isArray(v) && typeof v[0] === 'number' && typeof v[1] === 'string' && typeof v[2] === 'string') events.push({ at: v[0], kind: v[1], data: v[2] });
    } catch {
      // skip
    }
  });
  return { header, events };
}
