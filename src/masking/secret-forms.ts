/**
 * Every form of an injected secret that a client could read back, found by one streaming
 * matcher (STYLE #16). The stream is canonicalised as it is read — JSON escapes (`\/`,
 * `\uXXXX` for any character), percent-escapes in either hex case (any subset of characters,
 * so Python `quote()` output too), HTML character references, ASCII case and `+` ≡ space —
 * with a map from each decoded character back to the source characters that spelled it.
 * An Aho–Corasick automaton runs on the canonical view for the raw secret, its UTF-8 bytes
 * (what percent-escapes of a non-ASCII character decode to), its hex, and the stable cores
 * of its base64 / base64url at all three alignments inside a longer value. Work is O(input):
 * one table step per decoded character.
 *
 * The scanner holds back only the source of the longest canonical suffix that is still a
 * prefix of some form (plus an escape not yet complete), releases it as soon as it cannot
 * become one, and replaces the source span of every completed form with one marker.
 * A hand-written automaton, not an npm Aho–Corasick package: the hold-back needs the
 * automaton's depth after every character and a matcher fed by a decoder, which those
 * packages (whole-string search) do not expose.
 */
import { REDACTED } from './methods.js';

/** Forms shorter than this are not searched (a base64 core of a very short value would match noise). */
const MIN_FORM_CHARS = 6;
/** At a message or event boundary, a partial form this long (canonical characters) is held; a shorter one is released. */
export const MIN_HELD_AT_BOUNDARY = 4;

/** RFC 8259 §7 two-character escapes, by the character after the backslash. */
const JSON_ESCAPES = new Int32Array(128).fill(-1);
for (const [c, code] of Object.entries({ '"': 0x22, '\\': 0x5c, '/': 0x2f, b: 0x08, f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09 })) JSON_ESCAPES[c.charCodeAt(0)] = code;

/** HTML named references for ASCII punctuation (HTML Living Standard, named character references). */
const HTML_NAMED: ReadonlyMap<string, number> = new Map(Object.entries({
  amp: 0x26, lt: 0x3c, gt: 0x3e, quot: 0x22, apos: 0x27, sol: 0x2f, bsol: 0x5c, colon: 0x3a, semi: 0x3b, equals: 0x3d,
  plus: 0x2b, percnt: 0x25, lowbar: 0x5f, hyphen: 0x2d, dash: 0x2d, period: 0x2e, comma: 0x2c, num: 0x23, excl: 0x21,
  dollar: 0x24, lpar: 0x28, rpar: 0x29, ast: 0x2a, midast: 0x2a, quest: 0x3f, commat: 0x40, lsqb: 0x5b, lbrack: 0x5b,
  rsqb: 0x5d, rbrack: 0x5d, hat: 0x5e, grave: 0x60, lcub: 0x7b, lbrace: 0x7b, rcub: 0x7d, rbrace: 0x7d, verbar: 0x7c,
  vert: 0x7c, tilde: 0x7e, nbsp: 0xa0, tab: 0x09, newline: 0x0a,
}));

const hexValue = (c: number): number => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1);
const isAlpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);

/** The canonical character: ASCII lower case, and `+` is a space (form encoding). */
const fold = (c: number): number => (c >= 0x41 && c <= 0x5a ? c + 32 : c === 0x2b ? 0x20 : c);

/** Bytes read as one string by the byte scanner. */
const BYTE_SLICE = 64 * 1024;

/** escapeAt: not an escape, the lead character stands for itself. */
const ESCAPE_LITERAL = -1;
/** escapeAt: the input ends before the escape can be told. */
const ESCAPE_MORE = -2;
/** Digits in a numeric character reference, letters in a named one. */
const MAX_REF_DIGITS = 7;
const MAX_REF_LETTERS = 8;

/**
 * The escape that starts at s[i] (a `\`, `%` or `&`): the decoded code unit * 16 + the
 * escape's length, ESCAPE_LITERAL, or ESCAPE_MORE. JSON `\X` and `\uXXXX` (RFC 8259 §7),
 * `%XX` in either case (RFC 3986 §2.1), `&#NNN;` `&#xHH;` (semicolon optional) and the
 * named references of HTML_NAMED. No allocation on the common paths.
 */
