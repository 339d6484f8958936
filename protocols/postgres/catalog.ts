/**
 * Table OIDs from RowDescription → schema.table.column, through the upstream's catalog.
 * A view's (or materialized view's) columns are judged by what the view reads, followed
 * through nested views. Cached per listener; entries expire so renames are seen.
 *
 * The same cache answers the pipelined audit's effect judgement (src/audit/effect-free.ts):
 * each relation's kind, row security and odd partitions, and the database's user-defined
 * functions, operators, types and casts. For that judgement an entry must also be younger
 * than the last catalog change seen through this daemon (catalogChanged).
 */
import pg from 'pg';
import { readFileSync } from 'node:fs';
import type { Lease } from '../../src/core/session-types.js';
import type { PostgresConnectionConfig } from './config.js';
import { ANY_SCHEMA, type RelationRef, type SqlAnalysis, type StatementAnalysis } from '../../parsers/sql/types.js';
import { judgeEffects, type EffectCatalog, type EffectVerdict, type RelationFacts, type UserObjects } from '../../src/audit/effect-free.js';
import { VALUE_EXPOSING_FUNCTIONS } from '../../parsers/sql/postgres/catalog-functions.js';

export interface RelationInfo {
  schema: string;
  name: string;
  /** pg_class.relkind: r table, v view, m materialized view, p partitioned, f foreign. */
  kind: string;
  columns: Map<number, string>;
  /** For views: every schema.table.column (or schema.table.*) the view reads, through nested views. */
  sources: string[] | null;
  /**
   * For views whose definition airlock could follow column by column: attnum → what that
   * output column reads. A column missing here is judged by `sources` (everything the view reads).
   */
  columnSources?: Map<number, string[]>;
  /** pg_class.relrowsecurity: its policies run on every read. */
  rowSecurity: boolean;
  /** An inheritance child or partition, at any depth, that is not a plain table or has row security. */
  oddParts: boolean;
  /** A column of a user-defined type (not an enum): sorting, grouping or joining on it may call a user operator class's functions. */
  userTypedColumns: boolean;
  /** It or an inheritance child or partition has an expression the planner may fold (see RelationFacts). */
  planTimeCode: boolean;
}

/** Analyses SQL text as the session would (for view definitions). */
export type AnalyzeSql = (text: string) => SqlAnalysis;

const TTL_MS = 60_000;
const REFRESH_GAP_MS = 1_000;

const RELATIONS_SQL = `
SELECT c.oid::int8 AS oid, n.nspname, c.relname, c.relkind::text AS relkind, c.relrowsecurity AS rowsecurity, p.odd AS oddparts, q.folded AS plantimecode,
  a.attnum::int AS attnum, a.attname,
  COALESCE((ty.typcategory <> 'A' AND ty.typtype NOT IN ('e', 'd') AND ty.oid >= 16384)
    OR (ty.typcategory = 'A' AND el.oid >= 16384 AND el.typtype <> 'e')
    OR (ty.typtype = 'd' AND bt.oid >= 16384 AND bt.typtype <> 'e'), false) AS usertyped
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL (SELECT EXISTS (
  WITH RECURSIVE parts(oid) AS (
    SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid
    UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN parts ON i.inhparent = parts.oid)
  SELECT 1 FROM parts JOIN pg_catalog.pg_class x ON x.oid = parts.oid WHERE x.relkind NOT IN ('r', 'p') OR x.relrowsecurity) AS odd) p
CROSS JOIN LATERAL (SELECT EXISTS (
  WITH RECURSIVE fam(oid) AS (
    SELECT c.oid
    UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN fam ON i.inhparent = fam.oid)
  SELECT 1 FROM fam WHERE
    EXISTS (SELECT 1 FROM pg_catalog.pg_index x WHERE x.indrelid = fam.oid AND (x.indexprs IS NOT NULL OR x.indpred IS NOT NULL))
    OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conrelid = fam.oid AND k.contype = 'c')
    OR EXISTS (SELECT 1 FROM pg_catalog.pg_statistic_ext s WHERE s.stxrelid = fam.oid AND s.stxexprs IS NOT NULL)
    OR EXISTS (SELECT 1 FROM pg_catalog.pg_partitioned_table k WHERE k.partrelid = fam.oid AND k.partexprs IS NOT NULL)) AS folded) q
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type el ON el.oid = ty.typelem AND ty.typcategory = 'A'
LEFT JOIN pg_catalog.pg_type bt ON bt.oid = ty.typbasetype AND ty.typtype = 'd'
WHERE c.oid = ANY($1::oid[])`;

