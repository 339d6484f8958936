/**
 * AirlockApi over the admin API, for `airlock mcp` on the agent's host. The agent's
 * token (AIRLOCK_TOKEN or --token-file) is exchanged for a short airlock token, which
 * is renewed before it expires; neither ever reaches a tool result or a log line.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionSummary } from '../admin/connections.js';
import { AirlockError, ErrorCodes, type ErrorCode } from '../util/errors.js';
import { peekClaims, type AirlockApi, type ToolCallEvent } from './api.js';

export interface RemoteApiOptions {
  adminUrl: URL;
  /** Reads the agent's own token (environment or file); called again when a renewal needs it. */
  readToken: () => string;
  /** Lifetime asked for the exchanged token. */
  ttlSeconds?: number;
  fetch?: typeof fetch;
}

interface Exchanged {
  token: string;
  subject: string;
  /** ms since the epoch */
  expiresAt: number;
  issuedAt: number;
}

export function tokenFromEnvironment(tokenFile: string | undefined): () => string {
  return () => {
    const raw = tokenFile !== undefined ? readFileSync(tokenFile, 'utf8') : (process.env.AIRLOCK_TOKEN ?? '');
    const token = raw.trim();
    if (token === '') {
      throw new AirlockError('AIRLOCK_AUTH_MISSING', tokenFile !== undefined ? `the token file ${tokenFile} is empty` : 'set AIRLOCK_TOKEN in the MCP server\'s environment (or use --token-file)');
    }
    return token;
  };
}

export class RemoteAirlockApi implements AirlockApi {
  private current: Exchanged | null = null;
  private pending: Promise<Exchanged> | null = null;
  private readonly fetch: typeof fetch;
  readonly dialHost: string;

  constructor(private readonly options: RemoteApiOptions) {
    this.fetch = options.fetch ?? fetch;
    this.dialHost = options.adminUrl.hostname.replace(/^\[(.*)\]$/, '$1');
  }

  async token(): Promise<string> {
    return (await this.exchanged()).token;
  }

  async subject(): Promise<string> {
    return (await this.exchanged()).subject;
  }

  /** Renew when 80% of the lifetime has passed, or less than a minute is left. */
  private async exchanged(): Promise<Exchanged> {
    const c = this.current;
    const now = Date.now();
    if (c !== null) {
      const renewAt = Math.min(c.issuedAt + 0.8 * (c.expiresAt - c.issuedAt), c.expiresAt - 60_000);
      if (now < renewAt) return c;
      if (now < c.expiresAt - 5_000 && this.pending !== null) return c;
    }
    this.pending ??= this.exchange().finally(() => {
      this.pending = null;
    });
    const next = await this.pending;
    this.current = next;
    return next;
  }

  private async exchange(): Promise<Exchanged> {
    const original = this.options.readToken();
    const res = await this.request('POST', '/v1/token', original, { ttl_seconds: this.options.ttlSeconds ?? 900 });
    const body = (await res.json()) as { token?: unknown; expires_in?: unknown };
    if (typeof body.token !== 'string') throw new AirlockError('AIRLOCK_INTERNAL', 'token exchange returned no token');
    const claims = peekClaims(body.token);
    const issuedAt = Date.now();
    const expiresAt = claims.exp !== undefined ? claims.exp * 1000 : issuedAt + Number(body.expires_in ?? 60) * 1000;
    return { token: body.token, subject: claims.sub ?? '', expiresAt, issuedAt };
  }

  async connections(): Promise<ConnectionSummary[]> {
    const res = await this.request('GET', '/v1/connections', await this.token());
    const body = (await res.json()) as { connections?: ConnectionSummary[] };
    return body.connections ?? [];
  }

  async recordToolCall(event: ToolCallEvent): Promise<void> {
    await this.request('POST', '/v1/mcp/events', await this.token(), event);
  }

  private async request(method: string, path: string, bearer: string, body?: unknown): Promise<Response> {
    let res: Response;
    try {
      res = await this.fetch(new URL(path, this.options.adminUrl), {
        method,
        headers: { authorization: `Bearer ${bearer}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch {
      throw new AirlockError('AIRLOCK_UPSTREAM_UNAVAILABLE', `the airlock admin API at ${this.options.adminUrl.origin} cannot be reached`);
    }
    if (!res.ok) {
      // problem+json from the admin API: its `code` is a stable AirlockError code, its detail never holds the token.
      let code: string | undefined;
      let detail: string | undefined;
      try {
        const p = (await res.json()) as { code?: unknown; detail?: unknown; title?: unknown };
        code = typeof p.code === 'string' ? p.code : undefined;
        detail = typeof p.detail === 'string' ? p.detail : typeof p.title === 'string' ? p.title : undefined;
      } catch {
        // not JSON
      }
      const known: ErrorCode = code !== undefined && code in ErrorCodes ? (code as ErrorCode) : 'AIRLOCK_INTERNAL';
      throw new AirlockError(known, detail ?? `admin API ${method} ${path} answered ${res.status}`);
    }
    return res;
  }
}
