/** Stdout exporter: each record as a pino line `{ audit: record }` at info, for journald. */
import type { Logger } from '../../util/log.js';
import type { AuditRecord } from '../types.js';
import type { AuditExporter, ExporterStatus } from './types.js';

export class StdoutExporter implements AuditExporter {
  private delivered = 0;

  constructor(
    readonly name: string,
    private readonly logger: Logger,
  ) {}

  resumeAfter(): null {
    return null;
  }

  offer(record: AuditRecord): void {
    this.logger.info({ audit: record }, 'audit event');
    this.delivered++;
  }

  status(): ExporterStatus {
    return { name: this.name, type: 'stdout', backlog: 0, dropped: 0, delivered: this.delivered, lastError: null, lastErrorAt: null };
  }

  async close(): Promise<void> {
    // pino flushes its own stream.
  }
}
