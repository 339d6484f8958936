/**
 * What airlock keeps beyond one process's memory: `grant_for` windows and approval requests
 * with their verdicts. The embedded backend (one node, files under state_dir) is the default;
 * the PostgreSQL backend shares the same across nodes.
 */
import type { ApprovalRequest } from '../approvals/index.js';

/** After an approved `connect` with grant_for: the subject may connect again until expiresAt. */
export interface StoredGrant {
  subject: string;
  connection: string;
  expiresAt: number;
  requestId: string;
  by: string;
}

export interface StateStore {
  readonly backend: 'embedded' | 'postgres';
  /** Grants not yet expired. */
  loadGrants(now: number): Promise<StoredGrant[]>;
  saveGrant(grant: StoredGrant): Promise<void>;
  /** Decided (approved, denied, expired, cancelled) requests, newest last, at most `limit`. */
  loadDecided(limit: number): Promise<ApprovalRequest[]>;
  saveDecided(request: ApprovalRequest): Promise<void>;
  /** The store answers now (for /readyz and the airlock_state_store_up gauge). */
  reachable(): Promise<boolean>;
  close(): Promise<void>;
}

/** A store that shares approval requests and verdicts between nodes (the PostgreSQL backend). */
export interface SharedApprovals {
  /** A request this node holds, visible to every node from now on. */
  publish(request: ApprovalRequest): Promise<void>;
  /** Every node's pending requests, oldest first. */
  pending(): Promise<ApprovalRequest[]>;
  get(id: string): Promise<ApprovalRequest | undefined>;
  /** Records a verdict if the request is still pending; false when another verdict came first. */
  claim(id: string, verdict: { status: ApprovalRequest['status']; decidedAt: number; decidedBy?: string; reason?: string }): Promise<boolean>;
  /** Of these ids, the ones decided (by any node). */
  decidedAmong(ids: string[]): Promise<ApprovalRequest[]>;
  /** Something may have changed (a notification, a reconnect, the poll). */
  onChange(listener: () => void): void;
}

/** One session in the index shared by every node. */
export interface IndexedSession {
  id: string;
  /** The node that holds it (host:pid). */
  node: string;
  subject: string;
  issuer: string;
  connection: string;
  protocol: string;
  /** address:port of the caller. */
  client: string;
  startedAt: number;
  endedAt: number | null;
  endReason: string | null;
}

export interface SessionIndexFilter {
  sinceMs?: number;
  subject?: string;
  connection?: string;
}

/** Every node's sessions (the PostgreSQL backend). */
export interface SessionIndex {
  /** Throws AIRLOCK_STATE_UNAVAILABLE when the store does not take it: the session is then refused. */
  sessionStarted(s: Omit<IndexedSession, 'node' | 'endedAt' | 'endReason'>): Promise<void>;
  /** Written when the store is back if it cannot be now. */
  sessionEnded(id: string, endedAt: number, reason: string): Promise<void>;
  sessions(filter: SessionIndexFilter): Promise<IndexedSession[]>;
}
