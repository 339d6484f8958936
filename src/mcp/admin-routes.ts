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
import { AirlockError } from '../errors.js';
import type { Identity } from '../types.js';
import type { ToolCallEvent } from './api.js';
import { LocalAirlockApi, type LocalApiDeps } from './local-api.js';
import { createMcpServer } from './server.js';
import type { Limits } from './backends/types.js';

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
  version: string;
  /** Most MCP sessions over HTTP kept at once; the oldest idle one is closed past it. */
  maxSessions?: number;
}

interface HttpSession {
  transport: StreamableHTTPServerTransport;
  api: LocalAirlockApi;
  subject: string;
  issuer: string;
  lastUsed: number;
}

export function mcpAdminRoutes(deps: McpRouteDeps): AdminRoute[] {
  const sessions = new Map<string, HttpSession>();
  const maxSessions = deps.maxSessions ?? 256;

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
      await s.transport.handleRequest(req, res);
      return;
    }
    if (req.method !== 'POST') throw new AirlockError('AIRLOCK_PROTOCOL', 'an MCP session starts with a POST of initialize');
    if (sessions.size >= maxSessions) {
      const oldest = [...sessions.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0];
      if (oldest !== undefined) {
        sessions.delete(oldest[0]);
        await oldest[1].transport.close().catch(() => undefined);
      }
    }
    const api = new LocalAirlockApi(identity, token, deps);
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => {
        sessions.set(sid, { transport, api, subject: identity.subject, issuer: identity.issuer, lastUsed: Date.now() });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
    };
    const server = createMcpServer({ api, limits: deps.limits, version: deps.version });
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
