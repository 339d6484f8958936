/**
 * MySQL packet framing (protocol::Packet): a 3-byte little-endian payload length, a
 * 1-byte sequence id, the payload. A payload of 0xffffff bytes continues in the next
 * physical packet; a logical packet ends with a shorter one (possibly empty). The reader
 * joins them and caps the joined length before buffering; the writer splits.
 *
 * A packet that lies inside one chunk is a view of that chunk (no copy): the relay
 * forwards `raw`, the bytes as they arrived.
 */
import { AirlockError } from '../../../src/util/errors.js';
import { MAX_PACKET_PAYLOAD } from './codes.js';

export interface Packet {
  /** Sequence id of the first physical packet. */
  seq: number;
  /** Sequence id of the last physical packet (differs from seq for packets over 16 MB). */
  lastSeq: number;
  /** The logical payload (continuations joined). */
  payload: Buffer;
  /** The exact bytes received: every physical packet with its header. */
  raw: Buffer;
}

export interface PacketReaderOptions {
  /** Cap on a logical packet's payload length. */
  maxPacketBytes: number;
}

const HEADER = 4;

export class PacketReader {
  private parts: Buffer[] = [];
  private partsBytes = 0;
  /** Bytes needed before the incomplete physical packet can be read. */
  private need = HEADER;
  /** Physical packets of a logical packet whose last piece has not arrived. */
  private continuation: Buffer[] = [];
  private continuationBytes = 0;
  private maxPacketBytes: number;
  private stopped = false;

  constructor(opts: PacketReaderOptions) {
    this.maxPacketBytes = opts.maxPacketBytes;
  }

  /** The handshake phase has its own small bound; the command phase the configured one. */
  setMaxPacketBytes(n: number): void {
    this.maxPacketBytes = n;
  }

  /**
   * Called from inside onPacket: the rest of the stream is not framed (it is TLS after an
   * SSLRequest) but kept for drain().
   */
  stop(): void {
    this.stopped = true;
  }

  /** Bytes held for an incomplete packet. */
  get buffered(): number {
    return this.partsBytes + this.continuation.reduce((n, p) => n + p.length, 0);
  }

  /** Calls onPacket for every complete logical packet in the stream so far. */
  push(chunk: Buffer, onPacket: (p: Packet) => void): void {
    if (this.stopped) {
      this.parts.push(chunk);
      this.partsBytes += chunk.length;
      return;
    }
    let buf = chunk;
    if (this.partsBytes > 0) {
      this.parts.push(chunk);
      this.partsBytes += chunk.length;
      if (this.partsBytes < this.need) return;
      buf = Buffer.concat(this.parts, this.partsBytes);
      this.parts = [];
      this.partsBytes = 0;
    }
    let off = 0;
    while (buf.length - off >= HEADER && !this.stopped) {
      const len = buf.readUIntLE(off, 3);
      if (this.continuationBytes + len > this.maxPacketBytes) {
        throw new AirlockError('AIRLOCK_TOO_LARGE', `a packet of more than ${this.maxPacketBytes} bytes`, { fatal: true });
      }
      if (buf.length - off < HEADER + len) break;
      const physical = buf.subarray(off, off + HEADER + len);
      off += HEADER + len;
      this.physical(physical, len, onPacket);
    }
    if (off < buf.length) {
      const rest = buf.subarray(off);
      this.parts = [rest];
      this.partsBytes = rest.length;
      this.need = this.stopped ? Infinity : rest.length >= HEADER ? HEADER + rest.readUIntLE(0, 3) : HEADER;
    } else this.need = HEADER;
  }

  private physical(p: Buffer, len: number, onPacket: (p: Packet) => void): void {
    const seq = p[3] as number;
    if (this.continuation.length > 0) {
      const prev = this.continuation[this.continuation.length - 1] as Buffer;
      if (seq !== (((prev[3] as number) + 1) & 0xff)) {
        throw new AirlockError('AIRLOCK_PROTOCOL', 'packets out of order in a continued packet', { fatal: true });
      }
    }
    if (len === MAX_PACKET_PAYLOAD) {
      this.continuation.push(p);
      this.continuationBytes += len;
      return;
    }
    if (this.continuation.length === 0) {
      onPacket({ seq, lastSeq: seq, payload: p.subarray(HEADER), raw: p });
      return;
    }
    const pieces = [...this.continuation, p];
    this.continuation = [];
    this.continuationBytes = 0;
    const payload = Buffer.concat(pieces.map((x) => x.subarray(HEADER)));
    onPacket({ seq: (pieces[0] as Buffer)[3] as number, lastSeq: seq, payload, raw: Buffer.concat(pieces) });
  }

  /** Takes the bytes read but not yet framed (before a TLS upgrade, or a hand-over). */
  drain(): Buffer {
    const out = Buffer.concat([...this.continuation, ...this.parts]);
    this.parts = [];
    this.partsBytes = 0;
    this.need = HEADER;
    this.continuation = [];
    this.continuationBytes = 0;
    this.stopped = false;
    return out;
  }
}

/** Physical packets a payload of this length takes (a multiple of 16 MB - 1 ends with an empty one). */
export function packetCount(payloadLength: number): number {
  return Math.floor(payloadLength / MAX_PACKET_PAYLOAD) + 1;
}

/** Frames a payload as one or more physical packets starting at `seq`. */
export function framePacket(payload: Buffer, seq: number): Buffer {
  if (payload.length < MAX_PACKET_PAYLOAD) {
    const out = Buffer.allocUnsafe(HEADER + payload.length);
    out.writeUIntLE(payload.length, 0, 3);
    out[3] = seq & 0xff;
    payload.copy(out, HEADER);
    return out;
  }
  const n = packetCount(payload.length);
  const out = Buffer.allocUnsafe(payload.length + n * HEADER);
  let w = 0;
  for (let i = 0; i < n; i++) {
    const piece = payload.subarray(i * MAX_PACKET_PAYLOAD, (i + 1) * MAX_PACKET_PAYLOAD);
    out.writeUIntLE(piece.length, w, 3);
    out[w + 3] = (seq + i) & 0xff;
    piece.copy(out, w + HEADER);
    w += HEADER + piece.length;
  }
  return out;
}

/** The packet with its sequence id replaced (all physical pieces renumbered from `seq`). */
export function renumber(raw: Buffer, seq: number): Buffer {
  const out = Buffer.from(raw);
  let off = 0;
  let s = seq;
  while (off + HEADER <= out.length) {
    const len = out.readUIntLE(off, 3);
    out[off + 3] = s & 0xff;
    s++;
    off += HEADER + len;
  }
  return out;
}
