/**
 * What one parsed PostgreSQL statement does: its kinds, the relations it reads and writes,
 * the functions it calls, UPDATE/DELETE without WHERE, and whether its effects are opaque.
 *
 * Soundness rests on one rule: every node is visited. Statement types that write or scope
 * names have handlers; everything else is walked generically, so any RangeVar found there
 * counts as a read and any FuncCall as a call. Over-reporting is the failure mode, never
 * under-reporting.
 */
import type { RelationRef, StatementKind } from '../types.js';
import { unboundedWrite } from './bounds.js';
import { isObject, list, names, nodeOf, str, unwrap, type JsonObject } from './node.js';
import { classifyFunction, classifyOperator, classifyTablesample } from './routines.js';

export interface Effects {
  kinds: StatementKind[];
  reads: Map<string, RelationRef>;
  writes: Map<string, RelationRef>;
  functions: Set<string>;
  withoutWhere: boolean;
  opaque: boolean;
  /** The analysis looked at a literal's value (a routine body, an EXPLAIN option): not cacheable by fingerprint. */
  literalDependent: boolean;
}

interface Scope {
  fx: Effects;
  /** Names of the CTEs visible here: an unqualified FROM name among them is not a relation. */
  ctes: ReadonlySet<string>;
  /** Inside EXPLAIN without ANALYZE: planned, not run — targets are only read. */
  planOnly: boolean;
}

/** Analyses a routine body given as text (LANGUAGE sql / plpgsql, DO); supplied by the caller to avoid a cycle. */
export type BodyAnalyzer = (body: string, language: string, fx: Effects) => void;

let bodyAnalyzer: BodyAnalyzer = (_body, _language, fx) => { fx.opaque = true; };
export function setBodyAnalyzer(analyzer: BodyAnalyzer): void { bodyAnalyzer = analyzer; }

export function emptyEffects(): Effects {
  return {
    kinds: [], reads: new Map(), writes: new Map(), functions: new Set(),
    withoutWhere: false, opaque: false, literalDependent: false,
  };
}

/** Adds the effects of one statement node (wrapped, as in RawStmt.stmt) to `fx`. */
export function collectStatement(stmt: unknown, fx: Effects): void {
  walkStatement(stmt, { fx, ctes: new Set(), planOnly: false }, true);
}

const relationKey = (ref: RelationRef): string => `${ref.schema ?? ''}\u0000${ref.name}`;

function addKind(s: Scope, kind: StatementKind): void {
  if (s.planOnly) return;
  if (!s.fx.kinds.includes(kind)) s.fx.kinds.push(kind);
}

export function relationOf(rangeVar: JsonObject): RelationRef | null {
  const name = str(rangeVar.relname);
  if (name === null) return null;
  const schema = str(rangeVar.schemaname) ?? (rangeVar.relpersistence === 't' ? 'pg_temp' : null);
  return { schema, name };
}

function read(s: Scope, ref: RelationRef | null): void {
  if (ref !== null) s.fx.reads.set(relationKey(ref), ref);
}

function write(s: Scope, ref: RelationRef | null): void {
  if (ref === null) return;
  if (s.planOnly) read(s, ref);
  else s.fx.writes.set(relationKey(ref), ref);
}

function rangeVarRead(rv: JsonObject, s: Scope): void {
  const ref = relationOf(rv);
  if (ref !== null && ref.schema === null && str(rv.schemaname) === null && s.ctes.has(ref.name)) return;
  read(s, ref);
}

function targetOf(value: unknown): RelationRef | null {
  const rv = nodeOf(value, 'RangeVar');
  return rv === null ? null : relationOf(rv);
}

/** Dotted name as a relation: ['a','b'] → a.b; ['c'] → c; ['db','a','b'] → a.b. */
function relationFromNames(parts: readonly string[]): RelationRef | null {
  const name = parts[parts.length - 1];
  if (name === undefined) return null;
  return { schema: parts.length > 1 ? (parts[parts.length - 2] ?? null) : null, name };
}

