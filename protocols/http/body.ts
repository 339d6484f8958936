/**
 * Response bodies on their way back: the injected upstream secret is always scrubbed;
 * detectors and JSON paths apply where a mask rule asks. JSON is masked whole (parsed,
 * bounded); text streams through the detectors with a held-back tail so a value split
 * across chunks is still found; Server-Sent Events are masked event by event, and the
 * text of each JSON field is followed across events (an e-mail address streamed one token
 * per event is still one address); other bodies get the literal secret scrub only.
 */
import { StringDecoder } from 'node:string_decoder';
import { DetectorRules, StreamMasker, maskText } from '../../src/masking/index.js';
import { maskJsonPaths, type CompiledJsonPaths } from '../../src/masking/json-paths.js';
import { REDACTED } from '../../src/masking/methods.js';
import { AirlockError } from '../../src/util/errors.js';
import { SecretForms, type SecretByteScanner, type SecretScanner } from '../../src/masking/secret-forms.js';

/** Text-delta fields (by path) of JSON event data followed across events; past it, a string is masked within its event. */
export const MAX_SSE_FIELD_STREAMS = 256;
/** An event stream that sends no event boundary within this many characters is refused. */
export const MAX_SSE_EVENT_CHARS = 1024 * 1024;

export interface BodyPlan {
  detectors: DetectorRules;
  jsonPaths: CompiledJsonPaths | null;
  /** Literal values that must never come back (the injected credential); bodyPlan() freezes them (see formsOfSecrets). */
  secrets: readonly string[];
  key: Buffer;
  /** Largest JSON body masked as a whole. */
  maxJsonBytes: number;
}

export type BodyMode = 'pass' | 'json' | 'sse' | 'text' | 'binary';

export function bodyMode(contentType: string | undefined, plan: BodyPlan): BodyMode {
  const scanning = !plan.detectors.empty || plan.jsonPaths !== null;
  if (!scanning && plan.secrets.length === 0) return 'pass';
  const ct = (contentType ?? '').toLowerCase();
  if (/^text\/event-stream/.test(ct)) return 'sse';
  // JSON is parsed only when a rule masks it; the literal secret alone is scrubbed as text.
  if (/^application\/([\w.+-]+\+)?json|^text\/json/.test(ct)) return scanning ? 'json' : 'text';
  if (/^text\/|xml|javascript|x-www-form-urlencoded|^application\/problem/.test(ct) || ct === '') return 'text';
  return 'binary';
}

const formsOfFrozen = new WeakMap<readonly string[], SecretForms>();

/**
 * The compiled forms of a list of secrets. A frozen list (a session's body plan) cannot
 * change, so its forms are looked up once per list rather than once per answer.
 */
export function formsOfSecrets(secrets: readonly string[]): SecretForms {
  if (!Object.isFrozen(secrets)) return SecretForms.of(secrets);
  let forms = formsOfFrozen.get(secrets);
  if (forms === undefined) {
    forms = SecretForms.of(secrets);
    formsOfFrozen.set(secrets, forms);
  }
  return forms;
}

/**
 * Every written form of the injected secrets (src/masking/secret-forms.ts) replaced in a
 * stream of text, holding back only what could still become one.
 */
export class LiteralScrubber {
  private readonly forms: SecretForms;
  /** The stream's matcher, made on its first push (most scrubbers only scrub whole values). */
  private stream: SecretScanner | null = null;

  constructor(literals: readonly string[]) {
    this.forms = formsOfSecrets(literals);
  }

  private get scanner(): SecretScanner {
    return (this.stream ??= this.forms.scanner());
  }

  get empty(): boolean {
    return this.forms.empty;
  }

  /** A whole value, independent of the stream. */
  scrub(text: string): string {
    return this.forms.scrub(text);
  }

  push(chunk: string): string {
    return this.scanner.push(chunk);
  }

  /** At the end of a message or event: see SecretScanner.boundary. */
  boundary(): string {
    return this.scanner.boundary();
  }

  end(): string {
    return this.scanner.end();
  }
}

/** Masks one string value: secrets, then detectors. */
export function maskStringValue(s: string, plan: BodyPlan, literals: { scrub(text: string): string }): string {
  const scrubbed = literals.scrub(s);
  return plan.detectors.empty ? scrubbed : maskText(scrubbed, plan.detectors, plan.key).text;
}

/** A whole JSON document: JSON paths, then every string (and number) value through the detectors. */
export function maskJsonDocument(text: string, plan: BodyPlan): string | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  if (plan.jsonPaths !== null) doc = maskJsonPaths(doc, plan.jsonPaths, plan.key).doc;
  const literals = formsOfSecrets(plan.secrets);
  doc = mapJsonValues(doc, plan, literals);
  return JSON.stringify(doc);
}

/**
 * Like mapJsonStrings, but numbers that a detector would flag (a card number) become masked
 * strings; member names are scrubbed of the secrets' forms (a secret can be a name as well as a value).
 */
