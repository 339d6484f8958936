/** An HTTP request through airlock's own HTTP listener; the caller's token goes in Authorization. */
import { ToolRefusal, type Target, type ApiRequest, type ApiResult } from '../../src/mcp/backends/types.js';



/** Headers a model may not set: the gateway's own authentication, and hop-by-hop ones. */
const RESERVED = new Set(['authorization', 'proxy-authorization', 'host', 'connection', 'content-length', 'transfer-encoding', 'upgrade', 'te', 'keep-alive']);

export async function httpRequest(target: Target, token: string, authHeader: string, req: ApiRequest, maxBytes: number, timeoutMs: number, signal?: AbortSignal): Promise<ApiResult> {
  if (!req.path.startsWith('/')) throw new ToolRefusal('path must start with "/"', 'error');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers ?? {})) {
    if (RESERVED.has(k.toLowerCase()) || k.toLowerCase() === authHeader.toLowerCase()) continue;
    headers[k] = v;
  }
  headers[authHeader] = authHeader.toLowerCase() === 'authorization' ? `Bearer ${token}` : token;
  const url = `${target.tls ? 'https' : 'http'}://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}${req.path}`;
  const timeout = AbortSignal.timeout(timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, {
      method: req.method.toUpperCase(),
      headers,
      ...(req.body === undefined ? {} : { body: req.body }),
      signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      redirect: 'manual',
    });
  } catch (e) {
    throw new ToolRefusal(`cannot reach connection ${target.name}: ${e instanceof Error ? e.message : String(e)}`, 'error');
  }
  const out: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    out[k] = v;
  });
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  if (res.body !== null) {
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const chunk = Buffer.from(value);
      if (size + chunk.length > maxBytes) {
        chunks.push(chunk.subarray(0, maxBytes - size));
        truncated = true;
        await reader.cancel();
        break;
      }
      chunks.push(chunk);
      size += chunk.length;
    }
  }
  const body = Buffer.concat(chunks).toString('utf8');
  if (res.status === 401 || res.status === 403) {
    // problem+json from the gateway: its detail names the rule and reason.
    let text = body;
    try {
      const p = JSON.parse(body) as { detail?: unknown; title?: unknown };
      text = typeof p.detail === 'string' ? p.detail : typeof p.title === 'string' ? p.title : body;
    } catch {
      // not JSON: the upstream's own 403
    }
    if ((res.headers.get('content-type') ?? '').includes('problem+json')) throw new ToolRefusal(text, 'denied', String(res.status));
  }
  return { status: res.status, headers: out, body, truncated };
}
