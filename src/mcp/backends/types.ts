/** What every MCP backend returns and how it reports holds and refusals. */

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
