/**
 * Which statements may be forwarded while their audit record is still syncing (the result
 * is then held until it is durable). Two steps, both fail closed:
 *
 * 1. The text (isEffectFree): plain SELECTs, with no function call at all (a function may
 *    be volatile, write, or be a caller's own shadowing a built-in), no row locks, no
 *    SELECT … INTO, nothing opaque or unparsed.
 * 2. The catalog (judgeEffects): a text can still reach a writing function without calling
 *    one — a view over it, a user-defined operator or cast, attribute notation (`t.f` is
 *    f(t)), a row-security policy's USING expression, a foreign table, a user object that
 *    shadows a built-in through search_path. So every relation read must be known to be a
 *    plain table, partitioned table or materialized view without row security (and without
 *    foreign or row-secured partitions or children, nor — where user-defined operator classes
 *    exist — columns of a user-defined type, nor — where user-defined functions exist —
 *    expressions the planner folds: expression or partial indexes, CHECK constraints,
 *    expression statistics, partition key expressions, its children's included), under every
 *    schema its name could resolve to; and no name the text uses may be the name of a user-defined function or
 *    type, no user-defined operator may be one the text could use, and no user-defined cast
 *    may apply. What the catalog does not know (not loaded, changed since) is not pipelined.
 */
import type { RelationRef, StatementAnalysis } from '../../parsers/sql/types.js';

/** FOR UPDATE / FOR NO KEY UPDATE / FOR SHARE / FOR KEY SHARE, and SELECT … INTO (creates a table). Matched anywhere, literals included: a false match only costs the pipelining. */
const EFFECT_WORDS = /\bfor\s+(?:no\s+key\s+)?update\b|\bfor\s+(?:key\s+)?share\b|\binto\b/i;
/** A word of those phrases followed by a comment (`FOR/**\/UPDATE`, `FOR -- …⏎SHARE`; comments nest, so no pattern can skip one). */
const COMMENT_IN_PHRASE = /\b(?:for|no|key)\s*(?:\/\*|--)/i;

/** The text alone: a plain read, nothing called. Necessary, not sufficient (see judgeEffects). */
export function isEffectFree(statement: StatementAnalysis): boolean {
  if (statement.unparsed || statement.opaque) return false;
  if (statement.kinds.length !== 1 || statement.kinds[0] !== 'select') return false;
  if (statement.writes.length > 0 || statement.functions.length > 0) return false;
  return !EFFECT_WORDS.test(statement.text) && !COMMENT_IN_PHRASE.test(statement.text);
}

/** What the catalog says of one relation a name could resolve to. */
export interface RelationFacts {
  /** pg_class.relkind. */
  kind: string;
  /** Row security is enabled: its policies' expressions run on every read. */
  rowSecurity: boolean;
  /** An inheritance child or partition (at any depth) that is not a plain table, or has row security. */
  oddParts: boolean;
  /** A column of a user-defined type (not an enum). */
  userTypedColumns: boolean;
  /**
   * It, or an inheritance child or partition at any depth, has an expression index or a partial
   * index, a CHECK constraint, expression statistics or a partition key expression. The planner
   * folds such expressions while it plans a read (a function marked IMMUTABLE with constant
   * arguments runs then, and may call a volatile one that writes; CHECKs are folded for
   * constraint exclusion), with no name of it in the statement's text.
   */
  planTimeCode: boolean;
}

/** The database's own objects (OID ≥ 16384, FirstNormalObjectId), by name (lower-cased). */
export interface UserObjects {
  functions: ReadonlySet<string>;
  /** Types a statement can name that may run user code (domains with CHECKs, base types, …); not the row types of relations. */
  types: ReadonlySet<string>;
  operators: ReadonlySet<string>;
  /** Any user-defined cast at all / any that applies implicitly (without being written). */
  casts: boolean;
  implicitCasts: boolean;
  /** Any user-defined operator class: ORDER BY, GROUP BY, DISTINCT, a merge or hash join on a user-typed column call its functions unwritten. */
  operatorClasses: boolean;
}

/** The catalog as last loaded and not changed since; undefined where it does not know. */
export interface EffectCatalog {
  /** Every relation `ref` could name (unqualified: in any schema); empty: none. */
  relations(ref: RelationRef): RelationFacts[] | undefined;
  userObjects(): UserObjects | undefined;
}

export type EffectVerdict = 'effect-free' | 'unknown' | 'may-have-effect';

