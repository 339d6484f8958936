/** Every file under a directory (a suite's state_dir or its audit folder), for greps over all a daemon wrote. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** The text of every file under a directory, joined by newlines. */
export function textUnder(dir: string): string {
  return filesUnder(dir)
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
}

/** The events of every audit record under an audit directory (its `.jsonl` files, in name order). */
export function auditEvents(auditDir: string): Array<Record<string, unknown>> {
  return filesUnder(auditDir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .flatMap((f) => readFileSync(f, 'utf8').split('\n'))
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { event: Record<string, unknown> }).event);
}

/**
 * The first audit event matching `pred`, waiting for it: records that are not write-ahead (results,
 * exec outcomes, recordings) reach the file through the writer thread a little after the client is done.
 */
export async function awaitAuditEvent(auditDir: string, pred: (e: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown> | undefined> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = auditEvents(auditDir).find(pred);
    if (found !== undefined || Date.now() > until) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
}
