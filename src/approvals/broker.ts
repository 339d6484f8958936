/**
 * Held actions waiting for a human. A request resolves exactly once: approved, denied,
 * expired (timeout) or cancelled (the requester's session ended). Other sessions never
 * wait on it: each request has its own promise and timer.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../util/log.js';
import type { Action, Identity } from '../core/types.js';
import { AirlockError } from '../util/errors.js';
import { parseDuration } from '../util/duration.js';
import { formatDuration, publicView } from './messages.js';
import type {
  ApprovalEvent,
  ApprovalNotifier,
  ApprovalRequest,
  ApprovalRequestInput,
  ApprovalStatus,
  ApprovalVerdict,
  HeldAction,
} from './types.js';

/** Decided requests kept for list()/get() after they resolve. */
const HISTORY_LIMIT = 1000;
const MAX_TIMER_MS = 2 ** 31 - 1;
const SENSITIVE_HEADER = /auth|cookie|token|secret|key|session|password|signature/i;

interface Entry {
  request: ApprovalRequest;
  resolve: (v: ApprovalVerdict) => void;
  timer: NodeJS.Timeout | null;
  detach: () => void;
}

interface Grant {
  expiresAt: number;
  requestId: string;
  by: string;
}

function redactAction(action: Action): Action {
  if (action.kind !== 'http') return action;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(action.headers)) headers[k] = SENSITIVE_HEADER.test(k) ? '[redacted]' : v;
  return { ...action, headers };
}

function newId(taken: (id: string) => boolean): string {
  for (;;) {
    const id = randomBytes(4).toString('hex');
    if (!taken(id)) return id;
  }
}

export class ApprovalBroker extends EventEmitter {
  private readonly entries = new Map<string, Entry>();
  private readonly finished: string[] = [];
  private readonly grants = new Map<string, Grant>();
  private readonly logger: Logger | undefined;
  private readonly notifier: ApprovalNotifier | undefined;

  constructor(opts: { logger?: Logger; notifier?: ApprovalNotifier } = {}) {
    super();
    this.logger = opts.logger;
    this.notifier = opts.notifier;
  }

