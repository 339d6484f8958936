/**
 * RFC 6455 framing (§5), decode and encode side by side. The decoder takes bytes as they
 * arrive and hands each complete frame to a callback; it keeps at most one frame (capped)
 * and checks what the spec says an endpoint MUST check: reserved bits without a negotiated
 * extension, unknown opcodes, the masking direction (§5.1), control frames that are
 * fragmented or longer than 125 bytes (§5.5), minimal length encoding and the 64-bit
 * length's top bit (§5.2), continuation frames outside a fragmented message and data frames
 * inside one (§5.4). A violation is one FrameError carrying the close code to send:
 * 1002 (protocol error) or 1009 (message too big), §7.4.1.
 */
import { randomBytes } from 'node:crypto';
import { AirlockError } from '../../src/util/errors.js';

/** §5.2 opcodes (registry: §11.8). */
export const OPCODES = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

export type OpcodeName = keyof typeof OPCODES;

const OPCODE_NAMES: ReadonlyMap<number, OpcodeName> = new Map(Object.entries(OPCODES).map(([name, code]) => [code, name as OpcodeName]));

/** §7.4.1 status codes airlock itself sends. */
export const CLOSE_CODES = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  policyViolation: 1008,
  tooBig: 1009,
  internalError: 1011,
} as const;

/** §5.5: a control frame's payload is at most 125 bytes. */
export const MAX_CONTROL_PAYLOAD = 125;
/** 2 bytes, 8 of extended length, 4 of masking key. */
const MAX_HEADER = 14;

export interface Frame {
  fin: boolean;
  opcode: OpcodeName;
  /** The data message a text, binary or continuation frame belongs to; null for control frames. */
  message: 'text' | 'binary' | null;
  /** The payload, unmasked. */
  payload: Buffer;
  /** The frame exactly as it came off the wire. */
  wire: Buffer;
}

export class FrameError extends AirlockError {
  constructor(readonly closeCode: 1002 | 1009, message: string) {
    super(closeCode === 1009 ? 'AIRLOCK_TOO_LARGE' : 'AIRLOCK_PROTOCOL', message, { fatal: true });
  }
}

const protocolError = (why: string): FrameError => new FrameError(CLOSE_CODES.protocolError, `malformed WebSocket frame: ${why}`);

interface Header {
  fin: boolean;
  opcode: OpcodeName;
  maskingKey: Buffer | null;
  headerLength: number;
  payloadLength: number;
}

export interface FrameDecoderOptions {
  /** Largest payload accepted; a longer frame is refused with 1009 before its payload is read. */
  maxPayload: number;
  /** §5.1: frames from a client are masked, frames from a server are not. */
  masked: boolean;
}

/** §5.2 base framing: null while the header is incomplete. */
function readHeader(b: Buffer, opts: FrameDecoderOptions): Header | null {
  if (b.length < 2) return null;
  const b0 = b[0] as number;
  const b1 = b[1] as number;
  const fin = (b0 & 0x80) !== 0;
  if ((b0 & 0x70) !== 0) throw protocolError('reserved bits set, but no extension was negotiated');
  const opcode = OPCODE_NAMES.get(b0 & 0x0f);
  if (opcode === undefined) throw protocolError(`unknown opcode 0x${(b0 & 0x0f).toString(16)}`);
  const masked = (b1 & 0x80) !== 0;
  if (masked !== opts.masked) throw protocolError(opts.masked ? 'a client frame is not masked' : 'a server frame is masked');
  const len7 = b1 & 0x7f;
  const control = OPCODES[opcode] >= 0x8;
  if (control && !fin) throw protocolError('a fragmented control frame');
  if (control && len7 > MAX_CONTROL_PAYLOAD) throw protocolError('a control frame longer than 125 bytes');
  let offset = 2;
  let payloadLength = len7;
  if (len7 === 126) {
    if (b.length < 4) return null;
    payloadLength = b.readUInt16BE(2);
    if (payloadLength < 126) throw protocolError('a length not in its shortest form');
    offset = 4;
  } else if (len7 === 127) {
    if (b.length < 10) return null;
    const high = b.readUInt32BE(2);
    if ((high & 0x80000000) !== 0) throw protocolError('the most significant bit of a 64-bit length is set');
    payloadLength = high * 0x1_0000_0000 + b.readUInt32BE(6);
    if (payloadLength <= 0xffff) throw protocolError('a length not in its shortest form');
    offset = 10;
  }
  if (payloadLength > opts.maxPayload) throw new FrameError(CLOSE_CODES.tooBig, `a WebSocket frame of ${payloadLength} bytes exceeds the limit of ${opts.maxPayload}`);
  let maskingKey: Buffer | null = null;
  if (masked) {
    if (b.length < offset + 4) return null;
    maskingKey = Buffer.from(b.subarray(offset, offset + 4));
    offset += 4;
  }
  return { fin, opcode, maskingKey, headerLength: offset, payloadLength };
}

/** §5.3: octet i of the payload is XORed with octet i mod 4 of the masking key (its own inverse). */
export function applyMask(data: Buffer, key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  const k0 = key[0] as number;
  const k1 = key[1] as number;
  const k2 = key[2] as number;
  const k3 = key[3] as number;
  let i = 0;
  for (; i + 4 <= data.length; i += 4) {
    out[i] = (data[i] as number) ^ k0;
    out[i + 1] = (data[i + 1] as number) ^ k1;
    out[i + 2] = (data[i + 2] as number) ^ k2;
    out[i + 3] = (data[i + 3] as number) ^ k3;
  }
  for (; i < data.length; i++) out[i] = (data[i] as number) ^ (key[i & 3] as number);
  return out;
}

