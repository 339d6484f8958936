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

const JSON_ESCAPES: Readonly<Record<string, number>> = { '"': 0x22, '\\': 0x5c, '/': 0x2f, b: 0x08, f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09 };

/** HTML named references for ASCII punctuation (HTML Living Standard, named character references). */
const HTML_NAMED: ReadonlyMap<string, number> = new Map(Object.entries({
  amp: 0x26, lt: 0x3c, gt: 0x3e, quot: 0x22, apos: 0x27, sol: 0x2f, bsol: 0x5c, colon: 0x3a, semi: 0x3b, equals: 0x3d,
  plus: 0x2b, percnt: 0x25, lowbar: 0x5f, hyphen: 0x2d, dash: 0x2d, period: 0x2e, comma: 0x2c, num: 0x23, excl: 0x21,
  dollar: 0x24, lpar: 0x28, rpar: 0x29, ast: 0x2a, midast: 0x2a, quest: 0x3f, commat: 0x40, lsqb: 0x5b, lbrack: 0x5b,
  rsqb: 0x5d, rbrack: 0x5d, hat: 0x5e, grave: 0x60, lcub: 0x7b, lbrace: 0x7b, rcub: 0x7d, rbrace: 0x7d, verbar: 0x7c,
  vert: 0x7c, tilde: 0x7e, nbsp: 0xa0, tab: 0x09, newline: 0x0a,
}));
const MAX_ESCAPE_CHARS = 12;

const isHex = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isAlpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);

/** The canonical character: ASCII lower case, and `+` is a space (form encoding). */
const fold = (c: number): number => (c >= 0x41 && c <= 0x5a ? c + 32 : c === 0x2b ? 0x20 : c);

type Escape = { kind: 'more' } | { kind: 'literal' } | { kind: 'char'; code: number; len: number };
const MORE: Escape = { kind: 'more' };
const LITERAL: Escape = { kind: 'literal' };

/** What a pending escape (starting with `\`, `%` or `&`) decodes to so far. */
function classify(p: string): Escape {
  const n = p.length;
  const lead = p.charCodeAt(0);
  if (n === 1) return MORE;
  const c1 = p.charCodeAt(1);
  if (lead === 0x5c) {
    if (c1 === 0x75) {
      for (let i = 2; i < n; i++) if (!isHex(p.charCodeAt(i))) return LITERAL;
      return n < 6 ? MORE : { kind: 'char', code: parseInt(p.slice(2, 6), 16), len: 6 };
    }
    const code = JSON_ESCAPES[p[1] ?? ''];
    return code === undefined ? LITERAL : { kind: 'char', code, len: 2 };
  }
  if (lead === 0x25) {
    if (!isHex(c1) || (n > 2 && !isHex(p.charCodeAt(2)))) return LITERAL;
    return n < 3 ? MORE : { kind: 'char', code: parseInt(p.slice(1, 3), 16), len: 3 };
  }
  // '&': &#123; &#x7b; (the semicolon may be missing), &name;
  if (c1 === 0x23) {
    if (n === 2) return MORE;
    const hex = p[2] === 'x' || p[2] === 'X';
    const first = hex ? 3 : 2;
    let i = first;
    while (i < n && (hex ? isHex(p.charCodeAt(i)) : isDigit(p.charCodeAt(i)))) i++;
    if (i === n) return n - first > 7 ? LITERAL : MORE;
    if (i === first) return LITERAL;
    const code = parseInt(p.slice(first, i), hex ? 16 : 10);
    if (code > 0xffff) return LITERAL;
    return { kind: 'char', code, len: p.charCodeAt(i) === 0x3b ? i + 1 : i };
  }
  let i = 1;
  while (i < n && isAlpha(p.charCodeAt(i))) i++;
  if (i === n) return n > 9 ? LITERAL : MORE;
  if (p.charCodeAt(i) !== 0x3b) return LITERAL;
  const code = HTML_NAMED.get(p.slice(1, i).toLowerCase());
  return code === undefined ? LITERAL : { kind: 'char', code, len: i + 1 };
}

/** The canonical (decoded, unfolded) text of a whole string: how a form is written down. */
export function decodeEscapes(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x5c || c === 0x25 || c === 0x26) {
      let r: Escape = MORE;
      let n = 2;
      for (; i + n <= text.length + 1 && n <= MAX_ESCAPE_CHARS; n++) {
        r = classify(i + n <= text.length ? text.slice(i, i + n) : `${text.slice(i)}\u0000`);
        if (r.kind !== 'more') break;
      }
      if (r.kind === 'char' && i + r.len <= text.length) {
        out += String.fromCharCode(r.code);
        i += r.len;
        continue;
      }
    }
    out += text[i] ?? '';
    i++;
  }
  return out;
}

/** The base64 characters of `bytes` that do not depend on what precedes or follows them, at offset `align` (0–2) in a longer value. */
function base64Core(bytes: Buffer, align: number, url: boolean): string {
  const enc = Buffer.concat([Buffer.alloc(align), bytes]).toString(url ? 'base64url' : 'base64');
  const skip = [0, 2, 3][align] ?? 0;
  return enc.slice(skip, Math.floor((8 * (align + bytes.length)) / 6));
}

