/**
 * Every console page goes out through sendHtml: one layout, one strict Content-Security-Policy
 * (scripts and styles only from this origin, no inline script, no framing), and text only
 * ever enters markup through escapeHtml.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AirlockError } from '../../util/errors.js';
import { isTls } from './sessions.js';

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  // same-origin, not no-referrer: with no-referrer the browser sends "Origin: null" on its own form posts.
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
} as const;

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** The origin the browser used; Host is checked to be a plain host[:port]. */
export function requestOrigin(req: IncomingMessage): string {
  const host = req.headers.host ?? '';
  if (!/^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/.test(host)) throw new AirlockError('AIRLOCK_PROTOCOL', 'bad Host header');
  return `${isTls(req) ? 'https' : 'http'}://${host}`;
}

export interface PageNav {
  subject: string;
  groups: string[];
  csrf: string;
  active: 'inbox' | 'sessions' | 'audit';
}

function navBar(nav: PageNav): string {
  const link = (href: string, key: PageNav['active'], label: string): string => `<a href="${href}"${nav.active === key ? ' aria-current="page"' : ''}>${label}</a>`;
  return `<header><span class="brand">airlock</span><nav>${link('/console', 'inbox', 'Approvals')}${link('/console/sessions', 'sessions', 'Sessions')}${link('/console/audit', 'audit', 'Audit')}</nav><span class="who" data-subject="${escapeHtml(nav.subject)}">${escapeHtml(nav.subject)} <small>${escapeHtml(nav.groups.join(', '))}</small></span><form method="post" action="/console/logout"><input type="hidden" name="csrf" value="${escapeHtml(nav.csrf)}"><button type="submit" class="link">Sign out</button></form></header>`;
}

/** The replay page only: asciinema-player's terminal is WebAssembly, which CSP allows with 'wasm-unsafe-eval' (no JS eval). */
export const REPLAY_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace("script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'");

export function sendHtml(req: IncomingMessage, res: ServerResponse, status: number, title: string, body: string, nav?: PageNav, opts: { wasm?: boolean } = {}): void {
  const csrf = nav === undefined ? '' : `<meta name="airlock-csrf" content="${escapeHtml(nav.csrf)}">`;
  const page = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">${csrf}<title>${escapeHtml(title)} · airlock</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/console/static/console.css"></head><body>${nav === undefined ? '' : navBar(nav)}${body}<script type="module" src="/console/static/console.js"></script></body></html>`;
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(page), ...SECURITY_HEADERS, ...(opts.wasm === true ? { 'content-security-policy': REPLAY_CONTENT_SECURITY_POLICY } : {}) });
  res.end(page);
  void req;
}

export async function readForm(req: IncomingMessage, maxBytes = 16 * 1024): Promise<URLSearchParams> {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) throw new AirlockError('AIRLOCK_PROTOCOL', 'expected a form');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new AirlockError('AIRLOCK_TOO_LARGE', 'form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export function formatTime(iso: string | number | null): string {
  if (iso === null) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
