/**
 * The MCP parts of the admin API: POST /v1/mcp/events (tool calls of `airlock mcp` on an
 * agent's host become audit events under the token's verified identity) and /mcp (the MCP
 * server over Streamable HTTP, bearer-token authenticated, for agents that run elsewhere).
 */
import { randomUUID } from 'node:crypto';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import type { AdminRoute } from '../admin/server.js';
import { readJsonBody, sendJson, bearerToken } from '../admin/http.js';
import { AirlockError } from '../util/errors.js';
import type { Identity } from '../core/types.js';
import type { ToolCallEvent } from './api.js';
import { LocalAirlockApi, type LocalApiDeps } from './local-api.js';
import { createMcpServer } from './server.js';
import type { Limits, McpBackends } from './backends/types.js';

const short = z.string().max(4096);
const toolCallSchema = z.strictObject({
  tool: z.string().max(64),
  connection: z.string().max(256).optional(),
  request: z.record(z.string().max(64), z.union([short, z.number(), z.boolean()])).optional(),
  outcome: z.enum(['ok', 'error', 'denied', 'held', 'truncated']),
  detail: short.optional(),
  client: z.strictObject({ name: z.string().max(256), version: z.string().max(64) }).optional(),
  durationMs: z.number().min(0),
});

export interface McpRouteDeps extends LocalApiDeps {
  authenticate(token: string): Promise<Identity>;
  limits: Limits;
  /** The protocols' MCP backends (app/adapters.ts). */
  backends: McpBackends;
  version: string;
  /** Most MCP sessions over HTTP kept at once; past it a new session is refused (503), never another identity's closed. */
  maxSessions?: number;
  /** Most sessions one identity keeps; past it that identity's own least recently used idle session is closed. */
  maxSessionsPerIdentity?: number;
}

interface HttpSession {
  transport: StreamableHTTPServerTransport;
  api: LocalAirlockApi;
  subject: string;
  issuer: string;
  lastUsed: number;
  /** HTTP requests open on this session (a tool call under way, an SSE stream): not idle while > 0. */
  open: number;
}

export function mcpAdminRoutes(deps: McpRouteDeps): AdminRoute[] {
  const sessions = new Map<string, HttpSession>();
  const maxSessions = deps.maxSessions ?? 256;
  const perIdentity = deps.maxSessionsPerIdentity ?? 16;
  /** Initializations under way, per identity: they hold a slot until they become a session or fail. */
  const starting = new Map<string, number>();
  let startingTotal = 0;
  const keyOf = (i: { issuer: string; subject: string }): string => JSON.stringify([i.issuer, i.subject]);

  /**
   * Reserves a slot for one more session of this identity, synchronously so that parallel
   * initializations cannot overrun a cap. Past its own cap the identity's least recently
   * used idle sessions go (returned, to be closed); if too few are idle, or at the global
   * cap, the new one is refused.
   */
  const reserve = (key: string): HttpSession[] => {
    const own = [...sessions.entries()].filter(([, s]) => keyOf(s) === key);
    const idle = own.filter(([, s]) => s.open === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    const excess = own.length + (starting.get(key) ?? 0) + 1 - perIdentity;
    if (excess > idle.length) throw new AirlockError('AIRLOCK_CAPACITY', `this identity already has ${perIdentity} MCP sessions in use`);
    const evicted = idle.slice(0, Math.max(0, excess));
    if (sessions.size - evicted.length + startingTotal + 1 > maxSessions) {
      throw new AirlockError('AIRLOCK_CAPACITY', 'airlock holds as many MCP sessions as it is configured to; try again later');
    }
    for (const [sid] of evicted) sessions.delete(sid);
    starting.set(key, (starting.get(key) ?? 0) + 1);
    startingTotal++;
    return evicted.map(([, s]) => s);
  };

  const mcp: AdminRoute['handler'] = async ({ req, res }) => {
    const token = bearerToken(req);
    const identity = await deps.authenticate(token);
    const header = req.headers['mcp-session-id'];
    const id = Array.isArray(header) ? header[0] : header;
    if (id !== undefined) {
      const s = sessions.get(id);
      if (s === undefined) throw new AirlockError('AIRLOCK_UNSUPPORTED', 'unknown or expired MCP session');
      // A session belongs to the identity that opened it.
      if (s.subject !== identity.subject || s.issuer !== identity.issuer) throw new AirlockError('AIRLOCK_FORBIDDEN', 'this MCP session belongs to another identity');
      s.api.refresh(identity, token);
      s.lastUsed = Date.now();
      s.open++;
      res.once('close', () => {
        s.open--;
        s.lastUsed = Date.now();
      });
      await s.transport.handleRequest(req, res);
      return;
    }
    if (req.method !== 'POST') throw new AirlockError('AIRLOCK_PROTOCOL', 'an MCP session starts with a POST of initialize');
    const key = keyOf(identity);
    const evicted = reserve(key);
    const release = (): void => {
      const n = (starting.get(key) ?? 1) - 1;
      if (n <= 0) starting.delete(key);
      else starting.set(key, n);
      startingTotal--;
    };
    try {
      await Promise.all(evicted.map((s) => s.transport.close().catch(() => undefined)));
      await startSession(identity, token, req, res);
    } finally {
      release();
    }
  };

  const startSession = async (identity: Identity, token: string, req: Parameters<AdminRoute['handler']>[0]['req'], res: Parameters<AdminRoute['handler']>[0]['res']): Promise<void> => {
    const api = new LocalAirlockApi(identity, token, deps);
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => {
        sessions.set(sid, { transport, api, subject: identity.subject, issuer: identity.issuer, lastUsed: Date.now(), open: 0 });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
    };
    const server = createMcpServer({ api, limits: deps.limits, backends: deps.backends, version: deps.version });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  };

  return [
    {
      method: 'POST',
      pattern: /^\/v1\/mcp\/events$/,
      handler: async ({ req, res, caller }) => {
        const identity = await caller();
        const parsed = toolCallSchema.safeParse(await readJsonBody(req));
        if (!parsed.success) throw new AirlockError('AIRLOCK_PROTOCOL', 'not a tool call event');
        const event: ToolCallEvent = parsed.data as ToolCallEvent;
        await deps.recordToolCall(identity, event);
        sendJson(res, 202, { recorded: true });
      },
    },
    { method: 'POST', pattern: /^\/mcp$/, handler: mcp },
    { method: 'GET', pattern: /^\/mcp$/, handler: mcp },
    { method: 'DELETE', pattern: /^\/mcp$/, handler: mcp },
  ];
}
