/**
 * The admin HTTP API: health, JWKS, token exchange, approvals, sessions. Every route
 * but health and JWKS needs a bearer token from a trusted issuer.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../util/log.js';
import type { Identity } from '../core/types.js';
import { AirlockError, asAirlockError } from '../util/errors.js';
import { bearerToken, readJsonBody, sendJson, sendProblem } from './http.js';
import { parseGrantChoice, type GrantChoice } from '../approvals/index.js';

export interface AdminDeps {
  logger: Logger;
  authenticate(token: string): Promise<Identity>;
  health(): { healthy: boolean; [k: string]: unknown };
  jwks(): unknown;
  issueToken(identity: Identity, ttlMs: number): Promise<string>;
  maxTokenTtlMs(): number;
  approvals?: {
    list(caller: Identity): unknown[] | Promise<unknown[]>;
    decide(id: string, caller: Identity, approve: boolean, reason?: string, grant?: GrantChoice): unknown;
  };
  /** Every node of the fleet and whether it is live (PostgreSQL state store). */
  nodes?(caller: Identity): Promise<unknown[]>;
  sessions?: {
    list(caller: Identity, query: URLSearchParams): Promise<unknown[]>;
    show(caller: Identity, id: string): Promise<unknown>;
    /** Ends a session on whichever node holds it; resolves once that node has ended it. */
    kill?(caller: Identity, id: string, opts: { reason?: string; timeoutMs?: number }): Promise<unknown>;
  };
  connections?(caller: Identity): unknown[];
  /** Told the code of every error the API answers (the errors counter in /metrics). */
  onError?(code: string): void;
  /** Routes contributed by other parts of the daemon (the SSH CA's POST /v1/ssh/cert, MCP's /mcp). */
  extraRoutes?: AdminRoute[];
  /** `admin.tls`: PEM files; the API (tokens, approvals, the console's cookie) is then served over HTTPS only. */
  tls?: { cert: string; key: string };
}

export type AdminHandler = (ctx: { req: IncomingMessage; res: ServerResponse; params: string[]; url: URL; caller: () => Promise<Identity> }) => Promise<void>;
type Handler = AdminHandler;

export interface AdminRoute {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

export class AdminServer {
  private readonly server: Server;
  private readonly routes: AdminRoute[];

