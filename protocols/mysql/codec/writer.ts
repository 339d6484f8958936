/**
 * An append writer for one packet payload (little-endian, length-encoded fields). The
 * 4-byte packet header is not written here: framing.ts adds it and splits at 16 MB.
 */
import { AirlockError } from '../../../src/util/errors.js';

export class Writer {
  private buf: Buffer;
  private off = 0;

  constructor(sizeHint = 64) {
    this.buf = Buffer.allocUnsafe(Math.max(sizeHint, 16));
  }

  get length(): number {
    return this.off;
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

  uint16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16LE(v & 0xffff, this.off);
    this.off += 2;
    return this;
  }

  uint24(v: number): this {
    this.ensure(3);
    this.buf.writeUIntLE(v & 0xffffff, this.off, 3);
    this.off += 3;
    return this;
  }

  uint32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.off);
    this.off += 4;
    return this;
  }

  uint64(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), this.off);
    this.off += 8;
    return this;
  }

  /** protocol::LengthEncodedInteger. */
  lenenc(v: number | bigint): this {
    const n = BigInt(v);
    if (n < 0n) throw new AirlockError('AIRLOCK_INTERNAL', 'negative length-encoded integer');
    if (n < 0xfbn) return this.uint8(Number(n));
    if (n <= 0xffffn) return this.uint8(0xfc).uint16(Number(n));
    if (n <= 0xffffffn) return this.uint8(0xfd).uint24(Number(n));
    return this.uint8(0xfe).uint64(n);
  }

  lenencBytes(b: Buffer): this {
    return this.lenenc(b.length).bytes(b);
  }

  lenencString(s: string): this {
    return this.lenencBytes(Buffer.from(s, 'utf8'));
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

  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.off, this.off + n);
    this.off += n;
    return this;
  }

  string(s: string): this {
    return this.bytes(Buffer.from(s, 'utf8'));
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.off);
  }
}
