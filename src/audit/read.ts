/**
 * Readers over the local audit directory: events, the session index, transcripts and
 * their replay. They read what is there and skip what is not a record (`verify` is the
 * place that judges the files).
 */
import { join } from 'node:path';
import { listAuditFiles, readLines } from './files.js';
import { fieldsOf, parseRecordShape } from './record.js';
import type { AuditRecord, SessionSummary } from './types.js';

export interface EventFilter {
  /** Only events of this session (session events and approvals for it). */
  session?: string;
  types?: string[];
  /** ms since the epoch: skips whole files of days that ended before it, then events before it. */
  sinceMs?: number;
}

export function sessionOf(r: AuditRecord): string | null {
  const e = fieldsOf(r.event);
  if (typeof e.session === 'string') return e.session;
  const approval = e.approval as { sessionId?: unknown } | undefined;
  if (approval !== undefined && typeof approval.sessionId === 'string') return approval.sessionId;
  return null;
}

export async function* readEvents(dir: string, filter: EventFilter = {}): AsyncGenerator<AuditRecord> {
  for (const f of await listAuditFiles(dir)) {
    if (filter.sinceMs !== undefined && Date.parse(`${f.day}T00:00:00Z`) + 86_400_000 < filter.sinceMs) continue;
    for await (const l of readLines(join(dir, f.name))) {
      if (!l.complete) continue;
      const r = parseRecordShape(l.text);
      if (r === null) continue;
      if (filter.sinceMs !== undefined && Date.parse(r.ts) < filter.sinceMs) continue;
      if (filter.types !== undefined && !filter.types.includes(r.event.type)) continue;
      if (filter.session !== undefined && sessionOf(r) !== filter.session) continue;
      yield r;
    }
  }
}

export interface SessionFilter {
  /** Sessions that started at or after this time (ms since the epoch). */
  sinceMs?: number;
  subject?: string;
  connection?: string;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

export async function listSessions(dir: string, filter: SessionFilter = {}): Promise<SessionSummary[]> {
  const sessions = new Map<string, SessionSummary>();
  const types = ['session.start', 'action', 'session.end'];
  for await (const r of readEvents(dir, { types, ...(filter.sinceMs === undefined ? {} : { sinceMs: filter.sinceMs }) })) {
    const e = fieldsOf(r.event);
    const id = str(e.session);
    if (id === null) continue;
    if (e.type === 'session.start') {
      const identity = (e.identity ?? {}) as { subject?: unknown; issuer?: unknown };
      const client = (e.client ?? {}) as { address?: unknown; port?: unknown };
      sessions.set(id, {
        session: id,
        subject: str(identity.subject),
        issuer: str(identity.issuer),
        connection: str(e.connection),
        protocol: str(e.protocol),
        client: typeof client.address === 'string' ? `${client.address}:${String(client.port)}` : null,
        startedAt: r.ts,
        endedAt: null,
        endReason: null,
        actions: 0,
        denied: 0,
        held: 0,
      });
      continue;
    }
    const s = sessions.get(id);
    if (s === undefined) continue;
    if (e.type === 'action') {
      s.actions++;
      if (e.decision === 'deny') s.denied++;
      if (e.decision === 'hold') s.held++;
    } else {
      s.endedAt = r.ts;
      s.endReason = str(e.reason);
    }
  }
  return [...sessions.values()].filter(
    (s) =>
      (filter.subject === undefined || s.subject === filter.subject) &&
      (filter.connection === undefined || s.connection === filter.connection),
  );
}

export async function sessionTranscript(dir: string, id: string): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of readEvents(dir, { session: id })) out.push(r);
  return out;
}

