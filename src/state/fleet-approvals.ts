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
    // The store carries no chosen window yet: the holding node would apply the rule's. Refused rather than widened.
    if (approve && local?.status !== 'pending' && grant !== undefined && grant.grantForMs !== (request.grantForMs ?? null)) {
      throw new AirlockError('AIRLOCK_FORBIDDEN', `request ${id} is held on another node: approve it there to choose a shorter grant_for window`);
    }
    const shown = reason?.trim() || undefined;
    const decidedAt = Date.now();
    const status = approve ? 'approved' : 'denied';
    const won = await this.shared.claim(id, { status, decidedAt, decidedBy: caller.subject, ...(shown === undefined ? {} : { reason: shown }) });
    if (!won) {
      const now = await this.shared.get(id);
      throw new AirlockError('AIRLOCK_FORBIDDEN', `approval request ${id} is already ${now?.status ?? 'decided'}${now?.decidedBy === undefined ? '' : ` by ${now.decidedBy}`}`);
    }
    return this.broker.settle(id, approve, caller.subject, reason, grant) ?? { ...request, status, decidedAt, decidedBy: caller.subject, ...(shown === undefined ? {} : { reason: shown }) };
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
        for (const r of await this.shared.decidedAmong(mine)) {
          if (r.status === 'approved' || r.status === 'denied') this.broker.settle(r.id, r.status === 'approved', r.decidedBy ?? 'unknown', r.reason);
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
