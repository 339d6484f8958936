/**
 * POSTs each approval event as JSON to a webhook (Slack-compatible: the body has `text`).
 * Delivery runs in the background with exponential backoff; a slow or failing receiver
 * never delays a session. The URL itself may be a secret (Slack hook URLs are), so it is
 * never logged.
 */
import type { Logger } from '../util/log.js';
import { eventText, publicView } from './messages.js';
import type { ApprovalEvent, ApprovalNotifier } from './types.js';

export interface WebhookOptions {
  logger?: Logger;
  /** Default 5. */
  maxAttempts?: number;
  /** First retry delay; doubles each time. Default 500 ms. */
  baseDelayMs?: number;
  /** Per attempt. Default 10 s. */
  attemptTimeoutMs?: number;
}

const MAX_DELAY_MS = 60_000;

export class WebhookNotifier implements ApprovalNotifier {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly attemptTimeoutMs: number;

  constructor(
    private readonly url: string,
    private readonly opts: WebhookOptions = {},
  ) {
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 5);
    this.baseDelayMs = Math.max(0, opts.baseDelayMs ?? 500);
    this.attemptTimeoutMs = opts.attemptTimeoutMs ?? 10_000;
  }

  notify(event: ApprovalEvent): void {
    let body: string;
    try {
      body = JSON.stringify({ event: event.event, request: publicView(event.request), text: eventText(event) });
    } catch (e) {
      this.opts.logger?.warn({ err: e }, 'approval webhook event could not be encoded');
      return;
    }
    const p = this.deliver(body, event.request.id).catch(() => undefined);
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  /** Resolves when every delivery started so far has succeeded or given up. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private async deliver(body: string, approvalId: string): Promise<void> {
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      let retryable = true;
      let problem: string;
      try {
        const res = await fetch(this.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(this.attemptTimeoutMs),
        });
        await res.body?.cancel().catch(() => undefined);
        if (res.ok) return;
        problem = `HTTP ${res.status}`;
        // Other client errors will not change on a retry.
        retryable = res.status >= 500 || res.status === 408 || res.status === 429;
      } catch (e) {
        problem = e instanceof Error ? e.name : 'error';
      }
      if (!retryable || attempt === this.maxAttempts) {
        this.opts.logger?.warn({ approval: approvalId, attempts: attempt, problem }, 'approval webhook delivery gave up');
        return;
      }
      this.opts.logger?.debug({ approval: approvalId, attempt, problem }, 'approval webhook delivery failed; retrying');
      const delay = Math.min(MAX_DELAY_MS, this.baseDelayMs * 2 ** (attempt - 1));
      await new Promise<void>((resolve) => setTimeout(resolve, delay).unref());
    }
  }
}
