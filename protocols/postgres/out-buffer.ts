/** The Postgres relay's output buffers: frames written together, and the slab masked rows are built in. */

/** Outgoing segments of one upstream chunk, written together. */
export class Segments {
  private parts: Buffer[] = [];
  private runBuf: ArrayBufferLike | null = null;
  private runStart = 0;
  private runEnd = 0;

  /** Adds raw frame bytes, merging with the previous frame when they are adjacent in memory. */
  add(raw: Buffer): void {
    if (this.runBuf === raw.buffer && this.runEnd === raw.byteOffset) {
      this.runEnd += raw.length;
      return;
    }
    this.flushRun();
    this.runBuf = raw.buffer;
    this.runStart = raw.byteOffset;
    this.runEnd = raw.byteOffset + raw.length;
  }

  addOwn(buf: Buffer): void {
    this.flushRun();
    this.parts.push(buf);
  }

  private flushRun(): void {
    if (this.runBuf !== null && this.runEnd > this.runStart) {
      this.parts.push(Buffer.from(this.runBuf, this.runStart, this.runEnd - this.runStart));
    }
    this.runBuf = null;
  }

  take(): Buffer[] {
    this.flushRun();
    const p = this.parts;
    this.parts = [];
    return p;
  }
}

/** Size of the slabs masked rows are built in. */
const SLAB_BYTES = 256 * 1024;

/** The slab rewritten rows are cut from; a full slab is left to the writes that still hold its slices. */
export class Slab {
  private slab: Buffer = Buffer.alloc(0);
  private slabUsed = 0;

  allocOut(size: number): Buffer {
    if (size > SLAB_BYTES / 4) return Buffer.allocUnsafe(size);
    if (this.slabUsed + size > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.slabUsed = 0;
    }
    const out = this.slab.subarray(this.slabUsed, this.slabUsed + size);
    this.slabUsed += size;
    return out;
  }
}
