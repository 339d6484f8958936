/**
 * What the MCP server needs from airlock: a token to present to the listeners, the
 * connections this identity may open, and a place to record each tool call. Two
 * implementations: over the admin API (stdio server on the agent's host) and in-process
 * (the /mcp route on the gateway itself).
 */
import type { ConnectionSummary } from '../admin/connections.js';
import { AirlockError } from '../util/errors.js';

export interface ToolCallEvent {
  tool: string;
  connection?: string;
  /** What the agent asked for, without request bodies or headers (they may hold the agent's own secrets). */
  request?: Record<string, string | number | boolean>;
  outcome: 'ok' | 'error' | 'denied' | 'held' | 'truncated';
  detail?: string;
  client?: { name: string; version: string };
  durationMs: number;
}

export interface AirlockApi {
  /** A token the listeners accept, renewed before it expires. Never shown to the model. */
  token(): Promise<string>;
  /** The subject the token names (the Postgres/MySQL user name sent at startup). */
  subject(): Promise<string>;
  connections(): Promise<ConnectionSummary[]>;
  recordToolCall(event: ToolCallEvent): Promise<void>;
  /** Host to dial for a listener bound to a wildcard address. */
  readonly dialHost: string;
}

/** Claims of a JWT without verifying it: only to learn `sub` and `exp` of our own token. */
export function peekClaims(token: string): { sub?: string; exp?: number } {
  const part = token.split('.')[1];
  if (part === undefined) throw new AirlockError('AIRLOCK_AUTH_INVALID');
  try {
    const claims = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as { sub?: unknown; exp?: unknown };
    return {
      ...(typeof claims.sub === 'string' ? { sub: claims.sub } : {}),
      ...(typeof claims.exp === 'number' ? { exp: claims.exp } : {}),
    };
  } catch {
    throw new AirlockError('AIRLOCK_AUTH_INVALID');
  }
}
