/**
 * Content detectors: pure functions over strings, shared by column, SSH and HTTP masking.
 *
 * Every pattern is written so the regex engine cannot backtrack catastrophically: each
 * starts with a one-character lookbehind that fails inside a run (so a long run is tried
 * once, not once per character), repetitions are unambiguous (one optional separator then
 * exactly one character), and every unbounded run is the last thing in its pattern.
 * Validators (Luhn, IBAN mod 97, entropy) then accept or reject the candidate.
 */
import { isIP } from 'node:net';
import { looksRandom } from './entropy.js';
import { ibanChecksumValid, ibanLength, luhnValid, charClasses, shannonEntropy } from './validators.js';

export type DetectorName =
  | 'email' | 'credit_card' | 'us_ssn' | 'phone' | 'iban' | 'ipv4' | 'ipv6' | 'jwt'
  | 'aws_access_key' | 'aws_secret_key' | 'gcp_key' | 'azure_key' | 'github_token'
  | 'slack_token' | 'openai_key' | 'private_key' | 'high_entropy';

/** In priority order: when findings overlap, the merged span is reported as the first of them here. */
export const DETECTORS: readonly DetectorName[] = Object.freeze([
  'private_key', 'jwt', 'aws_access_key', 'aws_secret_key', 'gcp_key', 'azure_key', 'github_token',
  'slack_token', 'openai_key', 'email', 'iban', 'credit_card', 'us_ssn', 'phone', 'ipv6', 'ipv4',
  'high_entropy',
] as const);

const PRIORITY: ReadonlyMap<string, number> = new Map(DETECTORS.map((d, i) => [d, i]));

export function isDetectorName(s: string): s is DetectorName {
  return PRIORITY.has(s);
}

export interface Finding {
  detector: DetectorName;
  start: number;
  end: number;
}

/** What a validator makes of a candidate: reject it, take all of it, or take a part of it. */
type Verdict = boolean | readonly [number, number];

interface Pattern {
  /** Global (sticky when anchored); with the `d` flag when a `secret` group marks the part to mask. */
  re: RegExp;
  accept?: (m: RegExpExecArray) => Verdict;
  /**
   * A character every match contains, found much faster than the pattern's own start:
   * from each one, walk back over `back` characters (at most `maxBack`, the longest a match
   * reaches before its anchor) to where the match must start, and try the sticky pattern there.
   */
  anchor?: { re: RegExp; back: (c: number) => boolean; maxBack: number };
}

function emailLocal(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;
}

function hexOrColon(c: number): boolean {
  return (c >= 48 && c <= 58) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/** The next match of a pattern at or after `pos`, exactly as the unanchored global pattern would find it. */
function execFrom(p: Pattern, text: string, pos: number): RegExpExecArray | null {
  const a = p.anchor;
  if (a === undefined) {
    p.re.lastIndex = pos;
    return p.re.exec(text);
  }
  let tried = -1;
  a.re.lastIndex = pos;
  for (let hit = a.re.exec(text); hit !== null; hit = a.re.exec(text)) {
    const i = hit.index;
    let j = i;
    while (j > pos && i - j <= a.maxBack && a.back(text.charCodeAt(j - 1))) j--;
    // A start further back than any match reaches: the pattern's lookbehind rules out every later one.
    if (j === tried || i - j > a.maxBack) continue;
    tried = j;
    p.re.lastIndex = j;
    const m = p.re.exec(text);
    if (m !== null) return m;
  }
  return null;
}

/** Only the `secret` group is masked (the `key=` before it is not secret). */
function secretGroup(m: RegExpExecArray): Verdict {
  const span = m.indices?.groups?.['secret'];
  return span === undefined ? true : [span[0], span[1]];
}

/** Written card numbers group as 4-4-4-4(-1..3), or 4-6-5 / 4-6-4 (Amex, Diners), with one separator kind. */
function cardShape(groups: readonly string[]): boolean {
  if (groups.length === 1) return true;
  const lens = groups.map((g) => g.length);
  if (lens.length === 3 && lens[0] === 4 && lens[1] === 6 && (lens[2] === 5 || lens[2] === 4)) return true;
  return lens.slice(0, -1).every((n) => n === 4) && (lens[lens.length - 1] ?? 0) >= 1 && (lens[lens.length - 1] ?? 0) <= 4;
}

function cardVerdict(m: RegExpExecArray): Verdict {
  const raw = m[0];
  const groups = raw.split(/[ -]/);
  const separators = raw.replace(/[0-9]/g, '');
  // Longest first: "4111 1111 1111 1111 12 items" — the greedy run took digits that follow the card.
  for (let k = groups.length; k >= 1; k--) {
    if (new Set(separators.slice(0, k - 1)).size > 1) continue;
    const head = groups.slice(0, k);
    const digits = head.join('');
    if (digits.length < 13 || digits.length > 19 || !cardShape(head) || !/[1-9]/.test(digits)) continue;
    if (luhnValid(digits)) return [m.index, m.index + head.join(' ').length];
  }
  return false;
}

function ibanVerdict(m: RegExpExecArray): Verdict {
  const raw = m[0];
  const compact = raw.replace(/ /g, '');
  const known = ibanLength(compact.slice(0, 2));
  const lengths = known === null ? range(Math.min(34, compact.length), 15) : [known];
  for (const n of lengths) {
    if (n > compact.length || !ibanChecksumValid(compact.slice(0, n))) continue;
    // Map n compact characters back onto the raw text; the next raw character must not continue a word.
    let seen = 0;
    let i = 0;
    for (; i < raw.length && seen < n; i++) if (raw[i] !== ' ') seen++;
    if (i < raw.length && raw[i] !== ' ') continue;
    return [m.index, m.index + i];
  }
  return false;
}

function range(from: number, downTo: number): number[] {
  const out: number[] = [];
  for (let n = from; n >= downTo; n--) out.push(n);
  return out;
}

function digitCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) n++;
  }
  return n;
}