function escapeAt(s: string, i: number): number {
  const n = s.length;
  if (i + 1 >= n) return ESCAPE_MORE;
  const lead = s.charCodeAt(i);
  const c1 = s.charCodeAt(i + 1);
  if (lead === 0x5c) {
    if (c1 !== 0x75) {
      const code = c1 < 128 ? (JSON_ESCAPES[c1] ?? -1) : -1;
      return code < 0 ? ESCAPE_LITERAL : code * 16 + 2;
    }
    let v = 0;
    for (let k = 2; k < 6; k++) {
      if (i + k >= n) return ESCAPE_MORE;
      const h = hexValue(s.charCodeAt(i + k));
      if (h < 0) return ESCAPE_LITERAL;
      v = v * 16 + h;
    }
    return v * 16 + 6;
  }
  if (lead === 0x25) {
    const h1 = hexValue(c1);
    if (h1 < 0) return ESCAPE_LITERAL;
    if (i + 2 >= n) return ESCAPE_MORE;
    const h2 = hexValue(s.charCodeAt(i + 2));
    return h2 < 0 ? ESCAPE_LITERAL : (h1 * 16 + h2) * 16 + 3;
  }
  if (c1 === 0x23) {
    if (i + 2 >= n) return ESCAPE_MORE;
    const x = s.charCodeAt(i + 2);
    const hex = x === 0x78 || x === 0x58;
    const first = i + (hex ? 3 : 2);
    let k = first;
    let v = 0;
    for (;;) {
      if (k - first > MAX_REF_DIGITS) return ESCAPE_LITERAL;
      if (k >= n) return ESCAPE_MORE;
      const c = s.charCodeAt(k);
      const d = hex ? hexValue(c) : c >= 0x30 && c <= 0x39 ? c - 0x30 : -1;
      if (d < 0) break;
      v = v * (hex ? 16 : 10) + d;
      k++;
    }
    if (k === first || v > 0xffff) return ESCAPE_LITERAL;
    return v * 16 + (s.charCodeAt(k) === 0x3b ? k + 1 : k) - i;
  }
  let k = i + 1;
  while (k < n && isAlpha(s.charCodeAt(k))) {
    k++;
    if (k - i - 1 > MAX_REF_LETTERS) return ESCAPE_LITERAL;
  }
  if (k >= n) return ESCAPE_MORE;
  if (s.charCodeAt(k) !== 0x3b || k === i + 1) return ESCAPE_LITERAL;
  const code = HTML_NAMED.get(s.slice(i + 1, k).toLowerCase());
  return code === undefined ? ESCAPE_LITERAL : code * 16 + k + 1 - i;
}

/** The escape at s[i] when nothing follows s: one read past the end settles it (a numeric reference needs no `;`). */
function escapeAtEnd(s: string, i: number): number {
  const r = escapeAt(`${s}\u0000`, i);
  return r >= 0 && i + (r & 15) > s.length ? ESCAPE_LITERAL : r;
}

/** The canonical (decoded, unfolded) text of a whole string: how a form is written down. */
export function decodeEscapes(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; ) {
    const c = text.charCodeAt(i);
    const r = c === 0x5c || c === 0x25 || c === 0x26 ? escapeAtEnd(text, i) : ESCAPE_LITERAL;
    if (r >= 0) {
      out += String.fromCharCode(r >> 4);
      i += r & 15;
    } else {
      out += text[i] ?? '';
      i++;
    }
  }
  return out;
}

/** The base64 characters of `bytes` that do not depend on what precedes or follows them, at offset `align` (0–2) in a longer value. */
function base64Core(bytes: Buffer, align: number, url: boolean): string {
  const enc = Buffer.concat([Buffer.alloc(align), bytes]).toString(url ? 'base64url' : 'base64');
  const skip = [0, 2, 3][align] ?? 0;
  return enc.slice(skip, Math.floor((8 * (align + bytes.length)) / 6));
}

/**
 * The written forms of one secret, before folding. `encodedOnly`: the secret contains another
 * one (`Bearer sk-…` holds `sk-…`), so its text forms would only find what the other's do — and
 * hold back ordinary words such as "bear" — while its base64 is a form of its own.
 */
export function formsOf(secret: string, encodedOnly = false): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const forms = encodedOnly ? [] : [secret, decodeEscapes(secret), bytes.toString('latin1'), bytes.toString('hex')];
  for (const url of [false, true]) for (const align of [0, 1, 2]) forms.push(base64Core(bytes, align, url));
  return [...new Set(forms)].filter((f) => f.length >= MIN_FORM_CHARS);
}

/** Every form of a set of secrets: a secret that holds another contributes its base64 forms only. */
function formsOfAll(secrets: readonly string[]): string[] {
  const list = [...new Set(secrets.filter((x) => x.length > 0))];
  return list.flatMap((x) => formsOf(x, list.some((other) => other !== x && x.includes(other))));
}

/**
 * The secrets airlock injects for one credential value: the value, the credential after an
 * auth scheme (`Bearer sk-…`), and for `Basic` the decoded `user:password` and the password.
 */
export function injectedSecrets(value: string, minChars = 8): string[] {
  const out = new Set<string>();
  const add = (v: string | undefined): void => {
    if (v !== undefined && v.length >= minChars) out.add(v);
  };
  add(value);
  const m = /^(\w+)\s+(.+)$/.exec(value.trim());
  if (m !== null && /^(?:bearer|basic|token|digest|apikey|key)$/i.test(m[1] ?? '')) {
    add(m[2]);
    if (/^basic$/i.test(m[1] ?? '')) {
      const pair = Buffer.from(m[2] ?? '', 'base64').toString('utf8');
      if (pair.includes(':') && !pair.includes('\ufffd')) {
        add(pair);
        add(pair.slice(pair.indexOf(':') + 1));
      }
    }
  }
  return [...out];
}

