/** Text people read about held actions: the caller's hold notice and the chat one-liners. */
import type { Action } from '../core/types.js';
import type { ApprovalEvent, ApprovalRequest } from './types.js';

const NOUN: Record<Action['kind'], string> = {
  sql: 'statement',
  shell: 'command',
  exec: 'command',
  sftp: 'request',
  forward: 'request',
  http: 'request',
  connect: 'connection',
};

/** "airlock: statement held for approval (id 7f3a2c01) — approve with: airlock approvals approve 7f3a2c01" */
export function holdMessage(id: string, kind: Action['kind'] = 'sql'): string {
  return `airlock: ${NOUN[kind]} held for approval (id ${id}) — approve with: airlock approvals approve ${id}`;
}

export function formatDuration(ms: number): string {
  const units: Array<[string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]];
  for (const [unit, size] of units) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return ms >= 1000 ? `${Math.round(ms / 1000)}s` : `${ms}ms`;
}

/** Slack mrkdwn needs only &, < and > escaped; backticks would end the code span. */
function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function clip(text: string, max: number): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

export function eventText(e: ApprovalEvent): string {
  const r = e.request;
  const who = `${r.requester.subject} (${r.requester.kind})`;
  if (e.event === 'approval.requested') {
    const what =
      r.action.kind === 'connect'
        ? `access to ${r.connection}${r.grantForMs === undefined ? '' : ` for ${formatDuration(r.grantForMs)}`}`
        : `to run on ${r.connection}: \`${clip(r.summary, 300).replace(/`/g, "'")}\``;
    return slackEscape(
      `airlock: ${who} asks for ${what} (rule ${r.rule}, approvers: ${r.approvers.join(', ')}). ` +
        `Approve with: airlock approvals approve ${r.id} — or deny: airlock approvals deny ${r.id}`,
    );
  }
  const by = r.decidedBy === undefined ? '' : ` by ${r.decidedBy}`;
  const reason = r.reason === undefined ? '' : `: ${clip(r.reason, 300)}`;
  return slackEscape(`airlock: request ${r.id} from ${who} on ${r.connection} was ${r.status}${by}${reason}`);
}

/** What leaves the process about a request (webhook, logs): no action internals, no header values. */
export function publicView(r: ApprovalRequest): Record<string, unknown> {
  return {
    id: r.id,
    status: r.status,
    sessionId: r.sessionId,
    requester: { subject: r.requester.subject, issuer: r.requester.issuer, kind: r.requester.kind, groups: r.requester.groups },
    connection: r.connection,
    kind: r.action.kind,
    summary: clip(r.summary, 2000),
    rule: r.rule,
    approvers: r.approvers,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
    ...(r.decidedBy === undefined ? {} : { decidedBy: r.decidedBy }),
    ...(r.decidedAt === undefined ? {} : { decidedAt: r.decidedAt }),
    ...(r.reason === undefined ? {} : { reason: r.reason }),
    ...(r.grantForMs === undefined ? {} : { grantForMs: r.grantForMs }),
  };
}
