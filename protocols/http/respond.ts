/**
 * The upstream's answer on its way to the client: headers cleaned and scrubbed of the
 * injected secret, the body passed through untouched (nothing to mask, no secret), masked
 * whole (JSON, bounded), or masked as it streams (text, Server-Sent Events, the literal
 * secret in anything else). A compressed body airlock must read is decoded and goes out
 * identity-encoded; a body that changes length goes out chunked (Content-Length dropped)
 * or with the new length. Backpressure: the upstream is paused while the client is slow.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { AirlockError } from '../../src/util/errors.js';
import { BinaryScrubber, SseMasker, TextMasker, bodyMode, formsOfSecrets, maskJsonDocument, type BodyPlan } from './body.js';
import { endToEnd } from './headers.js';

export interface Sent {
  status: number;
  /** Response fields as the client got them. */
  headers: Record<string, string | string[]>;
  /** The first `recordBytes` of the body as the client got it; null for a body not recorded as text. */
  body: Buffer | null;
  /** Body bytes written to the client. */
  bytes: number;
}

const TEXTUAL = /^(text\/|application\/([\w.+-]+\+)?(json|xml)|application\/(javascript|x-www-form-urlencoded|problem\+json))/i;

/**
 * Fields the client gets: end-to-end only, every form of the secret scrubbed from every value
 * (Location, Set-Cookie, any field); a field whose name holds one is dropped.
 */
export function clientHeaders(upstream: IncomingMessage, secrets: readonly string[]): Record<string, string | string[]> {
  const literals = formsOfSecrets(secrets);
  // endToEnd() returns a fresh object, scrubbed here in place.
  const out = endToEnd(upstream.headers) as Record<string, string | string[]>;
  for (const k in out) {
    const v = out[k];
    if (v === undefined || literals.scrub(k) !== k) delete out[k];
    else out[k] = Array.isArray(v) ? v.map((x) => literals.scrub(x)) : literals.scrub(v);
  }
  return out;
}

function decoderFor(encoding: string): Transform | null {
  switch (encoding) {
    case 'gzip':
    case 'x-gzip':
      return createGunzip();
    case 'deflate':
      return createInflate();
    case 'br':
      return createBrotliDecompress();
    default:
      return null;
  }
}

/** Reads until the end or past `cap` bytes; in the latter case the source is left paused for a pipeline. */
function bufferUpTo(source: Readable, cap: number): Promise<{ chunks: Buffer[]; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (ended: boolean): void => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      resolve({ chunks, ended });
    };
    const onData = (c: Buffer): void => {
      chunks.push(c);
      size += c.length;
      if (size > cap) {
        source.pause();
        done(false);
      }
    };
    const onEnd = (): void => done(true);
    const onError = (e: Error): void => {
      source.off('data', onData);
      source.off('end', onEnd);
      reject(e);
    };
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', onError);
  });
}

const EMPTY = Buffer.alloc(0);
const ignore = (): void => undefined;
/** An event listener of any one signature (method syntax: its parameter is checked both ways, as EventEmitter's own types do). */
type Listener = { bivariant(arg: unknown): void }['bivariant'];

/**
 * The body from the upstream (or its decoder) to the client, each chunk through `map`, with
 * backpressure both ways; settles once the client's response has finished, or with the first
 * error (either side failing or closing early destroys the source). What pipeline() does for
 * two streams and a function, without the AbortController and DOMException it makes per call,
 * which were a fifth of the gateway's time per small response.
 */
function relay(source: Readable, res: ServerResponse, map: (chunk: Buffer) => Buffer, last: () => Buffer): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (e: Error | null): void => {
      if (settled) return;
      settled = true;
      for (const [emitter, event, fn] of listeners) emitter.off(event, fn);
      // Late errors (a reset after the end) have nowhere to go but must not be unhandled.
      source.on('error', ignore);
      if (e === null) return resolve();
      source.destroy();
      reject(e);
    };
    /** A masker that throws fails the body, as an error thrown in a pipeline() stage does. */
    const attempt = (f: () => Buffer): Buffer | null => {
      try {
        return f();
      } catch (e) {
        settle(e instanceof Error ? e : new Error(String(e)));
        return null;
      }
    };
    const listeners: Array<[Readable | ServerResponse, string, Listener]> = [
      [source, 'data', (chunk: Buffer) => {
        const out = attempt(() => map(chunk));
        if (out !== null && out.length > 0 && !res.write(out)) source.pause();
      }],
      [source, 'end', () => {
        const out = attempt(last);
        if (out === null) return;
        if (out.length > 0) res.end(out);
        else res.end();
      }],
      [source, 'error', (e: Error) => settle(e)],
      // An upstream that goes away before its end (a reset) is a failure, as pipeline() has it.
      [source, 'close', () => (source.readableEnded ? undefined : settle(new Error('the upstream closed before the end of its body')))],
      [res, 'drain', () => void source.resume()],
      [res, 'error', (e: Error) => settle(e)],
      [res, 'close', () => (res.writableFinished ? undefined : settle(new Error('the client closed before the end of the body')))],
      [res, 'finish', () => settle(null)],
    ];
    for (const [emitter, event, fn] of listeners) emitter.on(event, fn);
    source.resume();
  });
}