/** The compiled matcher for a set of secrets; shared by every scanner of a session. */
export class SecretForms {
  /** Class of each code unit, folded as it is read (0: in no form). */
  readonly classOfRaw: Uint16Array;
  /** 1 for a code unit that leaves the start state where it is and begins no escape. */
  readonly idle: Uint8Array;
  readonly classes: number;
  /** delta[state * classes + class] -> state. */
  readonly delta: Int32Array;
  /** Depth of each state: the canonical characters a live match has read. */
  readonly depth: Int32Array;
  /** Longest form ending at each state (0: none). */
  readonly matchLength: Int32Array;
  readonly longest: number;

  private static readonly cache = new Map<string, SecretForms>();

  /** One compiled matcher per set of secrets (a session's are fixed), a few kept. */
  static of(secrets: readonly string[]): SecretForms {
    const key = [...secrets].sort().join('\u0000');
    let forms = SecretForms.cache.get(key);
    if (forms === undefined) {
      forms = new SecretForms(secrets);
      if (SecretForms.cache.size >= 16) SecretForms.cache.delete(SecretForms.cache.keys().next().value ?? '');
      SecretForms.cache.set(key, forms);
    }
    return forms;
  }

  constructor(secrets: readonly string[]) {
    const patterns = [...new Set(formsOfAll(secrets).map((f) => Array.from({ length: f.length }, (_, i) => fold(f.charCodeAt(i)))))];
    // Classes of the canonical characters; each also covers what folds to it (A–Z, and + for space).
    const classOf = new Map<number, number>();
    for (const p of patterns) for (const c of p) if (!classOf.has(c)) classOf.set(c, classOf.size + 1);
    this.classes = classOf.size + 1;
    const classes = this.classes;
    this.classOfRaw = new Uint16Array(65536);
    const spellings = (c: number): number[] => (c >= 0x61 && c <= 0x7a ? [c, c - 32] : c === 0x20 ? [c, 0x2b] : [c]);
    for (const [c, k] of classOf) for (const raw of spellings(c)) this.classOfRaw[raw] = k;
    // The trie, then failure links breadth-first, folded into a full transition table.
    const children: Array<Map<number, number>> = [new Map()];
    const depth: number[] = [0];
    const out: number[] = [0];
    for (const p of patterns) {
      let s = 0;
      for (const c of p) {
        const k = classOf.get(c) ?? 0;
        let next = children[s]?.get(k);
        if (next === undefined) {
          next = children.length;
          children.push(new Map());
          depth.push((depth[s] ?? 0) + 1);
          out.push(0);
          children[s]?.set(k, next);
        }
        s = next;
      }
      out[s] = Math.max(out[s] ?? 0, p.length);
    }
    const states = children.length;
    this.delta = new Int32Array(states * classes);
    this.depth = Int32Array.from(depth);
    this.matchLength = Int32Array.from(out);
    const fail = new Int32Array(states);
    const queue: number[] = [];
    for (let k = 1; k < classes; k++) {
      const t = children[0]?.get(k);
      if (t !== undefined) {
        this.delta[k] = t;
        queue.push(t);
      }
    }
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi] ?? 0;
      const f = fail[s] ?? 0;
      this.matchLength[s] = Math.max(this.matchLength[s] ?? 0, this.matchLength[f] ?? 0);
      for (let k = 1; k < classes; k++) {
        const t = children[s]?.get(k);
        const viaFail = this.delta[f * classes + k] ?? 0;
        if (t === undefined) this.delta[s * classes + k] = viaFail;
        else {
          fail[t] = viaFail;
          this.delta[s * classes + k] = t;
          queue.push(t);
        }
      }
    }
    this.longest = patterns.reduce((m, p) => Math.max(m, p.length), 0);
    this.idle = new Uint8Array(65536).fill(1);
    for (const [c, k] of classOf) if (this.delta[k] !== 0) for (const raw of spellings(c)) this.idle[raw] = 0;
    for (const c of [0x5c, 0x25, 0x26]) this.idle[c] = 0;
  }

  get empty(): boolean {
    return this.longest === 0;
  }

  /** The next state after decoded character `code` (folded here). */
  step(state: number, code: number): number {
    return this.delta[state * this.classes + (this.classOfRaw[code] ?? 0)] ?? 0;
  }

  scanner(): SecretScanner {
    return new SecretScanner(this);
  }

  byteScanner(): SecretByteScanner {
    return new SecretByteScanner(this);
  }

  /** A whole string, every form replaced. */
  scrub(text: string): string {
    if (this.empty) return text;
    const s = this.scanner();
    return s.push(text) + s.end();
  }
}

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

  constructor(protected readonly forms: SecretForms) {
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
