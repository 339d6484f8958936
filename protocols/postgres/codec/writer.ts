/**
 * An append writer for one message: the header (type byte, when typed, and the int32
 * length) is reserved up front and the length backfilled by finish().
 */
import { AirlockError } from '../../../src/util/errors.js';

export class Writer {
  private buf: Buffer;
  private off: number;
  private readonly lengthAt: number;

  /** `type` 0 writes an untyped startup-phase packet (length first). */
  constructor(type: number, sizeHint = 64) {
    this.buf = Buffer.allocUnsafe(Math.max(sizeHint, 8));
    if (type === 0) {
      this.lengthAt = 0;
      this.off = 4;
    } else {
      this.buf[0] = type;
      this.lengthAt = 1;
      this.off = 5;
    }
  }

  private ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  uint8(v: number): this {
    this.ensure(1);
    this.buf[this.off++] = v & 0xff;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.off);
    this.off += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.off);
    this.off += 4;
    return this;
  }

  /** A NUL-terminated string; an embedded NUL would split the field and is refused. */
  cstring(s: string): this {
    if (s.includes('\0')) throw new AirlockError('AIRLOCK_PROTOCOL', 'a protocol string may not contain a NUL byte', { fatal: true });
    const n = Buffer.byteLength(s);
    this.ensure(n + 1);
    this.off += this.buf.write(s, this.off);
    this.buf[this.off++] = 0;
    return this;
  }

  bytes(b: Buffer): this {
    this.ensure(b.length);
    b.copy(this.buf, this.off);
    this.off += b.length;
    return this;
  }

  /** int32 length then the bytes; null is length -1. */
  nullableBytes(b: Buffer | null): this {
    if (b === null) return this.int32(-1);
    return this.int32(b.length).bytes(b);
  }

  int16Array(values: readonly number[]): this {
    this.int16(values.length);
    for (const v of values) this.int16(v);
    return this;
  }

  finish(): Buffer {
    this.buf.writeInt32BE(this.off - this.lengthAt, this.lengthAt);
    return this.buf.subarray(0, this.off);
  }
}