/** The written forms of one secret, before folding. */
export function formsOf(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const forms = [secret, decodeEscapes(secret), bytes.toString('latin1'), bytes.toString('hex')];
  for (const url of [false, true]) for (const align of [0, 1, 2]) forms.push(base64Core(bytes, align, url));
  return [...new Set(forms)].filter((f) => f.length >= MIN_FORM_CHARS);
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
  /** Class of each canonical UTF-16 code unit (0: in no form). */
  private readonly classOf: Uint16Array;
  /** Class of each code unit before folding: classOf[fold(c)]. */
  readonly classOfRaw: Uint16Array;
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
      if (SecretForms.cache.size >= 64) SecretForms.cache.delete(SecretForms.cache.keys().next().value ?? '');
      SecretForms.cache.set(key, forms);
    }
    return forms;
  }

  constructor(secrets: readonly string[]) {
    const patterns = [...new Set(secrets.filter((s) => s.length > 0).flatMap(formsOf).map((f) => Array.from({ length: f.length }, (_, i) => fold(f.charCodeAt(i)))))];
    this.classOf = new Uint16Array(65536);
    let classes = 1;
    for (const p of patterns) for (const c of p) if (this.classOf[c] === 0) this.classOf[c] = classes++;
    this.classes = classes;
    this.classOfRaw = new Uint16Array(65536);
    for (let c = 0; c < 65536; c++) this.classOfRaw[c] = this.classOf[fold(c)] ?? 0;
    // The trie, then failure links breadth-first, folded into a full transition table.
    const children: Array<Map<number, number>> = [new Map()];
    const depth: number[] = [0];
    const out: number[] = [0];
    for (const p of patterns) {
      let s = 0;
      for (const c of p) {
        const k = this.classOf[c] ?? 0;
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
    this.starts = new Float64Array(Math.max(1, forms.longest));
  }

  /** Source units from `from` to `to` (absolute) go out as they are. */
  protected abstract pass(from: number, to: number): void;
  /** A redaction goes out in place of a form. */
  protected abstract mark(): void;
  /** Everything before `to` has gone out. */
  protected abstract drop(to: number): void;

  protected scan(input: string | Uint8Array, at: number): void {
    const { delta, classOfRaw, classes, matchLength } = this.forms;
    const ring = this.starts.length;
    const n = input.length;
    const isString = typeof input === 'string';
    let state = this.state;
    for (let i = 0; i < n; i++) {
      const c = isString ? input.charCodeAt(i) : (input[i] ?? 0);
      if (this.pend === '' && c !== 0x5c && c !== 0x25 && c !== 0x26) {
        // The common case, inline: one table step.
        state = delta[state * classes + (classOfRaw[c] ?? 0)] ?? 0;
        this.starts[this.decoded % ring] = at + i;
        this.decoded++;
        const len = matchLength[state] ?? 0;
        if (len > 0) this.redact(this.starts[(this.decoded - len) % ring] ?? at + i, at + i + 1);
        continue;
      }
      this.state = state;
      if (this.pend === '') {
        this.pend = String.fromCharCode(c);
        this.pendAt = at + i;
      } else this.grow(String.fromCharCode(c));
      state = this.state;
    }
    this.state = state;
  }

  private grow(ch: string): void {
    const p = this.pend + ch;
    const at = this.pendAt;
    const r = p.length > MAX_ESCAPE_CHARS ? LITERAL : classify(p);
    if (r.kind === 'more') {
      this.pend = p;
      return;
    }
    this.pend = '';
    if (r.kind === 'char') {
      this.step(r.code, at, at + r.len);
      if (r.len < p.length) this.scan(p.slice(r.len), at + r.len);
    } else {
      this.step(p.charCodeAt(0), at, at + 1);
      this.scan(p.slice(1), at + 1);
    }
  }

  private step(code: number, from: number, to: number): void {
    const f = this.forms;
    this.state = f.step(this.state, code);
    const ring = this.starts.length;
    this.starts[this.decoded % ring] = from;
    this.decoded++;
    const len = f.matchLength[this.state] ?? 0;
    if (len > 0) this.redact(this.starts[(this.decoded - len) % ring] ?? from, to);
  }

  /** The end of the stream: an escape still open is read as far as it goes. */
  protected finish(): void {
    while (this.pend !== '') {
      const p = this.pend;
      const at = this.pendAt;
      this.pend = '';
      // A numeric reference at the very end needs no terminator.
      const r = classify(`${p}\u0000`);
      if (r.kind === 'char' && r.len <= p.length) {
        this.step(r.code, at, at + r.len);
        this.scan(p.slice(r.len), at + r.len);
      } else {
        this.step(p.charCodeAt(0), at, at + 1);
        this.scan(p.slice(1), at + 1);
      }
    }
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
      let live = Math.max(this.base, this.starts[(this.decoded - d) % this.starts.length] ?? end);
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
    this.scan(chunk, at);
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
