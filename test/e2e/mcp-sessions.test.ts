/**
 * Issue 27 item 3: MCP sessions over Streamable HTTP are capped per identity. One identity
 * opening hundreds of sessions used to evict another identity's (the globally oldest went);
 * now it only ever closes its own, and at the global cap a new session is refused (503).
 * The victim is the MCP SDK's own client; the flood is plain initialize POSTs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { freePort } from '../harness/ports.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';

let issuer: TestIssuer;
let airlock: RunningAirlock;
let adminUrl = '';
const PER_IDENTITY = 4;
const MAX = 12;

beforeAll(async () => {
  issuer = await createTestIssuer();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  airlock = await startAirlock({
    state_dir: join(mkdtempSync(join(tmpdir(), 'airlock-mcp-sessions-')), 'state'),
    admin: { listen: `127.0.0.1:${adminPort}`, mcp: { max_sessions: MAX, max_sessions_per_identity: PER_IDENTITY } },
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
  });
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
});

async function sdkClient(token: string): Promise<Client> {
  const client = new Client({ name: 'victim-agent', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL('/mcp', adminUrl), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

/** One initialize POST; the session id, or the refusal's status and body. */
async function initialize(token: string): Promise<{ status: number; session: string | null; body: string }> {
  const res = await fetch(new URL('/mcp', adminUrl), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'flood', version: '1' } } }),
  });
  return { status: res.status, session: res.headers.get('mcp-session-id'), body: await res.text() };
}

/** A request on an existing session: 200 while it lives. */
async function ping(token: string, session: string): Promise<number> {
  const res = await fetch(new URL('/mcp', adminUrl), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': session, 'mcp-protocol-version': '2025-03-26' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }),
  });
  await res.text();
  return res.status;
}

describe('MCP sessions over Streamable HTTP are capped per identity', () => {
  it('one identity opening 260 sessions never evicts another identity\'s session', async () => {
    const victim = await sdkClient(await issuer.token({ sub: 'bob', groups: ['dba'] }));
    const eve = await issuer.token({ sub: 'eve', groups: ['agents'] });
    const opened: string[] = [];
    for (let i = 0; i < 260; i++) {
      const r = await initialize(eve);
      expect(r.status).toBe(200);
      if (r.session !== null) opened.push(r.session);
    }
    // bob's session, the oldest of all, still answers.
    expect((await victim.listTools()).tools.map((t) => t.name)).toContain('list_connections');
    // eve keeps her newest sessions only: her own oldest went.
    expect(await ping(eve, opened.at(-1) ?? '')).toBe(200);
    expect(await ping(eve, opened[0] ?? '')).toBe(404);
    const alive = (await Promise.all(opened.map((s) => ping(eve, s)))).filter((s) => s === 200).length;
    expect(alive).toBe(PER_IDENTITY);
    await victim.close();
  }, 120_000);

  it('a session with a request open is not idle: at the cap with none idle, the new session is refused instead', async () => {
    const frank = await issuer.token({ sub: 'frank', groups: ['agents'] });
    const streams: Array<{ session: string; abort: AbortController }> = [];
    for (let i = 0; i < PER_IDENTITY; i++) {
      const r = await initialize(frank);
      expect(r.status).toBe(200);
      const abort = new AbortController();
      // The standalone SSE stream a client keeps open for server messages.
      const res = await fetch(new URL('/mcp', adminUrl), {
        method: 'GET',
        headers: { authorization: `Bearer ${frank}`, accept: 'text/event-stream', 'mcp-session-id': r.session ?? '', 'mcp-protocol-version': '2025-03-26' },
        signal: abort.signal,
      });
      expect(res.status).toBe(200);
      streams.push({ session: r.session ?? '', abort });
    }
    const refused = await initialize(frank);
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'AIRLOCK_CAPACITY' });
    // Closing one stream makes that session idle: the next session replaces it.
    streams[0]?.abort.abort();
    let admitted = await initialize(frank);
    // The server sees the stream close when its socket does: ask again until it has.
    for (let i = 0; i < 250 && admitted.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 20));
      admitted = await initialize(frank);
    }
    expect(admitted.status).toBe(200);
    expect(await ping(frank, streams[0]?.session ?? '')).toBe(404);
    expect(await ping(frank, streams[1]?.session ?? '')).toBe(200);
    for (const s of streams) s.abort.abort();
    for (const sid of [admitted.session, ...streams.map((s) => s.session)]) {
      await fetch(new URL('/mcp', adminUrl), { method: 'DELETE', headers: { authorization: `Bearer ${frank}`, 'mcp-session-id': sid ?? '', 'mcp-protocol-version': '2025-03-26' } }).then((r) => r.text());
    }
  }, 120_000);

  it('at the global cap a new session is refused with 503 problem+json, and nobody\'s session is closed', async () => {
    const holders: Array<{ token: string; session: string }> = [];
    for (let i = 0; holders.length < MAX; i++) {
      const token = await issuer.token({ sub: `user${i}`, groups: ['agents'] });
      const r = await initialize(token);
      if (r.status !== 200) break;
      holders.push({ token, session: r.session ?? '' });
    }
    // Sessions left from the first test count too: the cap is reached before MAX new ones.
    const late = await initialize(await issuer.token({ sub: 'late-comer', groups: ['agents'] }));
    expect(late.status).toBe(503);
    expect(JSON.parse(late.body)).toMatchObject({ code: 'AIRLOCK_CAPACITY' });
    for (const h of holders) expect(await ping(h.token, h.session)).toBe(200);
  }, 120_000);
});