const VIEW_DEPS_SQL = `
SELECT DISTINCT r.ev_class::int8 AS view, t.oid::int8 AS dep, n.nspname, t.relname, t.relkind::text AS relkind, a.attname
FROM pg_catalog.pg_rewrite r
JOIN pg_catalog.pg_depend d ON d.objid = r.oid AND d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid AND d.refobjsubid > 0
WHERE r.ev_class = ANY($1::oid[]) AND t.oid <> r.ev_class`;

/** With an empty search_path, pg_get_viewdef schema-qualifies every relation it names. */
const VIEW_DEFS_SQL = `SELECT c.oid::int8 AS oid, pg_catalog.pg_get_viewdef(c.oid) AS def FROM pg_catalog.pg_class c WHERE c.oid = ANY($1::oid[])`;

/** Relations by "schema.name" (or ANY_SCHEMA + name: every schema). */
const NAMES_SQL = `
SELECT n.nspname, c.relname, c.oid::int8 AS oid
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[])) OR c.relname = ANY($3::text[])`;

/**
 * The database's own functions, operators, types a statement can name (not the row types of
 * relations, nor their arrays — unless a column is of a user-defined type other than an enum:
 * `ROW(1)::t`, `'(1)'::t` and `t '(1)'` coerce into that column's type, running a domain's
 * CHECK), casts and operator classes: OID ≥ 16384 (FirstNormalObjectId),
 * i.e. not built in. A cast says only whether it applies implicitly ('i') or must be written
 * ('c'); an operator class ('k') only that one exists.
 */
const USER_OBJECTS_SQL = `
SELECT 'f' AS kind, p.proname::text AS name FROM pg_catalog.pg_proc p WHERE p.oid >= 16384
UNION SELECT 'o', o.oprname::text FROM pg_catalog.pg_operator o WHERE o.oid >= 16384
UNION SELECT 't', t.typname::text FROM pg_catalog.pg_type t WHERE t.oid >= 16384
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relkind <> 'c' AND (c.reltype = t.oid OR (t.typelem <> 0 AND c.reltype = t.typelem))
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
      LEFT JOIN pg_catalog.pg_type el ON el.oid = ty.typelem AND ty.typelem <> 0
      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        AND ((ty.oid >= 16384 AND ty.typtype <> 'e') OR (el.oid >= 16384 AND el.typtype <> 'e'))))
UNION SELECT CASE WHEN k.castcontext = 'i' THEN 'i' ELSE 'c' END, '' FROM pg_catalog.pg_cast k WHERE k.oid >= 16384
UNION SELECT 'k', '' FROM pg_catalog.pg_opclass k WHERE k.oid >= 16384`;

/** How a relation reference is looked up for the effect judgement: qualified as written, unqualified in every schema (search_path, pg_temp). */
function effectName(ref: RelationRef): string {
  return ref.schema === null ? `${ANY_SCHEMA}${ref.name}` : `${ref.schema}.${ref.name}`;
}

/** Whether every output column of a view definition has a known lineage. */
function definitionFollowed(def: string, analyze: AnalyzeSql): boolean {
  try {
    const a = analyze(def);
    const st = a.statements[0];
    return a.statements.length === 1 && st !== undefined && !st.unparsed && st.outputs !== null && st.outputs.every((o) => !o.unknown);
  } catch {
    return false;
  }
}

/**
 * Catalog changes seen through any listener of this daemon, whatever its upstream: `n` any
 * possible change, `ddl` the DDL (or opaque text) among them — what may create a function.
 * One count for all: two listeners may name one database differently (`localhost` and
 * `127.0.0.1`, a DNS alias, a proxy), and no spelling of host, port and database tells
 * that they are two. A change on one database makes every listener look again (one look-up each).
 */
const changes = { n: 0, ddl: 0 };

/** An entry as of `gen`: the catalog-change count when the look-up that made it began. */
interface Cached<T> {
  at: number;
  gen: number;
  value: T;
}