/** Generic walk: arrays, wrapped nodes (dispatched) and bare structs (a bare RangeVar is a read). */
function walk(value: unknown, s: Scope): void {
  if (Array.isArray(value)) { for (const v of value) walk(v, s); return; }
  if (!isObject(value)) return;
  const node = unwrap(value);
  if (node !== null) { walkNode(node.type, node.fields, s); return; }
  if (typeof value.relname === 'string') { rangeVarRead(value, s); return; }
  for (const key of Object.keys(value)) walk(value[key], s);
}

function walkFields(fields: JsonObject, s: Scope, skip: readonly string[]): void {
  for (const key of Object.keys(fields)) if (!skip.includes(key)) walk(fields[key], s);
}

/** A node that is itself a statement (top level, or the body of EXPLAIN/COPY/PREPARE/…). */
function walkStatement(value: unknown, s: Scope, countsAsKind: boolean): void {
  const node = unwrap(value);
  if (node === null) { walk(value, s); return; }
  if (node.type === 'SelectStmt') { walkSelect(node.fields, s, countsAsKind); return; }
  walkNode(node.type, node.fields, s);
}

function withScope(withClause: unknown, s: Scope): Scope {
  const w = isObject(withClause) ? withClause : null;
  if (w === null) return s;
  const ctes = list(w.ctes).map((c) => nodeOf(c, 'CommonTableExpr')).filter((c): c is JsonObject => c !== null);
  const all = new Set(s.ctes);
  for (const c of ctes) { const n = str(c.ctename); if (n !== null) all.add(n); }
  const recursive = w.recursive === true;
  const visible = new Set(s.ctes);
  for (const c of ctes) {
    // Without RECURSIVE a CTE sees only the ones before it: `WITH a AS (SELECT * FROM a)` reads table a.
    const inner: Scope = { ...s, ctes: recursive ? all : new Set(visible) };
    walkStatement(c.ctequery, inner, false);
    walkFields(c, inner, ['ctequery']);
    const n = str(c.ctename);
    if (n !== null) visible.add(n);
  }
  return { ...s, ctes: all };
}

function walkSelect(f: JsonObject, outer: Scope, countsAsKind: boolean): void {
  if (countsAsKind) addKind(outer, 'select');
  const s = withScope(f.withClause, outer);
  const into = isObject(f.intoClause) ? f.intoClause : null;
  if (into !== null) {
    addKind(s, 'create');
    write(s, targetOf(into.rel));
    walkFields(into, s, ['rel']);
  }
  for (const arm of [f.larg, f.rarg]) if (isObject(arm)) walkSelect(arm, s, false);
  walkFields(f, s, ['withClause', 'intoClause', 'larg', 'rarg']);
}

function walkModify(kind: 'insert' | 'update' | 'delete' | 'merge', f: JsonObject, outer: Scope): void {
  addKind(outer, kind);
  const s = withScope(f.withClause, outer);
  const target = targetOf(f.relation);
  write(s, target);
  // UPDATE/DELETE/MERGE read the target's rows; INSERT does with RETURNING or ON CONFLICT.
  if (kind !== 'insert' || f.returningClause !== undefined || f.onConflictClause !== undefined) read(s, target);
  if (!s.planOnly && unboundedWrite(kind, f, outer.ctes)) s.fx.withoutWhere = true;
  // Rules match effects: an upsert's DO UPDATE is an update.
  if (kind === 'insert' && isObject(f.onConflictClause) && f.onConflictClause.action === 'ONCONFLICT_UPDATE') addKind(s, 'update');
  if (kind === 'merge') {
    for (const w of list(f.mergeWhenClauses)) {
      const clause = nodeOf(w, 'MergeWhenClause');
      const cmd = clause === null ? null : str(clause.commandType);
      if (cmd === 'CMD_INSERT') addKind(s, 'insert');
      else if (cmd === 'CMD_UPDATE') addKind(s, 'update');
      else if (cmd === 'CMD_DELETE') addKind(s, 'delete');
    }
  }
  if (kind === 'insert' && f.selectStmt !== undefined) walkStatement(f.selectStmt, s, false);
  walkFields(f, s, ['withClause', 'relation', 'selectStmt']);
}

