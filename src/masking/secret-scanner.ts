/**
 * The streaming side of the secret matcher: one stream's state over text (SecretScanner) or
 * bytes (SecretByteScanner), holding back only what could still become a form of a secret
 * and replacing each completed one with a marker. The compiled forms are secret-forms.ts'.
 */
import { REDACTED } from './methods.js';
import { ESCAPE_MORE, escapeAt, escapeAtEnd } from './escapes.js';

/** The compiled automaton a scanner walks (SecretForms builds it; kept structural so neither file imports the other). */
export interface SecretAutomaton {
  readonly classOfRaw: Uint16Array;
  readonly idle: Uint8Array;
  readonly classes: number;
  readonly delta: Int32Array;
  readonly depth: Int32Array;
  readonly matchLength: Int32Array;
  readonly longest: number;
  readonly empty: boolean;
}

/** At a message or event boundary, a partial form this long (canonical characters) is held; a shorter one is released. */
export const MIN_HELD_AT_BOUNDARY = 4;
/** Bytes read as one string by the byte scanner. */
const BYTE_SLICE = 64 * 1024;

/**
 * One stream's matcher: the decoder of the escape families, the automaton's state, where each
 * of the last decoded characters began in the source, and the redactions found but not yet
 * released. Offsets are absolute positions in the stream's source units (characters of a
 * string stream, bytes of a byte stream); the subclasses keep the unreleased source.
 */
abstract class ScanCore {
  /** Absolute offset of the first source unit not yet released. */
  protected base = 0;
  private state = 0;
  private readonly starts: Float64Array;
  private decoded = 0;
  /** Redactions not yet released: [from, to) pairs, absolute, ordered, disjoint. */
  private spans: number[] = [];
  /** An escape being read (`%4`, `\u00`, `&#x7`) and where it began. */
  private pend = '';
  private pendAt = 0;

  constructor(protected readonly forms: SecretAutomaton) {
    // A power of two, at least the longest form: indexed by mask.
    this.starts = new Float64Array(2 ** Math.ceil(Math.log2(Math.max(2, forms.longest))));
  }

  /** Source units from `from` to `to` (absolute) go out as they are. */
  protected abstract pass(from: number, to: number): void;
  /** A redaction goes out in place of a form. */
  protected abstract mark(): void;
  /** Everything before `to` has gone out. */
  protected abstract drop(to: number): void;

  /**
   * Reads `input` (at absolute offset `at`). `final`: nothing follows, so an escape cut
   * short by the end is read as far as it goes.
   */
  protected scan(input: string, at: number, final = false): void {
    if (this.pend !== '') {
      // An escape began at the end of the last chunk: read it again with what follows.
      input = this.pend + input;
      at = this.pendAt;
      this.pend = '';
    }
    const { delta, classOfRaw, classes, matchLength, idle } = this.forms;
    const starts = this.starts;
    const mask = starts.length - 1;
    let state = this.state;
    let decoded = this.decoded;
    const n = input.length;
    let i = 0;
    while (i < n) {
      let c = input.charCodeAt(i);
      if (state === 0 && idle[c] === 1) {
        // Between forms, most text: run until a character that could begin one (or an escape).
        i++;
        while (i < n && idle[input.charCodeAt(i)] === 1) i++;
        if (i >= n) break;
        c = input.charCodeAt(i);
      }
      let len = 1;
      if (c === 0x5c || c === 0x25 || c === 0x26) {
        let r = escapeAt(input, i);
        if (r === ESCAPE_MORE) {
          if (!final) {
            this.pend = input.slice(i);
            this.pendAt = at + i;
            break;
          }
          r = escapeAtEnd(input, i);
        }
        if (r >= 0) {
          c = r >> 4;
          len = r & 15;
        }
      }
      const next = delta[state * classes + (classOfRaw[c] ?? 0)] ?? 0;
      // Only characters inside a live partial form are counted: a form's characters are consecutive among them.
      if (next !== 0) {
        starts[decoded & mask] = at + i;
        decoded++;
        const m = matchLength[next] ?? 0;
        if (m > 0) this.redact(starts[(decoded - m) & mask] ?? at + i, at + i + len);
      }
      state = next;
      i += len;
    }
    this.state = state;
    this.decoded = decoded;
  }

  /**
   * scan() over bytes, each one character (latin1), a slice at a time: a 1 MiB WebSocket frame
   * does not become a 1 MiB string (the relay's peak memory stays bounded), and the string
   * loop, the fastest here, does the work.
   */
  protected scanBytes(input: Buffer, at: number): void {
    for (let off = 0; off < input.length; off += BYTE_SLICE) this.scan(input.toString('latin1', off, Math.min(input.length, off + BYTE_SLICE)), at + off);
  }

  /** The end of the stream: an escape still open is read as far as it goes. */
  protected finish(): void {
    if (this.pend !== '') this.scan('', 0, true);
  }

  protected restart(): void {
    this.state = 0;
    this.decoded = 0;
  }

  private redact(from: number, to: number): void {
    let a = Math.max(from, this.base);
    const spans = this.spans;
    while (spans.length > 0 && (spans[spans.length - 1] ?? 0) >= a) {
      spans.pop();
      a = Math.min(a, spans.pop() ?? a);
    }
    spans.push(a, to);
  }

