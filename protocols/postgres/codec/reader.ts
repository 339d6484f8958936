/**
 * A bounds-checked cursor over one message body. Every read is checked against the end,
 * so a short or malformed message becomes one named fatal error, never a RangeError.
 */
import { AirlockError } from '../../../src/util/errors.js';

export function malformed(what: string): AirlockError {
  return new AirlockError('AIRLOCK_PROTOCOL', `malformed ${what}`, { fatal: true });
}

export class Reader {
  private off = 0;

  /** `what` names the message in errors, e.g. "Bind". */
  constructor(private readonly buf: Buffer, private readonly what: string) {}

  get remaining(): number {
    return this.buf.length - this.off;
  }

  private need(n: number): void {
    if (this.off + n > this.buf.length) throw malformed(`${this.what}: truncated`);
  }

  uint8(): number {
    this.need(1);
    return this.buf[this.off++] as number;
  }

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.off);
    this.off += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.off);
    this.off += 4;
    return v;
  }

  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }

  /** A count that must not be negative (int16 array lengths). */
  count16(): number {
    const n = this.int16();
    if (n < 0) throw malformed(`${this.what}: negative count ${n}`);
    return n;
  }

  cstring(): string {
    const z = this.buf.indexOf(0, this.off);
    if (z < 0) throw malformed(`${this.what}: unterminated string`);
    const s = this.buf.toString('utf8', this.off, z);
    this.off = z + 1;
    return s;
  }

  /** A view (no copy) of the next n bytes. */
  bytes(n: number): Buffer {
    if (n < 0) throw malformed(`${this.what}: negative length ${n}`);
    this.need(n);
    const b = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return b;
  }

  /** An int32 length then that many bytes; -1 means NULL. */
  nullableBytes(): Buffer | null {
    const n = this.int32();
    if (n === -1) return null;
    return this.bytes(n);
  }

  rest(): Buffer {
    const b = this.buf.subarray(this.off);
    this.off = this.buf.length;
    return b;
  }

  /** The message must be fully consumed. */
  end(): void {
    if (this.off !== this.buf.length) throw malformed(`${this.what}: ${this.buf.length - this.off} trailing bytes`);
  }
}
