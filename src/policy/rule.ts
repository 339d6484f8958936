/**
 * One `rules:` entry compiled once: globs become RegExps, and the rule knows which
 * action kinds it can ever apply to, so the hot path skips the rest.
 */
import { analyzeShell, type ShellAnalysis } from '../../parsers/shell/index.js';
import type { RuleConfig } from '../config/index.js';
import type { Action, Identity } from '../core/types.js';
import { ProgramAllowList } from './allow-list.js';
import { GlobSet } from './glob.js';
import { ForwardGlobs } from './forward.js';
import { methodOverride } from './http-method.js';
import type { SqlFacts } from './sql-facts.js';

export type ActionKind = Action['kind'];
export const ACTION_KINDS: readonly ActionKind[] = ['connect', 'sql', 'shell', 'exec', 'sftp', 'forward', 'http'];

type When = RuleConfig['when'];
type Family = 'sql' | 'shell' | 'sftp' | 'forward' | 'http';

/** Which `when` keys belong to which kind of action. Identity and connection keys belong to all. */
const FAMILY_OF_KEY: Record<string, Family> = {
  statements: 'sql',
  tables: 'sql',
  tables_read: 'sql',
  tables_written: 'sql',
  functions: 'sql',
  without_where: 'sql',
  unbounded: 'sql',
  opaque: 'sql',
  unparsed: 'sql',
  commands: 'shell',
  programs: 'shell',
  programs_allowed: 'shell',
  interactive: 'shell',
  forward: 'forward',
  sftp: 'sftp',
  http: 'http',
};

const FAMILY_OF_ACTION: Record<Exclude<ActionKind, 'connect'>, Family> = {
  sql: 'sql',
  shell: 'shell',
  exec: 'shell',
  sftp: 'sftp',
  forward: 'forward',
  http: 'http',
};

/** What about the action made a rule match; feeds the generated reason. */
export interface Evidence {
  kinds?: string[];
  withoutWhere?: boolean;
  opaque?: boolean;
  unparsed?: boolean;
  table?: string;
  tableRead?: string;
  tableWritten?: string;
  fn?: string;
  command?: string;
  program?: string;
  /** A shell line matched only because what it runs cannot be known: the analyser's first reason. */
  unknownCommands?: string;
  /** Matched a `programs_allowed` rule: what the list does not admit, and why. */
  notAllowed?: string;
  /** Matched only because the statement's effects cannot be known (fail closed). */
  unknownEffects?: boolean;
}

export interface CompiledRule {
  readonly config: RuleConfig;
  readonly index: number;
  /** Action kinds this rule can match at all. */
  readonly appliesTo: ReadonlySet<ActionKind>;
  matchesIdentity(identity: Identity): boolean;
  matchesConnection(connection: string): boolean;
  /** Evidence when the action part of `when` matches, else null. Identity/connection are checked beforehand. */
  matchAction(action: Action, sql: SqlFacts | null): Evidence | null;
}

function appliesTo(when: When): Set<ActionKind> {
  const actionKeys = Object.entries(when)
    .filter(([key, value]) => value !== undefined && FAMILY_OF_KEY[key] !== undefined)
    .map(([key]) => key);
  const families = new Set(actionKeys.map((k) => FAMILY_OF_KEY[k]));
  const out = new Set<ActionKind>();
  // A connect action matches only rules that name `connect` and say nothing else about the action.
  if (when.statements?.includes('connect') === true && actionKeys.length === 1) out.add('connect');
  if (families.size > 1) return out; // e.g. tables and commands together: no action has both
  for (const kind of ACTION_KINDS) {
    if (kind === 'connect') continue;
    if (families.size === 0 || families.has(FAMILY_OF_ACTION[kind])) out.add(kind);
  }
  return out;
}

/** A glob without a schema part names the table in any schema: `orders` is `*.orders`. */
function tableGlobs(globs: string[]): GlobSet {
  return new GlobSet(globs.map((g) => (g.includes('.') ? g : `*.${g}`)));
}

function firstMatch(set: GlobSet, values: Iterable<string>): string | null {
  for (const v of values) if (set.test(v)) return v;
  return null;
}