export class PgCatalog implements EffectCatalog {
  private readonly cache = new Map<number, { info: RelationInfo; at: number; gen: number }>();
  /** "schema.name" → the relations of that name (none: no such relation), for lineage through views. */
  private readonly byNameCache = new Map<string, { oids: number[]; at: number; gen: number }>();
  private objects: (Cached<UserObjects> & { ddl: number }) | null = null;
  private objectsLoading: Promise<void> | null = null;
  /** Shared by every listener: a change seen by one is seen by all. */
  private readonly changed = changes;

  constructor(private readonly connection: PostgresConnectionConfig) {}

  /** Cached relation info, or undefined when it must be fetched first. */
  get(oid: number): RelationInfo | undefined {
    const e = this.cache.get(oid);
    if (e === undefined || Date.now() - e.at > TTL_MS) return undefined;
    return e.info;
  }

  // ---- effect-freedom (src/audit/effect-free.ts) -------------------------------------

  /**
   * The catalog may have changed (DDL, or user code that may run it, was forwarded or
   * committed): what the effect judgement relies on is stale until looked up again.
   * Masking's lineage keeps its own, time-bounded view (get/byName).
   */
  catalogChanged(ddl: boolean): void {
    this.changed.n++;
    if (ddl) this.changed.ddl++;
  }

  /**
   * The database had no user-defined function at the last look-up, and no DDL went through
   * this daemon since it began: nothing but DDL can then change the catalog. Known even when
   * the look-up has expired or other changes made it stale for the effect judgement.
   */
  noUserCode(): boolean {
    const o = this.objects;
    return o !== null && o.value.functions.size === 0 && o.ddl === this.changed.ddl;
  }

  /** Relation info looked up since the last change (and within the TTL), else undefined. */
  private current(oid: number): RelationInfo | undefined {
    const e = this.cache.get(oid);
    if (e === undefined || e.gen !== this.changed.n || Date.now() - e.at > TTL_MS) return undefined;
    return e.info;
  }

  relations(ref: RelationRef): RelationFacts[] | undefined {
    const e = this.byNameCache.get(effectName(ref));
    if (e === undefined || e.gen !== this.changed.n || Date.now() - e.at > TTL_MS) return undefined;
    const out: RelationFacts[] = [];
    for (const oid of e.oids) {
      const info = this.current(oid);
      if (info === undefined) return undefined;
      out.push(info);
    }
    return out;
  }

  judgeEffects(statement: StatementAnalysis): EffectVerdict {
    return judgeEffects(statement, this);
  }

  userObjects(): UserObjects | undefined {
    const o = this.objects;
    if (o === null || o.gen !== this.changed.n || Date.now() - o.at > TTL_MS) return undefined;
    return o.value;
  }

  /**
   * Looks up what judgeEffects needs for `statements` and does not know: the user objects
   * (one query, shared by concurrent callers) and the relations they read.
   */
  async loadEffects(statements: StatementAnalysis[], lease: Lease, analyze: AnalyzeSql): Promise<void> {
    const names = statements.flatMap((st) => st.reads.map(effectName));
    // The same look-up as masking's (views followed, definitions analysed): they share the cache.
    await Promise.all([this.loadUserObjects(lease), this.loadNames(names, lease, analyze, true)]);
  }

  /** Whether the effect look-ups for `statements` were ever made (since then perhaps changed or expired). */
  knows(statements: StatementAnalysis[]): boolean {
    return this.objects !== null && statements.every((st) => st.reads.every((r) => this.byNameCache.has(effectName(r))));
  }

  private refreshing = false;
  private lastRefresh = 0;

  /** loadEffects in the background: one at a time, at most once per REFRESH_GAP_MS (a stream of changes would otherwise be a stream of look-ups). */
  refreshEffects(statements: StatementAnalysis[], lease: Lease, analyze: AnalyzeSql, failed: (e: unknown) => void): void {
    if (this.refreshing || Date.now() - this.lastRefresh < REFRESH_GAP_MS) return;
    this.refreshing = true;
    this.lastRefresh = Date.now();
    void this.loadEffects(statements, lease, analyze).catch(failed).finally(() => {
      this.refreshing = false;
    });
  }