function explainAnalyzes(options: unknown, fx: Effects): boolean {
  for (const o of list(options)) {
    const d = nodeOf(o, 'DefElem');
    if (d === null || str(d.defname) !== 'analyze') continue;
    if (d.arg === undefined) return true;
    fx.literalDependent = true;
    const arg = unwrap(d.arg);
    let value: string | null = null;
    if (arg?.type === 'String') value = str(arg.fields.sval);
    else if (arg?.type === 'Integer') value = String(typeof arg.fields.ival === 'number' ? arg.fields.ival : 0);
    else if (arg?.type === 'Boolean') value = arg.fields.boolval === true ? 'true' : 'false';
    // Anything not plainly false counts as ANALYZE: a value the server rejects runs nothing anyway.
    return value === null || !/^(f|fa|fal|fals|false|n|no|of|off|0)$/i.test(value);
  }
  return false;
}

/** The literal bodies of CREATE FUNCTION / DO, with the language. */
function routineBody(options: unknown, defaultLanguage = 'sql'): { body: string | null; language: string } {
  let body: string | null = null;
  let language = defaultLanguage;
  for (const o of list(options)) {
    const d = nodeOf(o, 'DefElem');
    if (d === null) continue;
    const name = str(d.defname);
    if (name === 'language') language = (unwrap(d.arg)?.type === 'String' ? str(unwrap(d.arg)?.fields.sval) : null) ?? language;
    if (name === 'as') {
      const arg = unwrap(d.arg);
      if (arg?.type === 'String') body = str(arg.fields.sval);
      else if (arg?.type === 'List') {
        const items = names(arg.fields.items);
        body = items.length === 1 ? (items[0] ?? null) : null;
        // Two items: a C function's object file and symbol — code we cannot see.
        if (items.length > 1) body = null;
      }
    }
  }
  return { body, language: language.toLowerCase() };
}

const RELATION_OBJECTS = new Set([
  'OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_SEQUENCE', 'OBJECT_FOREIGN_TABLE', 'OBJECT_INDEX',
]);

const SIMPLE_KINDS: Record<string, StatementKind> = {
  VariableShowStmt: 'show', TransactionStmt: 'transaction', ListenStmt: 'listen', NotifyStmt: 'notify',
  UnlistenStmt: 'unlisten', ClosePortalStmt: 'close', FetchStmt: 'fetch', DiscardStmt: 'discard',
  CheckPointStmt: 'checkpoint', DeallocateStmt: 'deallocate', CommentStmt: 'comment', SecLabelStmt: 'security_label',
  ReassignOwnedStmt: 'reassign', ImportForeignSchemaStmt: 'import', DropOwnedStmt: 'drop', DropdbStmt: 'drop',
  DropRoleStmt: 'drop', DropTableSpaceStmt: 'drop', DropUserMappingStmt: 'drop', DropSubscriptionStmt: 'drop',
  ConstraintsSetStmt: 'set', GrantRoleStmt: 'grant', AlterDefaultPrivilegesStmt: 'grant', ReplicaIdentityStmt: 'alter',
  CreatedbStmt: 'create', DefineStmt: 'create',
};

function kindFromName(type: string): StatementKind {
  const simple = SIMPLE_KINDS[type];
  if (simple !== undefined) return simple;
  if (type.startsWith('Create')) return 'create';
  if (type.startsWith('Alter')) return 'alter';
  if (type.startsWith('Drop')) return 'drop';
  return 'other';
}

