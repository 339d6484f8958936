/**
 * What every MCP backend returns and how it reports holds and refusals, and what a protocol
 * offers the MCP tools (McpBackend, exported by protocols/<p>/adapter.ts; app/ composes them).
 */
import type { ConnectionConfig } from '../../config/index.js';

export interface Limits {
  maxRows: number;
  maxBytes: number;
  /** How long a held action may wait for a verdict before the tool gives up. */
  holdTimeoutMs: number;
}

export interface HoldHooks {
  /** The gateway held the action for approval; `message` is the gateway's own text with the approval id. */
  onHold(approvalId: string, message: string): void;
}

export interface QueryResult {
  columns: string[];
  rows: unknown[][];
  rowCount: number;
  command: string;
  truncated: boolean;
  notices: string[];
}

export interface Target {
  name: string;
  host: string;
  port: number;
  tls: boolean;
}

/**
 * The gateway said no (a rule denied it, an approver refused, approval timed out) or the
 * upstream rejected it: the text is the gateway's own explanation, safe to show a model.
 */
export class ToolRefusal extends Error {
  constructor(
    message: string,
    readonly kind: 'denied' | 'error',
    readonly code?: string,
  ) {
    super(message);
  }
}

const HELD = /held for approval \(id ([A-Za-z0-9_-]+)\)/;

/** The approval id in a gateway hold message, if it is one. */
export function heldApprovalId(text: string): string | null {
  return HELD.exec(text)?.[1] ?? null;
}

/** Values as JSON a model can read: dates as ISO text, bytes as \x hex (as psql shows them), bigints as text. */
export function jsonValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? String(v) : v.toISOString();
  if (Buffer.isBuffer(v)) return `\\x${v.toString('hex')}`;
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.map(jsonValue);
  return v;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  signal?: string;
  truncated: boolean;
}

/** The caller of `exec`: a remote login, the airlock token as its password. */
export interface ExecAuth {
  login: string;
  token: string;
  /** "SHA256:…" of airlock's host key, from GET /v1/connections; loopback listeners may omit it. */
  hostKeyFingerprint?: string;
}

export interface ApiResult {
  status: number;
  headers: Record<string, string>;
  body: string;
  truncated: boolean;
}

export interface ApiRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

/** The caller of `query` and `describe`: the airlock token as the database password. */
export interface SqlAuth {
  user: string;
  token: string;
  ca?: string;
}

/** What one protocol lends the MCP tools; each tool offers the connections whose protocol has its function. */
export interface McpBackend {
  /** `query` and `describe`: one SQL statement, rows capped. */
  readonly query?: (target: Target, auth: SqlAuth, sql: string, limits: Limits, hooks: HoldHooks, signal?: AbortSignal) => Promise<QueryResult>;
  /** `exec`: one command, output capped. */
  readonly exec?: (target: Target, auth: ExecAuth, command: string, limits: Limits, hooks: HoldHooks, signal?: AbortSignal) => Promise<ExecResult>;
  /** `http_request`: one request, the body capped. */
  readonly request?: (target: Target, token: string, authHeader: string, req: ApiRequest, maxBytes: number, timeoutMs: number, signal?: AbortSignal) => Promise<ApiResult>;
}

/** The backends by protocol, in the order the adapters are listed. */
export type McpBackends = Partial<Record<ConnectionConfig['protocol'], McpBackend>>;