  private loadUserObjects(lease: Lease): Promise<void> {
    if (this.userObjects() !== undefined) return Promise.resolve();
    this.objectsLoading ??= (async () => {
      const gen = this.changed.n;
      const ddl = this.changed.ddl;
      const client = this.client(lease);
      try {
        await client.connect();
        const rows = (await client.query(USER_OBJECTS_SQL)).rows as Array<{ kind: string; name: string }>;
        const value = { functions: new Set<string>(), types: new Set<string>(), operators: new Set<string>(), casts: false, implicitCasts: false, operatorClasses: false };
        for (const r of rows) {
          if (r.kind === 'f') value.functions.add(r.name.toLowerCase());
          else if (r.kind === 't') value.types.add(r.name.toLowerCase());
          else if (r.kind === 'o') value.operators.add(r.name);
          else if (r.kind === 'c') value.casts = true;
          else if (r.kind === 'i') value.casts = value.implicitCasts = true;
          else if (r.kind === 'k') value.operatorClasses = true;
        }
        this.objects = { at: Date.now(), gen, ddl, value };
      } finally {
        await client.end().catch(() => undefined);
      }
    })().finally(() => {
      this.objectsLoading = null;
    });
    return this.objectsLoading;
  }

  /**
   * Relations a statement names, by name: undefined when never looked up (or, unless `stale`,
   * expired), else the infos of the relations of that name (empty: none). For a computed column
   * over a view, whose RowDescription names no table. `stale`: a prepared statement run long
   * after its Parse is judged by what was true at its last look-up rather than masked wholesale.
   */
  byName(name: string, stale = false): RelationInfo[] | undefined {
    const e = this.byNameCache.get(name);
    if (e === undefined || (!stale && Date.now() - e.at > TTL_MS)) return undefined;
    const infos: RelationInfo[] = [];
    for (const oid of e.oids) {
      const info = stale ? this.cache.get(oid)?.info : this.get(oid);
      if (info === undefined) return undefined;
      infos.push(info);
    }
    return infos;
  }

  /** Looks up names not known yet, and loads their relations (views followed). */
  async loadNames(names: string[], lease: Lease, analyze?: AnalyzeSql, sinceChange = false): Promise<void> {
    const gen = this.changed.n;
    const missing = [...new Set(names)].filter((n) => this.byName(n) === undefined || (sinceChange && this.byNameCache.get(n)?.gen !== gen));
    if (missing.length === 0) return;
    const exact = missing.filter((n) => !n.startsWith(ANY_SCHEMA) && n.includes('.'));
    const anywhere = missing.filter((n) => n.startsWith(ANY_SCHEMA)).map((n) => n.slice(ANY_SCHEMA.length));
    const client = this.client(lease);
    await client.connect();
    let rows: Array<{ nspname: string; relname: string; oid: string }>;
    try {
      rows = (await client.query(NAMES_SQL, [
        exact.map((n) => n.slice(0, n.indexOf('.'))), exact.map((n) => n.slice(n.indexOf('.') + 1)), anywhere,
      ])).rows as Array<{ nspname: string; relname: string; oid: string }>;
    } finally {
      await client.end().catch(() => undefined);
    }
    const found = new Map<string, number[]>(missing.map((n) => [n, []]));
    for (const r of rows) {
      for (const key of [`${r.nspname}.${r.relname}`, `${ANY_SCHEMA}${r.relname}`]) found.get(key)?.push(Number(r.oid));
    }
    await this.load([...found.values()].flat(), lease, analyze, sinceChange ? gen : undefined);
    const now = Date.now();
    if (this.byNameCache.size > 10_000) this.byNameCache.clear();
    for (const [n, oids] of found) this.byNameCache.set(n, { oids, at: now, gen });
  }

