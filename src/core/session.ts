/**
 * One caller's session: identity + connection + lease + policy + audit. Protocol adapters
 * call check() per action; every decision is written ahead to the audit log before the
 * adapter may forward anything.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../util/log.js';
import type { ConnectionConfig } from '../config/index.js';
import type { Action, Decision, FinalDecision, HoldNotifier, Identity, MaskPlan } from './types.js';
import type { ClientAddress, Lease, Session, SessionEvent, SessionStats } from './session-types.js';
import type { SqlAnalysis, SqlDialect, SqlSessionSettings, RelationRef, StatementAnalysis } from '../../parsers/sql/types.js';
import { ANY_SCHEMA } from '../../parsers/sql/types.js';
import { AirlockError } from '../util/errors.js';
import { MaskGuard } from '../masking/mask-guard.js';

/** What the session needs from the policy engine. */
export interface PolicyPort {
  decide(action: Action, ctx: { identity: Identity; connection: string; resolveRelation: (ref: RelationRef) => string[] }): Decision;
  maskPlan(ctx: { identity: Identity; connection: string }): MaskPlan;
}

export interface ApprovalVerdict {
  approved: boolean;
  reason: string;
  by?: string;
}

/** What the session needs from the approval broker. */
export interface ApprovalPort {
  hold(input: {
    sessionId: string;
    requester: Identity;
    connection: string;
    action: Action;
    decision: Extract<Decision, { effect: 'hold' }>;
    signal: AbortSignal;
  }): HeldForApproval | Promise<HeldForApproval>;
}

export interface HeldForApproval {
  id: string;
  howToApprove: string;
  verdict: Promise<ApprovalVerdict>;
  granted: boolean;
}

/** Shared state beyond this node (the PostgreSQL store): a new session is admitted once it is in the shared session index. */
export interface StatePort {
  /** Throws AIRLOCK_STATE_UNAVAILABLE when the store does not take it. */
  sessionStarted(s: { id: string; subject: string; issuer: string; connection: string; protocol: string; client: string; startedAt: number }): Promise<void>;
  /** Kept for the reconnect when the store is away; the caller only logs a failure. */
  sessionEnded(id: string, endedAt: number, reason: string): Promise<void>;
}

/** What the session needs from the audit log: resolves once the event is durable. */
export interface AuditPort {
  append(event: { type: string; [key: string]: unknown }): Promise<unknown>;
  /** For events nothing waits on: may ride with the next write-ahead batch. */
  appendLazy?(event: { type: string; [key: string]: unknown }): Promise<unknown>;
  /** audit.enabled is false: append() resolves at once and nothing is written (nothing to pipeline behind a sync). */
  readonly disabled?: boolean;
  /** appendLazy() when nothing waits on the record: no promise per event; `onFailed` hears of a failure. */
  recordLazy?(event: { type: string; [key: string]: unknown }, onFailed: (e: unknown) => void): void;
}

export interface SqlPort {
  analyze(text: string, dialect: SqlDialect, settings: SqlSessionSettings): SqlAnalysis;
  resolveRelation(ref: RelationRef, settings: SqlSessionSettings): string[];
}

export interface SessionDeps {
  policy: PolicyPort;
  approvals: ApprovalPort;
  audit: AuditPort;
  sql: SqlPort;
  /** Absent with the embedded store: nothing beyond this node to wait for. */
  state?: StatePort;
  logger: Logger;
  onClose: (session: GatewaySession, reason: string) => Promise<void>;
}

export function newSessionId(): string {
  return randomBytes(8).toString('hex');
}

/** Text for an audit event: what was asked, never a secret. */
function describeAction(action: Action): Record<string, unknown> {
  switch (action.kind) {
    case 'sql':
      return {
        kind: 'sql',
        dialect: action.dialect,
        text: action.statement.text,
        statements: action.statement.kinds,
        reads: action.statement.reads.map(refName),
        writes: action.statement.writes.map(refName),
        opaque: action.statement.opaque,
        unparsed: action.statement.unparsed,
      };
    case 'http':
      // The query is part of what was asked (`?id=all`): without it a write-ahead record of an effect whose
      // exchange record a crash lost would not say which. Scrubbed like every recorded value.
      return { kind: 'http', method: action.method, path: action.path, ...(action.query === undefined ? {} : { query: action.query }), ...(action.websocket === true ? { websocket: true } : {}) };
    default:
      return { ...action };
  }
}

function refName(r: RelationRef): string {
  return r.schema === null ? r.name : `${r.schema}.${r.name}`;
}

