/**
 * Sessions and audit in the console, for the configured auditor groups only (the same rule
 * as GET /v1/sessions): the session list with filters, a session's transcript from the
 * audit log, its shell recording for the player, and the audit chain's status.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Identity } from '../../core/types.js';
import { AirlockError } from '../../util/errors.js';
import { listSessions, sessionTranscript, verifyAudit, type AuditRecord, type SessionSummary, type VerifyResult } from '../../audit/index.js';
import { recordingPath } from '../../audit/recordings.js';
import { parseDuration } from '../../util/duration.js';
import type { AdminRoute } from '../server.js';
import { sendJson } from '../http.js';
import { escapeHtml, formatTime, sendHtml, SECURITY_HEADERS } from './html.js';
import type { ConsoleSession } from './sessions.js';

export interface AuditView {
  /** state_dir/audit */
  dir: string;
  stateDir: string;
  isAuditor(who: Identity): boolean;
  /** The exporters' status, as in /healthz. */
  exporters(): unknown[];
}

type PageHandler = (h: (ctx: { req: IncomingMessage; res: ServerResponse; url: URL; params: string[]; session: ConsoleSession }) => Promise<void>) => AdminRoute['handler'];

function needAuditor(audit: AuditView, who: Identity): void {
  if (!audit.isAuditor(who)) throw new AirlockError('AIRLOCK_FORBIDDEN', 'only auditors may read sessions and the audit log');
}

function nav(session: ConsoleSession, active: 'sessions' | 'audit'): { subject: string; groups: string[]; csrf: string; active: 'sessions' | 'audit' } {
  return { subject: session.identity.subject, groups: session.identity.groups, csrf: session.csrf, active };
}

function fields(r: AuditRecord): Record<string, unknown> {
  return typeof r.event === 'object' && r.event !== null ? (r.event as unknown as Record<string, unknown>) : {};
}

function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** One transcript row: what was done, the decision, the rule, and what came back. */
function transcriptRow(r: AuditRecord): string {
  const e = fields(r);
  const action = (e.action ?? {}) as Record<string, unknown>;
  const what =
    typeof action.text === 'string'
      ? action.text
      : typeof action.command === 'string'
        ? action.command
        : typeof action.method === 'string'
          ? `${action.method} ${text(action.path)}`
          : typeof e.command === 'string'
            ? e.command
            : typeof action.kind === 'string'
              ? Object.entries(action).filter(([k, v]) => k !== 'kind' && (typeof v === 'string' || typeof v === 'number')).map(([k, v]) => `${k}: ${String(v)}`).join(' ') || action.kind
              : '';
  const rules = Array.isArray(e.rules) ? e.rules.map(text).join(', ') : text(e.rule);
  const detail = [
    e.reason === undefined ? '' : `reason: ${text(e.reason)}`,
    e.rows === undefined ? '' : `rows: ${text(e.rows)}`,
    e.masked === undefined ? '' : `masked: ${text(e.masked)}`,
    e.approval === undefined ? '' : `approval: ${text((e.approval as { id?: unknown; status?: unknown; decidedBy?: unknown }).status)} ${text((e.approval as { decidedBy?: unknown }).decidedBy)}`,
    e.status === undefined ? '' : `status: ${text(e.status)}`,
  ]
    .filter((x) => x !== '')
    .join(' · ');
  return `<tr data-type="${escapeHtml(text(e.type))}"><td>${escapeHtml(formatTime(r.ts))}</td><td>${escapeHtml(text(e.type))}</td><td>${what === '' ? '' : `<pre class="stmt">${escapeHtml(what)}</pre>`}</td><td class="decision ${escapeHtml(text(e.decision))}">${escapeHtml(text(e.decision))}</td><td>${escapeHtml(rules)}</td><td>${escapeHtml(detail)}</td></tr>`;
}

function sessionRow(s: SessionSummary): string {
  return `<tr><td><a href="/console/sessions/${encodeURIComponent(s.session)}">${escapeHtml(s.session)}</a></td><td>${escapeHtml(formatTime(s.startedAt))}</td><td>${escapeHtml(s.endedAt === null ? 'active' : formatTime(s.endedAt))}</td><td>${escapeHtml(s.subject ?? '?')}</td><td>${escapeHtml(s.connection ?? '?')}</td><td>${escapeHtml(s.protocol ?? '?')}</td><td>${s.actions}</td><td>${s.denied}</td><td>${s.held}</td></tr>`;
}

