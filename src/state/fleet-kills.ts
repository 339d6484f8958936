/**
 * `airlock sessions kill` across nodes: a session held by another node is ended by that node.
 * The request goes into the shared store and is NOTIFYed; the holding node (on the NOTIFY, or
 * its next poll after a missed one) takes it with a conditional UPDATE, ends the session, and
 * marks it done together with the session's end in the index. The asking node waits for that
 * until its timeout, then withdraws the request (again conditionally, so a request is either
 * carried out or withdrawn, never both unknown to the caller).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../util/log.js';
import type { Identity } from '../core/types.js';
import { AirlockError } from '../util/errors.js';
import type { KillRequest, SessionKills, SharedApprovals } from './types.js';

/** Ends one of this node's sessions; the end reason, or null when it holds no such session. */
export type LocalKill = (sessionId: string, by: { subject: string; issuer: string }, opts: { reason?: string; requestedOn?: string }) => Promise<string | null>;

/** Longer than any requester waits (the admin API caps the wait at 120 s). */
const STALE_AFTER_MS = 150_000;

export interface KillOutcome {
  session: string;
  node: string;
  endReason: string;
}

export class FleetKills {
  private busy = false;
  private again = false;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly store: SessionKills & Pick<SharedApprovals, 'onChange'>,
    private readonly node: string,
    private readonly killLocal: LocalKill,
    private readonly logger: Logger,
  ) {
    store.onChange(() => {
      void this.takeMine();
      for (const w of this.waiters) w();
    });
  }

  /** Ends session `id` wherever it is held; resolves when the holding node has ended it. */
  async kill(id: string, caller: Identity, opts: { reason?: string; timeoutMs: number }): Promise<KillOutcome> {
    const by = { subject: caller.subject, issuer: caller.issuer };
    const here = await this.killLocal(id, by, opts.reason === undefined ? {} : { reason: opts.reason });
    if (here !== null) return { session: id, node: this.node, endReason: here };
    const indexed = await this.store.session(id);
    if (indexed === undefined) throw new AirlockError('AIRLOCK_UNSUPPORTED', `no session ${id}`);
    if (indexed.endedAt !== null) throw new AirlockError('AIRLOCK_UNSUPPORTED', `session ${id} has already ended (${indexed.endReason ?? 'no reason recorded'})`);
    if (indexed.node === this.node) throw new AirlockError('AIRLOCK_UNSUPPORTED', `session ${id} is not open on this node any more`);
    if (!(await this.store.nodeConnected(indexed.node))) {
      throw new AirlockError('AIRLOCK_NODE_UNREACHABLE', `node ${indexed.node}, which holds session ${id}, is not connected to the state store (stopped or cut off); the session was not killed`);
    }
    const request = {
      id: randomBytes(8).toString('hex'),
      sessionId: id,
      node: indexed.node,
      requestedBy: caller.subject,
      requestedByIssuer: caller.issuer,
      requestedOn: this.node,
      reason: opts.reason ?? null,
    };
    await this.store.requestKill(request);
    const settled = await this.waitFor(request.id, opts.timeoutMs);
    if (settled?.status === 'done') return { session: id, node: indexed.node, endReason: settled.endReason ?? `killed by ${caller.subject}` };
    if (settled?.status === 'gone') throw new AirlockError('AIRLOCK_UNSUPPORTED', `session ${id} had already ended on node ${indexed.node}`);
    const seconds = Math.round(opts.timeoutMs / 1000);
    if (await this.store.moveKill(request.id, 'expired')) {
      throw new AirlockError('AIRLOCK_NODE_UNREACHABLE', `node ${indexed.node} did not take the kill request for session ${id} within ${seconds}s; the request is withdrawn`);
    }
    // Taken meanwhile: the node is ending it. One more look before saying so.
    const last = await this.store.kill(request.id);
    if (last?.status === 'done') return { session: id, node: indexed.node, endReason: last.endReason ?? `killed by ${caller.subject}` };
    throw new AirlockError('AIRLOCK_NODE_UNREACHABLE', `node ${indexed.node} took the kill request for session ${id} but did not confirm within ${seconds}s`);
  }

  /** Until the request is done or gone (re-read on each store change), or the timeout. */
  private waitFor(id: string, timeoutMs: number): Promise<KillRequest | null> {
    return new Promise((resolve) => {
      let looking = false;
      let pending = false;
      const finish = (r: KillRequest | null): void => {
        clearTimeout(timer);
        this.waiters.delete(look);
        resolve(r);
      };
      const look = (): void => {
        if (looking) {
          pending = true;
          return;
        }
        looking = true;
        this.store
          .kill(id)
          .then((r) => {
            if (r !== undefined && (r.status === 'done' || r.status === 'gone')) finish(r);
          })
          .catch(() => undefined)
          .finally(() => {
            looking = false;
            if (pending) {
              pending = false;
              look();
            }
          });
      };
      const timer = setTimeout(() => finish(null), timeoutMs);
      this.waiters.add(look);
      look();
    });
  }

  /** Takes and carries out the requests for this node's sessions (on a NOTIFY, a reconnect, the poll). */
  private async takeMine(): Promise<void> {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      do {
        this.again = false;
        // Nobody waits for an answer to these any more (the requester died before withdrawing them): never act late.
        await this.store.expireStaleKills(this.node, STALE_AFTER_MS);
        for (const k of await this.store.pendingKills(this.node)) {
          if (!(await this.store.moveKill(k.id, 'taken'))) continue;
          let ended: string | null;
          try {
            ended = await this.killLocal(k.sessionId, { subject: k.requestedBy, issuer: k.requestedByIssuer }, { ...(k.reason === null ? {} : { reason: k.reason }), requestedOn: k.requestedOn });
          } catch (e) {
            // The session's signal was aborted before its end failed to be written (a lease release): it is over.
            this.logger.warn({ err: e instanceof Error ? e.message : String(e), session: k.sessionId }, 'a killed session did not end cleanly');
            ended = `killed by ${k.requestedBy}`;
          }
          await this.store.finishKill(k.id, ended === null ? 'gone' : 'done', ended);
          this.logger.info({ session: k.sessionId, by: k.requestedBy, requestedOn: k.requestedOn, outcome: ended === null ? 'gone' : 'done' }, 'state store: kill request carried out');
        }
      } while (this.again);
    } catch (e) {
      this.logger.debug({ err: e instanceof Error ? e.message : String(e) }, 'state store: kill requests not read; the next notification or poll retries');
    } finally {
      this.busy = false;
    }
  }
}