function mapJsonValues(doc: unknown, plan: BodyPlan, literals: SecretForms): unknown {
  if (typeof doc === 'number') {
    const s = String(doc);
    const m = maskStringValue(s, plan, literals);
    return m === s ? doc : m;
  }
  if (typeof doc === 'string') return maskStringValue(doc, plan, literals);
  if (Array.isArray(doc)) return doc.map((v) => mapJsonValues(v, plan, literals));
  if (doc !== null && typeof doc === 'object') {
    const out: Record<string, unknown> = {};
    for (const k in doc) {
      if (!Object.hasOwn(doc, k)) continue;
      out[literals.scrub(k)] = mapJsonValues((doc as Record<string, unknown>)[k], plan, literals);
    }
    return out;
  }
  return doc;
}

/** Streaming text: decode, scrub literals, detectors with their held-back tail. */
export class TextMasker {
  private readonly decoder = new StringDecoder('utf8');
  private readonly literals: LiteralScrubber;
  private readonly detectors: StreamMasker | null;

  constructor(plan: BodyPlan) {
    this.literals = new LiteralScrubber(plan.secrets);
    this.detectors = plan.detectors.empty ? null : new StreamMasker(plan.detectors, { key: plan.key });
  }

  push(chunk: Buffer): Buffer {
    const text = this.literals.push(this.decoder.write(chunk));
    return Buffer.from(this.detectors === null ? text : this.detectors.push(text), 'utf8');
  }

  end(): Buffer {
    const text = this.literals.push(this.decoder.end()) + this.literals.end();
    const out = this.detectors === null ? text : this.detectors.push(text) + this.detectors.end();
    return Buffer.from(out, 'utf8');
  }
}

/** Other bodies: every form of the secret replaced in the bytes as they stream (a chunk with none passes as the same Buffer). */
export class BinaryScrubber {
  private readonly secrets: SecretByteScanner;
  private readonly detectors: StreamMasker | null;

  /**
   * With a rule's detectors, a body of a type airlock does not read as text (application/
   * x-ndjson, application/csv, octet-stream …) is still scanned — fail closed — as latin1,
   * which maps each byte to one character: what no detector finds passes byte for byte.
   */
  constructor(plan: Pick<BodyPlan, 'secrets' | 'detectors' | 'key'>) {
    // The forms include each secret's UTF-8 bytes.
    this.secrets = formsOfSecrets(plan.secrets).byteScanner();
    this.detectors = plan.detectors.empty ? null : new StreamMasker(plan.detectors, { key: plan.key });
  }

  push(chunk: Buffer): Buffer {
    const bytes = this.secrets.push(chunk);
    return this.detectors === null ? bytes : Buffer.from(this.detectors.push(bytes.toString('latin1')), 'latin1');
  }

  end(): Buffer {
    const bytes = this.secrets.end();
    return this.detectors === null ? bytes : Buffer.from(this.detectors.push(bytes.toString('latin1')) + this.detectors.end(), 'latin1');
  }
}

/**
 * Server-Sent Events (text/event-stream). Each complete event is masked and sent at once.
 * In JSON `data`, a text-delta field (`content`, `text`, `delta`, `partial_json`,
 * `arguments`, `output_text` — what LLM APIs stream a token at a time) is one stream per
 * field path across events, scanned for the injected secret's forms and then the detectors,
 * each holding back a tail that could still complete a match (a secret split over two
 * events: the first half is held, not sent, and cut when the second completes it); fields of
 * other names that carry streamed text (`reasoning_content`, `thinking` … see TEXT_DELTA) are
 * followed the same way. Every other string is masked within its event. The held text goes out with the
 * next event carrying that field, or in an extra event shaped like the last one (its other
 * text fields emptied) before the stream ends or a non-JSON event such as `[DONE]`.
 */
export class SseMasker {
  private readonly decoder = new StringDecoder('utf8');
  private buffer = '';
  private readonly streams = new Map<string, FieldStream>();
  private readonly lastShape = new Map<string, unknown>();
  private readonly literals: LiteralScrubber;
  /** The data of non-JSON events, one text as a client appends it. */
  private readonly text: LiteralScrubber;

  constructor(private readonly plan: BodyPlan) {
    this.literals = new LiteralScrubber(plan.secrets);
    this.text = new LiteralScrubber(plan.secrets);
  }

  push(chunk: Buffer): Buffer {
    this.buffer += this.decoder.write(chunk);
    let out = '';
    for (;;) {
      const m = /\r?\n\r?\n/.exec(this.buffer);
      if (m === null) break;
      const event = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      out += this.event(event);
    }
    if (this.buffer.length > MAX_SSE_EVENT_CHARS) throw new AirlockError('AIRLOCK_UNSUPPORTED', `an event-stream event over ${MAX_SSE_EVENT_CHARS} characters cannot be masked`);
    return Buffer.from(out, 'utf8');
  }

  end(): Buffer {
    const rest = this.buffer + this.decoder.end();
    this.buffer = '';
    let out = rest.trim() === '' ? '' : this.event(rest);
    out += this.flushStreams();
    const text = this.text.end();
    if (text !== '') out += `${maskStringValue(text, this.plan, this.literals).split('\n').map((l) => `data: ${l}`).join('\n')}\n\n`;
    return Buffer.from(out, 'utf8');
  }