export class GatewaySession implements Session {
  readonly stats: SessionStats = { bytesFromClient: 0, bytesToClient: 0 };
  readonly sqlSettings: SqlSessionSettings;
  readonly startedAt = Date.now();
  private readonly controller = new AbortController();
  private readonly expiryTimer: NodeJS.Timeout;
  private closed: Promise<void> | null = null;
  private readonly maskPlanCache: MaskPlan;
  /** Refuses statements that would move masked values past the result masking. */
  readonly maskGuard: MaskGuard;

  constructor(
    readonly id: string,
    readonly identity: Identity,
    readonly connection: ConnectionConfig,
    readonly client: ClientAddress,
    readonly lease: Lease,
    readonly logger: Logger,
    private readonly deps: SessionDeps,
  ) {
    this.sqlSettings = { standardConformingStrings: true, searchPath: ['$user', 'public'], user: lease.username };
    this.maskPlanCache = deps.policy.maskPlan({ identity, connection: connection.name });
    this.maskGuard = new MaskGuard(this.maskPlanCache);
    // A session ends when its token expires, or when its upstream lease does (ephemeral ttl).
    const leaseEnds = lease.expiresAt !== null && lease.expiresAt < identity.expiresAt;
    const ends = leaseEnds ? (lease.expiresAt as number) : identity.expiresAt;
    const ms = Math.max(0, ends - Date.now());
    const why = leaseEnds
      ? new AirlockError('AIRLOCK_SHUTTING_DOWN', 'the session reached the end of its upstream credential lease', { fatal: true })
      : new AirlockError('AIRLOCK_AUTH_EXPIRED', undefined, { fatal: true });
    this.expiryTimer = setTimeout(() => this.controller.abort(why), Math.min(ms, 2 ** 31 - 1));
    this.expiryTimer.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get audited(): boolean {
    return this.deps.audit.disabled !== true;
  }

  get maskPlan(): MaskPlan {
    return this.maskPlanCache;
  }

  /** client_encoding is (or may be) one whose multibyte characters can contain ASCII bytes. */
  private encodingUnsafe = false;

  /** standard_conforming_strings may have changed in a way not yet reported (pipelining, rollback). */
  private scsUnknown = false;

  /**
   * Analyses with the session's settings. Once standard_conforming_strings may differ from
   * what the server last reported, the text is analysed both ways and every statement of
   * either reading is checked: a string one reading sees may be code in the other.
   */
  analyzeSql(text: string, dialect: SqlDialect): SqlAnalysis {
    if (this.encodingUnsafe && /[^\x00-\x7f]/.test(text)) {
      // In SJIS, BIG5, GBK … a multibyte character may end in 0x5c (a backslash): the text
      // cannot be read as the server reads it. ASCII text reads the same in every encoding.
      return { dialect, statements: [unreadable(text)] };
    }
    const first = this.deps.sql.analyze(text, dialect, this.sqlSettings);
    if (!this.scsUnknown) return first;
    const other = this.deps.sql.analyze(text, dialect, { ...this.sqlSettings, standardConformingStrings: !this.sqlSettings.standardConformingStrings });
    return { dialect: first.dialect, statements: [...first.statements, ...other.statements] };
  }

  /**
   * Candidate schema.table names for a relation. While the session's search_path is known
   * they follow it; once a statement may have changed it in a way airlock cannot follow
   * exactly (SET inside a transaction that may roll back, set_config, RESET, DISCARD, an
   * opaque statement), an unqualified name stands for that table in every schema: the
   * policy and masking then match it against the table part alone (fail closed).
   */
  resolveRelation(ref: RelationRef): string[] {
    if (ref.schema === null && this.searchPathUnknown) return [`${ANY_SCHEMA}${ref.name}`];
    return this.deps.sql.resolveRelation(ref, this.sqlSettings);
  }

  private searchPathUnknown = false;

  /** Follows statements that may change how later statements resolve names. */
  private followSettings(statement: StatementAnalysis): void {
    const k = statement.kinds;
    const indirectAny = statement.opaque || statement.unparsed || k.includes('discard') || statement.functions.some((f) => /(^|\.)set_config$/.test(f));
    if ((k.includes('set') || k.includes('reset')) && /standard_conforming_strings|\ball\b/i.test(statement.text)) this.scsUnknown = true;
    if (indirectAny) this.scsUnknown = true;
    if ((k.includes('set') || k.includes('reset')) && /client_encoding|\bnames\b|\ball\b/i.test(statement.text)) this.encodingUnsafe = true;
    if (indirectAny) this.encodingUnsafe = true;
    if (this.searchPathUnknown) return;
    const touchesPath = (k.includes('set') || k.includes('reset')) && /search_path|\ball\b/i.test(statement.text);
    const indirect = statement.opaque || statement.unparsed || k.includes('discard') || statement.functions.some((f) => /(^|\.)set_config$/.test(f));
    if (touchesPath || indirect) this.searchPathUnknown = true;
  }

  setParameter(name: string, value: string): void {
    switch (name.toLowerCase()) {
      case 'standard_conforming_strings':
        this.sqlSettings.standardConformingStrings = value.toLowerCase() === 'on';
        break;
      case 'search_path':
        this.sqlSettings.searchPath = parseSearchPath(value);
        break;
      case 'mysql_version_id':
        // MySQL/MariaDB: the version executable comments compare with (10.11.19 → 101119); anything else: unknown.
        if (/^\d{5,6}$/.test(value)) this.sqlSettings.serverVersion = Number(value);
        else delete this.sqlSettings.serverVersion;
        break;
      case 'client_encoding':
        this.encodingUnsafe = !SAFE_ENCODINGS.has(value.toUpperCase().replace(/[-_]/g, ''));
        break;
      default:
        break;
    }
  }

  /** Statement texts approved in this session (extended protocol: approval once per Parse text). */
  private readonly approvedTexts = new Set<string>();

  /**
   * Policy for one action. `reuseApproval`: an earlier approval of the same statement text
   * in this session covers this one (the extended protocol re-Parses the same text), unless
   * the rule says per_execution.
   */
  async check(action: Action, onHold?: HoldNotifier, reuseApproval = false): Promise<FinalDecision> {
    const decision = this.judge(action);
    const event = this.actionEvent(action, decision);
    const a = this.deps.audit;
    // The audit is disabled: append() would resolve at once with nothing written, so there is
    // nothing to wait for; the event still goes to the port (metrics count it).
    if (a.disabled === true && a.recordLazy !== undefined) a.recordLazy(event, this.recordFailed);
    else await this.audit(event);
    // Not held: the decision itself (no second promise to adopt).
    if (decision.effect !== 'hold') return decision;
    return this.afterAudit(action, decision, onHold, reuseApproval);
  }

  /**
   * check() for a statement the caller has proved effect-free (src/audit/effect-free.ts):
   * an allowed one is not held until its record is durable — `durable` says when it is, and
   * the caller must not deliver any of its result before then. Anything else waits as in check().
   */
  async checkEffectFree(action: Action, onHold?: HoldNotifier): Promise<{ decision: FinalDecision; durable: Promise<void> }> {
    const decision = this.judge(action);
    const durable = this.audit(this.actionEvent(action, decision));
    if (decision.effect === 'allow') {
      durable.catch(() => undefined);
      return { decision: { effect: 'allow', rules: decision.rules, mask: decision.mask }, durable };
    }
    await durable;
    return { decision: await this.afterAudit(action, decision, onHold, false), durable };
  }

  private judge(action: Action): Decision {
    if (this.controller.signal.aborted) throw asSessionEnded(this.controller.signal.reason);
    const followed = { scs: this.scsUnknown, encoding: this.encodingUnsafe };
    if (action.kind === 'sql') this.followSettings(action.statement);
    let decision = this.deps.policy.decide(action, {
      identity: this.identity,
      connection: this.connection.name,
      resolveRelation: (ref) => this.resolveRelation(ref),
    });
    if (decision.effect !== 'deny' && action.kind === 'sql') {
      const refused = this.maskGuard.check(action.statement, (ref) => this.resolveRelation(ref));
      if (refused !== null) {
        decision = { effect: 'deny', rule: refused.rule, reason: refused.reason, rules: [...decision.rules, refused.rule], mask: decision.mask };
      }
    }
    if (decision.effect === 'deny') {
      // A refused statement never runs: how later text reads is as before it (no await since the snapshot).
      this.scsUnknown = followed.scs;
      this.encodingUnsafe = followed.encoding;
    }
    return decision;
  }

  private actionEvent(action: Action, decision: Decision): { type: string; [key: string]: unknown } {
    return {
      type: 'action',
      session: this.id,
      action: describeAction(action),
      decision: decision.effect,
      rules: decision.rules,
      ...(decision.effect === 'allow' ? {} : { rule: decision.rule, reason: decision.reason }),
    };
  }

  private async afterAudit(action: Action, decision: Decision, onHold: HoldNotifier | undefined, reuseApproval: boolean): Promise<FinalDecision> {
    if (decision.effect !== 'hold') return decision;
    if (reuseApproval && !decision.perExecution && action.kind === 'sql' && this.approvedTexts.has(action.statement.text)) {
      return { effect: 'allow', rules: decision.rules, mask: decision.mask };
    }
    return this.holdForApproval(action, decision, onHold, reuseApproval);
  }

  private async holdForApproval(
    action: Action,
    decision: Extract<Decision, { effect: 'hold' }>,
    onHold: HoldNotifier | undefined,
    reuse: boolean,
  ): Promise<FinalDecision> {
    const held = await this.deps.approvals.hold({
      sessionId: this.id,
      requester: this.identity,
      connection: this.connection.name,
      action,
      decision,
      signal: this.controller.signal,
    });
    if (!held.granted) onHold?.({ approvalId: held.id, rule: decision.rule, howToApprove: held.howToApprove });
    const verdict = await held.verdict;
    if (verdict.approved) {
      if (reuse && !decision.perExecution && action.kind === 'sql') this.approvedTexts.add(action.statement.text);
      return { effect: 'allow', rules: decision.rules, mask: decision.mask, approved: { rule: decision.rule, perExecution: decision.perExecution } };
    }
    return { effect: 'deny', rule: decision.rule, reason: verdict.reason, rules: decision.rules, mask: decision.mask };
  }

  record(event: SessionEvent): void {
    const a = this.deps.audit;
    const body = { ...event, session: this.id };
    if (a.recordLazy !== undefined) return a.recordLazy(body, this.recordFailed);
    (a.appendLazy ? a.appendLazy(body) : a.append(body)).catch(this.recordFailed);
  }

  private readonly recordFailed = (e: unknown): void => {
    this.logger.warn({ err: e, session: this.id }, 'audit record failed');
  };

  /** Write-ahead: resolves when durable; refuses (AIRLOCK_AUDIT_UNAVAILABLE) when it cannot be. */
  async audit(event: { type: string; [key: string]: unknown }): Promise<void> {
    try {
      await this.deps.audit.append(event);
    } catch (e) {
      if (e instanceof AirlockError) throw e;
      throw new AirlockError('AIRLOCK_AUDIT_UNAVAILABLE', undefined, { cause: e });
    }
  }

  /** Set by kill(): the end reason every later close() records, whoever calls it. */
  private killedReason: string | null = null;

  /**
   * Ends the session on an administrator's word: the client gets AIRLOCK_SESSION_KILLED in its
   * own protocol (the adapters end a session whose signal aborts), and the end is recorded as
   * `killed by <subject>`. Resolves once the end is written (lease released, session.end durable).
   */
  kill(by: string): Promise<void> {
    if (this.closed !== null) return this.closed;
    this.killedReason = `killed by ${by}`;
    // The abort runs the adapter's end synchronously, and that calls close() with its own reason.
    this.controller.abort(new AirlockError('AIRLOCK_SESSION_KILLED', `an administrator (${by}) ended the session`, { fatal: true }));
    return this.close(this.killedReason);
  }

  close(reason: string): Promise<void> {
    if (this.closed === null) {
      const why = this.killedReason ?? reason;
      clearTimeout(this.expiryTimer);
      if (!this.controller.signal.aborted) this.controller.abort(new AirlockError('AIRLOCK_SHUTTING_DOWN', why));
      this.closed = this.deps.onClose(this, why);
    }
    return this.closed;
  }
}

/** Encodings in which every byte below 0x80 is the ASCII character (UTF8, LATIN*, WIN125x …). */
const SAFE_ENCODINGS = new Set([
  'UTF8', 'UNICODE', 'SQLASCII', 'LATIN1', 'LATIN2', 'LATIN3', 'LATIN4', 'LATIN5', 'LATIN6', 'LATIN7', 'LATIN8', 'LATIN9', 'LATIN10',
  'WIN1250', 'WIN1251', 'WIN1252', 'WIN1253', 'WIN1254', 'WIN1255', 'WIN1256', 'WIN1257', 'WIN1258', 'WIN866', 'WIN874',
  'KOI8R', 'KOI8U', 'ISO88595', 'ISO88596', 'ISO88597', 'ISO88598', 'EUCJP', 'EUCCN', 'EUCKR', 'EUCTW', 'EUCJIS2004', 'MULEINTERNAL',
]);

function unreadable(text: string): StatementAnalysis {
  return { text, kinds: ['other'], reads: [], writes: [], functions: [], withoutWhere: false, opaque: true, unparsed: true, outputs: null, predicateColumns: [] };
}

function asSessionEnded(reason: unknown): AirlockError {
  return reason instanceof AirlockError ? reason : new AirlockError('AIRLOCK_SHUTTING_DOWN', undefined, { fatal: true });
}

/** search_path as Postgres reports it: comma separated, identifiers possibly double-quoted. */
export function parseSearchPath(value: string): string[] {
  const out: string[] = [];
  const re = /\s*(?:"((?:[^"]|"")*)"|([^,\s]+))\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < value.length && (m = re.exec(value)) !== null) {
    if (m[1] !== undefined) out.push(m[1].replace(/""/g, '"'));
    else if (m[2] !== undefined) out.push(m[2].toLowerCase());
    if (m[0] === '') break;
  }
  return out;
}
