/**
 * Which HTTP requests may be forwarded while their audit record syncs (pipelined write-ahead,
 * issue 17): a method the connection lists, no method override, no WebSocket upgrade.
 */
import { describe, expect, it } from 'vitest';
import { isEffectFreeHttp } from '../../src/audit/effect-free-http.js';

const DEFAULT = ['GET', 'HEAD'];
const req = (method: string, extra: { headers?: Record<string, string>; query?: string; websocket?: boolean } = {}) => ({ method, headers: extra.headers ?? {}, query: extra.query ?? '', websocket: extra.websocket ?? false });

describe('effect-free HTTP requests', () => {
  it('GET and HEAD are pipelined by default', () => {
    expect(isEffectFreeHttp(req('GET'), DEFAULT)).toBe(true);
    expect(isEffectFreeHttp(req('HEAD'), DEFAULT)).toBe(true);
  });

  it.each(['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND'])('%s is synced before it is forwarded', (method) => {
    expect(isEffectFreeHttp(req(method), DEFAULT)).toBe(false);
  });

  it('an empty pipeline_methods syncs every request first', () => {
    expect(isEffectFreeHttp(req('GET'), [])).toBe(false);
  });

  it('a method override (header or _method parameter) is synced first: the upstream may read it as a DELETE', () => {
    expect(isEffectFreeHttp(req('GET', { headers: { 'x-http-method-override': 'DELETE' } }), DEFAULT)).toBe(false);
    expect(isEffectFreeHttp(req('GET', { headers: { x_http_method_override: 'DELETE' } }), DEFAULT)).toBe(false);
    expect(isEffectFreeHttp(req('GET', { query: 'a=1&_method=DELETE' }), DEFAULT)).toBe(false);
  });

  it('a WebSocket upgrade is never pipelined', () => {
    expect(isEffectFreeHttp(req('GET', { websocket: true }), DEFAULT)).toBe(false);
  });

  it('a GET or HEAD with a body (Content-Length other than 0, or any Transfer-Encoding) is synced first', () => {
    expect(isEffectFreeHttp(req('GET', { headers: { 'content-length': '7' } }), DEFAULT)).toBe(false);
    expect(isEffectFreeHttp(req('HEAD', { headers: { 'transfer-encoding': 'chunked' } }), DEFAULT)).toBe(false);
    expect(isEffectFreeHttp(req('GET', { headers: { 'transfer-encoding': 'identity' } }), DEFAULT)).toBe(false);
    expect(isEffectFreeHttp(req('GET', { headers: { 'content-length': '0' } }), DEFAULT)).toBe(true);
  });
});
