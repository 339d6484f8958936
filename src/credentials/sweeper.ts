import type { Logger } from '../util/log.js';
import type { SweepResult } from './lease.js';

/** Anything that can drop its stale roles given the sessions live on this node. */
export interface Sweepable {
  sweep(liveSessionIds: ReadonlySet<string>): Promise<SweepResult>;
}

export const SWEEP_INTERVAL_MS = 60_000;

/**
 * Runs `sweep` on every ephemeral broker at start-up (roles orphaned by a crash) and
 * then on a timer (roles whose drop failed, roles past VALID UNTIL). A sweep still
 * running when the timer fires is not started twice.
 */
export class RoleSweeper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly targets: () => Iterable<Sweepable>,
    private readonly liveSessionIds: () => ReadonlySet<string>,
    private readonly logger: Logger,
    private readonly intervalMs = SWEEP_INTERVAL_MS,
  ) {}

  /** Sweeps now and then every interval; returns the first sweep. */
  start(): Promise<void> {
    if (this.timer === null) {
      this.timer = setInterval(() => void this.sweepOnce(), this.intervalMs);
      this.timer.unref();
    }
    return this.sweepOnce();
  }

  stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    return this.running ?? Promise.resolve();
  }

  sweepOnce(): Promise<void> {
    if (this.running !== null) return this.running;
    this.running = (async () => {
      for (const t of this.targets()) {
        try {
          await t.sweep(this.liveSessionIds());
        } catch (e) {
          // Upstream down: the next round tries again.
          this.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'ephemeral role sweep failed');
        }
      }
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }
}
