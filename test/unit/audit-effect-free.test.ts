/**
 * Which PostgreSQL statements may be forwarded while their audit record syncs (pipelined
 * write-ahead, issue 17): only what the analysis proves effect-free; any doubt is synced first.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { analyzePostgres, loadSqlParsers } from '../../parsers/sql/index.js';
import { isEffectFree, judgeEffects, mayChangeCatalog, type EffectCatalog, type EffectVerdict, type RelationFacts, type UserObjects } from '../../src/audit/effect-free.js';
import type { StatementAnalysis } from '../../parsers/sql/types.js';

const settings = { standardConformingStrings: true, searchPath: ['"$user"', 'public'] };

beforeAll(async () => {
  await loadSqlParsers();
});

function effectFree(sql: string): boolean[] {
  return analyzePostgres(sql, settings, null).statements.map(isEffectFree);
}

describe('effect-free statements', () => {
  it.each([
    'SELECT abalance FROM pgbench_accounts WHERE aid = 42',
    'SELECT 1 AS reader, 2 AS n',
    'SELECT a.id, b.name FROM a JOIN b ON a.id = b.id WHERE a.x > 3 ORDER BY 1 LIMIT 10',
    'WITH r AS (SELECT id FROM a) SELECT * FROM r',
  ])('%s: pipelined', (sql) => {
    expect(effectFree(sql)).toEqual([true]);
  });

  it.each([
    ['an INSERT', 'INSERT INTO t VALUES (1)'],
    ['an UPDATE', 'UPDATE t SET a = 1 WHERE id = 2'],
    ['nextval', "SELECT nextval('ticket')"],
    ['a function the analyser cannot vouch for', 'SELECT touch()'],
    ['a built-in function (a caller may shadow it)', 'SELECT count(*) FROM t'],
    ['a function in WHERE', 'SELECT id FROM t WHERE f(id)'],
    ['FOR UPDATE', 'SELECT * FROM t WHERE id = 1 FOR UPDATE'],
    ['FOR NO KEY UPDATE', 'SELECT * FROM t FOR NO KEY UPDATE'],
    ['FOR SHARE', 'SELECT * FROM t FOR SHARE'],
    ['FOR KEY SHARE', 'SELECT * FROM t FOR KEY SHARE'],
    ['SELECT INTO (creates a table)', 'SELECT * INTO copy FROM t'],
    ['a data-modifying CTE', 'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d'],
    ['unparsed text', 'SELEKT 1'],
    ['SET', 'SET search_path = evil'],
    ['DO', "DO $$ BEGIN PERFORM 1; END $$"],
    ['EXPLAIN ANALYZE (runs the statement)', 'EXPLAIN ANALYZE DELETE FROM t'],
    ['a cursor declaration', 'DECLARE c CURSOR FOR SELECT 1'],
    ['LOCK', 'LOCK TABLE t'],
    ['FOR UPDATE split by a comment', 'SELECT * FROM t FOR/**/UPDATE'],
    ['FOR NO KEY UPDATE split by a nested comment', 'SELECT * FROM t FOR /* a /* b */ c */ NO KEY UPDATE'],
    ['FOR SHARE split by a line comment', 'SELECT * FROM t FOR -- x\nSHARE'],
  ])('%s: synced before forwarding', (_what, sql) => {
    expect(effectFree(sql)).not.toContain(true);
  });
});