export function sessionRoutes(audit: AuditView, page: PageHandler): AdminRoute[] {
  return [
    {
      method: 'GET',
      pattern: /^\/console\/sessions$/,
      handler: page(async ({ req, res, url, session }) => {
        needAuditor(audit, session.identity);
        const q = url.searchParams;
        const get = (k: string): string => (q.get(k) ?? '').trim();
        const since = get('since');
        const sinceMs = since === '' ? null : parseDuration(since);
        const all = await listSessions(audit.dir, {
          ...(sinceMs === null ? {} : { sinceMs: Date.now() - sinceMs }),
          ...(get('subject') === '' ? {} : { subject: get('subject') }),
          ...(get('connection') === '' ? {} : { connection: get('connection') }),
        });
        const verdict = get('verdict');
        const shown = all
          .filter((s) => get('protocol') === '' || s.protocol === get('protocol'))
          .filter((s) => verdict === '' || (verdict === 'denied' ? s.denied > 0 : verdict === 'held' ? s.held > 0 : true))
          .reverse();
        const input = (k: string, label: string): string => `<label>${label} <input name="${k}" value="${escapeHtml(get(k))}"></label>`;
        const opt = (v: string, label: string): string => `<option value="${v}"${verdict === v ? ' selected' : ''}>${label}</option>`;
        sendHtml(
          req,
          res,
          200,
          'Sessions',
          `<main data-page="sessions"><h1>Sessions</h1><form method="get" class="filters">${input('subject', 'Subject')}${input('connection', 'Target')}${input('protocol', 'Protocol')}${input('since', 'Since (e.g. 24h)')}<label>Verdicts <select name="verdict">${opt('', 'any')}${opt('denied', 'with a denial')}${opt('held', 'with a hold')}</select></label><button type="submit">Filter</button></form><table class="list"><thead><tr><th>Session</th><th>Started</th><th>Ended</th><th>Subject</th><th>Target</th><th>Protocol</th><th>Actions</th><th>Denied</th><th>Held</th></tr></thead><tbody>${shown.map(sessionRow).join('')}</tbody></table>${shown.length === 0 ? '<p class="empty">No sessions match.</p>' : ''}</main>`,
          nav(session, 'sessions'),
        );
      }),
    },
    {
      method: 'GET',
      pattern: /^\/console\/sessions\/([A-Za-z0-9_-]+)$/,
      handler: page(async ({ req, res, params, session }) => {
        needAuditor(audit, session.identity);
        const id = params[0] ?? '';
        const records = await sessionTranscript(audit.dir, id);
        if (records.length === 0) throw new AirlockError('AIRLOCK_UNSUPPORTED', `no session ${id} in the audit log`);
        const start = fields(records[0] as AuditRecord);
        const identity = (start.identity ?? {}) as { subject?: unknown };
        const hasCast = existsSync(recordingPath(audit.stateDir, id));
        const player = hasCast
          ? `<h2>Shell replay</h2><div id="player" data-cast="/console/api/sessions/${encodeURIComponent(id)}/cast"></div>`
          : '';
        sendHtml(
          req,
          res,
          200,
          `Session ${id}`,
          `<main data-page="session"><h1>Session <code>${escapeHtml(id)}</code></h1><p>${escapeHtml(text(identity.subject))} → ${escapeHtml(text(start.connection))} (${escapeHtml(text(start.protocol))})</p>${player}<h2>Transcript</h2><table class="list transcript"><thead><tr><th>Time</th><th>Event</th><th>Statement / command</th><th>Decision</th><th>Rules</th><th>Detail</th></tr></thead><tbody>${records.map(transcriptRow).join('')}</tbody></table></main>`,
          nav(session, 'sessions'),
          { wasm: hasCast },
        );
      }),
    },
    {
      method: 'GET',
      pattern: /^\/console\/api\/sessions\/([A-Za-z0-9_-]+)\/cast$/,
      handler: page(async ({ res, params, session }) => {
        needAuditor(audit, session.identity);
        const file = recordingPath(audit.stateDir, params[0] ?? '');
        if (!existsSync(file)) throw new AirlockError('AIRLOCK_UNSUPPORTED', 'no recording for this session');
        // Keystrokes ("i" events) may hold what a user typed at a password prompt: the player needs output only.
        const lines = (await readFile(file, 'utf8')).split('\n').filter((line, i) => line !== '' && (i === 0 || !/^\[[^,]*,\s*"i"/.test(line)));
        const body = `${lines.join('\n')}\n`;
        res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/x-asciicast', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      }),
    },
  ];
}

/** The last signed checkpoint of one node whose signature and chain checked out. */
export interface VerifiedCheckpoint {
  node: string;
  seq: number;
  ts: string;
  /** The record it signs. */
  headSeq: number;
  /** The signing key's id. */
  key: string;
}

function checkpointTable(list: VerifiedCheckpoint[]): string {
  if (list.length === 0) return '<p class="empty">No signed checkpoint verified yet (one is signed every 1000 events and when the daemon stops).</p>';
  const rows = list.map((c) => `<tr><td>${escapeHtml(c.node)}</td><td>${c.seq}</td><td>${escapeHtml(c.ts)}</td><td>${c.headSeq}</td><td><code>${escapeHtml(c.key)}</code></td></tr>`).join('');
  return `<h2>Last verified checkpoint per node</h2><table class="list checkpoints"><thead><tr><th>Node</th><th>Seq</th><th>Written</th><th>Signs seq</th><th>Key</th></tr></thead><tbody>${rows}</tbody></table>`;
}

export function auditRoutes(
  audit: AuditView,
  page: PageHandler,
  needSession: (req: IncomingMessage) => ConsoleSession,
  needStateChange: (req: IncomingMessage) => ConsoleSession,
): AdminRoute[] {
  let last: { at: number; by: string; result: VerifyResult; checkpoints: VerifiedCheckpoint[] } | null = null;
  const render = (): string => {
    if (last === null) return '<p id="verify-result" data-state="never">Not verified since this daemon started.</p><section id="checkpoints"></section>';
    const r = last.result;
    const outcome = r.ok ? `intact: ${r.count} events` : `BROKEN at ${r.file}:${r.line}: ${r.problem}`;
    return `<p id="verify-result" data-state="${r.ok ? 'ok' : 'broken'}">${escapeHtml(outcome)} <small>(verified ${escapeHtml(formatTime(last.at))} by ${escapeHtml(last.by)})</small></p><section id="checkpoints">${checkpointTable(last.checkpoints)}</section>`;
  };
  return [
    {
      method: 'GET',
      pattern: /^\/console\/audit$/,
      handler: page(async ({ req, res, session }) => {
        needAuditor(audit, session.identity);
        const exporters = audit.exporters();
        sendHtml(
          req,
          res,
          200,
          'Audit',
          `<main data-page="audit"><h1>Audit chain</h1>${render()}<button type="button" id="verify-now">Verify now</button><h2>Exporters</h2>${exporters.length === 0 ? '<p class="empty">No exporters configured.</p>' : `<pre class="stmt">${escapeHtml(JSON.stringify(exporters, null, 2))}</pre>`}</main>`,
          nav(session, 'audit'),
        );
      }),
    },
    {
      method: 'POST',
      pattern: /^\/console\/api\/audit\/verify$/,
      handler: async ({ req, res }) => {
        const s = needStateChange(req);
        needAuditor(audit, s.identity);
        // The same check as `airlock audit verify`.
        const byNode = new Map<string, VerifiedCheckpoint>();
        const result = await verifyAudit(audit.dir, {
          onCheckpoint: (r) => byNode.set(r.node, { node: r.node, seq: r.seq, ts: r.ts, headSeq: r.seq - 1, key: String((r.event as { key?: unknown }).key ?? '') }),
        });
        last = { at: Date.now(), by: s.identity.subject, result, checkpoints: [...byNode.values()].sort((a, b) => a.node.localeCompare(b.node)) };
        sendJson(res, 200, { verifiedAt: last.at, ...result, checkpoints: last.checkpoints });
      },
    },
    {
      method: 'GET',
      pattern: /^\/console\/api\/audit$/,
      handler: async ({ req, res }) => {
        const s = needSession(req);
        needAuditor(audit, s.identity);
        sendJson(res, 200, { last, exporters: audit.exporters() });
      },
    },
  ];
}

