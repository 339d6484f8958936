/**
 * Detector masking of a text stream (shell output, chunked/SSE HTTP bodies) chunk by chunk,
 * with memory bounded by `holdBack`.
 *
 * What is emitted is exactly what one-shot `maskText` gives for the same text, as long as
 * no token is longer than `holdBack` and `flush()` is not called mid-token. The tail is
 * held back only while it could still be part of a match:
 *
 * - Every character any pattern can match (outside a PEM body) is in TOKEN_CHAR. A match
 *   therefore never spans a character outside it, so text up to the last such "break"
 *   character can be decided now; the run after it is held.
 * - A pattern candidate (accepted or not) that starts before the cut is held whole, so the
 *   next scan sees it as the one-shot scan would. Lookbehinds see the last CONTEXT
 *   characters already emitted.
 * - A candidate that has grown past `holdBack` and still touches the end (a huge PEM block
 *   or base64 blob) is masked as far as it goes and the stream enters a "continuing" state
 *   that masks its continuation in later chunks: more masking than one-shot, never less.
 * - A run of token characters longer than `holdBack` that is no candidate is cut at its
 *   last space (or hard), and the next scan starts without lookbehind context.
 */
import type { DetectorMaskRule } from '../core/types.js';
import { type DetectorName, type MergedFinding, continuationOf, mergeFindings, scanText } from './detectors.js';
import { maskString } from './methods.js';
import { DetectorRules, applyFindings } from './text.js';

const CONTEXT = 64;
const DEFAULT_HOLD_BACK = 8192;

