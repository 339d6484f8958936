/**
 * What a protocol adapter is handed by the daemon: a way to prove who is calling and
 * to open a session for them. Adapters never see config secrets or policy internals.
 */
import type { Logger } from '../util/log.js';
import type { Action, FinalDecision, HoldNotifier, Identity, MaskPlan } from './types.js';
import type { ConnectionConfig } from '../config/index.js';
import type { Secret } from '../secrets/index.js';
import type { RelationRef, SqlAnalysis, SqlDialect, SqlSessionSettings } from '../../parsers/sql/types.js';

export interface ClientAddress {
  address: string;
  port: number;
}

/** What airlock uses upstream for one session. */
export interface Lease {
  id: string;
  username: string;
  secret: Secret;
  expiresAt: number | null;
  /** SSH certificate leases: the OpenSSH certificate line for the private key in `secret` (it permits nothing: no pty, no forwarding). */
  certificate?: string;
  /** SSH certificate leases: another certificate for the same key carrying these permissions (e.g. permit-pty). */
  certify?: (permissions: readonly string[]) => Promise<string>;
}

/** MySQL LOAD DATA LOCAL: the file the client sent the server through airlock (never its content). */
export interface LocalInfileSummary {
  file: string;
  bytes: number;
  /** SHA-256 of the bytes sent; null when airlock cut the file off at its cap. */
  sha256: string | null;
}

export type SessionEvent =
  | { type: 'result'; command?: string; rows: number; bytes: number; durationMs: number; errorCode?: string; maskedColumns?: string[]; data?: string[][]; truncated?: boolean; localInfile?: LocalInfileSummary }
  | { type: 'notice'; text: string }
  | { type: 'protocol'; detail: string }
  | ProtocolEvent;

/**
 * The events protocols record besides the core's, by kind: each protocol adapter declares its
 * own by merging into this interface (`declare module` in protocols/<p>/adapter.ts) and lists
 * the same kinds in its `eventKinds`. The core names none of them.
 */
export interface ProtocolEvents {}

/** One event of a kind some protocol adapter declared. */
export type ProtocolEvent = { [K in keyof ProtocolEvents]: { type: K; [key: string]: unknown } & ProtocolEvents[K] }[keyof ProtocolEvents];

export interface SessionStats {
  bytesFromClient: number;
  bytesToClient: number;
}

export interface Session {
  readonly id: string;
  readonly identity: Identity;
  readonly connection: ConnectionConfig;
  readonly client: ClientAddress;
  readonly lease: Lease;
  readonly logger: Logger;
  readonly stats: SessionStats;
  /** Analyse SQL text with this session's settings (search_path, standard_conforming_strings). */
  analyzeSql(text: string, dialect: SqlDialect): SqlAnalysis;
  /** Candidate schema.table names of a relation under this session's settings. */
  resolveRelation(ref: RelationRef): string[];
  /** Follow a server-reported setting (Postgres ParameterStatus) that changes how text is read. */
  setParameter(name: string, value: string): void;
  readonly sqlSettings: SqlSessionSettings;
  /** The mask rules that apply to this identity on this connection. */
  readonly maskPlan: MaskPlan;
  /** Policy for one action; a held action resolves after a human decides (or times out). */
  check(action: Action, onHold?: HoldNotifier, reuseApproval?: boolean): Promise<FinalDecision>;
  /**
   * Records are written ahead to an audit log (false: the audit is disabled, so every record is
   * "durable" at once and forwarding an effect-free statement before its sync gains nothing).
   */
  readonly auditWriteAhead: boolean;
  /** check() for an effect-free statement: an allowed one may be forwarded now; deliver nothing of it before `durable`. */
  checkEffectFree(action: Action, onHold?: HoldNotifier): Promise<{ decision: FinalDecision; durable: Promise<void> }>;
  record(event: SessionEvent): void;
  /** Ends the session; idempotent. */
  close(reason: string): Promise<void>;
  /** Aborted when the token expires or the daemon force-closes sessions. */
  readonly signal: AbortSignal;
}

export interface OpenSessionRequest {
  connection: ConnectionConfig;
  identity: Identity;
  client: ClientAddress;
  /** Called when the connection itself is held for approval. */
  onHold?: HoldNotifier;
  /** What the lease is for on the target, when the protocol says (the SSH login). */
  target?: { login?: string };
}

/** The daemon's services, handed to every listener. */
export interface GatewayCore {
  readonly logger: Logger;
  /** Verifies a token (OIDC JWT or airlock-issued). Throws AirlockError AIRLOCK_AUTH_*. */
  authenticate(token: string): Promise<Identity>;
  /** Checks allow_groups and connect policy, obtains the lease. Throws AirlockError. */
  openSession(request: OpenSessionRequest): Promise<Session>;
  /** Key material for the `hash` masking method (masking.hash_key, or a key kept in state_dir). */
  maskingKey(): Promise<string>;
}