  /** Holds an action until a verdict; aborting `signal` (the session closed) cancels it. */
  request(input: ApprovalRequestInput, signal?: AbortSignal): HeldAction {
    if (input.action.kind === 'connect') {
      const grant = this.activeGrant(input.requester.subject, input.connection);
      if (grant !== undefined) {
        this.logger?.info(
          { event: 'approval.granted', approval: grant.requestId, subject: input.requester.subject, connection: input.connection },
          'connection allowed by an earlier approval',
        );
        const reason = `access granted by ${grant.by} until ${new Date(grant.expiresAt).toISOString()}`;
        return { id: grant.requestId, verdict: Promise.resolve({ approved: true, reason, by: grant.by }), granted: true };
      }
    }
    const now = Date.now();
    const timeoutMs = Math.max(0, Math.min(input.timeoutMs, MAX_TIMER_MS));
    const request: ApprovalRequest = {
      id: newId((id) => this.entries.has(id)),
      sessionId: input.sessionId,
      requester: input.requester,
      connection: input.connection,
      action: redactAction(input.action),
      summary: input.summary,
      rule: input.rule,
      approvers: [...input.approvers],
      createdAt: now,
      expiresAt: now + timeoutMs,
      status: 'pending',
      ...(input.grantForMs === undefined ? {} : { grantForMs: input.grantForMs }),
    };
    let resolve: (v: ApprovalVerdict) => void = () => undefined;
    const verdict = new Promise<ApprovalVerdict>((r) => {
      resolve = r;
    });
    const entry: Entry = { request, resolve, timer: null, detach: () => undefined };
    this.entries.set(request.id, entry);
    this.logger?.info({ event: 'approval.requested', approval: publicView(request) }, 'approval requested');
    this.publish('requested', { event: 'approval.requested', request: { ...request } });

    entry.timer = setTimeout(() => {
      this.finish(entry, 'expired', { approved: false, reason: `no approver decided within ${formatDuration(timeoutMs)}` });
    }, timeoutMs);
    entry.timer.unref();
    if (signal !== undefined) {
      const onAbort = (): void => {
        this.finish(entry, 'cancelled', { approved: false, reason: 'the session ended before a decision' });
      };
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        entry.detach = () => signal.removeEventListener('abort', onAbort);
      }
    }
    return { id: request.id, verdict, granted: false };
  }

  /** Only members of the rule's approver groups may decide, and nobody approves their own request. */
  decide(id: string, approver: Identity, approve: boolean, reason?: string, grant?: GrantChoice): ApprovalRequest {
    const entry = this.entries.get(id);
    if (entry === undefined) throw new AirlockError('AIRLOCK_UNSUPPORTED', `no approval request ${id}`);
    checkDecider(entry.request, approver, approve);
    checkGrantChoice(entry.request, grant);
    return this.settle(id, approve, approver.subject, reason, grant) ?? { ...entry.request };
  }

  /**
   * Resolves a pending request of this node with a verdict already authorised (checkDecider)
   * and, with a shared store, already claimed there. Undefined when it is not pending here.
   */
  settle(id: string, approve: boolean, by: string, reason?: string, grant?: GrantChoice): ApprovalRequest | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined || entry.request.status !== 'pending') return undefined;
    const r = entry.request;
    // The approver's choice, checked by checkGrantChoice: a shorter window than the rule's, or none.
    if (approve && grant !== undefined) {
      if (grant.grantForMs === null) delete r.grantForMs;
      else r.grantForMs = grant.grantForMs;
    }
    const text = reason?.trim() ? reason.trim() : `${approve ? 'approved' : 'denied'} by ${by}`;
    this.finish(entry, approve ? 'approved' : 'denied', { approved: approve, reason: text, by }, by, reason?.trim() || undefined);
    if (approve && r.action.kind === 'connect' && r.grantForMs !== undefined) {
      const grant: Grant = { expiresAt: (r.decidedAt ?? Date.now()) + r.grantForMs, requestId: r.id, by };
      this.grants.set(grantKey(r.requester.subject, r.connection), grant);
      const granted = { subject: r.requester.subject, connection: r.connection, ...grant };
      this.emitSafely('granted', granted);
    }
    return { ...r };
  }

  /**
   * What a state store kept from before a restart: grants still open and decided requests
   * (for list/get). A restored request is never pending: nothing is waiting on it here.
   */
  restore(state: { grants: Array<Grant & { subject: string; connection: string }>; decided: ApprovalRequest[] }): void {
    for (const g of state.grants) {
      if (g.expiresAt > Date.now()) this.grants.set(grantKey(g.subject, g.connection), { expiresAt: g.expiresAt, requestId: g.requestId, by: g.by });
    }
    for (const r of state.decided) {
      if (r.status === 'pending' || this.entries.has(r.id)) continue;
      this.entries.set(r.id, { request: { ...r }, resolve: () => undefined, timer: null, detach: () => undefined });
      this.finished.push(r.id);
    }
  }

  get(id: string): ApprovalRequest | undefined {
    const e = this.entries.get(id);
    return e === undefined ? undefined : { ...e.request };
  }

  /** Oldest first. `approverGroups`: only requests those groups may decide. */
  list(filter: { status?: ApprovalStatus; approverGroups?: string[] } = {}): ApprovalRequest[] {
    const out: ApprovalRequest[] = [];
    for (const { request: r } of this.entries.values()) {
      if (filter.status !== undefined && r.status !== filter.status) continue;
      if (filter.approverGroups !== undefined && !r.approvers.some((g) => filter.approverGroups?.includes(g))) continue;
      out.push({ ...r });
    }
    return out.sort((a, b) => a.createdAt - b.createdAt);
  }

  /** After an approved `connect` with grant_for, the same subject may connect again until expiry. */
  hasGrant(subject: string, connection: string): boolean {
    return this.activeGrant(subject, connection) !== undefined;
  }

  /** Cancels one pending request this node cannot hold after all (the shared store refused it). */
  withdraw(id: string, reason: string): void {
    const entry = this.entries.get(id);
    if (entry !== undefined) this.finish(entry, 'cancelled', { approved: false, reason });
  }

  /** Cancels everything pending (daemon shutdown). */
  close(): void {
    for (const entry of this.entries.values()) {
      if (entry.request.status === 'pending') {
        this.finish(entry, 'cancelled', { approved: false, reason: 'airlock is shutting down' });
      }
    }
  }

  private activeGrant(subject: string, connection: string): Grant | undefined {
    const key = grantKey(subject, connection);
    const g = this.grants.get(key);
    if (g === undefined) return undefined;
    if (Date.now() >= g.expiresAt) {
      this.grants.delete(key);
      return undefined;
    }
    return g;
  }

  private finish(entry: Entry, status: ApprovalStatus, verdict: ApprovalVerdict, decidedBy?: string, reason?: string): void {
    const r = entry.request;
    if (r.status !== 'pending') return;
    r.status = status;
    r.decidedAt = Date.now();
    if (decidedBy !== undefined) r.decidedBy = decidedBy;
    const shown = reason ?? (status === 'expired' || status === 'cancelled' ? verdict.reason : undefined);
    if (shown !== undefined) r.reason = shown;
    if (entry.timer !== null) clearTimeout(entry.timer);
    entry.detach();
    entry.resolve(verdict);
    this.logger?.info({ event: 'approval.decided', approval: publicView(r) }, `approval ${status}`);
    this.publish('decided', { event: 'approval.decided', request: { ...r } });
    this.finished.push(r.id);
    while (this.finished.length > HISTORY_LIMIT) {
      const old = this.finished.shift();
      if (old !== undefined) this.entries.delete(old);
    }
  }

  private publish(name: 'requested' | 'decided', event: ApprovalEvent): void {
    this.emitSafely(name, event.request);
    this.notifier?.notify(event);
  }

  private emitSafely(name: 'requested' | 'decided' | 'granted', payload: object & { id?: string; requestId?: string }): void {
    try {
      this.emit(name, payload);
    } catch (e) {
      this.logger?.warn({ err: e, approval: payload.id ?? payload.requestId }, `an approval '${name}' listener failed`);
    }
  }
}

