/**
 * A WebSocket after its 101: frames relayed both ways through one decoder per direction,
 * each frame recorded (direction, opcode, length; text capped and scrubbed, binary as its
 * length only). What the upstream sends is masked as the session's HTTP answers are — the
 * injected secret always, detectors where a rule asks — one message at a time with the
 * maskers of body.ts, so at most one frame is held; a frame that changes is re-encoded.
 * The injected secret's forms are followed across every frame the upstream sends — data
 * frames, messages, and the payloads of pings, pongs and the close reason — as one stream,
 * so a key split over two messages, or half in a ping, is held and then cut.
 * Bad framing from either side closes both with 1002, an over-cap frame with 1009
 * (RFC 6455 §7.4.1); the session's end (the token expired, airlock stopping) closes both.
 * Backpressure: a side whose peer cannot take more is paused until the peer drains.
 */
import type { Socket } from 'node:net';
import type { Session } from '../../src/core/session-types.js';
import { AirlockError } from '../../src/util/errors.js';
import { BinaryScrubber, LiteralScrubber, TextMasker, type BodyPlan } from './body.js';
import { SecretForms, type SecretByteScanner } from '../../src/masking/secret-forms.js';
import { CLOSE_CODES, FrameDecoder, FrameError, MAX_CONTROL_PAYLOAD, closePayload, encodeFrame, readClose, type Frame } from './websocket-frames.js';

/** After the first close, the other side has this long to answer before both are cut. */
const CLOSE_GRACE_MS = 2_000;

type Side = 'client' | 'upstream';

export interface WebSocketRelayOptions {
  session: Session;
  requestId: string;
  path: string;
  client: Socket;
  /** Bytes the client sent after its upgrade request. */
  clientHead: Buffer;
  upstream: Socket;
  /** Bytes the upstream sent after its 101. */
  upstreamHead: Buffer;
  plan: BodyPlan;
  maxFrameBytes: number;
  /** Text kept per recorded frame. */
  recordTextBytes: number;
  /** Values that never reach a record: the caller's token, the injected secret (and their encodings). */
  unrecordable: string[];
  onEnd: () => void;
}

interface Masker {
  push(b: Buffer): Buffer;
  end(): Buffer;
}

interface Leg {
  from: Side;
  source: Socket;
  sink: Socket;
  decoder: FrameDecoder;
  frames: number;
  bytes: number;
  closed: boolean;
}

export class WebSocketRelay {
  private readonly client: Leg;
  private readonly upstream: Leg;
  private readonly literals: LiteralScrubber;
  private readonly rewrites: boolean;
  /**
   * The injected secret's forms in everything the upstream sends, one stream across frames,
   * messages and control frames (a client reads them all): half a key in one message or a
   * ping is held until the next frame shows whether it completes.
   */
  private readonly secrets: SecretByteScanner;
  /** The detectors alone (the secrets are the stream's), per message. */
  private readonly detectorPlan: BodyPlan;
  /** The detector masker of the upstream's message in progress. */
  private masker: Masker | null = null;
  private readonly started = Date.now();
  private ended = false;
  private graceTimer: NodeJS.Timeout | undefined;
  private readonly onAbort = (): void => {
    const reason = this.o.session.signal.reason;
    const expired = reason instanceof AirlockError && reason.code === 'AIRLOCK_AUTH_EXPIRED';
    // An administrator's kill says who ended it (the close reason, at most 123 bytes, is cut by closePayload).
    const killed = reason instanceof AirlockError && reason.code === 'AIRLOCK_SESSION_KILLED';
    const text = expired ? 'the airlock token expired' : killed ? `airlock: ${reason.message}` : 'the airlock session ended';
    this.closeBoth(expired || killed ? CLOSE_CODES.policyViolation : CLOSE_CODES.goingAway, text, reason instanceof AirlockError ? reason.code : 'AIRLOCK_SHUTTING_DOWN');
  };