function ipv6Verdict(m: RegExpExecArray): Verdict {
  const s = m[0];
  if (isIP(s) !== 6) return false;
  // "cafe::beef" and "a::b" read as words in code; a real address has three groups or more
  // (an embedded IPv4 address counts as the two it stands for).
  return s.split(':').filter((g) => g.length > 0).length + (s.includes('.') ? 1 : 0) >= 3;
}

/** A 40-character AWS secret standing alone: random-looking, mixed case, with digits. */
function awsSecretVerdict(m: RegExpExecArray): Verdict {
  const c = charClasses(m[0]);
  return c.upper > 0 && c.lower > 0 && c.digit > 0 && shannonEntropy(m[0]) >= 4.2 && looksRandom(m[0]);
}

const NOT_WORD_BEFORE = '(?<![A-Za-z0-9_])';
const NOT_WORD_AFTER = '(?![A-Za-z0-9_])';

function rx(source: string, flags = 'g'): RegExp {
  return new RegExp(source, flags);
}

const SPECS: Readonly<Record<DetectorName, readonly Pattern[]>> = {
  private_key: [
    {
      // The body is base64, whitespace and RFC 1421 headers; without an END line the run
      // of base64 and whitespace is masked to its end (fail closed on a truncated key).
      re: rx(
        '-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----' +
          '(?:\\r?\\n[A-Za-z-]{1,32}: ?[^\\r\\n]{0,200})*' +
          // Keys quoted inside JSON or logs carry their line breaks escaped as \\n.
          '(?:[A-Za-z0-9+/=\\s]|\\\\[nr])*' +
          '(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----)?',
      ),
    },
  ],
  jwt: [{ re: rx('(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]*(?:\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+)?') }],
  aws_access_key: [
    { re: rx('(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}(?![A-Z0-9])') },
  ],
  aws_secret_key: [
    {
      re: rx(
        '(?:aws_?secret_?(?:access_?)?key|secret_?access_?key)["\']?[ \\t]{0,4}[:=][ \\t]{0,4}["\']?(?<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])',
        'gdi',
      ),
      accept: secretGroup,
    },
    { re: rx('(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])'), accept: awsSecretVerdict },
  ],
  gcp_key: [
    { re: rx('(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])') },
    { re: rx('(?<![A-Za-z0-9_-])ya29\\.[0-9A-Za-z_-]{20,2048}') },
    { re: rx('(?<![A-Za-z0-9_-])GOCSPX-[A-Za-z0-9_-]{28}(?![A-Za-z0-9_-])') },
  ],
  azure_key: [
    { re: rx('(?:AccountKey|SharedAccessKey)=(?<secret>[A-Za-z0-9+/]{40,100}={0,2})', 'gd'), accept: secretGroup },
    { re: rx('[?&]sig=(?<secret>[A-Za-z0-9%+/=]{20,200})', 'gd'), accept: secretGroup },
    { re: rx('(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==') },
    // Entra ID (Azure AD) client secrets: three characters, a digit, "Q~", then 31–34.
    { re: rx('(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])') },
  ],
  github_token: [
    { re: rx(`${NOT_WORD_BEFORE}(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})${NOT_WORD_AFTER}`) },
  ],
  slack_token: [
    { re: rx('(?<![A-Za-z0-9_-])(?:xox[abposre]|xapp)-[A-Za-z0-9-]{10,250}') },
    { re: rx('https://hooks\\.slack\\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{20,200}') },
  ],
  openai_key: [
    {
      re: rx('(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,250}(?![A-Za-z0-9_-])'),
      accept: (m) => /[0-9]/.test(m[0]) && /[A-Za-z]/.test(m[0].slice(3)),
    },
  ],
  email: [
    {
      re: rx(
        '(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@' +
          '(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.){1,10}[A-Za-z]{2,24}(?![A-Za-z0-9-])',
        'y',
      ),
      anchor: { re: /@/g, back: emailLocal, maxBack: 64 },
    },
  ],
  iban: [{ re: rx('(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,34}(?![A-Za-z0-9])'), accept: ibanVerdict }],
  credit_card: [{ re: rx('(?<![0-9.-])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])'), accept: cardVerdict }],
  us_ssn: [
    {
      // Area 000, 666 and 9xx, group 00 and serial 0000 are never issued.
      re: rx('(?<![0-9-])(?!000|666|9[0-9]{2})[0-9]{3}([- ])(?!00)[0-9]{2}\\1(?!0000)[0-9]{4}(?![0-9]|-[0-9])'),
    },
  ],
  phone: [
    {
      // E.164 and its usual written forms: "+44 20 7946 0958", "+1 (555) 123-4567".
      re: rx('(?<![A-Za-z0-9+])\\+[1-9](?:[ .-]?\\(?[0-9]\\)?){6,14}(?![0-9])'),
      accept: (m) => {
        const n = digitCount(m[0]);
        return n >= 8 && n <= 15;
      },
    },
    {
      // North American national form: (555) 123-4567, 555-123-4567, 555.123.4567.
      re: rx('(?<![A-Za-z0-9+.-])(?:\\([2-9][0-9]{2}\\) ?|[2-9][0-9]{2}([ .-]))[2-9][0-9]{2}[ .-][0-9]{4}(?![A-Za-z0-9]|[.-][0-9])'),
    },
    {
      // Trunk-prefix national forms used across Europe: "020 7946 0958", "01 23 45 67 89".
      re: rx('(?<![A-Za-z0-9+.-])0[1-9][0-9]{0,3}[ -][0-9]{2,4}(?:[ -][0-9]{2,4}){1,3}(?![A-Za-z0-9]|[.-][0-9])'),
      accept: (m) => {
        const n = digitCount(m[0]);
        return n >= 9 && n <= 12;
      },
    },
  ],
  ipv6: [
    {
      re: rx('(?<![A-Za-z0-9:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:[0-9]{1,3}\\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4})?(?![A-Za-z0-9:])', 'y'),
      accept: ipv6Verdict,
      // Seven groups of four and their colons come before the last colon.
      anchor: { re: /:/g, back: hexOrColon, maxBack: 40 },
    },
  ],
  ipv4: [
    {
      re: rx('(?<![0-9.])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?![0-9]|\\.[0-9])'),
    },
  ],
  high_entropy: [{ re: rx('(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{20,}=*'), accept: (m) => looksRandom(m[0]) }],
};