function describe(r: AuditRecord): string {
  const e = fieldsOf(r.event);
  switch (e.type) {
    case 'session.start': {
      const id = (e.identity ?? {}) as { subject?: unknown; kind?: unknown; issuer?: unknown; groups?: unknown };
      const c = (e.client ?? {}) as { address?: unknown; port?: unknown };
      const groups = Array.isArray(id.groups) ? id.groups.join(',') : '';
      return `${String(id.subject)} (${String(id.kind)}, ${String(id.issuer)}, groups ${groups}) to ${String(e.connection)} [${String(e.protocol)}] from ${String(c.address)}:${String(c.port)}, lease ${String(e.lease)}`;
    }
    case 'action': {
      const a = (e.action ?? {}) as { kind?: unknown; text?: unknown; command?: unknown; method?: unknown; path?: unknown; websocket?: unknown };
      const http = `${a.websocket === true ? 'WebSocket ' : ''}${String(a.method)} ${String(a.path)}`;
      const what = typeof a.text === 'string' ? a.text : typeof a.command === 'string' ? a.command : a.method !== undefined ? http : String(a.kind);
      const rules = Array.isArray(e.rules) && e.rules.length > 0 ? ` [${e.rules.join(', ')}]` : '';
      const why = e.decision !== 'allow' && typeof e.reason === 'string' ? ` (${String(e.rule)}: ${e.reason})` : '';
      return `${String(e.decision).toUpperCase()}${rules}${why} ${what.replace(/\s+/g, ' ').trim()}`;
    }
    case 'result': {
      const masked = Array.isArray(e.maskedColumns) && e.maskedColumns.length > 0 ? ` masked ${e.maskedColumns.join(',')}` : '';
      const err = typeof e.errorCode === 'string' ? ` error ${e.errorCode}` : '';
      const li = e.localInfile as { file?: unknown; bytes?: unknown; sha256?: unknown } | undefined;
      const file = li === undefined ? '' : ` local file ${JSON.stringify(String(li.file))} ${String(li.bytes)} bytes${typeof li.sha256 === 'string' ? ` sha256 ${li.sha256}` : ' (cut off)'}`;
      return `${String(e.rows)} rows, ${String(e.bytes)} bytes, ${String(e.durationMs)} ms${masked}${file}${err}`;
    }
    case 'approval.requested':
    case 'approval.decided': {
      const a = (e.approval ?? {}) as { id?: unknown; status?: unknown; decidedBy?: unknown; reason?: unknown; rule?: unknown };
      const by = typeof a.decidedBy === 'string' ? ` by ${a.decidedBy}` : '';
      const reason = typeof a.reason === 'string' ? `: ${a.reason}` : '';
      return `${String(a.id)} ${String(a.status)} (rule ${String(a.rule)})${by}${reason}`;
    }
    case 'session.end':
      return `${String(e.reason)}${typeof e.durationMs === 'number' ? `, ${e.durationMs} ms` : ''}`;
    case 'http.exchange': {
      // One line for the exchange, then the (already redacted, masked, capped) bodies indented.
      const query = typeof e.query === 'string' && e.query !== '' ? `?${e.query}` : '';
      const bytes = typeof e.responseBytes === 'number' ? `, ${e.responseBytes} bytes` : '';
      const err = typeof e.errorCode === 'string' ? ` error ${e.errorCode}${typeof e.rule === 'string' ? ` (rule ${e.rule})` : ''}` : '';
      const body = (label: string, v: unknown): string => {
        if (typeof v !== 'string' || v === '') return '';
        const flat = v.replace(/\s+/g, ' ');
        return `\n    ${label} ${flat.length > 200 ? `${flat.slice(0, 200)}…` : flat}`;
      };
      return `${String(e.method)} ${String(e.path)}${query} -> ${String(e.status)}, ${String(e.durationMs)} ms${bytes}${err} [${String(e.requestId)}]${body('>', e.requestBody)}${body('<', e.responseBody)}`;
    }
    case 'websocket.frame': {
      // Who sent it, which way it went, what it was; text as recorded (capped, masked).
      const arrow = e.from === 'client' ? '>' : '<';
      const close = typeof e.code === 'number' ? ` ${e.code}${typeof e.reason === 'string' && e.reason !== '' ? ` ${e.reason}` : ''}` : '';
      const text = typeof e.text === 'string' && e.text !== '' ? `: ${e.text.replace(/\s+/g, ' ').slice(0, 200)}${e.truncated === true || e.text.length > 200 ? '…' : ''}` : '';
      return `${String(e.from)} ${arrow} ${String(e.opcode)}${e.fin === false ? ' (more follows)' : ''} ${String(e.length)} bytes${close}${text}`;
    }
    case 'websocket.closed': {
      const code = typeof e.closeCode === 'number' ? ` with ${e.closeCode}` : '';
      const err = typeof e.errorCode === 'string' ? ` error ${e.errorCode}` : '';
      return `${String(e.path)} closed by ${String(e.by)}${code}: ${String(e.reason)}${err}, ${String(e.durationMs)} ms, ${String(e.framesFromClient)}/${String(e.framesFromUpstream)} frames [${String(e.requestId)}]`;
    }
    default:
      return JSON.stringify(e);
  }
}

/** One line per event: time, type, what happened. */
export function renderTranscript(records: AuditRecord[]): string {
  return records.map((r) => `${r.ts}  ${r.event.type.padEnd(18)} ${describe(r)}`).join('\n') + (records.length > 0 ? '\n' : '');
}

export interface ReplayOptions {
  /** 2: twice as fast. Default 1. */
  speed?: number;
  /** Caps a pause between events (before speed applies), as asciinema's idle limit does. */
  idleLimitMs?: number;
  write: (line: string) => void;
  signal?: AbortSignal;
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Writes the transcript paced as it happened. */
export async function replayTranscript(records: AuditRecord[], opts: ReplayOptions): Promise<void> {
  const speed = opts.speed !== undefined && opts.speed > 0 ? opts.speed : 1;
  let prev: number | null = null;
  for (const r of records) {
    const t = Date.parse(r.ts);
    if (prev !== null) {
      const gap = Math.min(Math.max(0, t - prev), opts.idleLimitMs ?? Number.POSITIVE_INFINITY);
      if (gap > 0) await pause(gap / speed, opts.signal);
    }
    prev = t;
    opts.write(renderTranscript([r]));
  }
}
