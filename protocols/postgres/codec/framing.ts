/**
 * Splits a byte stream into protocol frames, used on both legs. A frame that lies inside
 * one chunk is a view of that chunk (no copy); only a frame that straddles chunks is
 * assembled into a fresh buffer, once, when its last byte arrives. Every length is
 * checked and capped before anything is buffered for it.
 */
import { AirlockError } from '../../../src/util/errors.js';
import { MessageCode, describeCode } from './codes.js';

export interface Frame {
  /** The type byte; 0 for an untyped startup-phase packet. */
  readonly type: number;
  /** The body after the length field. */
  readonly payload: Buffer;
  /** The exact bytes received: type + length + payload. */
  readonly raw: Buffer;
}

/**
 * A frame as read: its payload view is made when first asked for (most relayed frames are
 * forwarded as `raw` and never read; a view per frame is an allocation per frame).
 */
class ReadFrame implements Frame {
  private body: Buffer | null = null;

  constructor(
    readonly type: number,
    readonly raw: Buffer,
    private readonly header: number,
  ) {}

  get payload(): Buffer {
    return (this.body ??= this.raw.subarray(this.header));
  }
}

export interface FrameReaderOptions {
  /** Cap on a typed message's length field (which counts itself and the body). */
  maxMessageBytes: number;
  /** Cap on an untyped startup-phase packet's length field. */
  maxStartupBytes: number;
  /** Expect untyped startup packets (int32 length first) until expectStartup(false). */
  startup: boolean;
}

const STARTUP_MIN = 8; // length + request code
/**
 * A Terminate ('X', int32 4) sent where a startup packet belongs — a client that ends before
 * it connected (node-postgres `end()` during connect). Read as a startup length, its first four
 * bytes are 0x58000000, far above any cap, so it cannot be a real startup packet.
 */
const TERMINATE_AS_STARTUP = 0x58000000;
const TERMINATE_BYTES = 5;

export class FrameReader {
  /** Pieces of one incomplete frame, in order; views of the chunks they came in. */
  private parts: Buffer[] = [];
  private partsBytes = 0;
  /** Total size of the incomplete frame once its header is known, else 0. */
  private pendingTotal = 0;
  private startup: boolean;
  private readonly maxMessageBytes: number;
  private readonly maxStartupBytes: number;

  constructor(opts: FrameReaderOptions) {
    this.startup = opts.startup;
    this.maxMessageBytes = opts.maxMessageBytes;
    this.maxStartupBytes = opts.maxStartupBytes;
  }

  /**
   * Switches between untyped startup packets and typed messages. May be called from inside
   * the onFrame callback: the rest of the current chunk is then read the new way.
   */
  expectStartup(on: boolean): void {
    if (on === this.startup) return;
    this.startup = on;
    if (this.partsBytes > 0) {
      const joined = Buffer.concat(this.parts, this.partsBytes);
      this.parts = [joined];
      this.pendingTotal = joined.length >= this.headerSize() ? this.frameSize(joined, 0) : 0;
    }
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.partsBytes;
  }

  /** Hands back the bytes of the incomplete frame (if any) and empties the reader. */
  drain(): Buffer {
    const out = this.partsBytes === 0 ? Buffer.alloc(0) : Buffer.concat(this.parts, this.partsBytes);
    this.reset();
    return out;
  }

  push(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    let off = 0;
    if (this.partsBytes > 0) {
      off = this.completePending(chunk, onFrame);
      if (off < 0) return;
    }
    const end = chunk.length;
    for (;;) {
      const avail = end - off;
      if (avail < this.headerSize()) break;
      const size = this.frameSize(chunk, off);
      if (avail < size) {
        this.pendingTotal = size;
        break;
      }
      const raw = chunk.subarray(off, off + size);
      off += size;
      this.emit(raw, onFrame);
    }
    if (off < end) {
      this.parts.push(off === 0 ? chunk : chunk.subarray(off));
      this.partsBytes = end - off;
    }
  }

  private headerSize(): number {
    return this.startup ? 4 : 5;
  }

  /** Validates the header at `off` and returns the frame's total size in bytes. */
  private frameSize(buf: Buffer, off: number): number {
    if (this.startup) {
      const len = buf.readInt32BE(off);
      if (len === TERMINATE_AS_STARTUP) return TERMINATE_BYTES;
      if (len < STARTUP_MIN) throw new AirlockError('AIRLOCK_PROTOCOL', `invalid startup packet length ${len}`, { fatal: true });
      if (len > this.maxStartupBytes) {
        throw new AirlockError('AIRLOCK_TOO_LARGE', `startup packet of ${len} bytes exceeds the limit of ${this.maxStartupBytes}`, { fatal: true });
      }
      return len;
    }
    const type = buf[off] as number;
    const len = buf.readInt32BE(off + 1);
    if (type === 0) throw new AirlockError('AIRLOCK_PROTOCOL', 'message with type byte 0', { fatal: true });
    if (len < 4) throw new AirlockError('AIRLOCK_PROTOCOL', `invalid length ${len} for message ${describeCode(type)}`, { fatal: true });
    if (len > this.maxMessageBytes) {
      throw new AirlockError('AIRLOCK_TOO_LARGE', `message ${describeCode(type)} of ${len} bytes exceeds the limit of ${this.maxMessageBytes}`, { fatal: true });
    }
    return len + 1;
  }

  private emit(raw: Buffer, onFrame: (frame: Frame) => void): void {
    if (this.startup && raw.length === TERMINATE_BYTES && raw[0] === MessageCode.Terminate) {
      if (raw.readInt32BE(1) !== 4) throw new AirlockError('AIRLOCK_PROTOCOL', `invalid length ${raw.readInt32BE(1)} for message ${describeCode(MessageCode.Terminate)}`, { fatal: true });
      onFrame(new ReadFrame(MessageCode.Terminate, raw, TERMINATE_BYTES));
    } else if (this.startup) onFrame(new ReadFrame(0, raw, 4));
    else onFrame(new ReadFrame(raw[0] as number, raw, 5));
  }

  /** Feeds the start of `chunk` to the incomplete frame; returns where the rest begins, or -1 if all of it was taken. */
  private completePending(chunk: Buffer, onFrame: (frame: Frame) => void): number {
    if (this.pendingTotal === 0) {
      const missing = this.headerSize() - this.partsBytes;
      if (chunk.length < missing) return this.keep(chunk);
      const head = Buffer.concat([...this.parts, chunk.subarray(0, missing)], this.headerSize());
      this.pendingTotal = this.frameSize(head, 0);
    }
    const missing = this.pendingTotal - this.partsBytes;
    if (chunk.length < missing) return this.keep(chunk);
    this.parts.push(chunk.subarray(0, missing));
    const raw = Buffer.concat(this.parts, this.pendingTotal);
    this.reset();
    this.emit(raw, onFrame);
    return missing;
  }

  private keep(chunk: Buffer): number {
    this.parts.push(chunk);
    this.partsBytes += chunk.length;
    return -1;
  }

  private reset(): void {
    this.parts = [];
    this.partsBytes = 0;
    this.pendingTotal = 0;
  }
}
