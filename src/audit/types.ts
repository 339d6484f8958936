/**
 * The audit log's record and event shapes. Event bodies are open: later protocols add
 * their own `type`s, but the known ones are typed here so writers and readers agree.
 */
import type { IdentityKind } from '../core/types.js';

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditIdentity {
  subject: string;
  issuer: string;
  groups: string[];
  kind: IdentityKind;
}

export interface SessionStartEvent {
  type: 'session.start';
  session: string;
  identity: AuditIdentity;
  connection: string;
  protocol: string;
  client: { address: string; port: number };
  /** The lease id only, never its secret. */
  lease: string;
}

/** A protocol-neutral summary of what was asked; `text` is scrubbed before it is written. */
export interface AuditActionSummary {
  kind: string;
  text?: string;
  dialect?: string;
  statements?: string[];
  reads?: string[];
  writes?: string[];
  [key: string]: unknown;
}

export interface ActionEvent {
  type: 'action';
  session: string;
  action: AuditActionSummary;
  decision: 'allow' | 'deny' | 'hold';
  rules: string[];
  rule?: string;
  reason?: string;
}

export interface ApprovalEventBody {
  type: 'approval.requested' | 'approval.decided';
  approval: { id: string; sessionId?: string; [key: string]: unknown };
}

export interface ResultEvent {
  type: 'result';
  session: string;
  rows: number;
  bytes: number;
  durationMs: number;
  errorCode?: string;
  maskedColumns?: string[];
  /** Only with `record: { results: rows }`: the rows as the client received them (masked). */
  data?: unknown[];
  /** MySQL LOAD DATA LOCAL: the file sent from the client's disk (name, byte count, SHA-256). */
  localInfile?: { file: string; bytes: number; sha256: string | null };
}

export interface SessionEndEvent {
  type: 'session.end';
  session: string;
  reason: string;
  durationMs?: number;
  [key: string]: unknown;
}

/** Whole files were deleted by retention; `before` vouches for the new start of the chain. */
export interface PrunedEvent {
  type: 'audit.pruned';
  files: string[];
  /** The last record of the last deleted file: the first remaining record's `prev` is its hash. */
  before: { seq: number; hash: string };
}

/** A torn tail (an unfinished last line after a crash) was cut off when the log was reopened. */
export interface RecoveredEvent {
  type: 'audit.recovered';
  file: string;
  offset: number;
  bytes: number;
}

/** As the fleet's sweeper, this node dropped the role of an expired lease (its node stopped renewing it). */
export interface LeaseSweptEvent {
  type: 'lease.swept';
  connection: string;
  role: string;
  /** The node that created the role. */
  node: string;
  /** That node's session (its audit log has the rest). */
  session: string;
}

/**
 * The writer thread died and a new one continues the chain from the files. Appends in flight
 * when it died were refused (their statements never forwarded, their results never delivered);
 * a line of theirs may still be in the chain, written before the death.
 */
export interface WriterRestartedEvent {
  type: 'audit.writer_restarted';
  /** Why the previous writer stopped. */
  reason: string;
}

/** An Ed25519 signature over the head of the chain (the `prev` of this record). */
export interface CheckpointEvent {
  type: 'checkpoint';
  head: string;
  headSeq: number;
  alg: 'ed25519';
  /** First 16 hex characters of the SHA-256 of the public key (SPKI DER). */
  key: string;
  sig: string;
}

export interface OtherEvent {
  type: string;
  [key: string]: unknown;
}

export type AuditEventBody =
  | SessionStartEvent
  | ActionEvent
  | ApprovalEventBody
  | ResultEvent
  | SessionEndEvent
  | PrunedEvent
  | RecoveredEvent
  | WriterRestartedEvent
  | CheckpointEvent
  | LeaseSweptEvent
  | OtherEvent;

export interface AuditRecord {
  seq: number;
  /** ISO 8601, UTC. */
  ts: string;
  node: string;
  /** Hash of the previous record; GENESIS_HASH for seq 1. */
  prev: string;
  /** SHA-256 (hex) of the canonical form of { seq, ts, node, prev, event }. */
  hash: string;
  event: AuditEventBody;
}

export type VerifyResult =
  | { ok: true; count: number }
  | { ok: false; file: string; line: number; problem: string };

export interface SessionSummary {
  session: string;
  subject: string | null;
  issuer: string | null;
  connection: string | null;
  protocol: string | null;
  client: string | null;
  startedAt: string;
  endedAt: string | null;
  endReason: string | null;
  actions: number;
  denied: number;
  held: number;
}