function walkNode(type: string, f: JsonObject, s: Scope): void {
  switch (type) {
    case 'SelectStmt': walkSelect(f, s, false); return;
    case 'InsertStmt': walkModify('insert', f, s); return;
    case 'UpdateStmt': walkModify('update', f, s); return;
    case 'DeleteStmt': walkModify('delete', f, s); return;
    case 'MergeStmt': walkModify('merge', f, s); return;
    case 'RangeVar': rangeVarRead(f, s); return;
    case 'FuncCall': {
      const parts = names(f.funcname);
      s.fx.functions.add(parts.join('.'));
      if (classifyFunction(parts).opaque) s.fx.opaque = true;
      walkFields(f, s, ['funcname']);
      return;
    }
    case 'A_Expr': {
      const kind = str(f.kind);
      if (kind === 'AEXPR_OP' || kind === 'AEXPR_OP_ANY' || kind === 'AEXPR_OP_ALL') {
        if (classifyOperator(names(f.name)).opaque) s.fx.opaque = true;
      }
      walkFields(f, s, ['name']);
      return;
    }
    case 'RangeTableSample': {
      const parts = names(f.method);
      s.fx.functions.add(parts.join('.'));
      if (classifyTablesample(parts).opaque) s.fx.opaque = true;
      walkFields(f, s, ['method']);
      return;
    }
    case 'CopyStmt': {
      addKind(s, 'copy');
      const ref = targetOf(f.relation);
      // COPY … FROM adds rows: for rules it is an insert.
      if (f.is_from === true) { addKind(s, 'insert'); write(s, ref); } else read(s, ref);
      if (f.is_program === true) s.fx.opaque = true;
      if (f.query !== undefined) walkStatement(f.query, s, true);
      walkFields(f, s, ['relation', 'query']);
      return;
    }
    case 'ExplainStmt': {
      addKind(s, 'explain');
      const analyze = explainAnalyzes(f.options, s.fx);
      walkStatement(f.query, analyze ? s : { ...s, planOnly: true }, true);
      return;
    }
    case 'PrepareStmt': addKind(s, 'prepare'); walkStatement(f.query, s, true); walkFields(f, s, ['query']); return;
    case 'DeclareCursorStmt': addKind(s, 'declare'); walkStatement(f.query, s, true); return;
    case 'ExecuteStmt': addKind(s, 'execute'); s.fx.opaque = true; walkFields(f, s, []); return;
    case 'CallStmt': addKind(s, 'call'); s.fx.opaque = true; walkFields(f, s, []); return;
    case 'DoStmt': {
      addKind(s, 'do');
      s.fx.opaque = true;
      s.fx.literalDependent = true;
      const { body, language } = routineBody(f.args, 'plpgsql');
      if (body !== null) bodyAnalyzer(body, language, s.fx);
      return;
    }
    case 'CreateFunctionStmt': {
      addKind(s, 'create');
      if (f.sql_body !== undefined) {
        for (const item of list(nodeOf(f.sql_body, 'List')?.items)) {
          const inner = nodeOf(item, 'List');
          for (const stmt of inner === null ? [item] : list(inner.items)) walkStatement(stmt, s, true);
        }
      } else {
        s.fx.literalDependent = true;
        const { body, language } = routineBody(f.options);
        if (body !== null) bodyAnalyzer(body, language, s.fx);
      }
      walkFields(f, s, ['sql_body', 'options', 'funcname']);
      return;
    }
    case 'CreateTableAsStmt': {
      addKind(s, 'create');
      const into = isObject(f.into) ? f.into : null;
      if (into !== null) { write(s, targetOf(into.rel)); walkFields(into, s, ['rel']); }
      walkStatement(f.query, s, true);
      return;
    }
    case 'ViewStmt': addKind(s, 'create'); write(s, targetOf(f.view)); walkFields(f, s, ['view']); return;
    case 'RuleStmt': {
      addKind(s, 'create');
      write(s, targetOf(f.relation));
      for (const a of list(f.actions)) walkStatement(a, s, true);
      walkFields(f, s, ['relation', 'actions']);
      return;
    }
    case 'CreateStmt': {
      addKind(s, 'create');
      write(s, targetOf(f.relation));
      // PARTITION OF attaches to the parent: that changes what the parent holds.
      for (const p of list(f.inhRelations)) { if (f.partbound !== undefined) write(s, targetOf(p)); else read(s, targetOf(p)); }
      walkFields(f, s, ['relation', 'inhRelations']);
      return;
    }
    case 'CreateForeignTableStmt': {
      addKind(s, 'create');
      const base = isObject(f.base) ? f.base : null;
      if (base !== null) { write(s, targetOf(base.relation)); walkFields(base, s, ['relation']); }
      walkFields(f, s, ['base']);
      return;
    }
    case 'DropStmt': {
      addKind(s, 'drop');
      const objType = str(f.removeType) ?? '';
      for (const o of list(f.objects)) {
        const listNode = nodeOf(o, 'List');
        const parts = listNode === null ? names([o]) : names(listNode.items);
        if (RELATION_OBJECTS.has(objType)) write(s, relationFromNames(parts));
        // A dropped schema takes every relation in it: `name: '*'` stands for all of them.
        if (objType === 'OBJECT_SCHEMA' && parts[0] !== undefined) write(s, { schema: parts[0], name: '*' });
      }
      return;
    }
    case 'TruncateStmt':
      // TRUNCATE removes every row: for rules it is a delete, and an unbounded one.
      addKind(s, 'truncate');
      addKind(s, 'delete');
      if (!s.planOnly) s.fx.withoutWhere = true;
      for (const r of list(f.relations)) write(s, targetOf(r));
      walkFields(f, s, ['relations']);
      return;
    case 'GrantStmt': {
      addKind(s, f.is_grant === true ? 'grant' : 'revoke');
      if (f.targtype === 'ACL_TARGET_ALL_IN_SCHEMA') {
        for (const o of list(f.objects)) { const schema = names([o])[0]; if (schema !== undefined) write(s, { schema, name: '*' }); }
      } else if (f.objtype === 'OBJECT_TABLE' || f.objtype === 'OBJECT_SEQUENCE') {
        for (const o of list(f.objects)) write(s, targetOf(o));
      }
      walkFields(f, s, ['objects']);
      return;
    }
    case 'AlterTableStmt': case 'RenameStmt': case 'AlterObjectSchemaStmt': case 'AlterOwnerStmt':
    case 'IndexStmt': case 'CreateTrigStmt': case 'ClusterStmt': case 'ReindexStmt': case 'RefreshMatViewStmt':
    case 'CreateStatsStmt': {
      const kind: StatementKind = type === 'ClusterStmt' ? 'cluster' : type === 'ReindexStmt' ? 'reindex'
        : type === 'RefreshMatViewStmt' ? 'refresh' : type.startsWith('Alter') || type === 'RenameStmt' ? 'alter' : 'create';
      addKind(s, kind);
      write(s, targetOf(f.relation));
      if (type === 'CreateTrigStmt') s.fx.functions.add(names(f.funcname).join('.'));
      walkFields(f, s, ['relation', 'funcname']);
      return;
    }
    case 'CreatePolicyStmt': case 'AlterPolicyStmt':
      addKind(s, type === 'CreatePolicyStmt' ? 'create' : 'alter'); write(s, targetOf(f.table)); walkFields(f, s, ['table']); return;
    case 'CreateSeqStmt': case 'AlterSeqStmt':
      addKind(s, type === 'CreateSeqStmt' ? 'create' : 'alter'); write(s, targetOf(f.sequence)); walkFields(f, s, ['sequence']); return;
    case 'VacuumStmt': {
      addKind(s, f.is_vacuumcmd === true ? 'vacuum' : 'analyze');
      for (const r of list(f.rels)) { const vr = nodeOf(r, 'VacuumRelation'); if (vr !== null) write(s, targetOf(vr.relation)); }
      return;
    }
    case 'LockStmt': addKind(s, 'lock'); walkFields(f, s, []); return;
    case 'VariableSetStmt': addKind(s, f.kind === 'VAR_RESET' || f.kind === 'VAR_RESET_ALL' ? 'reset' : 'set'); walkFields(f, s, []); return;
    // Extension scripts, shared libraries and subscriptions run code the statement does not show.
    case 'CreateExtensionStmt': case 'AlterExtensionStmt': case 'CreateSubscriptionStmt': case 'AlterSubscriptionStmt':
      addKind(s, type.startsWith('Create') ? 'create' : 'alter'); s.fx.opaque = true; walkFields(f, s, []); return;
    case 'LoadStmt': addKind(s, 'load'); s.fx.opaque = true; return;
    default:
      if (type.endsWith('Stmt')) addKind(s, kindFromName(type));
      walkFields(f, s, []);
  }
}
