/**
 * Awaitable packets from a socket during the connection phase, where the exchange reads
 * as a sequence (handshake, response, auth switch …). The command phase does not use it.
 */
import type { Socket } from 'node:net';
import { AirlockError } from '../../src/util/errors.js';
import { PacketReader, type Packet } from './codec/framing.js';

export class PacketQueue {
  private readonly packets: Packet[] = [];
  private waiter: { resolve: (p: Packet) => void; reject: (e: unknown) => void } | null = null;
  private failure: unknown = null;
  private socket: Socket | null = null;
  private readonly onData = (chunk: Buffer): void => {
    try {
      this.reader.push(chunk, (p) => {
        // Views of the socket's chunk, kept across reads: copied (connection phase only).
        const raw = Buffer.from(p.raw);
        this.packets.push({ seq: p.seq, lastSeq: p.lastSeq, raw, payload: p.raw.length === p.payload.length + 4 ? raw.subarray(4) : Buffer.from(p.payload) });
        if (this.stopAfter?.(p) === true) this.reader.stop();
      });
    } catch (e) {
      this.fail(e);
      return;
    }
    this.wake();
  };
  private readonly onClose = (): void => this.fail(this.closed());
  private readonly onError = (): void => this.fail(this.closed());

  /** A packet after which the stream is no longer packets (an SSLRequest: TLS follows). */
  stopAfter: ((p: Packet) => boolean) | null = null;

  constructor(
    readonly reader: PacketReader,
    private readonly closed: () => AirlockError,
  ) {}

  attach(socket: Socket): void {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
    socket.resume();
  }

  /** Stops reading (before a TLS upgrade or the hand-over to the relay); the socket is paused. */
  detach(): void {
    const s = this.socket;
    if (s === null) return;
    s.pause();
    s.off('data', this.onData);
    s.off('close', this.onClose);
    s.off('error', this.onError);
    this.socket = null;
  }

  /** Packets read but not consumed, as their bytes, then whatever is not yet a whole packet. */
  takeRaw(): Buffer {
    return Buffer.concat([...this.packets.splice(0).map((p) => p.raw), this.reader.drain()]);
  }

  get pending(): number {
    return this.packets.length + this.reader.buffered;
  }

  next(timeoutMs = 0): Promise<Packet> {
    const p = this.packets.shift();
    if (p !== undefined) return Promise.resolve(p);
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise<Packet>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          this.waiter = null;
          reject(new AirlockError('AIRLOCK_PROTOCOL', 'timed out waiting for the handshake', { fatal: true }));
        }, timeoutMs);
        timer.unref();
      }
      this.waiter = {
        resolve: (x) => {
          clearTimeout(timer);
          resolve(x);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  private wake(): void {
    const w = this.waiter;
    if (w === null) return;
    const p = this.packets.shift();
    if (p === undefined) return;
    this.waiter = null;
    w.resolve(p);
  }

  private fail(e: unknown): void {
    if (this.failure === null) this.failure = e;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(this.failure);
  }
}
