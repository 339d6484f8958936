/**
 * What airlock keeps beyond one process's memory: `grant_for` windows and approval requests
 * with their verdicts. The embedded backend (one node, files under state_dir) is the default;
 * the PostgreSQL backend shares the same across nodes.
 */
import type { ApprovalRequest, GrantChoice } from '../approvals/index.js';

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
  /**
   * Records a verdict if the request is still pending; false when another verdict came first.
   * `grant`: the approver's grant_for window (shorter than the rule's, or none), for the holding node.
   */
  claim(id: string, verdict: { status: ApprovalRequest['status']; decidedAt: number; decidedBy?: string; reason?: string; grant?: GrantChoice }): Promise<boolean>;
  /** Of these ids, the ones decided (by any node), with the window the approver chose. */
  decidedAmong(ids: string[]): Promise<ClaimedVerdict[]>;
  /** Something may have changed (a notification, a reconnect, the poll). */
  onChange(listener: () => void): void;
}

/** A decided request as the store has it: `grant` is the approver's chosen window (`grantForMs: null`: none); absent: the rule's. */
export interface ClaimedVerdict {
  request: ApprovalRequest;
  grant?: GrantChoice;
}

/** A node of the fleet as its heartbeat last wrote it (times: the store's clock, ms). */
export interface FleetNode {
  node: string;
  startedAt: number;
  lastSeen: number;
  adminUrl: string | null;
  version: string;
  /** Seen within the lease timeout. */
  live: boolean;
  /** Its sessions the index still shows open. */
  openSessions: number;
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

/** A kill request relayed through the store to the node that holds the session. */
export interface KillRequest {
  id: string;
  sessionId: string;
  /** The holding node. */
  node: string;
  requestedBy: string;
  requestedByIssuer: string;
  /** The node whose API was asked. */
  requestedOn: string;
  reason: string | null;
  status: 'pending' | 'taken' | 'done' | 'gone' | 'expired';
  requestedAt: number;
  endReason: string | null;
}

/** Kill requests between nodes (the PostgreSQL backend). */
export interface SessionKills {
  /** One session of the index, or undefined when no node ever indexed it. */
  session(id: string): Promise<IndexedSession | undefined>;
  /** True when `node` holds a connection to the store now (it would hear a NOTIFY). */
  nodeConnected(node: string): Promise<boolean>;
  /** Stamped with the store's clock. */
  requestKill(r: Omit<KillRequest, 'status' | 'endReason' | 'requestedAt'>): Promise<void>;
  kill(id: string): Promise<KillRequest | undefined>;
  /** pending → expired for `node`'s requests older than `ms` by the store's clock (no node's clock is compared with another's). */
  expireStaleKills(node: string, ms: number): Promise<void>;
  /** Pending requests for sessions `node` holds, oldest first. */
  pendingKills(node: string): Promise<KillRequest[]>;
  /** pending → to; false when the request was no longer pending (taken, or expired by the requester). */
  moveKill(id: string, to: 'taken' | 'expired'): Promise<boolean>;
  /** taken → done | gone, with the session's end in the index in the same statement. */
  finishKill(id: string, outcome: 'done' | 'gone', endReason: string | null): Promise<void>;
}

/** A signed checkpoint as the store keeps it. */
export interface StoredCheckpoint {
  node: string;
  seq: number;
  headSeq: number;
  head: string;
  keyId: string;
  sig: string;
  file: string;
  writtenAt: string;
}

/** Each node's signed audit checkpoints and where its log lives (the PostgreSQL backend). */
export interface AuditCheckpoints {
  registerAuditNode(n: { node: string; host: string; auditDir: string }): Promise<void>;
  publishCheckpoint(c: StoredCheckpoint): Promise<void>;
  /** Per node that published any: its last checkpoint and its recorded audit directory. */
  lastCheckpoints(): Promise<Array<{ checkpoint: StoredCheckpoint; auditDir: string | null; host: string | null }>>;
}
