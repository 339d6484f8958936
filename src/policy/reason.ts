/**
 * The sentence a caller reads when a rule without its own `reason` denies or holds an
 * action: what was asked, where, and for whom the rule applies.
 */
import type { Action, Identity } from '../core/types.js';
import type { CompiledRule, Evidence } from './rule.js';

function clip(text: string, max = 80): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

function describeSql(action: Extract<Action, { kind: 'sql' }>, ev: Evidence): string {
  const s = action.statement;
  let what: string;
  if (ev.withoutWhere === true) what = `an unbounded ${(ev.kinds ?? s.kinds.slice(0, 1)).map((k) => k.toUpperCase()).join('/')} (nothing in its text pins the rows it changes)`;
  else if (ev.unparsed === true) what = 'SQL that airlock could not parse';
  else if (ev.kinds !== undefined) what = ev.kinds.map((k) => k.toUpperCase()).join('/');
  else what = (s.kinds[0] ?? 'other').toUpperCase();
  if (ev.opaque === true && ev.unparsed !== true) what += ' whose effects cannot be known from its text';
  if (ev.table !== undefined) what += ` touching ${ev.table}`;
  if (ev.tableRead !== undefined) what += ` reading ${ev.tableRead}`;
  if (ev.tableWritten !== undefined) what += ` writing ${ev.tableWritten}`;
  if (ev.fn !== undefined) what += ` calling ${ev.fn}`;
  return what;
}

function describeAction(action: Action, ev: Evidence): string {
  switch (action.kind) {
    case 'connect':
      return 'connecting';
    case 'sql':
      return describeSql(action, ev);
    case 'shell':
    case 'exec':
      if (ev.notAllowed !== undefined) return `the command "${clip(action.kind === 'exec' ? action.command : 'shell')}" (${ev.notAllowed})`;
      if (ev.program !== undefined) return `running ${ev.program}`;
      return `the command "${clip(ev.command ?? action.command)}"`;
    case 'sftp':
      return `SFTP ${action.op} ${clip(action.path)}`;
    case 'forward':
      return `forwarding to ${action.host}:${action.port}`;
    case 'http':
      return `${action.websocket === true ? 'a WebSocket upgrade at ' : ''}${action.method.toUpperCase()} ${clip(action.path)}`;
  }
}

function describeWho(rule: CompiledRule, identity: Identity): string {
  const w = rule.config.when;
  if (w.groups !== undefined) {
    const g = identity.groups.find((x) => w.groups?.includes(x));
    if (g !== undefined) return ` for members of ${g}`;
  }
  if (w.kinds !== undefined) return ` for ${identity.kind} identities`;
  if (w.subjects !== undefined) return ` for ${identity.subject}`;
  return '';
}

export function explain(rule: CompiledRule, ev: Evidence, action: Action, identity: Identity, connection: string): string {
  // Matched only because what the statement does is unknown: say so, or the reason misleads.
  let unknown = ev.unknownEffects === true ? ' (its effects cannot be known from its text, so every rule about effects applies to it)' : '';
  if (ev.unknownCommands !== undefined && ev.notAllowed === undefined) unknown = ` (what this line runs cannot be known from its text — ${clip(ev.unknownCommands)} — so every rule about commands applies to it)`;
  if (rule.config.reason !== undefined) return `${rule.config.reason}${unknown}`;
  const where = action.kind === 'connect' ? ` to ${connection}` : ` on ${connection}`;
  const base = `${describeAction(action, ev)}${where}${describeWho(rule, identity)}`;
  if (rule.config.effect !== 'approve') return base;
  return `${base} needs approval from ${(rule.config.approvers ?? []).join(' or ')}`;
}

export function explainUnparsed(identity: Identity, connection: string): string {
  return `airlock could not parse this statement, and no rule allows unparsed SQL for ${identity.subject} on ${connection}`;
}

export function explainWebsocket(identity: Identity, connection: string): string {
  return `no rule allows WebSocket upgrades (when: { http: { websocket: true } }) for ${identity.subject} at this path on ${connection}`;
}

export function explainLoadDataLocal(identity: Identity, connection: string): string {
  return `no rule allows LOAD DATA LOCAL INFILE (when: { statements: [load_data_local] }) for ${identity.subject} on ${connection}`;
}

export function explainMethodOverride(identity: Identity, connection: string, header: string): string {
  return `the request carries ${header}, which some servers obey as the method, and no rule allows method overrides (when: { http: { method_override: true } }) for ${identity.subject} at this path on ${connection}`;
}
