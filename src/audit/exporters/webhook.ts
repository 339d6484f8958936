/**
 * Webhook exporter: records go to an on-disk spool first, then out as batched JSON POSTs
 * `{ "events": [ { "id": "NODE:SEQ", ...record } ] }` in seq order, one batch at a time.
 * A non-2xx or network failure retries the same batch with exponential backoff; a 2xx
 * advances the spool. Delivery is at-least-once: `id` lets the receiver deduplicate.
 */
import type { Logger } from '../../util/log.js';
import type { AuditRecord } from '../types.js';
import { describeFailure, type AuditExporter, type ExporterStatus } from './types.js';
import { Spool } from './spool.js';

export interface WebhookExporterOptions {
  name: string;
  url: string;
  spoolDir: string;
  batchSize?: number;
  flushIntervalMs?: number;
  timeoutMs?: number;
  maxSpoolBytes?: number;
  /** First retry delay (default 250 ms), doubled per failure up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  logger?: Logger;
}

export class WebhookExporter implements AuditExporter {
  readonly name: string;
  private readonly spool: Spool;
  private timer: NodeJS.Timeout | null = null;
  private sending: Promise<void> | null = null;
  private abort: AbortController | null = null;
  private failures = 0;
  private delivered = 0;
  private lastError: string | null = null;
  private lastErrorAt: string | null = null;
  private closed = false;
  private readonly batchSize: number;
  private readonly flushIntervalMs: number;
  private readonly timeoutMs: number;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(private readonly opts: WebhookExporterOptions) {
    this.name = opts.name;
    this.batchSize = opts.batchSize ?? 100;
    this.flushIntervalMs = opts.flushIntervalMs ?? 1000;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.minBackoffMs = opts.minBackoffMs ?? 250;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.spool = Spool.open(opts.spoolDir, opts.maxSpoolBytes ?? 64 * 1024 * 1024);
    // What a previous run left in the spool goes out first.
    if (this.spool.pending.length > 0) this.schedule(0);
  }

  resumeAfter(): { seq: number; ts: string | null } | null {
    return this.spool.fresh ? null : { seq: this.spool.lastSeq, ts: this.spool.lastTs };
  }

  /** First start: export from `seq` on, not the whole history of the log. */
  startAt(seq: number): void {
    this.spool.startAt(seq);
  }

  offer(record: AuditRecord): void {
    if (this.closed) return;
    if (!this.spool.add(record, `${record.node}:${record.seq}`)) return;
    // Sending, or waiting out a backoff: the next attempt picks this record up.
    if (this.sending !== null || this.failures > 0) return;
    if (this.spool.pending.length >= this.batchSize) this.schedule(0);
    else if (this.timer === null) this.schedule(this.flushIntervalMs);
  }

  status(): ExporterStatus {
    const diskError = this.spool.diskError === null ? null : `spool: ${describeFailure(this.spool.diskError)}`;
    return {
      name: this.name,
      type: 'webhook',
      backlog: this.spool.pending.length,
      dropped: this.spool.dropped,
      delivered: this.delivered,
      lastError: diskError ?? this.lastError,
      lastErrorAt: this.lastErrorAt,
    };
  }

  /** Stops sending (an in-flight POST is aborted: it will be sent again) and writes the spool out. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.abort?.abort();
    await this.sending;
    await this.spool.flush();
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.sending = this.send().finally(() => {
        this.sending = null;
      });
    }, delayMs);
    this.timer.unref();
  }

  private async send(): Promise<void> {
    const batch = this.spool.pending.slice(0, this.batchSize);
    const last = batch[batch.length - 1];
    if (last === undefined || this.closed) return;
    const body = `{"events":[${batch.map((e) => e.line).join(',')}]}`;
    this.abort = new AbortController();
    let ok = false;
    try {
      const res = await fetch(this.opts.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'airlock-audit' },
        body,
        signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.timeoutMs)]),
      });
      // The body is not read for meaning, only drained so the connection can be reused.
      await res.arrayBuffer().catch(() => undefined);
      ok = res.status >= 200 && res.status < 300;
      if (!ok) this.noteFailure(`HTTP ${res.status}`);
    } catch (e) {
      this.noteFailure(describeFailure(e));
    } finally {
      this.abort = null;
    }
    if (this.closed) return;
    if (ok) {
      this.failures = 0;
      this.delivered += batch.length;
      this.spool.ack(last.seq);
      // Drain a backlog without waiting; otherwise wait for the next batch to gather.
      if (this.spool.pending.length > 0) this.schedule(0);
      return;
    }
    this.failures++;
    const backoff = Math.min(this.maxBackoffMs, this.minBackoffMs * 2 ** Math.min(this.failures - 1, 20));
    this.schedule(backoff / 2 + Math.random() * (backoff / 2));
  }

  private noteFailure(what: string): void {
    if (this.lastError !== what || this.failures === 0) this.opts.logger?.warn({ exporter: this.name, error: what }, 'audit export: webhook delivery failed; will retry');
    this.lastError = what;
    this.lastErrorAt = new Date().toISOString();
  }
}
