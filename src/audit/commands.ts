/**
 * The text and exit codes of `airlock audit verify` and `airlock sessions list`, kept
 * beside the log so the CLI only parses flags and prints.
 */
import { verifyAudit, type VerifyOptions } from './verify.js';
import type { SessionSummary } from './types.js';

export async function auditVerifyCommand(dir: string, opts: VerifyOptions = {}): Promise<{ exitCode: 0 | 1; text: string }> {
  const r = await verifyAudit(dir, opts);
  if (r.ok) return { exitCode: 0, text: `ok ${r.count} events\n` };
  return { exitCode: 1, text: `${r.file}:${r.line}: ${r.problem}\n` };
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
