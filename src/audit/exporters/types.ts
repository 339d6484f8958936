/** What every audit exporter offers the daemon: records in, status out, a clean stop. */
import type { AuditRecord } from '../types.js';

export interface ExporterStatus {
  name: string;
  type: 'stdout' | 'webhook' | 'syslog';
  /** Records accepted but not yet delivered. */
  backlog: number;
  /** Records given up on (spool or queue over its bound) since start. */
  dropped: number;
  delivered: number;
  /** The last failure, as a short code or HTTP status: never a URL, header or body. */
  lastError: string | null;
  lastErrorAt: string | null;
}

export interface AuditExporter {
  readonly name: string;
  /**
   * The seq after which this exporter wants records on start-up (catch-up from the local
   * log), or null when it keeps nothing across restarts.
   */
  resumeAfter(): { seq: number; ts: string | null } | null;
  /** Must not throw or block: called from the audit log's append path. */
  offer(record: AuditRecord): void;
  status(): ExporterStatus;
  close(): Promise<void>;
}

/** A short, secret-free description of a failure: errno/undici code, or the message's first words. */
export function describeFailure(e: unknown): string {
  if (e !== null && typeof e === 'object') {
    const cause = (e as { cause?: unknown }).cause;
    const code = (e as { code?: unknown }).code ?? (cause !== null && typeof cause === 'object' ? (cause as { code?: unknown }).code : undefined);
    if (typeof code === 'string') return code;
    const name = (e as { name?: unknown }).name;
    if (name === 'TimeoutError' || name === 'AbortError') return name;
  }
  return 'error';
}
