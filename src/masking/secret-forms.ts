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
 * packages (whole-string search) do not expose. This file: the forms and the automaton;
 * escapes.ts: the decoding; secret-scanner.ts: the streams.
 */
import { decodeEscapes, fold } from './escapes.js';
import { SecretByteScanner, SecretScanner, type SecretAutomaton } from './secret-scanner.js';

export { decodeEscapes } from './escapes.js';
export { MIN_HELD_AT_BOUNDARY, SecretByteScanner, SecretScanner } from './secret-scanner.js';

/** Forms shorter than this are not searched (a base64 core of a very short value would match noise). */
const MIN_FORM_CHARS = 6;

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
export class SecretForms implements SecretAutomaton {
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

  /** The scanner scrub() reuses: end() leaves it as new, and scrub() runs to the end synchronously. */
  private spare: SecretScanner | null = null;

  /** A whole string, every form replaced. */
  scrub(text: string): string {
    if (this.empty) return text;
    // Text in which no character can begin a form or an escape is its own scrub (what the scanner would find too).
    const idle = this.idle;
    let i = 0;
    while (i < text.length && idle[text.charCodeAt(i)] === 1) i++;
    if (i === text.length) return text;
    // Taken while in use: should it ever throw half-way, the next call starts a fresh one.
    const s = this.spare ?? this.scanner();
    this.spare = null;
    const out = s.push(text) + s.end();
    this.spare = s;
    return out;
  }
}