  private event(raw: string): string {
    const lines = raw.split(/\r?\n/);
    const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5));
    const other = lines.filter((l) => !l.startsWith('data:')).map((l) => maskStringValue(l, this.plan, this.literals));
    if (data.length === 0) return `${other.join('\n')}\n\n`;
    const text = data.join('\n');
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      // Not JSON (`[DONE]`, plain text): held field text goes out first, then this event's
      // data, followed across such events and across its own data lines, read as one text
      // without separators (a secret split over two events or two lines is held, then cut).
      const flushed = this.flushStreams();
      const lines = data.map((l) => this.text.push(l));
      lines[lines.length - 1] += this.text.boundary();
      const released = maskStringValue(lines.join('\n'), this.plan, this.literals);
      return `${flushed}${[...other, ...released.split('\n').map((l) => `data: ${l}`)].join('\n')}\n\n`;
    }
    if (this.plan.jsonPaths !== null) doc = maskJsonPaths(doc, this.plan.jsonPaths, this.plan.key).doc;
    const masked = this.followFields(doc, '$');
    return `${[...other, `data: ${JSON.stringify(masked)}`].join('\n')}\n\n`;
  }

  private followFields(node: unknown, path: string, root: unknown = node, key = ''): unknown {
    if (typeof node === 'string' && !isTextDelta(key)) return maskStringValue(node, this.plan, this.literals);
    if (typeof node === 'string') {
      let s = this.streams.get(path);
      if (s === undefined) {
        // Past the cap, a string is masked within its event only.
        if (this.streams.size >= MAX_SSE_FIELD_STREAMS) return maskStringValue(node, this.plan, this.literals);
        s = { secrets: new LiteralScrubber(this.plan.secrets), detectors: this.plan.detectors.empty ? null : new StreamMasker(this.plan.detectors, { key: this.plan.key }) };
        this.streams.set(path, s);
      }
      this.lastShape.set(path, root);
      const released = s.secrets.push(node) + s.secrets.boundary();
      return s.detectors === null ? released : s.detectors.push(released);
    }
    if (Array.isArray(node)) return node.map((v, i) => this.followFields(v, `${path}[${i}]`, root, key));
    if (node !== null && typeof node === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node as Record<string, unknown>)) out[this.literals.scrub(k)] = this.followFields(v, `${path}.${k}`, root, k);
      return out;
    }
    if (typeof node === 'number') {
      const s = String(node);
      const m = maskStringValue(s, this.plan, this.literals);
      return m === s ? node : m;
    }
    return node;
  }

  /** Held text of every field, each in an event shaped like the last one that carried the field. */
  private flushStreams(): string {
    let out = '';
    for (const [path, s] of this.streams) {
      const held = s.secrets.end();
      const rest = s.detectors === null ? held : s.detectors.push(held) + s.detectors.end();
      if (rest === '') continue;
      const shape = this.lastShape.get(path);
      const event = setAt(blankStrings(shape), path, rest);
      out += `data: ${JSON.stringify(event)}\n\n`;
    }
    this.streams.clear();
    this.lastShape.clear();
    return out;
  }
}

/** One text-delta field followed across events: the secret forms first, then the detectors. */
interface FieldStream {
  secrets: LiteralScrubber;
  detectors: StreamMasker | null;
}

/**
 * Fields LLM APIs stream a few characters at a time, which a client joins across events:
 * `content`, `text`, `delta`, `partial_json`, `arguments`, `output_text`, and by name any
 * field of reasoning, thinking, refusal, summary, transcript or JSON text (`reasoning_content`,
 * `thinking`, `refusal`, `input_json` …). Ids, model names and roles are not joined: holding
 * their tail would move it into the next event's copy of them.
 */
const TEXT_DELTA = /content|text|delta|arguments|reasoning|thinking|refusal|summary|transcript|json/i;
const isTextDelta = (key: string): boolean => TEXT_DELTA.test(key);

/** A copy of `doc` with its text-delta fields emptied: the extra event repeats no text. */
function blankStrings(doc: unknown, key = ''): unknown {
  if (typeof doc === 'string') return isTextDelta(key) ? '' : doc;
  if (Array.isArray(doc)) return doc.map((v) => blankStrings(v, key));
  if (doc !== null && typeof doc === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(doc as Record<string, unknown>)) out[k] = blankStrings(v, k);
    return out;
  }
  return doc;
}

function setAt(doc: unknown, path: string, value: string): unknown {
  const steps = [...path.slice(1).matchAll(/\.([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : (m[1] ?? '')));
  const root: unknown = structuredClone(doc);
  let node: unknown = root;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i] as string | number;
    const last = i === steps.length - 1;
    if (typeof step === 'number' && Array.isArray(node)) {
      if (last) node[step] = value;
      else node = node[step];
    } else if (typeof step === 'string' && node !== null && typeof node === 'object') {
      const obj = node as Record<string, unknown>;
      if (last) obj[step] = value;
      else node = obj[step];
    }
  }
  return steps.length === 0 ? value : root;
}