  /** Fetches what is not cached, over a short connection made with the session's lease. */
  async load(oids: number[], lease: Lease, analyze?: AnalyzeSql, sinceChange?: number): Promise<void> {
    const gen = sinceChange ?? this.changed.n;
    const missing = [...new Set(oids)].filter((o) => o !== 0 && (this.get(o) === undefined || (sinceChange !== undefined && this.cache.get(o)?.gen !== gen)));
    if (missing.length === 0) return;
    const client = this.client(lease);
    await client.connect();
    try {
      const infos = await this.relationsByOid(client, missing);
      // Views: follow what they read, through nested views, a few levels deep.
      let views = [...infos.values()].filter((i) => i.kind === 'v' || i.kind === 'm');
      const viewOids = (list: RelationInfo[]): number[] => [...infos.entries()].filter(([, i]) => list.includes(i)).map(([o]) => o);
      const depsOf = new Map<number, string[]>();
      for (let depth = 0; depth < 8 && views.length > 0; depth++) {
        const oidsNow = viewOids(views);
        const rows = (await client.query(VIEW_DEPS_SQL, [oidsNow])).rows as Array<{ view: string; dep: string; nspname: string; relname: string; relkind: string; attname: string | null }>;
        const nested: number[] = [];
        for (const r of rows) {
          const list = depsOf.get(Number(r.view)) ?? [];
          if (r.relkind === 'v' || r.relkind === 'm') {
            nested.push(Number(r.dep));
            list.push(`@${r.dep}`);
          } else list.push(`${r.nspname}.${r.relname}.${r.attname ?? '*'}`);
          depsOf.set(Number(r.view), list);
        }
        const fresh = nested.filter((o) => !infos.has(o));
        const more = fresh.length > 0 ? await this.relationsByOid(client, fresh) : new Map<number, RelationInfo>();
        for (const [o, i] of more) infos.set(o, i);
        views = [...more.values()].filter((i) => i.kind === 'v' || i.kind === 'm');
      }
      const defs = await this.viewDefinitions(client, infos);
      // A view that calls a catalog function returning stored values or statement text
      // (pg_stat_get_activity …) reads it like the relation `pg_catalog.<name>`. pg_depend has no
      // row for a built-in function (pinned), so the definition's text is searched.
      for (const [oid, def] of defs) {
        // A column whose lineage the analysis cannot follow (a user function: `ssn_of(id)`) may
        // read anything, whatever tables pg_depend lists: the view reads "everything".
        if (analyze !== undefined && !definitionFollowed(def, analyze)) depsOf.set(oid, [...(depsOf.get(oid) ?? []), '*.*.*']);
        for (const fn of VALUE_EXPOSING_FUNCTIONS) {
          if (new RegExp(`\\b${fn}\\s*\\(`, 'i').test(def)) depsOf.set(oid, [...(depsOf.get(oid) ?? []), `pg_catalog.${fn}.*`]);
        }
      }
      const expand = (oid: number, seen: Set<number>): string[] => {
        if (seen.has(oid)) return [];
        seen.add(oid);
        const out: string[] = [];
        for (const d of depsOf.get(oid) ?? []) {
          if (d.startsWith('@')) {
            const inner = Number(d.slice(1));
            const deps = depsOf.get(inner);
            // A nested view whose dependencies were not reached: everything it could read.
            if (deps === undefined) {
              const i = infos.get(inner);
              out.push(i === undefined ? '*.*.*' : `${i.schema}.${i.name}.*`);
            } else out.push(...expand(inner, seen));
          } else out.push(d);
        }
        return out;
      };
      for (const [oid, info] of infos) {
        if (info.kind === 'v' || info.kind === 'm') info.sources = expand(oid, new Set());
      }
      if (analyze !== undefined) this.followViewColumns(defs, infos, analyze);
      const now = Date.now();
      for (const [oid, info] of infos) this.cache.set(oid, { info, at: now, gen });
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * Per-column sources of views: the view's definition (as the server prints it, every
   * relation schema-qualified) through the same lineage analysis as a query. A column whose
   * lineage is unknown, or that reads another view, keeps the whole view's sources.
   */
  /** The definitions of the views among `infos`, as the server prints them (every relation schema-qualified). */
  private async viewDefinitions(client: pg.Client, infos: Map<number, RelationInfo>): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    const views = [...infos.entries()].filter(([, i]) => i.kind === 'v' || i.kind === 'm');
    if (views.length === 0) return out;
    await client.query("SELECT pg_catalog.set_config('search_path', '', false)");
    const rows = (await client.query(VIEW_DEFS_SQL, [views.map(([o]) => o)])).rows as Array<{ oid: string; def: string | null }>;
    for (const r of rows) if (r.def !== null) out.set(Number(r.oid), r.def);
    return out;
  }