  constructor(private readonly o: WebSocketRelayOptions) {
    this.literals = new LiteralScrubber(o.unrecordable);
    this.rewrites = !o.plan.detectors.empty || o.plan.secrets.length > 0;
    this.secrets = SecretForms.of(o.plan.secrets).byteScanner();
    this.detectorPlan = { ...o.plan, secrets: [] };
    const leg = (from: Side, source: Socket, sink: Socket): Leg => ({
      from,
      source,
      sink,
      frames: 0,
      bytes: 0,
      closed: false,
      decoder: new FrameDecoder({ maxPayload: o.maxFrameBytes, masked: from === 'client' }, (f) => this.onFrame(legs[from], f)),
    });
    const legs = {} as Record<Side, Leg>;
    this.client = legs.client = leg('client', o.client, o.upstream);
    this.upstream = legs.upstream = leg('upstream', o.upstream, o.client);
  }

  start(): void {
    for (const leg of [this.client, this.upstream]) {
      leg.source.setNoDelay(true);
      leg.source.setTimeout(0);
      leg.source.on('data', (chunk: Buffer) => this.onData(leg, chunk));
      leg.source.on('end', () => this.end(leg.from, 'closed the connection'));
      leg.source.on('close', () => this.end(leg.from, 'closed the connection'));
      leg.source.on('error', () => leg.source.destroy());
      // One side's slowness pauses the other.
      leg.sink.on('drain', () => {
        if (!this.ended) leg.source.resume();
      });
    }
    if (this.o.session.signal.aborted) return this.onAbort();
    this.o.session.signal.addEventListener('abort', this.onAbort, { once: true });
    if (this.o.upstreamHead.length > 0) this.onData(this.upstream, this.o.upstreamHead);
    if (this.o.clientHead.length > 0) this.onData(this.client, this.o.clientHead);
  }

  /** Airlock stopping: a going-away close to both. */
  shutdown(): void {
    this.closeBoth(CLOSE_CODES.goingAway, 'airlock is shutting down', 'AIRLOCK_SHUTTING_DOWN');
  }

  private onData(leg: Leg, chunk: Buffer): void {
    if (this.ended || leg.closed) return;
    if (leg.from === 'client') this.o.session.stats.bytesFromClient += chunk.length;
    try {
      leg.decoder.push(chunk);
    } catch (e) {
      const err = e instanceof AirlockError ? e : new AirlockError('AIRLOCK_INTERNAL', undefined, { cause: e });
      const code = e instanceof FrameError ? e.closeCode : CLOSE_CODES.internalError;
      if (err.code === 'AIRLOCK_INTERNAL') this.o.session.logger.error({ err: e, requestId: this.o.requestId }, 'websocket relay failed');
      this.closeBoth(code, err.code === 'AIRLOCK_INTERNAL' ? 'airlock failed' : err.message, err.code, leg.from);
    }
  }

  private onFrame(leg: Leg, f: Frame): void {
    let out = f.wire;
    let payload = f.payload;
    const close = f.opcode === 'close' ? readClose(f.payload) : null;
    if (leg.from === 'upstream' && this.rewrites) {
      if (f.message !== null) payload = this.maskMessage(f.message, f.payload, f.fin);
      else if (f.payload.length > 0) payload = this.scrubControl(f.payload, close?.code ?? null);
      if (payload !== f.payload && !payload.equals(f.payload)) out = encodeFrame({ fin: f.fin, opcode: f.opcode, payload, mask: false });
    }
    if (close !== null) leg.closed = true;
    leg.frames++;
    leg.bytes += f.payload.length;
    this.recordFrame(leg.from, f, payload);
    this.send(leg, out);
    if (f.opcode === 'close') this.afterClose(leg);
  }

  /**
   * One frame of an upstream data message: its bytes through the secret stream (the forms
   * include each secret's UTF-8 bytes), then the message's detectors.
   */
  private maskMessage(message: 'text' | 'binary', payload: Buffer, fin: boolean): Buffer {
    const scrubbed = this.secrets.push(payload);
    const bytes = fin ? concat(scrubbed, this.secrets.boundary()) : scrubbed;
    if (this.o.plan.detectors.empty) return bytes;
    const m = (this.masker ??= message === 'text' ? new TextMasker(this.detectorPlan) : new BinaryScrubber(this.detectorPlan));
    const out = fin ? Buffer.concat([m.push(bytes), m.end()]) : m.push(bytes);
    if (fin) this.masker = null;
    return out;
  }

