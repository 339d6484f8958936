/**
 * Header fields on the way through the proxy. RFC 9110 §7.6.1: connection-specific
 * fields (Connection and every field it lists, Keep-Alive, TE, Trailer, Transfer-Encoding,
 * Upgrade, and the Proxy-* family) belong to one hop and are never forwarded, either way.
 * RFC 7239 / de-facto X-Forwarded-*: the client's address, scheme and host are added.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** The fields a message's own Connection header names (lower-case). */
const NONE_LISTED: ReadonlySet<string> = new Set();
/** The parsed lists of the Connection values seen most (`keep-alive`, `close`): the same value, the same list. */
const listedByValue = new Map<string, ReadonlySet<string>>();

function connectionListed(headers: IncomingHttpHeaders): ReadonlySet<string> {
  const raw = headers.connection;
  if (raw === undefined) return NONE_LISTED;
  const value = Array.isArray(raw) ? raw.join(',') : raw;
  let listed = listedByValue.get(value);
  if (listed === undefined) {
    listed = new Set(value.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== ''));
    if (value.length <= 64) {
      if (listedByValue.size >= 64) listedByValue.clear();
      listedByValue.set(value, listed);
    }
  }
  return listed;
}

/** True for a field that belongs to this hop only. */
export function isHopByHop(name: string, listed: ReadonlySet<string>): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-') || listed.has(name);
}

/** The end-to-end fields of a message, minus those named in `drop`. */
export function endToEnd(headers: IncomingHttpHeaders, drop: ReadonlySet<string> = NONE_LISTED): IncomingHttpHeaders {
  const listed = connectionListed(headers);
  const out: IncomingHttpHeaders = {};
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined || !Object.hasOwn(headers, k) || isHopByHop(k, listed) || drop.has(k)) continue;
    out[k] = v;
  }
  return out;
}

export interface ForwardedFor {
  /** The client's address as the socket saw it. */
  client: string;
  /** The scheme the client used to reach airlock. */
  proto: 'http' | 'https';
  /** The Host the client asked for (may be empty). */
  host: string;
  /** X-Forwarded-For the client sent, if any (kept as the start of the chain). */
  prior: string | string[] | undefined;
}

/** X-Forwarded-For/-Proto/-Host and RFC 7239 Forwarded, for the request going upstream. */
export function forwardedFields(f: ForwardedFor): OutgoingHttpHeaders {
  const prior = Array.isArray(f.prior) ? f.prior.join(', ') : f.prior;
  const node = f.client.includes(':') ? `"[${f.client}]"` : f.client;
  const host = f.host.replace(/["\\\r\n]/g, '');
  return {
    'x-forwarded-for': prior === undefined || prior.trim() === '' ? f.client : `${prior}, ${f.client}`,
    'x-forwarded-proto': f.proto,
    ...(host === '' ? {} : { 'x-forwarded-host': host }),
    forwarded: `for=${node};proto=${f.proto}${host === '' ? '' : `;host="${host}"`}`,
  };
}

/** Request fields as the audit log keeps them: credentials and cookies redacted. */
export function redactedRequestHeaders(headers: IncomingHttpHeaders, authHeader: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined || !Object.hasOwn(headers, k)) continue;
    out[k] = k === authHeader || k === 'authorization' || k === 'cookie' || k === 'proxy-authorization' ? '[redacted]' : Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/**
 * A WebSocket handshake is the one case where Upgrade and Connection go on (RFC 9110 §7.8,
 * RFC 6455 §4.1): airlock sets them for the hop it opens, it does not copy them. No
 * extension is offered upstream: airlock reads every frame, and permessage-deflate would
 * hide their content.
 */
export function websocketUpgradeFields(out: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const fields: OutgoingHttpHeaders = { ...out, connection: 'Upgrade', upgrade: 'websocket' };
  delete fields['sec-websocket-extensions'];
  delete fields['accept-encoding'];
  return fields;
}

/** RFC 6455 §4.2.2: the server's 101 as the client gets it, the upstream's end-to-end fields included. */
export function switchingProtocolsHead(fields: Record<string, string | string[]>): string {
  let head = 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n';
  for (const [k, v] of Object.entries(fields)) for (const one of Array.isArray(v) ? v : [v]) head += `${k}: ${one}\r\n`;
  return `${head}\r\n`;
}
