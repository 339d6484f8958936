/**
 * The text and exit codes of `airlock audit verify` and `airlock sessions list`, kept
 * beside the log so the CLI only parses flags and prints.
 */
import { verifyAudit, type VerifyOptions } from './verify.js';
import { fieldsOf } from './record.js';
import type { SessionSummary } from './types.js';

/**
 * With pinned keys (opts.keys) the answer also says how far a signature reaches: records after
 * the last checkpoint are vouched for by no key yet, and a log with no checkpoint at all fails —
 * anyone could have written it.
 */
export async function auditVerifyCommand(dir: string, opts: VerifyOptions = {}): Promise<{ exitCode: 0 | 1; text: string }> {
  let lastCheckpoint: { seq: number; key: string } | null = null;
  let lastSeq = 0;
  const r = await verifyAudit(dir, {
    ...opts,
    onCheckpoint: (c) => {
      lastCheckpoint = { seq: c.seq, key: String(fieldsOf(c.event).key) };
      opts.onCheckpoint?.(c);
    },
    onEnd: (seq) => {
      lastSeq = seq;
      opts.onEnd?.(seq);
    },
  });
  if (!r.ok) return { exitCode: 1, text: `${r.file}:${r.line}: ${r.problem}\n` };
  if (opts.keys?.pinned !== true) return { exitCode: 0, text: `ok ${r.count} events\n` };
  const last = lastCheckpoint as { seq: number; key: string } | null;
  if (last === null) {
    return { exitCode: 1, text: `${dir}: no checkpoint in the log, so no pinned key vouches for any of its ${r.count} records (airlock writes one every audit.checkpoint_every records and when it stops)\n` };
  }
  const after = lastSeq - last.seq;
  const tail = after === 0 ? '' : `; the ${after} record${after === 1 ? '' : 's'} after it ${after === 1 ? 'is' : 'are'} not signed yet`;
  return { exitCode: 0, text: `ok ${r.count} events; every checkpoint signed by a pinned key, the last at seq ${last.seq} (key ${last.key})${tail}\n` };
}

export function renderSessionList(sessions: SessionSummary[]): string {
  const rows = sessions.map((s) => [
    s.session,
    s.startedAt,
    s.endedAt ?? 'active',
    s.subject ?? '?',
    s.connection ?? '?',
    s.client ?? '?',
    `${s.actions}/${s.denied}/${s.held}`,
    s.endReason ?? '',
  ]);
  const header = ['SESSION', 'STARTED', 'ENDED', 'SUBJECT', 'CONNECTION', 'CLIENT', 'ACT/DENY/HOLD', 'END'];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n') + '\n';
}
