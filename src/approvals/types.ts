import type { Action, Identity } from '../core/types.js';

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'cancelled';

export interface ApprovalRequest {
  /** Short and unguessable: 8 hex characters from crypto. */
  id: string;
  sessionId: string;
  requester: Identity;
  connection: string;
  /** The held action; HTTP header values that may carry credentials are redacted. */
  action: Action;
  /** Statement text, command line or request line, as the approver will read it. */
  summary: string;
  rule: string;
  /** Groups whose members may decide. */
  approvers: string[];
  createdAt: number;
  expiresAt: number;
  status: ApprovalStatus;
  decidedBy?: string;
  decidedAt?: number;
  reason?: string;
  /** Connection-level approval: how long access stays granted once approved. */
  grantForMs?: number;
}

export interface ApprovalRequestInput {
  sessionId: string;
  requester: Identity;
  connection: string;
  action: Action;
  summary: string;
  rule: string;
  approvers: string[];
  timeoutMs: number;
  grantForMs?: number;
}

export interface ApprovalVerdict {
  approved: boolean;
  /** Shown to the requester: the approver's reason, or why nobody decided. */
  reason: string;
  by?: string;
}

export interface HeldAction {
  id: string;
  verdict: Promise<ApprovalVerdict>;
  /** True when an earlier `grant_for` approval let this connect through without a new request. */
  granted: boolean;
}

export interface ApprovalEvent {
  event: 'approval.requested' | 'approval.decided';
  request: ApprovalRequest;
}

export interface ApprovalNotifier {
  /** Never blocks and never throws. */
  notify(event: ApprovalEvent): void;
}