  constructor(private readonly deps: AdminDeps) {
    this.routes = this.buildRoutes();
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.handle(req, res);
    this.server = deps.tls === undefined ? createServer(handler) : createHttpsServer({ cert: readFileSync(deps.tls.cert), key: readFileSync(deps.tls.key) }, handler);
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 0; // approvals may be long-polled by future clients
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private buildRoutes(): AdminRoute[] {
    const d = this.deps;
    return [
      ...(d.extraRoutes ?? []),
      {
        method: 'GET',
        pattern: /^\/(?:healthz|v1\/health)$/,
        handler: async ({ res }) => {
          const h = d.health();
          sendJson(res, h.healthy ? 200 : 503, { status: h.healthy ? 'ok' : 'unhealthy', ...h });
        },
      },
      {
        method: 'GET',
        pattern: /^\/\.well-known\/jwks\.json$/,
        handler: async ({ res }) => sendJson(res, 200, d.jwks()),
      },
      {
        method: 'POST',
        pattern: /^\/v1\/token$/,
        handler: async ({ req, res, caller }) => {
          const identity = await caller();
          const body = await readJsonBody(req);
          const ttlReq = typeof body === 'object' && body !== null && 'ttl_seconds' in body ? Number((body as { ttl_seconds: unknown }).ttl_seconds) : NaN;
          const ttl = Math.min(d.maxTokenTtlMs(), Number.isFinite(ttlReq) && ttlReq > 0 ? ttlReq * 1000 : 900_000);
          const token = await d.issueToken(identity, ttl);
          sendJson(res, 200, { token, token_type: 'Bearer', expires_in: Math.floor(ttl / 1000) });
        },
      },
      {
        method: 'GET',
        pattern: /^\/v1\/approvals$/,
        handler: async ({ res, caller }) => {
          const c = await caller();
          sendJson(res, 200, { approvals: await this.need(d.approvals).list(c) });
        },
      },
      {
        method: 'POST',
        pattern: /^\/v1\/approvals\/([A-Za-z0-9_-]+)\/(approve|deny)$/,
        handler: async ({ req, res, params, caller }) => {
          const c = await caller();
          const body = await readJsonBody(req);
          const reason = typeof body === 'object' && body !== null && typeof (body as { reason?: unknown }).reason === 'string' ? (body as { reason: string }).reason : undefined;
          const approve = params[1] === 'approve';
          // `grant_for`: the approver's window for an approved connect (shorter than the rule's, or "none").
          const grant = approve && typeof body === 'object' && body !== null ? parseGrantChoice((body as { grant_for?: unknown }).grant_for) : undefined;
          const result = await this.need(d.approvals).decide(params[0] ?? '', c, approve, reason, grant);
          sendJson(res, 200, { approval: result });
        },
      },
      {
        method: 'GET',
        pattern: /^\/v1\/nodes$/,
        handler: async ({ res, caller }) => {
          const c = await caller();
          if (d.nodes === undefined) throw new AirlockError('AIRLOCK_UNSUPPORTED', 'nodes are listed with the PostgreSQL state store only (state.backend: postgres)');
          sendJson(res, 200, { nodes: await d.nodes(c) });
        },
      },
      {
        method: 'GET',
        pattern: /^\/v1\/sessions$/,
        handler: async ({ res, url, caller }) => {
          const c = await caller();
          sendJson(res, 200, { sessions: await this.need(d.sessions).list(c, url.searchParams) });
        },
      },
      {
        method: 'GET',
        pattern: /^\/v1\/sessions\/([A-Za-z0-9_-]+)$/,
        handler: async ({ res, params, caller }) => {
          const c = await caller();
          sendJson(res, 200, await this.need(d.sessions).show(c, params[0] ?? ''));
        },
      },
      {
        method: 'POST',
        pattern: /^\/v1\/sessions\/([A-Za-z0-9_-]+)\/kill$/,
        handler: async ({ req, res, params, caller }) => {
          const c = await caller();
          const body = await readJsonBody(req);
          const field = (k: string): unknown => (typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[k] : undefined);
          const reason = typeof field('reason') === 'string' ? (field('reason') as string) : undefined;
          const seconds = field('timeout_seconds');
          const kill = this.need(this.need(d.sessions).kill);
          const result = await kill(c, params[0] ?? '', {
            ...(reason === undefined ? {} : { reason }),
            ...(typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0 ? { timeoutMs: seconds * 1000 } : {}),
          });
          sendJson(res, 200, { killed: result });
        },
      },
      {
        method: 'GET',
        pattern: /^\/v1\/connections$/,
        handler: async ({ res, caller }) => {
          const c = await caller();
          if (d.connections === undefined) throw new AirlockError('AIRLOCK_UNSUPPORTED', 'not found');
          sendJson(res, 200, { connections: d.connections(c) });
        },
      },
    ];
  }

  private need<T>(x: T | undefined): T {
    if (x === undefined) throw new AirlockError('AIRLOCK_UNSUPPORTED', 'not found');
    return x;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const caller = (): Promise<Identity> => this.deps.authenticate(bearerToken(req));
    try {
      const matches = this.routes.filter((r) => r.pattern.test(url.pathname));
      if (matches.length === 0) throw new AirlockError('AIRLOCK_UNSUPPORTED', 'not found');
      const route = matches.find((r) => r.method === req.method);
      if (route === undefined) {
        res.writeHead(405, { allow: matches.map((r) => r.method).join(', ') }).end();
        return;
      }
      const params = (route.pattern.exec(url.pathname) ?? []).slice(1).map((p) => p ?? '');
      await route.handler({ req, res, params, url, caller });
    } catch (e) {
      const err = asAirlockError(e);
      this.deps.onError?.(err.code);
      if (err.code === 'AIRLOCK_INTERNAL') this.deps.logger.error({ err: e, path: url.pathname }, 'admin request failed');
      if (!res.headersSent) sendProblem(res, err);
      else res.destroy();
    }
  }
}
