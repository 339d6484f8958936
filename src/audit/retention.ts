/** Audit retention: whole files past their day's end are pruned, write-ahead (the `audit.pruned` record first). */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../util/log.js';
import { listAuditFiles } from './files.js';
import { lastRecordOf } from './head.js';
import type { AuditEventBody, AuditRecord, PrunedEvent } from './types.js';

/** Runs `prune` now and then every `everyMs`; returns a stop function. Failures are logged, not thrown. */
export function scheduleRetention(prune: () => Promise<string[]>, everyMs: number, logger: Logger | undefined): () => void {
  const run = (): void => {
    prune().catch((e: unknown) => logger?.error({ err: e }, 'audit: retention prune failed'));
  };
  run();
  const timer = setInterval(run, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Deletes whole files of `dir` whose UTC day ended more than `olderThanMs` ago (never the
 * newest file), once the `audit.pruned` event naming them is durable through `append`.
 */
export async function pruneAudit(dir: string, olderThanMs: number, append: (event: AuditEventBody) => Promise<AuditRecord>, logger: Logger | undefined): Promise<string[]> {
  const cutoff = Date.now() - olderThanMs;
  const files = await listAuditFiles(dir);
  const prunable = files.slice(0, -1).filter((f) => Date.parse(`${f.day}T00:00:00Z`) + 86_400_000 <= cutoff);
  if (prunable.length === 0) return [];
  const before = await lastRecordOf(dir, prunable);
  const event: PrunedEvent = { type: 'audit.pruned', files: prunable.map((f) => f.name), before };
  await append(event);
  for (const f of prunable) await unlink(join(dir, f.name));
  logger?.info({ files: event.files }, 'audit: pruned files past retention');
  return event.files;
}
