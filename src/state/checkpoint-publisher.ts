/**
 * Publishes this node's signed audit checkpoints to the shared store, for `audit verify --fleet`.
 * The writer thread makes a checkpoint; once it is durable the audit log hands it here, on the
 * main thread. Nothing on the audit path waits for this: a checkpoint the store does not take is
 * kept, counted and logged, and tried again with backoff; the queue keeps the newest ones only
 * (verify --fleet reads each node's last checkpoint).
 */
import type { Logger } from '../util/log.js';
import type { AuditCheckpoints, StoredCheckpoint } from './types.js';

const MAX_QUEUE = 256;
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;

export interface CheckpointCounts {
  published(): void;
  failed(): void;
}

export class CheckpointPublisher {
  private readonly queue: StoredCheckpoint[] = [];
  private running: Promise<void> | null = null;
  private retryMs = FIRST_RETRY_MS;
  private retryTimer: NodeJS.Timeout | null = null;
  private registered = false;
  private closed = false;

  constructor(
    private readonly store: AuditCheckpoints,
    private readonly self: { node: string; host: string; auditDir: string },
    private readonly logger: Logger,
    private readonly counts: CheckpointCounts,
  ) {}

  /** A durable checkpoint: published now, or kept until the store takes it. */
  add(c: { seq: number; ts: string; headSeq: number; head: string; key: string; sig: string; file: string }): void {
    this.queue.push({ node: this.self.node, seq: c.seq, headSeq: c.headSeq, head: c.head, keyId: c.key, sig: c.sig, file: c.file, writtenAt: c.ts });
    if (this.queue.length > MAX_QUEUE) this.queue.splice(0, this.queue.length - MAX_QUEUE);
    this.kick();
  }

  /** Checkpoints not in the store yet. */
  get backlog(): number {
    return this.queue.length;
  }

  /** Tries to publish what is left (the checkpoint that sealed the log at stop) for at most `ms`. */
  async flush(ms: number): Promise<void> {
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.kick();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running ?? Promise.resolve(), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
    this.closed = true;
  }

  private kick(): void {
    if (this.running !== null || this.retryTimer !== null || this.closed) return;
    this.running = this.drain().finally(() => {
      this.running = null;
      // One added while the last publish was finishing.
      if (this.queue.length > 0 && this.retryTimer === null) this.kick();
    });
  }

  private async drain(): Promise<void> {
    try {
      if (!this.registered) {
        await this.store.registerAuditNode(this.self);
        this.registered = true;
      }
      while (this.queue.length > 0) {
        await this.store.publishCheckpoint(this.queue[0] as StoredCheckpoint);
        this.queue.shift();
        this.counts.published();
      }
      this.retryMs = FIRST_RETRY_MS;
    } catch (e) {
      this.counts.failed();
      this.logger.warn({ err: e instanceof Error ? e.message : String(e), backlog: this.queue.length, retryInMs: this.retryMs }, 'state store: audit checkpoint not published; will retry');
      if (this.closed) return;
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.kick();
      }, this.retryMs);
      this.retryTimer.unref();
      this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    }
  }
}