/** Characters that can occur inside a match of any detector (PEM bodies aside). */
function isTokenChar(c: number): boolean {
  return (
    (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ||
    c === 32 || c === 9 || // space, tab: card, phone, IBAN and SSN groups
    c === 43 || c === 47 || c === 61 || c === 95 || c === 46 || c === 64 || c === 58 || c === 37 ||
    c === 126 || c === 40 || c === 41 || c === 34 || c === 39 || c === 63 || c === 38 || c === 45
  );
}

function isLetter(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9;
}

interface Continuing {
  detector: DetectorName;
  rule: DetectorMaskRule;
}

export interface StreamMaskerOptions {
  key?: Buffer;
  /** Longest token kept back whole, in characters (default 8 KiB: a 4096-bit PEM key fits). */
  holdBack?: number;
}

export class StreamMasker {
  private readonly rules: DetectorRules;
  private readonly key: Buffer | undefined;
  private readonly holdBack: number;
  /** Already emitted raw text, for the lookbehinds of the next scan. */
  private context = '';
  private pending = '';
  private continuing: Continuing | null = null;
  private total = 0;

  constructor(rules: readonly DetectorMaskRule[] | DetectorRules, opts: StreamMaskerOptions = {}) {
    this.rules = rules instanceof DetectorRules ? rules : new DetectorRules(rules);
    this.key = opts.key;
    this.holdBack = Math.max(256, opts.holdBack ?? DEFAULT_HOLD_BACK);
  }

  /** Findings masked so far. */
  get findings(): number {
    return this.total;
  }

  /** Characters currently held back. */
  get held(): number {
    return this.pending.length;
  }

  /** Masks a chunk; returns the text that is safe to emit now (possibly empty). */
  push(chunk: string): string {
    if (this.rules.empty) return chunk;
    this.pending += chunk;
    return this.drain(false);
  }

  /**
   * Emits everything held, as if the stream ended here, but keeps the lookbehind context.
   * For an adapter whose upstream went idle (an interactive shell prompt): a secret that
   * straddles a flush may be missed, so flush only on idle, never per chunk.
   */
  flush(): string {
    if (this.rules.empty) return '';
    return this.drain(true);
  }

  end(): string {
    const out = this.flush();
    this.context = '';
    this.continuing = null;
    return out;
  }

  private drain(final: boolean): string {
    let out = this.continueToken(final);
    if (this.continuing !== null || this.pending.length === 0) return out;
    const text = this.context + this.pending;
    const off = this.context.length;
    const len = text.length;
    // Where the run of token characters at the end begins: a match may go on from there.
    const tail = this.trailingRunStart(text, off);
    let cut = len;
    let fresh = false;
    if (!final) {
      cut = tail;
      if (len - cut > this.holdBack) {
        const hard = len - this.holdBack;
        const space = this.lastSpace(text, hard, len);
        cut = space === -1 ? hard : space + 1;
        fresh = space === -1;
      }
      if (cut <= off) return out;
    }
    const candidates: Array<[number, number]> = [];
    const findings = mergeFindings(scanText(text, off, this.rules.names, final ? undefined : candidates));
    let longStart = -1;
    if (!final) {
      for (const [s, e] of groups(candidates)) {
        // Open: no break character after it yet, so more text could extend or change it
        // (a PEM body may even end in a newline and go on).
        const open = e >= tail;
        if (!(s < cut && (cut < e || open))) continue;
        if (e - s <= this.holdBack) cut = s;
        else if (!open) cut = e;
        else longStart = s;
        break;
      }
    }
    if (longStart !== -1) {
      out += this.emit(text, off, longStart, findings);
      out += this.enterContinuing(text, longStart, tail, findings);
      return out;
    }
    if (cut <= off) return out;
    out += this.emit(text, off, cut, findings);
    this.pending = text.slice(cut);
    this.context = fresh ? '' : text.slice(Math.max(0, cut - CONTEXT), cut);
    return out;
  }

  private emit(text: string, from: number, to: number, findings: readonly MergedFinding[]): string {
    const inside = findings.filter((f) => f.start >= from && f.end <= to);
    this.total += inside.length;
    return applyFindings(text, from, to, inside, this.rules, this.key);
  }

  /** A token longer than holdBack reached the end: mask all of it that is here, and its continuation later. */
  private enterContinuing(text: string, start: number, tail: number, findings: readonly MergedFinding[]): string {
    const len = text.length;
    const within = findings.filter((f) => f.end > start);
    const last = within[within.length - 1];
    const touching = last !== undefined && last.end >= tail ? last : undefined;
    const rule = touching === undefined ? null : this.rules.ruleFor(touching);
    let out: string;
    if (touching === undefined || rule === null) {
      // Not a secret so far (a long run that failed validation): pass it, and judge what follows on its own.
      out = this.emit(text, start, len, findings);
      this.context = '';
    } else {
      out = this.emit(text, start, touching.start, findings);
      // Only part of the token is here: partial reveals none of it (its last characters are not known yet).
      const keep = rule.method === 'partial' ? 0 : rule.keep;
      out += maskString(text.slice(touching.start, len), rule.method, { keep, fixed: rule.fixed, key: this.key });
      this.total++;
      this.continuing = { detector: touching.detector, rule };
      this.context = text.slice(Math.max(0, len - CONTEXT));
    }
    this.pending = '';
    return out;
  }

  /** While inside a long token: mask the part of the pending text that continues it. */
  private continueToken(final: boolean): string {
    const c = this.continuing;
    if (c === null) return '';
    const re = continuationOf(c.detector);
    re.lastIndex = 0;
    const n = re.exec(this.pending)?.[0].length ?? 0;
    const part = this.pending.slice(0, n);
    const out = c.rule.method === 'partial' ? part.replace(/[A-Za-z0-9]/g, '*') : '';
    this.context = (this.context + part).slice(-CONTEXT);
    this.pending = this.pending.slice(n);
    // Something that does not continue the token has arrived: the token is over.
    if (this.pending.length > 0 || final) this.continuing = null;
    return out;
  }

  private trailingRunStart(text: string, off: number): number {
    let i = text.length;
    while (i > off && isTokenChar(text.charCodeAt(i - 1))) i--;
    return i;
  }

  /** The last space between two letters (so no digit group of a card or phone is split), else any space. */
  private lastSpace(text: string, from: number, to: number): number {
    let any = -1;
    for (let i = to - 2; i > from; i--) {
      if (!isSpace(text.charCodeAt(i))) continue;
      if (isLetter(text.charCodeAt(i - 1)) && isLetter(text.charCodeAt(i + 1))) return i;
      if (any === -1) any = i;
    }
    return any;
  }
}

/** Candidate spans merged where they overlap, sorted. */
function groups(spans: Array<[number, number]>): Array<[number, number]> {
  spans.sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const [s, e] of spans) {
    const last = out[out.length - 1];
    if (last !== undefined && s < last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}