export function compileRule(config: RuleConfig, index: number): CompiledRule {
  const w = config.when;
  const groups = w.groups === undefined ? null : new Set(w.groups);
  const kinds = w.kinds === undefined ? null : new Set<string>(w.kinds);
  const subjects = w.subjects === undefined ? null : new GlobSet(w.subjects, { separator: null });
  const connections = w.connections === undefined ? null : new GlobSet(w.connections, { separator: null });
  const statements = w.statements === undefined ? null : new Set<string>(w.statements);
  const tables = w.tables === undefined ? null : tableGlobs(w.tables);
  const tablesRead = w.tables_read === undefined ? null : tableGlobs(w.tables_read);
  const tablesWritten = w.tables_written === undefined ? null : tableGlobs(w.tables_written);
  const functions = w.functions === undefined ? null : new GlobSet(w.functions);
  const commands = w.commands === undefined ? null : new GlobSet(w.commands, { separator: null });
  const programs = w.programs === undefined ? null : new GlobSet(w.programs, { separator: null });
  const allowList = w.programs_allowed === undefined ? null : new ProgramAllowList(w.programs_allowed);
  const forward = w.forward === undefined ? null : new ForwardGlobs(w.forward);
  const sftpOps = w.sftp?.ops === undefined ? null : new Set(w.sftp.ops.map((o) => o.toLowerCase()));
  const sftpPaths = w.sftp?.paths === undefined ? null : new GlobSet(w.sftp.paths, { separator: '/' });
  const httpMethods = w.http?.methods === undefined ? null : new Set(w.http.methods.map((m) => m.toUpperCase()));
  const httpPaths = w.http?.paths === undefined ? null : new GlobSet(w.http.paths, { separator: '/', ignoreCase: w.http.case_sensitive !== true });
  const httpWebsocket = w.http?.websocket;
  /** `unbounded` is `without_where` under its meaning's name: a write its text does not bound. */
  const unbounded = w.without_where ?? w.unbounded;
  const httpOverride = w.http?.method_override;

  /** Whether the rule says anything about what a statement does (kinds, tables, functions, WHERE). */
  const judgesEffects = statements !== null || tables !== null || tablesRead !== null || tablesWritten !== null || functions !== null || unbounded !== undefined;

  function matchSql(facts: SqlFacts): Evidence | null {
    const s = facts.statement;
    const ev: Evidence = {};
    // A statement whose effects cannot be known from its text (DO, CALL, EXECUTE, a stored
    // function, PREPARE … FROM @var) could do what any deny or approve rule about effects
    // names: it matches them all — fail closed, as command rules do for opaque shell lines.
    if (s.opaque && config.effect !== 'allow' && judgesEffects && w.opaque === undefined && w.unparsed === undefined && !s.kinds.includes('connect')) {
      return { opaque: true, unknownEffects: true };
    }
    if (statements !== null) {
      const hit = s.kinds.filter((k) => statements.has(k));
      if (hit.length === 0) return null;
      ev.kinds = hit;
    }
    if (unbounded !== undefined) {
      if (s.withoutWhere !== unbounded) return null;
      ev.withoutWhere = s.withoutWhere;
    }
    if (w.opaque !== undefined) {
      if (s.opaque !== w.opaque) return null;
      ev.opaque = s.opaque;
    }
    if (w.unparsed !== undefined) {
      if (s.unparsed !== w.unparsed) return null;
      ev.unparsed = s.unparsed;
    }
    if (tables !== null) {
      const hit = firstMatch(tables, facts.allNames());
      if (hit === null) return null;
      ev.table = hit;
    }
    if (tablesRead !== null) {
      const hit = firstMatch(tablesRead, facts.readNames());
      if (hit === null) return null;
      ev.tableRead = hit;
    }
    if (tablesWritten !== null) {
      const hit = firstMatch(tablesWritten, facts.writtenNames());
      if (hit === null) return null;
      ev.tableWritten = hit;
    }
    if (functions !== null) {
      const hit = firstMatch(functions, facts.functionNames());
      if (hit === null) return null;
      ev.fn = hit;
    }
    return ev;
  }

  function matchCommand(command: string, argv0: string | null): Evidence | null {
    const ev: Evidence = {};
    // A line whose commands cannot all be known (unparsed, or $VAR / eval / a shell reading
    // stdin as a program) matches every deny and approve rule about commands: fail closed.
    if ((commands !== null || programs !== null || allowList !== null) && config.effect !== 'allow') {
      const a = shellAnalysis(command);
      if (a.unparsed || a.opaque) {
        if (a.unparsed) ev.unparsed = true;
        else ev.opaque = true;
        ev.unknownCommands = a.reasons[0] ?? (a.unparsed ? 'the line does not parse' : 'opaque');
        return ev;
      }
    }
    if (commands !== null) {
      const hit = firstMatch(commands, commandLines(command));
      if (hit === null) return null;
      ev.command = hit;
    }
    if (programs !== null) {
      const names = shellAnalysis(command).commands.map((c) => c.program).filter((p) => p !== '');
      if (argv0 !== null && argv0 !== '') names.unshift(argv0.slice(argv0.lastIndexOf('/') + 1));
      const hit = firstMatch(programs, names);
      if (hit === null) return null;
      ev.program = hit;
    }
    if (allowList !== null) {
      const outside = allowList.check(shellAnalysis(command));
      if (outside === null) return null;
      if (outside.program !== '') ev.program = outside.program;
      ev.notAllowed = outside.why;
    }
    return ev;
  }

  const applies = appliesTo(w);
  return {
    config,
    index,
    appliesTo: applies,
    matchesIdentity(identity) {
      if (groups !== null && !identity.groups.some((g) => groups.has(g))) return false;
      if (kinds !== null && !kinds.has(identity.kind)) return false;
      if (subjects !== null && !subjects.test(identity.subject)) return false;
      return true;
    },
    matchesConnection(connection) {
      return connections === null || connections.test(connection);
    },
    matchAction(action, sql) {
      if (!applies.has(action.kind)) return null;
      switch (action.kind) {
        case 'connect':
          return { kinds: ['connect'] };
        case 'sql':
          return sql === null ? null : matchSql(sql);
        case 'shell':
          if (w.interactive === false) return null;
          // An interactive shell runs whatever is typed: no allow-list admits it.
          if (allowList !== null) return { notAllowed: 'an interactive shell runs commands no allow-list has seen' };
          return matchCommand(action.command, null);
        case 'exec':
          // An exec that can become a shell counts as interactive (rules saying `interactive: false` skip it).
          if (w.interactive !== undefined && w.interactive !== (action.interactive === true)) return null;
          return matchCommand(action.command, action.argv[0] ?? '');
        case 'forward':
          return forward === null || forward.test(action.host, action.port) ? {} : null;
        case 'sftp':
          if (sftpOps !== null && !sftpOps.has(action.op.toLowerCase())) return null;
          return sftpPaths === null || sftpPaths.test(action.path) ? {} : null;
        case 'http': {
          if (httpMethods !== null && !httpMethods.has(action.method.toUpperCase())) return null;
          if (httpWebsocket !== undefined && (action.websocket === true) !== httpWebsocket) return null;
          if (httpOverride !== undefined && (methodOverride(action.headers, action.query) !== null) !== httpOverride) return null;
          if (httpPaths === null) return {};
          const bare = action.path.split(/[?#]/, 1)[0] ?? action.path;
          // Most servers route /a/b/ as /a/b (Express, Spring before 6, many APIs): either spelling matches.
          const other = bare === '/' ? bare : bare.endsWith('/') ? bare.slice(0, -1) : `${bare}/`;
          return httpPaths.test(bare) || httpPaths.test(other) || httpPaths.test(action.path) ? {} : null;
        }
      }
    },
  };
}

/**
 * The line itself and the text of every simple command a shell would run for it,
 * including those inside `$(…)`, `sh -c '…'`, `eval` and wrappers (`sudo rm` → `rm`).
 */
export function commandLines(command: string): string[] {
  const whole = command.trim();
  const out = new Set([whole]);
  for (const c of shellAnalysis(command).commands) if (c.text !== '') out.add(c.text);
  return [...out];
}

/** Every rule asks about the same line in turn: analyse it once. */
let lastAnalysis: { command: string; analysis: ShellAnalysis } | null = null;
export function shellAnalysis(command: string): ShellAnalysis {
  if (lastAnalysis?.command !== command) lastAnalysis = { command, analysis: analyzeShell(command) };
  return lastAnalysis.analysis;
}
