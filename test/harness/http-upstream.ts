/**
 * A real HTTP(S) upstream for the HTTP gateway tests: it records every request it gets
 * (to prove what arrived and what did not), echoes headers and bodies (to prove what never
 * comes back), streams Server-Sent Events slowly, serves large and compressed bodies.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, gzipSync } from 'node:zlib';

export interface Received {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface HttpUpstream {
  url: string;
  port: number;
  received: Received[];
  /** Resolves when the SSE endpoint has written its last event. */
  sseLastSent(): Promise<number>;
  /** /big answers whose connection closed before their end (the reader went away). */
  bigAborted(): number;
  /** /big answers written to their end (the reader took them, or the sockets' buffers did). */
  bigFinished(): number;
  close(): Promise<void>;
}

const PII = {
  data: [
    { id: 1, name: 'Ada', email: 'ada@example.com', card: '4111111111111111', note: 'reach me at ada.l@example.org' },
    { id: 2, name: 'Alan', email: 'alan@example.com', card: 5500005555555559, note: 'no notes' },
  ],
};

export async function startHttpUpstream(opts: { tls?: { cert: string; key: string } } = {}): Promise<HttpUpstream> {
  const received: Received[] = [];
  let lastSent: (t: number) => void = () => undefined;
  let lastSentP = new Promise<number>((r) => (lastSent = r));
  let bigAborted = 0;
  let bigFinished = 0;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 1024 * 1024) chunks.push(c);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers }, body });
      const url = new URL(req.url ?? '/', 'http://upstream.invalid');
      const path = url.pathname.replace(/^\/api/, '');
      switch (path) {
        case '/echo': {
          const text = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body, size });
          res.writeHead(200, { 'content-type': 'application/json', 'x-echo-auth': String(req.headers.authorization ?? ''), 'x-echo-key': String(req.headers['x-api-key'] ?? '') });
          res.end(text);
          return;
        }
        case '/echo-text': {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(`you sent authorization=${String(req.headers.authorization ?? '')} key=${url.searchParams.get('key') ?? ''}\n`);
          return;
        }
        case '/users': {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(PII));
          return;
        }
        case '/users-gzip': {
          const z = gzipSync(Buffer.from(JSON.stringify(PII)));
          res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': z.length });
          res.end(z);
          return;
        }
        case '/users-br': {
          const z = brotliCompressSync(Buffer.from(JSON.stringify(PII)));
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-encoding': 'br', 'content-length': z.length });
          res.end(z);
          return;
        }
        case '/big-json': {
          // A JSON array of records, written as it goes: {"data":[{...},{...}, …]}.
          const mb = Number(url.searchParams.get('mb') ?? '1');
          res.writeHead(200, { 'content-type': 'application/json' });
          const total = mb * 1024 * 1024;
          let sent = 0;
          let i = 0;
          res.write('{"data":[');
          const write = (): void => {
            while (sent < total) {
              const rec = `${i === 0 ? '' : ','}{"id":${i},"name":"user ${i}","email":"user${i}@example.com","pad":"${'x'.repeat(200)}"}`;
              i++;
              sent += rec.length;
              if (!res.write(rec)) {
                res.once('drain', write);
                return;
              }
            }
            res.end(']}');
          };
          write();
          return;
        }
        case '/hop': {
          // Fields for this hop only: none may reach the client.
          res.writeHead(200, { 'content-type': 'text/plain', connection: 'x-hop-secret', 'x-hop-secret': 'hop', 'keep-alive': 'timeout=5', 'proxy-authenticate': 'Basic', 'x-end-to-end': 'kept' });
          res.end('hop\n');
          return;
        }
        case '/ndjson': {
          // A type airlock does not read as text, with an address in it and bytes that are not UTF-8.
          const body = Buffer.concat([Buffer.from('{"who":"café","mail":"ada.lovelace@example.com"}\n'), Buffer.from([0xff, 0x00, 0x0a])]);
          res.writeHead(200, { 'content-type': 'application/x-ndjson' });
          res.write(body.subarray(0, 30));
          setTimeout(() => res.end(body.subarray(30)), 30);
          return;
        }
        case '/leak': {
          // A careless upstream: the credential it got, in headers and a binary body of fixed length.
          const auth = String(req.headers.authorization ?? req.headers['x-api-key'] ?? '');
          const bare = auth.replace(/^Bearer /, '');
          const body = Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from(`key=${bare};`), Buffer.from([255, 254])]);
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length, 'x-seen': auth, 'set-cookie': [`k=${bare}; Path=/`] });
          res.end(body);
          return;
        }
        case '/key-forms': {
          // A careless upstream that echoes the credential it got, written in one encoding (issue 25).
          const form = keyForms(credentialOf(req))[url.searchParams.get('form') ?? ''] ?? '';
          res.writeHead(200, { 'content-type': url.searchParams.get('ct') ?? 'text/plain' });
          // In two writes, the cut inside the encoded key.
          const body = `{"note":"you sent","value":"${form}","n":1}\n`;
          const cut = 24 + Math.floor(form.length / 2);
          res.write(body.slice(0, cut));
          setTimeout(() => res.end(body.slice(cut)), 20);
          return;
        }
        case '/key-basic': {
          // A Basic credential echoed decoded (user:password), the password alone in upper case, and the whole header in base64.
          const header = String(req.headers.authorization ?? '');
          const pair = Buffer.from(header.replace(/^Basic /, ''), 'base64').toString('utf8');
          const password = pair.slice(pair.indexOf(':') + 1);
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(`pair=${pair}\npassword=${password.toUpperCase()}\nheader=${Buffer.from(`Authorization: ${header}`).toString('base64')}\n`);
          return;
        }
        case '/key-redirect': {
          const form = keyForms(credentialOf(req))[url.searchParams.get('form') ?? ''] ?? '';
          res.writeHead(302, { location: `https://elsewhere.example/cb?token=${form}&x=1`, 'set-cookie': [`k=${form}; Path=/`], 'x-key': form });
          res.end();
          return;
        }
        case '/key-sse': {
          // A token stream that carries the key in two deltas, cut at ?at= (an LLM API streaming it).
          const key = credentialOf(req);
          const at = Number(url.searchParams.get('at') ?? '10');
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          const ev = (content: string): string => `data: ${JSON.stringify({ id: 'chatcmpl-1', choices: [{ index: 0, delta: { content } }] })}\n\n`;
          res.write(ev(`the key is ${key.slice(0, at)}`));
          setTimeout(() => {
            res.write(ev(`${key.slice(at)}, keep it safe`));
            res.end('data: [DONE]\n\n');
          }, 50);
          return;
        }
        case '/slow': {
          const ms = Number(url.searchParams.get('ms') ?? '1000');
          setTimeout(() => {
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.end('late\n');
          }, ms).unref();
          return;
        }
        case '/text': {
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
          // An address split across two writes.
          res.write('contact: grace.hop');
          setTimeout(() => res.end('per@example.com or call\n'), 50);
          return;
        }
        case '/sse': {
          lastSentP = new Promise<number>((r) => (lastSent = r));
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
          const deltas = ['Write to ', 'john', '.smi', 'th@exa', 'mple.', 'com', ' today.', ' Bye'];
          let i = 0;
          const tick = (): void => {
            if (i < deltas.length) {
              const event = { id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: deltas[i] }, finish_reason: null }] };
              const line = `data: ${JSON.stringify(event)}\n\n`;
              // Split one event across two writes too.
              if (i === 3) {
                res.write(line.slice(0, 20));
                res.write(line.slice(20));
              } else res.write(line);
              i++;
              setTimeout(tick, 150);
              return;
            }
            res.write('data: [DONE]\n\n');
            lastSent(Date.now());
            res.end();
          };
          tick();
          return;
        }
        case '/reset': {
          // Part of a chunked body, then the connection is cut: not an end a client may take for complete.
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('the first part of a body that never ends\n');
          setTimeout(() => res.socket?.destroy(), 50);
          return;
        }
        case '/big': {
          const mb = Number(url.searchParams.get('mb') ?? '1');
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.once('close', () => {
            if (!res.writableFinished) bigAborted++;
          });
          res.once('finish', () => bigFinished++);
          const line = Buffer.from(`${'lorem ipsum dolor sit amet '.repeat(37)}\n`);
          const total = mb * 1024 * 1024;
          let sent = 0;
          const write = (): void => {
            while (sent < total) {
              sent += line.length;
              if (!res.write(line)) {
                res.once('drain', write);
                return;
              }
            }
            res.end();
          };
          write();
          return;
        }
        case '/admin/thing': {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"deleted":true}');
          return;
        }
        default:
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end('{"error":"not found"}');
      }
    });
  };
  const server: Server = opts.tls === undefined ? createHttpServer(handler) : createHttpsServer({ cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) }, handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${opts.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    port,
    received,
    sseLastSent: () => lastSentP,
    bigAborted: () => bigAborted,
    bigFinished: () => bigFinished,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** The credential an upstream got: the API key header, or the bearer token without its scheme. */
function credentialOf(req: IncomingMessage): string {
  return String(req.headers['x-api-key'] ?? req.headers.authorization ?? '').replace(/^Bearer /, '');
}

const pct = (c: string): string => [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');

/**
 * A key as serializers and encoders write it (issue 25), each built here independently of
 * airlock's matcher: the forms a careless upstream may echo.
 */
export function keyForms(key: string): Record<string, string> {
  return {
    raw: key,
    json_slash: key.replace(/\//g, '\\/'),
    json_u: [...key].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''),
    pct_lower: encodeURIComponent(key).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    pct_all: [...key].map(pct).join('').toLowerCase(),
    python_quote: key.replace(/[^A-Za-z0-9_.~\-/]/g, pct),
    form: new URLSearchParams({ k: key }).toString().slice(2),
    upper: key.toUpperCase(),
    html: [...key].map((c) => `&#${c.charCodeAt(0)};`).join(''),
    html_hex: [...key].map((c) => `&#x${c.charCodeAt(0).toString(16)};`).join(''),
    hex: Buffer.from(key).toString('hex'),
    base64: Buffer.from(`key=${key}`).toString('base64'),
    base64_off1: Buffer.from(`k=${key};`).toString('base64'),
    base64url: Buffer.from(`ab${key}`).toString('base64url'),
    base64_header: Buffer.from(`Bearer ${key}`).toString('base64'),
  };
}