/** One direction of a connection: bytes in, frames out. After a FrameError it accepts nothing more. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private header: Header | null = null;
  /** The opcode of the fragmented message in progress (§5.4). */
  private fragmented: 'text' | 'binary' | null = null;
  private failed: FrameError | null = null;

  constructor(
    private readonly opts: FrameDecoderOptions,
    private readonly onFrame: (frame: Frame) => void,
  ) {}

  /** Bytes of an incomplete frame held. */
  get pending(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (this.failed !== null) throw this.failed;
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    try {
      this.drain();
    } catch (e) {
      if (e instanceof FrameError) this.failed = e;
      this.chunks = [];
      this.buffered = 0;
      throw e;
    }
  }

  private joined(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  private drain(): void {
    for (;;) {
      if (this.header === null) {
        if (this.buffered < 2) return;
        // The header is read from its first bytes only; a large payload is not joined for it.
        const first = this.chunks[0] as Buffer;
        const head = first.length >= MAX_HEADER || this.chunks.length === 1 ? first : this.joined();
        this.header = readHeader(head, this.opts);
        if (this.header === null) return;
      }
      const h = this.header;
      const total = h.headerLength + h.payloadLength;
      if (this.buffered < total) return;
      const all = this.joined();
      const wire = all.subarray(0, total);
      const rest = all.subarray(total);
      this.chunks = rest.length === 0 ? [] : [rest];
      this.buffered = rest.length;
      this.header = null;
      const body = wire.subarray(h.headerLength);
      const payload = h.maskingKey === null ? body : applyMask(body, h.maskingKey);
      this.onFrame({ fin: h.fin, opcode: h.opcode, message: this.messageOf(h), payload, wire });
    }
  }

  /** §5.4 fragmentation: which message a data frame continues, or a protocol error. */
  private messageOf(h: Header): 'text' | 'binary' | null {
    switch (h.opcode) {
      case 'text':
      case 'binary':
        if (this.fragmented !== null) throw protocolError(`a new ${h.opcode} message inside a fragmented one`);
        if (!h.fin) this.fragmented = h.opcode;
        return h.opcode;
      case 'continuation': {
        const m = this.fragmented;
        if (m === null) throw protocolError('a continuation frame outside a fragmented message');
        if (h.fin) this.fragmented = null;
        return m;
      }
      default:
        return null;
    }
  }
}

export interface OutgoingFrame {
  fin: boolean;
  opcode: OpcodeName;
  payload: Buffer;
  /** Frames airlock sends as a client (upstream) are masked (§5.3): a fresh key when true. */
  mask: boolean;
}

/** §5.2, with the length in its shortest form. */
export function encodeFrame(f: OutgoingFrame): Buffer {
  const n = f.payload.length;
  const lengthBytes = n < 126 ? 0 : n <= 0xffff ? 2 : 8;
  const head = Buffer.alloc(2 + lengthBytes + (f.mask ? 4 : 0));
  head[0] = (f.fin ? 0x80 : 0) | OPCODES[f.opcode];
  head[1] = (f.mask ? 0x80 : 0) | (lengthBytes === 0 ? n : lengthBytes === 2 ? 126 : 127);
  if (lengthBytes === 2) head.writeUInt16BE(n, 2);
  if (lengthBytes === 8) {
    head.writeUInt32BE(Math.floor(n / 0x1_0000_0000), 2);
    head.writeUInt32BE(n >>> 0, 6);
  }
  if (!f.mask) return Buffer.concat([head, f.payload]);
  const key = randomBytes(4);
  key.copy(head, 2 + lengthBytes);
  return Buffer.concat([head, applyMask(f.payload, key)]);
}

/** §5.5.1: a close payload is empty, or a 2-byte status code and a UTF-8 reason (cut at a character, to fit). */
export function closePayload(code: number, reason = ''): Buffer {
  let text = Buffer.from(reason, 'utf8');
  if (text.length > MAX_CONTROL_PAYLOAD - 2) {
    let end = MAX_CONTROL_PAYLOAD - 2;
    // Back off continuation bytes (10xxxxxx) so that no character is cut in two.
    while (end > 0 && ((text[end] as number) & 0xc0) === 0x80) end--;
    text = text.subarray(0, end);
  }
  const out = Buffer.alloc(2 + text.length);
  out.writeUInt16BE(code, 0);
  text.copy(out, 2);
  return out;
}

/** §7.4: codes an endpoint may receive — the defined ones in 1000–1014 other than 1004–1006, and 3000–4999. */
function validCloseCode(code: number): boolean {
  if (code >= 3000 && code <= 4999) return true;
  return code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006;
}

export function readClose(payload: Buffer): { code: number | null; reason: string } {
  if (payload.length === 0) return { code: null, reason: '' };
  if (payload.length === 1) throw protocolError('a close payload of one byte');
  const code = payload.readUInt16BE(0);
  if (!validCloseCode(code)) throw protocolError(`close status code ${code}`);
  return { code, reason: payload.subarray(2).toString('utf8') };
}