/**
 * The head with airlock's x-request-id; an upstream's own x-request-id stands (as it did over
 * a setHeader() before). `headers` stays the upstream's fields as recorded: writeHead() has
 * written the head out of them before the field is taken back.
 */
function writeHead(res: ServerResponse, status: number, headers: Record<string, string | string[]>, requestId: string): void {
  if (headers['x-request-id'] !== undefined) return void res.writeHead(status, headers);
  headers['x-request-id'] = requestId;
  res.writeHead(status, headers);
  delete headers['x-request-id'];
}

export async function sendResponse(upRes: IncomingMessage, res: ServerResponse, plan: BodyPlan, opts: { method: string; recordBytes: number; requestId: string }): Promise<Sent> {
  const status = upRes.statusCode ?? 502;
  const headers = clientHeaders(upRes, plan.secrets);
  const contentType = typeof upRes.headers['content-type'] === 'string' ? upRes.headers['content-type'] : undefined;
  const noBody = opts.method === 'HEAD' || status === 204 || status === 304;
  const mode = noBody ? 'pass' : bodyMode(contentType, plan);
  const recorded: Buffer[] = [];
  const sent = { status, headers, body: null as Buffer | null, bytes: 0 };
  let kept = 0;
  const textual = contentType !== undefined && TEXTUAL.test(contentType);
  const keep = (b: Buffer): void => {
    sent.bytes += b.length;
    if (textual && kept < opts.recordBytes) {
      const part = b.subarray(0, opts.recordBytes - kept);
      recorded.push(part);
      kept += part.length;
    }
  };
  const finish = (): Sent => ({ ...sent, body: textual ? Buffer.concat(recorded) : null });
  const stream = (source: Readable, masker: { push(b: Buffer): Buffer; end(): Buffer } | null): Promise<void> =>
    relay(source, res, (chunk) => {
      const out = masker === null ? chunk : masker.push(chunk);
      keep(out);
      return out;
    }, () => {
      const out = masker === null ? EMPTY : masker.end();
      keep(out);
      return out;
    });

  if (mode === 'pass') {
    writeHead(res, status, headers, opts.requestId);
    await stream(upRes, null);
    return finish();
  }
  // Airlock reads this body: it may change length, and a compressed one is read decoded.
  delete headers['content-length'];
  let source: Readable = upRes;
  const encoding = String(upRes.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity' && encoding !== '') {
    const decoder = decoderFor(encoding);
    if (decoder === null) {
      upRes.destroy();
      throw new AirlockError('AIRLOCK_UNSUPPORTED', `the upstream answered with content-encoding ${encoding}, which airlock cannot read to mask`);
    }
    source = upRes.pipe(decoder);
    upRes.on('error', (e) => decoder.destroy(e));
    delete headers['content-encoding'];
  }

  if (mode === 'json') {
    // Buffered up to the cap and masked whole. Past the cap: JSON paths cannot be applied
    // to a stream, so the answer is refused (502); detectors alone continue on the text.
    const { chunks, ended } = await bufferUpTo(source, plan.maxJsonBytes);
    if (!ended) {
      if (plan.jsonPaths !== null) {
        upRes.destroy();
        throw new AirlockError('AIRLOCK_UNSUPPORTED', `a JSON response over ${plan.maxJsonBytes} bytes cannot be masked by JSON path`);
      }
      const masker = new TextMasker(plan);
      writeHead(res, status, headers, opts.requestId);
      const head = masker.push(Buffer.concat(chunks));
      keep(head);
      res.write(head);
      await stream(source, masker);
      return finish();
    }
    const text = Buffer.concat(chunks).toString('utf8');
    const masked = maskJsonDocument(text, plan);
    let body: Buffer;
    if (masked !== null) body = Buffer.from(masked, 'utf8');
    else if (plan.jsonPaths !== null) throw new AirlockError('AIRLOCK_UNSUPPORTED', 'the upstream sent a JSON content type with a body that is not JSON: it cannot be masked by JSON path');
    else {
      const t = new TextMasker(plan);
      body = Buffer.concat([t.push(Buffer.from(text, 'utf8')), t.end()]);
    }
    headers['content-length'] = String(body.length);
    writeHead(res, status, headers, opts.requestId);
    keep(body);
    await new Promise<void>((resolve) => res.end(body, () => resolve()));
    return finish();
  }

  // Text with no detector to run needs no decoding: the secret's forms are found in its bytes (they include its UTF-8).
  const masker = mode === 'sse' ? new SseMasker(plan) : mode === 'text' && !plan.detectors.empty ? new TextMasker(plan) : new BinaryScrubber(plan);
  writeHead(res, status, headers, opts.requestId);
  // Event streams: the client sees the headers now, not with the first event.
  if (mode === 'sse') res.flushHeaders();
  await stream(source, masker);
  return finish();
}
