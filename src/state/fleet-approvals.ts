/**
 * Approvals across nodes: every request this node holds is published to the shared store;
 * a verdict given on any node is claimed there first (once, whatever node or API gives it)
 * and then settles the statement on the node that holds it — at once when that is this node,
 * else when that node hears the NOTIFY or its next poll.
 */
import type { Logger } from '../util/log.js';
import type { Identity } from '../core/types.js';
import { AirlockError } from '../util/errors.js';
import { checkDecider, checkGrantChoice, type ApprovalBroker, type ApprovalRequest, type ApprovalRequestInput, type GrantChoice, type HeldAction } from '../approvals/index.js';
import type { SharedApprovals, StateStore } from './types.js';

export class FleetApprovals {
  private syncing = false;
  private again = false;
  /** A request's insert into the store, awaited by hold() before the caller is told it is held. */
  private readonly publishing = new Map<string, Promise<void>>();

  constructor(
    private readonly broker: ApprovalBroker,
    private readonly shared: SharedApprovals & StateStore,
    private readonly logger: Logger,
  ) {
    broker.on('requested', (r: ApprovalRequest) => {
      const p = shared.publish(r);
      this.publishing.set(r.id, p);
      p.catch((e: unknown) => logger.error({ err: e instanceof Error ? e.message : String(e), approval: r.id }, 'state store: could not publish an approval request'));
    });
    shared.onChange(() => void this.sync());
  }

  /**
   * Holds an action as the broker does, once the request is in the store: a request only this
   * node could see would wait for a verdict no other node can give. When the store does not
   * take it, the request is withdrawn and the caller gets AIRLOCK_STATE_UNAVAILABLE.
   */
  async hold(input: ApprovalRequestInput, signal?: AbortSignal): Promise<HeldAction> {
    const held = this.broker.request(input, signal);
    if (held.granted) return held;
    const published = this.publishing.get(held.id);
    this.publishing.delete(held.id);
    try {
      await published;
    } catch {
      this.broker.withdraw(held.id, 'airlock state store unavailable');
      throw new AirlockError('AIRLOCK_STATE_UNAVAILABLE');
    }
    return held;
  }

  /** Something in the shared store may have changed (a NOTIFY, a reconnect, the poll). */
  onChange(listener: () => void): void {
    this.shared.onChange(listener);
  }

  /** Changes whenever a request is added or decided on any node (the console's cue to re-read). */
  async version(): Promise<string> {
    const pending = (await this.shared.pending()).map((r) => r.id);
    const last = (await this.shared.loadDecided(1))[0];
    return `${pending.join(',')}|${last?.id ?? ''}:${last?.status ?? ''}`;
  }

  /** Every node's decided requests, newest last, at most `limit`. */
  decided(limit: number): Promise<ApprovalRequest[]> {
    return this.shared.loadDecided(limit);
  }

  /** Every node's pending requests this caller's groups may decide. */
  async list(caller: Identity): Promise<ApprovalRequest[]> {
    return (await this.shared.pending()).filter((r) => r.approvers.some((g) => caller.groups.includes(g)));
  }

  async decide(id: string, caller: Identity, approve: boolean, reason?: string, grant?: GrantChoice): Promise<ApprovalRequest> {
    const local = this.broker.get(id);
    const request = local?.status === 'pending' ? local : await this.shared.get(id);
    if (request === undefined) throw new AirlockError('AIRLOCK_UNSUPPORTED', `no approval request ${id}`);
    checkDecider(request, caller, approve);
    checkGrantChoice(request, grant);
    const shown = reason?.trim() || undefined;
    const decidedAt = Date.now();
    const status = approve ? 'approved' : 'denied';
    // The chosen window travels with the verdict; the holding node checks it again against its own copy of the rule's.
    const chosen = approve && grant !== undefined ? { grant } : {};
    const won = await this.shared.claim(id, { status, decidedAt, decidedBy: caller.subject, ...(shown === undefined ? {} : { reason: shown }), ...chosen });
    if (!won) {
      const now = await this.shared.get(id);
      throw new AirlockError('AIRLOCK_FORBIDDEN', `approval request ${id} is already ${now?.status ?? 'decided'}${now?.decidedBy === undefined ? '' : ` by ${now.decidedBy}`}`);
    }
    const settled = this.broker.settle(id, approve, caller.subject, reason, grant);
    if (settled !== undefined) return settled;
    // Held on another node: the request as that node will settle it, with the chosen window (none: no grantForMs).
    const answer: ApprovalRequest = { ...request, status, decidedAt, decidedBy: caller.subject, ...(shown === undefined ? {} : { reason: shown }) };
    if (approve && grant !== undefined) {
      if (grant.grantForMs === null) delete answer.grantForMs;
      else answer.grantForMs = grant.grantForMs;
    }
    return answer;
  }

  /**
   * The window another node's approver chose, checked again here against the request as this
   * node holds it (the store is not trusted to widen it): a choice the rule does not allow
   * becomes the narrower of the two — none when the rule allows none or the value is not a
   * positive duration, the rule's when it is longer than the rule's.
   */
  private boundedGrant(id: string, grant: GrantChoice | undefined): GrantChoice | undefined {
    const held = this.broker.get(id);
    if (grant === undefined || held === undefined) return grant;
    try {
      checkGrantChoice(held, grant);
      return grant;
    } catch (e) {
      const ms = grant.grantForMs;
      const bounded: GrantChoice | undefined = held.grantForMs === undefined || ms === null || !Number.isFinite(ms) || ms <= 0 ? { grantForMs: null } : undefined;
      this.logger.warn({ approval: id, chosenMs: ms, ruleMs: held.grantForMs ?? null, err: e instanceof Error ? e.message : String(e) }, 'state store: an approver\'s grant_for window is not one the rule allows; the narrower window applies');
      return bounded;
    }
  }

  /** Settles this node's pending requests that another node decided, and takes in new grants. */
  private async sync(): Promise<void> {
    if (this.syncing) {
      this.again = true;
      return;
    }
    this.syncing = true;
    try {
      do {
        this.again = false;
        const mine = this.broker.list({ status: 'pending' }).map((r) => r.id);
        for (const { request: r, grant } of await this.shared.decidedAmong(mine)) {
          if (r.status === 'denied') this.broker.settle(r.id, false, r.decidedBy ?? 'unknown', r.reason);
          if (r.status === 'approved') this.broker.settle(r.id, true, r.decidedBy ?? 'unknown', r.reason, this.boundedGrant(r.id, grant));
        }
        this.broker.restore({ grants: await this.shared.loadGrants(Date.now()), decided: [] });
      } while (this.again);
    } catch (e) {
      this.logger.debug({ err: e instanceof Error ? e.message : String(e) }, 'state store: sync failed; the next notification or poll retries');
    } finally {
      this.syncing = false;
    }
  }
}
