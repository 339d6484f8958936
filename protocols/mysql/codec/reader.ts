/**
 * A bounds-checked cursor over one MySQL packet payload. Every read is checked against
 * the end, so a short or malformed packet becomes one named fatal error
 * (AIRLOCK_PROTOCOL), never a RangeError from deep inside.
 */
import { AirlockError } from '../../../src/util/errors.js';

export function malformed(what: string): AirlockError {
  return new AirlockError('AIRLOCK_PROTOCOL', `malformed ${what}`, { fatal: true });
}

export class Reader {
  private off = 0;

  /** `what` names the packet in errors, e.g. "HandshakeResponse41". */
  constructor(private readonly buf: Buffer, private readonly what: string, start = 0) {
    this.off = start;
  }

  get offset(): number {
    return this.off;
  }

  get remaining(): number {
    return this.buf.length - this.off;
  }

  private need(n: number): void {
    if (n < 0 || this.off + n > this.buf.length) throw malformed(`${this.what}: truncated`);
  }

  uint8(): number {
    this.need(1);
    return this.buf[this.off++] as number;
  }

  peek(): number {
    this.need(1);
    return this.buf[this.off] as number;
  }

  uint16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.off);
    this.off += 2;
    return v;
  }

  uint24(): number {
    this.need(3);
    const v = this.buf.readUIntLE(this.off, 3);
    this.off += 3;
    return v;
  }

  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.off);
    this.off += 4;
    return v;
  }

  uint64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.off);
    this.off += 8;
    return v;
  }

  /**
   * A length-encoded integer (protocol::LengthEncodedInteger). 0xfb (NULL in a row) and
   * 0xff (ERR) are not integers here; values above 2^53 are refused.
   */
  lenenc(): number {
    const first = this.uint8();
    if (first < 0xfb) return first;
    if (first === 0xfc) return this.uint16();
    if (first === 0xfd) return this.uint24();
    if (first === 0xfe) {
      const v = this.uint64();
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(`${this.what}: length-encoded integer too large`);
      return Number(v);
    }
    throw malformed(`${this.what}: 0x${first.toString(16)} is not a length-encoded integer`);
  }

  /** A length-encoded integer whose full 64 bits matter (affected rows, insert id). */
  lenencBig(): bigint {
    const first = this.peek();
    if (first === 0xfe) {
      this.off++;
      return this.uint64();
    }
    return BigInt(this.lenenc());
  }

  /** A view of a length-encoded string's bytes. */
  lenencBytes(): Buffer {
    return this.bytes(this.lenenc());
  }

  lenencString(): string {
    return this.lenencBytes().toString('utf8');
  }

  /** A NUL-terminated string (protocol::NulTerminatedString). */
  cstring(): string {
    const z = this.buf.indexOf(0, this.off);
    if (z < 0) throw malformed(`${this.what}: unterminated string`);
    const s = this.buf.toString('utf8', this.off, z);
    this.off = z + 1;
    return s;
  }

  /** NUL-terminated bytes, or to the end when there is no NUL (tolerated by servers for plugin names). */
  cbytesOrRest(): Buffer {
    const z = this.buf.indexOf(0, this.off);
    if (z < 0) return this.rest();
    const b = this.buf.subarray(this.off, z);
    this.off = z + 1;
    return b;
  }

  /** A view (no copy) of the next n bytes. */
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return b;
  }

  skip(n: number): void {
    this.need(n);
    this.off += n;
  }

  rest(): Buffer {
    const b = this.buf.subarray(this.off);
    this.off = this.buf.length;
    return b;
  }

  restString(): string {
    return this.rest().toString('utf8');
  }

  /** The packet must be fully consumed. */
  end(): void {
    if (this.off !== this.buf.length) throw malformed(`${this.what}: ${this.buf.length - this.off} trailing bytes`);
  }
}