  private followViewColumns(defs: Map<number, string>, infos: Map<number, RelationInfo>, analyze: AnalyzeSql): void {
    const rows = [...defs].map(([oid, def]) => ({ oid, def }));
    const byName = new Map<string, RelationInfo>();
    for (const i of infos.values()) byName.set(`${i.schema}.${i.name}`, i);
    for (const r of rows) {
      const info = infos.get(r.oid);
      if (info === undefined) continue;
      let analysis: SqlAnalysis;
      try {
        analysis = analyze(r.def);
      } catch {
        continue;
      }
      const st = analysis.statements[0];
      const outputs = st?.outputs ?? null;
      if (analysis.statements.length !== 1 || st === undefined || st.unparsed || outputs === null || outputs.length !== info.columns.size) continue;
      if (outputs.some((o) => o.expansion === true)) continue;
      const perColumn = new Map<number, string[]>();
      const attnums = [...info.columns.keys()].sort((a, b) => a - b);
      outputs.forEach((o, idx) => {
        const attnum = attnums[idx];
        if (attnum === undefined || o.unknown) return;
        const list: string[] = [];
        for (const src of o.sources) {
          const schema = src.relation.schema;
          const table = `${schema ?? ''}.${src.relation.name}`;
          const inner = byName.get(table);
          // Only a base table the catalog says the view reads is followed by column; anything
          // else (unqualified, another view, not among the dependencies) means everything the view reads.
          const isDependency = schema !== null && (info.sources ?? []).some((d) => d.startsWith(`${table}.`));
          if (!isDependency || (inner !== undefined && (inner.kind === 'v' || inner.kind === 'm'))) {
            list.push(...(info.sources ?? ['*.*.*']));
            continue;
          }
          list.push(`${table}.${src.column}`);
        }
        perColumn.set(attnum, list);
      });
      info.columnSources = perColumn;
    }
  }

  private async relationsByOid(client: pg.Client, oids: number[]): Promise<Map<number, RelationInfo>> {
    const rows = (await client.query(RELATIONS_SQL, [oids])).rows as Array<{ oid: string; nspname: string; relname: string; relkind: string; rowsecurity: boolean; oddparts: boolean; plantimecode: boolean; attnum: number | null; attname: string | null; usertyped: boolean }>;
    const out = new Map<number, RelationInfo>();
    for (const r of rows) {
      const oid = Number(r.oid);
      let info = out.get(oid);
      if (info === undefined) {
        info = { schema: r.nspname, name: r.relname, kind: r.relkind, columns: new Map(), sources: null, rowSecurity: r.rowsecurity, oddParts: r.oddparts, userTypedColumns: false, planTimeCode: r.plantimecode };
        out.set(oid, info);
      }
      if (r.usertyped) info.userTypedColumns = true;
      if (r.attnum !== null && r.attname !== null) info.columns.set(r.attnum, r.attname);
    }
    return out;
  }

  /**
   * The first of the candidate "schema.table" names that exists, with its columns in order
   * (what `COPY table TO` sends); null when none resolves.
   */
  async tableColumns(candidates: string[], lease: Lease): Promise<{ table: string; columns: string[] } | null> {
    const client = this.client(lease);
    await client.connect();
    try {
      for (const name of candidates) {
        const dot = name.indexOf('.');
        const rows = (await client.query(
          `SELECT a.attname FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
          [name.slice(0, dot), name.slice(dot + 1)],
        )).rows as Array<{ attname: string }>;
        if (rows.length > 0) return { table: name, columns: rows.map((r) => r.attname) };
      }
      return null;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private client(lease: Lease): pg.Client {
    const u = this.connection.upstream;
    const client = new pg.Client({
      host: u.host,
      port: u.port,
      database: u.database,
      user: lease.username,
      password: lease.secret.reveal(),
      ssl: u.tls === 'disable' ? false : { rejectUnauthorized: u.tls === 'verify-full', ...(u.ca ? { ca: readFileSync(u.ca) } : {}) },
      application_name: 'airlock-catalog',
      connectionTimeoutMillis: 10_000,
    });
    client.on('error', () => undefined);
    return client;
  }

  /** Column names of schema.table, when a cached entry has them (for whole-row lineage). */
  columnsOf(schemaTable: string): string[] | null {
    for (const { info } of this.cache.values()) {
      if (`${info.schema}.${info.name}` === schemaTable) return [...info.columns.values()];
    }
    return null;
  }
}