  /**
   * A close keeps its code and ends the secret stream into its reason (what was held and
   * never completed a form); a ping's or pong's payload joins the stream as bytes. Both are
   * then cut to the 125 bytes a control frame may hold.
   */
  private scrubControl(payload: Buffer, closeCode: number | null): Buffer {
    const whole = (m: Masker, b: Buffer): Buffer => Buffer.concat([m.push(b), m.end()]);
    if (closeCode !== null) {
      const reason = concat(this.secrets.push(payload.subarray(2)), this.secrets.end());
      return closePayload(closeCode, whole(new TextMasker(this.detectorPlan), reason).toString('utf8'));
    }
    const bytes = concat(this.secrets.push(payload), this.secrets.boundary());
    if (this.o.plan.detectors.empty) return bytes.subarray(0, MAX_CONTROL_PAYLOAD);
    return whole(new BinaryScrubber(this.detectorPlan), bytes).subarray(0, MAX_CONTROL_PAYLOAD);
  }

  private send(leg: Leg, bytes: Buffer): void {
    if (leg.sink.destroyed) return;
    if (leg.from === 'upstream') this.o.session.stats.bytesToClient += bytes.length;
    if (!leg.sink.write(bytes)) leg.source.pause();
  }

  /** A close went one way: the answer may follow; after both (or the grace period) the connections end. */
  private afterClose(leg: Leg): void {
    const other = leg === this.client ? this.upstream : this.client;
    if (other.closed) return this.end(other.from, 'closed the WebSocket, and the other side answered');
    this.graceTimer ??= setTimeout(() => this.end(leg.from, 'closed the WebSocket; the other side did not answer'), CLOSE_GRACE_MS).unref();
  }

  private recordFrame(from: Side, f: Frame, delivered: Buffer): void {
    const cap = this.o.recordTextBytes;
    const event: Record<string, unknown> = { from, opcode: f.opcode, fin: f.fin, length: f.payload.length };
    if (delivered.length !== f.payload.length) event.deliveredLength = delivered.length;
    if (f.message === 'text') {
      // What the receiver got: for upstream text, the masked payload.
      event.text = this.literals.scrub(delivered.subarray(0, cap).toString('utf8'));
      if (delivered.length > cap) event.truncated = true;
    } else if (f.opcode === 'close' && delivered.length >= 2) {
      event.code = delivered.readUInt16BE(0);
      event.reason = this.literals.scrub(delivered.subarray(2).toString('utf8'));
    }
    this.o.session.record({ type: 'websocket.frame', requestId: this.o.requestId, ...event });
  }

  /**
   * Airlock ends the WebSocket: a close frame to each side still open (masked toward the
   * upstream, §5.3, since airlock is its client), then both connections end.
   */
  private closeBoth(code: number, reason: string, errorCode: string, by?: Side): void {
    if (this.ended) return;
    const payload = closePayload(code, reason);
    for (const leg of [this.client, this.upstream]) {
      const toward = leg.sink;
      if (toward.destroyed || leg.closed) continue;
      toward.write(encodeFrame({ fin: true, opcode: 'close', payload, mask: toward === this.o.upstream }));
    }
    this.end(by ?? 'airlock', reason, { closeCode: code, errorCode });
  }

  private end(by: Side | 'airlock', reason: string, extra: { closeCode?: number; errorCode?: string } = {}): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.graceTimer);
    this.o.session.signal.removeEventListener('abort', this.onAbort);
    for (const s of [this.o.client, this.o.upstream]) {
      s.end();
      // A peer that never closes its side is cut.
      setTimeout(() => s.destroy(), CLOSE_GRACE_MS).unref();
    }
    this.o.session.record({
      type: 'websocket.closed',
      requestId: this.o.requestId,
      path: this.o.path,
      by,
      reason: this.literals.scrub(reason),
      durationMs: Date.now() - this.started,
      framesFromClient: this.client.frames,
      framesFromUpstream: this.upstream.frames,
      bytesFromClient: this.client.bytes,
      bytesFromUpstream: this.upstream.bytes,
      ...extra,
    });
    this.o.session.logger.info({ requestId: this.o.requestId, path: this.o.path, by, ...extra }, 'websocket closed');
    this.o.onEnd();
  }
}

/** Two buffers as one, without a copy when either is empty. */
function concat(a: Buffer, b: Buffer): Buffer {
  return b.length === 0 ? a : a.length === 0 ? b : Buffer.concat([a, b]);
}