/** judgeEffects against a catalog given as data: what the upstream's pg_class and user objects say. */
describe('effect-free statements, judged with the catalog', () => {
  const plain = { kind: 'r', rowSecurity: false, oddParts: false, userTypedColumns: false, planTimeCode: false };
  const none = { functions: new Set<string>(), types: new Set<string>(), operators: new Set<string>(), casts: false, implicitCasts: false, operatorClasses: false };
  function catalog(relations: Record<string, RelationFacts[]>, objects: UserObjects | null = none): EffectCatalog {
    return {
      relations: (ref) => relations[ref.schema === null ? ref.name : `${ref.schema}.${ref.name}`],
      userObjects: () => objects ?? undefined,
    };
  }
  const judge = (sql: string, c: EffectCatalog): EffectVerdict[] => analyzePostgres(sql, settings, null).statements.map((st) => judgeEffects(st, c));

  it('plain tables, partitioned tables and materialized views without row security: effect-free', () => {
    const c = catalog({ t: [plain], p: [{ ...plain, kind: 'p' }], m: [{ ...plain, kind: 'm' }] });
    expect(judge('SELECT a FROM t JOIN p ON t.id = p.id JOIN m USING (id) WHERE t.a IN (1, 2) ORDER BY 1', c)).toEqual(['effect-free']);
    expect(judge('SELECT 1', c)).toEqual(['effect-free']);
  });

  it.each([
    ['a view (its definition may call a writing function)', { t: [{ ...plain, kind: 'v' }] }],
    ['a foreign table', { t: [{ ...plain, kind: 'f' }] }],
    ['a sequence', { t: [{ ...plain, kind: 'S' }] }],
    ['row security (a policy expression runs on every read)', { t: [{ ...plain, rowSecurity: true }] }],
    ['a foreign or row-secured partition', { t: [{ ...plain, kind: 'p', oddParts: true }] }],
    ['a view of that name in another schema on the search path', { t: [plain, { ...plain, kind: 'v' }] }],
  ])('%s: may have an effect', (_what, relations) => {
    expect(judge('SELECT * FROM t', catalog(relations))).toEqual(['may-have-effect']);
  });

  it('a column of a user-defined type where a user-defined operator class exists (ORDER BY calls its functions): may have an effect', () => {
    const typed = { t: [{ ...plain, userTypedColumns: true }] };
    expect(judge('SELECT * FROM t ORDER BY c', catalog(typed, { ...none, operatorClasses: true }))).toEqual(['may-have-effect']);
    expect(judge('SELECT * FROM t ORDER BY c', catalog(typed))).toEqual(['effect-free']);
  });

  it('an expression the planner folds (expression/partial index, CHECK, expression statistics, partition key) where user functions exist: may have an effect', () => {
    const folded = { t: [{ ...plain, planTimeCode: true }] };
    expect(judge('SELECT * FROM t', catalog(folded, { ...none, functions: new Set(['mark_i']) }))).toEqual(['may-have-effect']);
    // Without a user-defined function the planner folds built-ins alone.
    expect(judge('SELECT * FROM t', catalog(folded))).toEqual(['effect-free']);
  });

  it('a relation the catalog does not know, or no catalog yet: unknown (not pipelined)', () => {
    expect(judge('SELECT * FROM t', catalog({}))).toEqual(['unknown']);
    expect(judge('SELECT * FROM t', catalog({ t: [] }))).toEqual(['unknown']);
    expect(judge('SELECT * FROM t', catalog({ t: [plain] }, null))).toEqual(['unknown']);
  });

  it.each([
    ['attribute notation: t.f is f(t)', 'SELECT c.bump FROM t c', { functions: new Set(['bump']) }],
    ['a quoted name', 'SELECT c."Bump" FROM t c', { functions: new Set(['bump']) }],
    ['a name spelled in U& escapes', 'SELECT c.U&"\\0062ump" FROM t c', {}],
    ['a user type named in a cast (a domain CHECK may call a function)', "SELECT '1'::label FROM t", { types: new Set(['label']) }],
    ['a user operator the text spells', 'SELECT 1 ### 2 FROM t', { operators: new Set(['###']) }],
    ['a user = (IN, BETWEEN, CASE resolve it by name)', 'SELECT a FROM t WHERE a IN (1, 2)', { operators: new Set(['=']) }],
    ['an explicit cast while a user cast exists', 'SELECT a::text FROM t', { casts: true }],
    ['any implicit user cast (applies unwritten)', 'SELECT a FROM t', { casts: true, implicitCasts: true }],
  ])('%s: may have an effect', (_what, sql, objects) => {
    expect(judge(sql, catalog({ t: [plain] }, { ...none, ...objects }))).toEqual(['may-have-effect']);
  });

  it('user objects the text cannot reach do not stop pipelining', () => {
    const objects = { ...none, functions: new Set(['touch']), operators: new Set(['###']), casts: true };
    expect(judge('SELECT name FROM t WHERE id > 3', catalog({ t: [plain] }, objects))).toEqual(['effect-free']);
  });

  it('what may change the catalog: DDL, opaque text; DML and calls only where user code may exist', () => {
    const st = (sql: string): StatementAnalysis => analyzePostgres(sql, settings, null).statements[0] as StatementAnalysis;
    expect(mayChangeCatalog(st('CREATE VIEW v AS SELECT 1'), true)).toBe('ddl');
    expect(mayChangeCatalog(st("DO $$ BEGIN END $$"), true)).toBe('ddl');
    expect(mayChangeCatalog(st('INSERT INTO t VALUES (1)'), true)).toBe(null);
    expect(mayChangeCatalog(st('INSERT INTO t VALUES (1)'), false)).toBe('code');
    expect(mayChangeCatalog(st('SELECT count(*) FROM t'), false)).toBe('code');
    expect(mayChangeCatalog(st('SELECT count(*) FROM t'), true)).toBe(null);
    expect(mayChangeCatalog(st('SELECT f(1)'), true)).toBe('ddl');
    expect(mayChangeCatalog(st('SELECT a FROM t'), false)).toBe(null);
    expect(mayChangeCatalog(st('SET search_path = x'), false)).toBe(null);
  });
});