  /** Where released source must stop (`total`: the end of what was read): before a live partial form of `minHeld` or more characters, or an unfinished escape. */
  protected safeEnd(total: number, minHeld = 1): number {
    let end = total;
    if (this.pend !== '') end = Math.min(end, this.pendAt);
    const d = this.forms.depth[this.state] ?? 0;
    if (d >= minHeld) {
      // (A live match that began in text already released continues from what is held.)
      let live = Math.max(this.base, this.starts[(this.decoded - d) & (this.starts.length - 1)] ?? end);
      // A live match that starts inside a found form (the form itself, or one it begins):
      // that form is cut whatever follows, so it need not wait.
      for (let i = 0; i < this.spans.length; i += 2) {
        if (live >= (this.spans[i] ?? 0) && live < (this.spans[i + 1] ?? 0)) live = this.spans[i + 1] ?? live;
      }
      end = Math.min(end, live);
    }
    return Math.max(end, this.base);
  }

  /** Releases the source up to `end`, each found form as one redaction. */
  protected releaseTo(end: number): void {
    let pos = this.base;
    const spans = this.spans;
    let used = 0;
    while (used < spans.length && (spans[used] ?? 0) < end) {
      const a = spans[used] ?? 0;
      if (a > pos) this.pass(pos, a);
      this.mark();
      pos = spans[used + 1] ?? 0;
      used += 2;
    }
    if (used > 0) this.spans = spans.slice(used);
    if (pos < end) {
      this.pass(pos, end);
      pos = end;
    }
    this.drop(pos);
    this.base = pos;
  }
}

/**
 * A stream of text: text in (any chunking), text out with every form replaced, holding back
 * only what could still be the start of a form.
 */
export class SecretScanner extends ScanCore {
  /** Source not yet released; src[0] is at absolute offset `base`. */
  private src = '';
  private out = '';

  /** Characters held back, waiting to know whether they are part of a form. */
  get heldChars(): number {
    return this.src.length;
  }

  push(chunk: string): string {
    if (this.forms.empty) return chunk;
    const at = this.base + this.src.length;
    this.src = this.src === '' ? chunk : this.src + chunk;
    this.scan(chunk, at);
    return this.take(this.safeEnd(this.base + this.src.length));
  }

  /**
   * The end of a unit the client acts on at once (a WebSocket message, an event): a partial
   * form shorter than MIN_HELD_AT_BOUNDARY canonical characters is released rather than held
   * until the next unit (a message ending in `s` is not delayed because a key starts `sk-`).
   * The matcher keeps its state, so if the next unit completes the form, all of it from there
   * on is cut: at most MIN_HELD_AT_BOUNDARY - 1 leading characters of a form reach the client.
   */
  boundary(): string {
    if (this.forms.empty) return '';
    return this.take(this.safeEnd(this.base + this.src.length, MIN_HELD_AT_BOUNDARY));
  }

  /** The end of the stream: nothing more can complete a form. */
  end(): string {
    if (this.forms.empty) return '';
    this.finish();
    const out = this.take(this.base + this.src.length);
    this.restart();
    return out;
  }

  private take(end: number): string {
    this.out = '';
    this.releaseTo(end);
    const out = this.out;
    this.out = '';
    return out;
  }

  protected pass(from: number, to: number): void {
    const s = from - this.base;
    this.out += s === 0 && to - from === this.src.length ? this.src : this.src.slice(s, to - this.base);
  }

  protected mark(): void {
    this.out += REDACTED;
  }

  protected drop(to: number): void {
    const k = to - this.base;
    if (k > 0) this.src = k === this.src.length ? '' : this.src.slice(k);
  }
}

const MARK = Buffer.from(REDACTED, 'latin1');

/**
 * A stream of bytes (a body airlock does not read as text, a binary WebSocket message, a
 * ping): each byte one character (latin1), so a form is found in the secret's UTF-8 bytes;
 * what holds no form goes out as the same Buffer that came in.
 */
export class SecretByteScanner extends ScanCore {
  private src: Buffer = Buffer.alloc(0);
  private out: Buffer[] = [];

  push(chunk: Buffer): Buffer {
    if (this.forms.empty) return chunk;
    const at = this.base + this.src.length;
    this.src = this.src.length === 0 ? chunk : Buffer.concat([this.src, chunk]);
    this.scanBytes(chunk, at);
    return this.take(this.safeEnd(this.base + this.src.length));
  }

  /** See SecretScanner.boundary. */
  boundary(): Buffer {
    if (this.forms.empty) return Buffer.alloc(0);
    return this.take(this.safeEnd(this.base + this.src.length, MIN_HELD_AT_BOUNDARY));
  }

  end(): Buffer {
    if (this.forms.empty) return Buffer.alloc(0);
    this.finish();
    const out = this.take(this.base + this.src.length);
    this.restart();
    return out;
  }

  private take(end: number): Buffer {
    this.out = [];
    this.releaseTo(end);
    const out = this.out.length === 1 ? (this.out[0] ?? Buffer.alloc(0)) : Buffer.concat(this.out);
    this.out = [];
    return out;
  }

  protected pass(from: number, to: number): void {
    const s = from - this.base;
    this.out.push(s === 0 && to - from === this.src.length ? this.src : this.src.subarray(s, to - this.base));
  }

  protected mark(): void {
    this.out.push(MARK);
  }

  protected drop(to: number): void {
    const k = to - this.base;
    // A copy of the small held tail, so the chunk it came from is not kept alive.
    if (k > 0) this.src = k === this.src.length ? Buffer.alloc(0) : Buffer.from(this.src.subarray(k));
  }
}
