/**
 * Starts the configured exporters and feeds them from the audit log: every record after
 * it is durable, in seq order. Exporters never block or fail an append; an exporter that
 * keeps a spool (webhook) first catches up from the local log on what a crash kept from it.
 */
import { join } from 'node:path';
import type { Logger } from '../../util/log.js';
import type { AuditExporterConfig } from '../../config/index.js';
import type { AuditLog } from '../log.js';
import { readEvents } from '../read.js';
import type { AuditRecord } from '../types.js';
import type { AuditExporter, ExporterStatus } from './types.js';
import { StdoutExporter } from './stdout.js';
import { WebhookExporter } from './webhook.js';
import { SyslogExporter } from './syslog.js';

export { StdoutExporter } from './stdout.js';
export { WebhookExporter, type WebhookExporterOptions } from './webhook.js';
export { SyslogExporter, formatSyslog, frameOctetCounted, FACILITIES, type Facility, type SyslogExporterOptions } from './syslog.js';
export { Spool } from './spool.js';
export type { AuditExporter, ExporterStatus } from './types.js';

export interface AuditExporters {
  status(): ExporterStatus[];
  close(): Promise<void>;
}

export function exporterFor(c: AuditExporterConfig, index: number, stateDir: string, logger: Logger): AuditExporter {
  const name = c.name ?? `${c.type}${index === 0 ? '' : `-${index}`}`;
  switch (c.type) {
    case 'stdout':
      return new StdoutExporter(name, logger);
    case 'webhook':
      return new WebhookExporter({
        name,
        url: c.url,
        spoolDir: c.spool_dir ?? join(stateDir, c.name === undefined ? 'audit-spool' : `audit-spool-${c.name}`),
        batchSize: c.batch_size,
        flushIntervalMs: c.flush_interval,
        timeoutMs: c.timeout,
        maxSpoolBytes: c.max_spool_bytes,
        maxBackoffMs: c.max_backoff,
        logger,
      });
    case 'syslog':
      return new SyslogExporter({
        name,
        host: c.host,
        port: c.port,
        protocol: c.protocol,
        facility: c.facility,
        appName: c.app_name,
        maxQueue: c.max_queue,
        logger,
      });
  }
}

function safeOffer(x: AuditExporter, r: AuditRecord, logger: Logger): void {
  try {
    x.offer(r);
  } catch (e) {
    logger.warn({ exporter: x.name, err: e }, 'audit export: an exporter refused a record');
  }
}

/**
 * Subscribes `exporters` to `audit`. Records appended while a catch-up reads the log are
 * held and then offered after it (the spool drops what it already has by seq).
 */
export async function startExporters(audit: AuditLog, exporters: AuditExporter[], logger: Logger): Promise<AuditExporters> {
  const catchingUp = new Map<AuditExporter, AuditRecord[]>();
  const unsubscribe = audit.onRecord((r) => {
    // Reading r.event parses the record's JSON: not for nothing.
    if (exporters.length === 0 || r.event.type === 'checkpoint') return;
    for (const x of exporters) {
      const held = catchingUp.get(x);
      if (held !== undefined) held.push(r);
      else safeOffer(x, r, logger);
    }
  });
  const head = audit.position.seq;
  for (const x of exporters) {
    const resume = x.resumeAfter();
    if (resume === null) {
      if (x instanceof WebhookExporter) x.startAt(head);
      continue;
    }
    if (resume.seq >= head) continue;
    catchingUp.set(x, []);
    try {
      const since = resume.ts === null ? {} : { sinceMs: Date.parse(resume.ts) - 86_400_000 };
      for await (const r of readEvents(audit.dir, since)) {
        if (r.seq > resume.seq && r.event.type !== 'checkpoint') safeOffer(x, r, logger);
      }
    } catch (e) {
      logger.warn({ exporter: x.name, err: e }, 'audit export: catch-up from the audit log failed');
    }
    for (const r of catchingUp.get(x) ?? []) safeOffer(x, r, logger);
    catchingUp.delete(x);
  }
  return {
    status: () => exporters.map((x) => x.status()),
    close: async () => {
      unsubscribe();
      await Promise.all(exporters.map((x) => x.close()));
    },
  };
}