const PLAIN_RELATIONS = new Set(['r', 'p', 'm']);

/**
 * Operators a statement uses without spelling them: IN, BETWEEN, CASE x WHEN, NULLIF, IS
 * DISTINCT FROM, ANY/ALL resolve `=`, `<`, `>=` … by name through search_path; LIKE is `~~`.
 */
const IMPLIED_OPERATORS = new Set(['=', '<>', '<', '>', '<=', '>=', '~~', '~~*', '!~~', '!~~*', '~', '~*', '!~', '!~*']);

/** Identifiers as the server folds them (quoted: as written); words in literals and comments are taken too — a false match only costs the pipelining. */
const IDENTIFIER = /"((?:[^"]|"")*)"|([A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)/g;

/** Whether the text uses, as an identifier, a name in `functions` or `types`. */
function namesOneOf(text: string, functions: ReadonlySet<string>, types: ReadonlySet<string>): boolean {
  // Without a user-defined function or type no name can be one (the common case: no scan).
  if (functions.size === 0 && types.size === 0) return false;
  for (const m of text.matchAll(IDENTIFIER)) {
    const name = (m[1] !== undefined ? m[1].replace(/""/g, '"') : (m[2] ?? '')).toLowerCase();
    if (functions.has(name) || types.has(name)) return true;
  }
  return false;
}

function usesUserObject(text: string, objects: UserObjects): boolean {
  if (namesOneOf(text, objects.functions, objects.types)) return true;
  for (const op of objects.operators) {
    if (IMPLIED_OPERATORS.has(op) || text.includes(op)) return true;
  }
  if (objects.implicitCasts) return true;
  return objects.casts && /::|\bcast\b|\btreat\b/i.test(text);
}

/** Step 2: the text-level judgement checked against what the catalog knows. */
export function judgeEffects(statement: StatementAnalysis, catalog: EffectCatalog): EffectVerdict {
  if (statement.kinds.includes('empty')) return 'effect-free';
  if (!isEffectFree(statement)) return 'may-have-effect';
  // U&"…" spells an identifier in escapes the name scan does not undo.
  if (/u&"/i.test(statement.text)) return 'may-have-effect';
  const objects = catalog.userObjects();
  if (objects === undefined) return 'unknown';
  if (usesUserObject(statement.text, objects)) return 'may-have-effect';
  let unknown = false;
  // Plan-time folding runs only functions; without a user-defined one it runs built-ins alone.
  const userCode = objects.functions.size > 0;
  for (const ref of statement.reads) {
    const facts = catalog.relations(ref);
    // None at all: created since the catalog was read, perhaps; look again.
    if (facts === undefined || facts.length === 0) {
      unknown = true;
      continue;
    }
    if (facts.some((f) => !PLAIN_RELATIONS.has(f.kind) || f.rowSecurity || f.oddParts || (objects.operatorClasses && f.userTypedColumns) || (userCode && f.planTimeCode))) return 'may-have-effect';
  }
  return unknown ? 'unknown' : 'effect-free';
}

/** Kinds that run no user code and change no catalog entry (a COMMIT's deferred triggers belong to the writes before it). */
const INERT = new Set(['transaction', 'show', 'set', 'reset', 'empty']);
/** Kinds that change no catalog entry by themselves, but may run user code that does. */
const CATALOG_NEUTRAL = new Set([...INERT, 'select', 'insert', 'update', 'delete', 'merge', 'copy']);

/**
 * Whether running a statement not proven effect-free may change what judgeEffects relies on:
 * 'ddl' — DDL or opaque text; 'code' — user code it may reach (a function, a trigger, a rule,
 * a default) may run DDL; null — neither. Without any user-defined function in the database
 * (`noUserCode`), DML and built-in calls cannot. A SELECT that passes isEffectFree is taken
 * not to: it calls nothing, and code it reaches through an object (a view, a policy) does DDL
 * only if someone built that object to, by DDL that was itself marked. (Counting it would make
 * every SELECT read while the catalog is stale mark it stale again: nothing would ever pipeline.)
 */
export function mayChangeCatalog(statement: StatementAnalysis, noUserCode: boolean): 'ddl' | 'code' | null {
  if (statement.unparsed || statement.opaque) return 'ddl';
  if (statement.kinds.some((k) => !CATALOG_NEUTRAL.has(k))) return 'ddl';
  if (statement.kinds.every((k) => INERT.has(k)) || isEffectFree(statement)) return null;
  return noUserCode ? null : 'code';
}
