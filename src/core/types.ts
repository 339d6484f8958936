/**
 * The core contract: every protocol adapter speaks to the core through these types.
 * Nothing here knows a wire format.
 */
import type { SqlDialect, StatementAnalysis } from '../../parsers/sql/types.js';

export type IdentityKind = 'human' | 'machine' | 'agent';

export interface Identity {
  subject: string;
  issuer: string;
  groups: string[];
  kind: IdentityKind;
  /** Token expiry, ms since the epoch. The session ends then. */
  expiresAt: number;
}

export type Action =
  | { kind: 'connect' }
  | { kind: 'sql'; dialect: SqlDialect; text: string; statement: StatementAnalysis }
  | { kind: 'shell'; command: string }
  /** `interactive`: an SSH exec that can become a shell (a terminal program or interpreter, see parsers/shell/interactive.ts). */
  | { kind: 'exec'; argv: string[]; command: string; interactive?: boolean }
  | { kind: 'sftp'; op: string; path: string }
  | { kind: 'forward'; host: string; port: number }
  /** `websocket`: the request asks to upgrade to a WebSocket (RFC 6455 §4.1). */
  | { kind: 'http'; method: string; path: string; headers: Record<string, string>; websocket?: boolean; /** The query string without `?`, as sent. */ query?: string };

export type MaskMethod = 'redact' | 'partial' | 'hash' | 'null' | 'email' | 'fixed';

export interface ColumnMaskRule {
  rule: string;
  /** Globs over schema.table.column. */
  columns: string[];
  method: MaskMethod;
  keep?: number;
  fixed?: string;
}

export interface DetectorMaskRule {
  rule: string;
  detect: string[];
  method: MaskMethod;
  keep?: number;
  fixed?: string;
}

/** HTTP: values at JSON paths of a response body. */
export interface JsonPathMaskRule {
  rule: string;
  /** e.g. "$.data[*].email" (config.ts checks the syntax). */
  paths: string[];
  method: MaskMethod;
  keep?: number;
  fixed?: string;
}

/** What must be masked in what an action returns. Empty lists: nothing to mask. */
export interface MaskPlan {
  columns: ColumnMaskRule[];
  detectors: DetectorMaskRule[];
  jsonPaths: JsonPathMaskRule[];
  denyPredicates: boolean;
}

export const EMPTY_MASK_PLAN: MaskPlan = Object.freeze({
  columns: [],
  detectors: [],
  jsonPaths: [],
  denyPredicates: false,
}) as MaskPlan;

export type Decision =
  | {
      effect: 'allow';
      rules: string[];
      mask: MaskPlan;
      /** Set when a human approved it; perExecution: each later execution needs approval again. */
      approved?: { rule: string; perExecution: boolean };
    }
  | { effect: 'deny'; rule: string; reason: string; rules: string[]; mask: MaskPlan }
  | {
      effect: 'hold';
      rule: string;
      reason: string;
      approvers: string[];
      timeoutMs: number;
      /** Connection-level approval: how long access stays granted once approved. */
      grantForMs?: number;
      perExecution: boolean;
      rules: string[];
      mask: MaskPlan;
    };

/** The outcome a caller sees after approval has run its course. */
export type FinalDecision = Exclude<Decision, { effect: 'hold' }>;

/** Notifies the caller (through its protocol) that an action is held. */
export type HoldNotifier = (hold: { approvalId: string; rule: string; howToApprove: string }) => void;