/** The approver's `grant_for` window: null for none, else at most the rule's (undefined: the rule's). */
export interface GrantChoice {
  grantForMs: number | null;
}

/** The approver's window as an API body gives it: absent → the rule's; "none" → none; else a duration such as 15m. */
export function parseGrantChoice(raw: unknown): GrantChoice | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (raw === 'none') return { grantForMs: null };
  const ms = typeof raw === 'string' ? parseDuration(raw) : null;
  if (ms === null) throw new AirlockError('AIRLOCK_FORBIDDEN', 'grant_for must be a duration such as 15m, or none');
  return { grantForMs: ms };
}

/** A window only where the rule allows one, never longer than the rule's. */
export function checkGrantChoice(r: ApprovalRequest, grant: GrantChoice | undefined): void {
  if (grant === undefined || grant.grantForMs === null) return;
  if (r.grantForMs === undefined) throw new AirlockError('AIRLOCK_FORBIDDEN', `rule ${r.rule} allows no grant_for window`);
  if (!Number.isFinite(grant.grantForMs) || grant.grantForMs <= 0) throw new AirlockError('AIRLOCK_FORBIDDEN', 'a grant_for window must be a positive duration');
  if (grant.grantForMs > r.grantForMs) throw new AirlockError('AIRLOCK_FORBIDDEN', `rule ${r.rule} allows a grant_for window of at most ${formatDuration(r.grantForMs)}`);
}

/** Who may decide a request: the one place this is checked, for this node's requests and other nodes'. */
export function checkDecider(r: ApprovalRequest, approver: Identity, approve: boolean): void {
  if (r.status !== 'pending') {
    const by = r.decidedBy === undefined ? '' : ` by ${r.decidedBy}`;
    throw new AirlockError('AIRLOCK_FORBIDDEN', `approval request ${r.id} is already ${r.status}${by}`);
  }
  if (approve && approver.subject === r.requester.subject) {
    throw new AirlockError('AIRLOCK_FORBIDDEN', 'nobody may approve their own request');
  }
  if (!approver.groups.some((g) => r.approvers.includes(g))) {
    throw new AirlockError('AIRLOCK_FORBIDDEN', `only members of ${r.approvers.join(', ')} may decide request ${r.id}`);
  }
}

function grantKey(subject: string, connection: string): string {
  return `${subject}\u0000${connection}`;
}