/** A finding before overlapping ones are merged; `candidate` is the whole text the pattern matched. */
export interface RawFinding extends Finding {
  candidateEnd: number;
}

/**
 * Runs the named detectors over text[from..]. Text before `from` is context only: the
 * lookbehinds see it, no match starts in it. `candidates` (when given) receives the span of
 * every pattern match, accepted or not: the stream masker never cuts inside one.
 */
export function scanText(
  text: string,
  from: number,
  names: readonly DetectorName[],
  candidates?: Array<[number, number]>,
): RawFinding[] {
  const out: RawFinding[] = [];
  for (const name of names) {
    for (const p of SPECS[name]) {
      for (let m = execFrom(p, text, from); m !== null; ) {
        const end = m.index + m[0].length;
        if (end === m.index) {
          m = execFrom(p, text, end + 1);
          continue;
        }
        candidates?.push([m.index, end]);
        const verdict = p.accept === undefined ? true : p.accept(m);
        if (verdict !== false) {
          const [s, e] = verdict === true ? [m.index, end] : verdict;
          if (e > s) out.push({ detector: name, start: s, end: e, candidateEnd: end });
        }
        m = execFrom(p, text, end);
      }
    }
  }
  return out;
}

/** A merged span and every detector whose findings it covers. */
export interface MergedFinding extends Finding {
  detectors: DetectorName[];
}

/** Overlapping findings become one span (the union), so no part of either escapes masking. */
export function mergeFindings(raw: readonly Finding[]): MergedFinding[] {
  const sorted = [...raw].sort((a, b) => a.start - b.start || b.end - a.end);
  const out: MergedFinding[] = [];
  for (const f of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && f.start < last.end) {
      last.end = Math.max(last.end, f.end);
      if (!last.detectors.includes(f.detector)) last.detectors.push(f.detector);
      if ((PRIORITY.get(f.detector) ?? 0) < (PRIORITY.get(last.detector) ?? 0)) last.detector = f.detector;
    } else {
      out.push({ detector: f.detector, start: f.start, end: f.end, detectors: [f.detector] });
    }
  }
  return out;
}

/** Non-overlapping findings, sorted by start, validators applied. */
export function detect(text: string, names: readonly DetectorName[]): Finding[] {
  return mergeFindings(scanText(text, 0, names)).map(({ detector, start, end }) => ({ detector, start, end }));
}

/**
 * How far a token that reached the end of a stream chunk may go on in the next one.
 * Used only for tokens longer than the stream's hold-back window.
 */
export function continuationOf(detector: DetectorName): RegExp {
  return detector === 'private_key'
    ? /(?:[A-Za-z0-9+/=\s]|\\[nr])*(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----)?/y
    : /[A-Za-z0-9+/=_.%~-]*/y;
}
