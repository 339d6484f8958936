import { beforeAll, describe, expect, it } from 'vitest';
import {
  AnalysisCache, analyzePostgres, fastNormalize, loadSqlParsers, parseSearchPath, resolveRelation, rewriteForStandardStrings,
  type SqlSessionSettings,
} from '../../parsers/sql/index.js';

const on: SqlSessionSettings = { standardConformingStrings: true, searchPath: ['public'] };
const one = (sql: string, settings = on) => {
  const { statements } = analyzePostgres(sql, settings, null);
  expect(statements).toHaveLength(1);
  const s = statements[0];
  if (s === undefined) throw new Error('no statement');
  return s;
};

beforeAll(async () => { await loadSqlParsers(); });

describe('kinds, reads and writes', () => {
  it('reports an UPDATE with its target written and read, and a FROM read', () => {
    const s = one('UPDATE accounts a SET balance = b.x FROM bonus b WHERE a.id = b.id');
    expect(s.kinds).toEqual(['update']);
    expect(s.writes).toEqual([{ schema: null, name: 'accounts' }]);
    expect(s.reads).toEqual(expect.arrayContaining([{ schema: null, name: 'accounts' }, { schema: null, name: 'bonus' }]));
    // Joined to every row of a table: as many rows as bonus matches, so unbounded (sql-effects.test.ts).
    expect(s.withoutWhere).toBe(true);
  });

  it('flags UPDATE and DELETE without WHERE at any depth', () => {
    expect(one('DELETE FROM t').withoutWhere).toBe(true);
    expect(one('UPDATE t SET a = 1').withoutWhere).toBe(true);
    expect(one('WITH d AS (DELETE FROM t RETURNING 1) SELECT * FROM d').withoutWhere).toBe(true);
    expect(one('DELETE FROM t WHERE id = 1').withoutWhere).toBe(false);
    expect(one('SELECT * FROM t').withoutWhere).toBe(false);
  });

  it('lists functions lower-cased and qualified as written', () => {
    const s = one('SELECT NOW(), pg_catalog.upper(a), count(*) FROM t');
    expect(s.functions).toEqual(['now', 'pg_catalog.upper', 'count']);
    expect(s.opaque).toBe(false);
  });

  it('lists side-effecting built-ins without calling them opaque', () => {
    const s = one("SELECT pg_read_file('/etc/passwd'), set_config('search_path', 'x', false)");
    expect(s.functions).toEqual(['pg_read_file', 'set_config']);
    expect(s.opaque).toBe(false);
  });

  it('marks user functions, SQL-text functions, CALL, EXECUTE and DO opaque', () => {
    for (const sql of ['SELECT my_func(1)', "SELECT query_to_xml('select 1', true, true, '')", 'CALL p()', 'EXECUTE s(1)', 'DO $$BEGIN END$$']) {
      expect(one(sql).opaque, sql).toBe(true);
    }
  });

  it('puts temporary tables in pg_temp', () => {
    expect(one('CREATE TEMP TABLE x (a int)').writes).toEqual([{ schema: 'pg_temp', name: 'x' }]);
  });

  it('maps the transaction statements to transaction', () => {
    for (const sql of ['BEGIN', 'COMMIT', 'ROLLBACK', 'SAVEPOINT a', 'RELEASE a', 'START TRANSACTION READ ONLY']) {
      expect(one(sql).kinds, sql).toEqual(['transaction']);
    }
  });

  it('reads psql catalog queries without marking them opaque', () => {
    const s = one(`SELECT n.nspname as "Schema", c.relname as "Name",
      CASE c.relkind WHEN 'r' THEN 'table' END as "Type", pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
      FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r','p','') AND n.nspname <> 'pg_catalog' AND n.nspname !~ '^pg_toast'
        AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1,2;`);
    expect(s.opaque).toBe(false);
    expect(s.reads).toEqual([{ schema: 'pg_catalog', name: 'pg_class' }, { schema: 'pg_catalog', name: 'pg_namespace' }]);
  });
});

describe('unparsed and empty text', () => {
  it('marks text that does not parse as unparsed, never throwing', () => {
    const s = one('SELEC 1');
    expect(s).toMatchObject({ kinds: ['other'], unparsed: true, opaque: true, text: 'SELEC 1' });
  });

  it('gives an empty statement for empty text', () => {
    expect(one('').kinds).toEqual(['empty']);
    expect(one('  -- only a comment\n').kinds).toEqual(['empty']);
  });
});

describe('statement splitting', () => {
  it('splits with the parser and slices each statement text', () => {
    const { statements } = analyzePostgres("SELECT ';'; DELETE FROM t WHERE a = $$;$$ ;UPDATE u SET a = 1", on, null);
    expect(statements.map((s) => s.text)).toEqual(["SELECT ';'", 'DELETE FROM t WHERE a = $$;$$ ', 'UPDATE u SET a = 1']);
  });

  it('converts UTF-8 byte offsets to string offsets', () => {
    const { statements } = analyzePostgres("SELECT 'été 🚀'; SELECT \"naïve\" FROM \"tablé\"; DELETE FROM ü", on, null);
    expect(statements.map((s) => s.text)).toEqual(["SELECT 'été 🚀'", 'SELECT "naïve" FROM "tablé"', 'DELETE FROM ü']);
    expect(statements[1]?.reads).toEqual([{ schema: null, name: 'tablé' }]);
    expect(statements[2]?.writes).toEqual([{ schema: null, name: 'ü' }]);
  });
});

describe('standard_conforming_strings', () => {
  it('rewrites only backslash-quotes inside plain literals, keeping the length', () => {
    const text = "SELECT 'a\\'b', E'c\\'d', $$e\\'f$$, \"g\\\"";
    const r = rewriteForStandardStrings(text, false);
    expect(r.text).toBe("SELECT 'a''b', E'c\\'d', $$e\\'f$$, \"g\\\"");
    expect(r.text).toHaveLength(text.length);
    expect(r.quotingMatters).toBe(true);
    expect(rewriteForStandardStrings("SELECT E'\\'', 'x'", true).quotingMatters).toBe(false);
    expect(rewriteForStandardStrings("SELECT '\\'", true).quotingMatters).toBe(true);
  });
});

describe('resolveRelation and parseSearchPath', () => {
  it('returns one name for a qualified relation', () => {
    expect(resolveRelation({ schema: 'app', name: 't' }, on)).toEqual(['app.t']);
  });

  it('searches pg_temp and pg_catalog first, then the path with $user', () => {
    const settings = { standardConformingStrings: true, searchPath: ['$user', 'public'], user: 'alice' };
    expect(resolveRelation({ schema: null, name: 't' }, settings)).toEqual(['pg_temp.t', 'pg_catalog.t', 'alice.t', 'public.t']);
  });

  it('keeps an explicit pg_catalog position', () => {
    const settings = { standardConformingStrings: true, searchPath: ['evil', 'pg_catalog'] };
    expect(resolveRelation({ schema: null, name: 't' }, settings)).toEqual(['pg_temp.t', 'evil.t', 'pg_catalog.t']);
  });

  it('resolves an unqualified name through a changed search_path (bypass class)', () => {
    const s = one('DELETE FROM secrets WHERE id = 1');
    const ref = s.writes[0];
    if (ref === undefined) throw new Error('no write');
    const changed = { standardConformingStrings: true, searchPath: parseSearchPath('evil, "$user", public'), user: 'bob' };
    expect(resolveRelation(ref, changed)).toEqual(['pg_temp.secrets', 'pg_catalog.secrets', 'evil.secrets', 'bob.secrets', 'public.secrets']);
  });

  it('parses a reported search_path value', () => {
    expect(parseSearchPath('"$user", public')).toEqual(['$user', 'public']);
    expect(parseSearchPath('"My ""S""", Evil ,x')).toEqual(['My "S"', 'evil', 'x']);
  });
});

describe('AnalysisCache', () => {
  it('shares an entry between texts that differ only in literals, with the new text', () => {
    const cache = new AnalysisCache(10);
    const a = analyzePostgres('UPDATE acc SET bal = bal + 5 WHERE id = 1;', on, cache);
    const b = analyzePostgres('UPDATE acc SET bal = bal + -2716 WHERE id = 40000;', on, cache);
    expect(cache.hits).toBe(1);
    expect(a.statements[0]?.text).toBe('UPDATE acc SET bal = bal + 5 WHERE id = 1');
    expect(b.statements[0]?.text).toBe('UPDATE acc SET bal = bal + -2716 WHERE id = 40000');
    expect(b.statements[0]?.writes).toEqual([{ schema: null, name: 'acc' }]);
  });

  it('keys on the settings that change how text is read', () => {
    const cache = new AnalysisCache(10);
    analyzePostgres("SELECT 'a\\'' ; DELETE FROM s; -- '", on, cache);
    const off = analyzePostgres("SELECT 'a\\'' ; DELETE FROM s; -- '", { ...on, standardConformingStrings: false }, cache);
    expect(off.statements.flatMap((s) => s.kinds)).toContain('delete');
  });

  it('does not cache analyses that depend on a literal value', () => {
    const cache = new AnalysisCache(10);
    analyzePostgres('EXPLAIN (ANALYZE false) DELETE FROM t', on, cache);
    const b = analyzePostgres('EXPLAIN (ANALYZE true) DELETE FROM t', on, cache);
    expect(b.statements[0]?.writes).toEqual([{ schema: null, name: 't' }]);
    analyzePostgres("DO 'BEGIN PERFORM 1; END'", on, cache);
    const d = analyzePostgres("DO 'BEGIN DELETE FROM t; END'", on, cache);
    expect(d.statements[0]?.writes).toEqual([{ schema: null, name: 't' }]);
    expect(cache.hits).toBe(0);
  });

  it('is bounded', () => {
    const cache = new AnalysisCache(3);
    for (let i = 0; i < 10; i++) analyzePostgres(`SELECT c${i} FROM t WHERE a = 1`, on, cache);
    expect(cache.size).toBe(3);
  });

  it('does not confuse a parameter with a literal', () => {
    const cache = new AnalysisCache(10);
    analyzePostgres('SELECT $1, $2 FROM t', on, cache);
    const s = analyzePostgres('SELECT $1, 5 FROM t', on, cache).statements[0];
    expect(s?.reads).toEqual([{ schema: null, name: 't' }]);
    expect(s?.text).toBe('SELECT $1, 5 FROM t');
  });

  it('serves plain texts that differ only in integers without the parser, with the new text', () => {
    const cache = new AnalysisCache(10);
    analyzePostgres('SELECT abalance FROM pgbench_accounts WHERE aid = 17;', on, cache);
    analyzePostgres('SELECT abalance FROM pgbench_accounts WHERE aid = 4242;', on, cache);
    const hitsBefore = cache.hits;
    const c = analyzePostgres('SELECT abalance FROM pgbench_accounts WHERE aid = 999999;', on, cache).statements;
    expect(cache.hits).toBe(hitsBefore + 1);
    expect(c).toEqual([{ ...one('SELECT abalance FROM pgbench_accounts WHERE aid = 999999;'), text: 'SELECT abalance FROM pgbench_accounts WHERE aid = 999999' }]);
  });

  // Regression: digits the parser keeps (positions, type modifiers) must never share an entry.
  it('never shares an entry between ORDER BY / GROUP BY positions, or with a constant in their place', () => {
    const cache = new AnalysisCache(50);
    const texts = [
      "SELECT name, ssn FROM people ORDER BY 'x'",
      'SELECT name, ssn FROM people ORDER BY 1',
      'SELECT name, ssn FROM people ORDER BY 2',
      'SELECT name, ssn FROM people ORDER BY 1',
      'SELECT name, ssn FROM people ORDER BY 2',
      'SELECT ssn, count(*) FROM people GROUP BY 1',
      'SELECT ssn::varchar(3) FROM people',
      'SELECT ssn::varchar(9) FROM people',
    ];
    for (const t of texts) expect(analyzePostgres(t, on, cache).statements, t).toEqual(analyzePostgres(t, on, null).statements);
  });

  it('gives, for a corpus of plain texts, exactly what the parser gives, however the cache was filled', () => {
    const shapes = [
      (n: number) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${n};`,
      (n: number) => `UPDATE pgbench_accounts SET abalance = abalance + ${n} WHERE aid = ${n * 7};`,
      (n: number) => `SELECT a, b FROM t WHERE a IN (${n}, ${n + 1}) ORDER BY ${1 + (n % 2)} LIMIT ${n}`,
      (n: number) => `SELECT t1.c2 FROM t1 WHERE c3 > ${n}.5 AND c4 = -${n}`,
      (n: number) => `DELETE FROM t WHERE id = ${n}; SELECT ${n}`,
      (n: number) => `SELECT * FROM people OFFSET ${n} FETCH FIRST ${n} ROWS ONLY`,
      (n: number) => `SELECT ${n}e3, ${n}::int4, col${n} FROM t${n}`,
      (n: number) => `SET statement_timeout = ${n}`,
      (n: number) => `EXPLAIN (ANALYZE ${n % 2}) DELETE FROM t WHERE a = ${n}`,
    ];
    const cache = new AnalysisCache(100);
    for (let n = 0; n < 12; n++) {
      for (const shape of shapes) {
        const t = shape(n);
        expect(analyzePostgres(t, on, cache).statements, t).toEqual(analyzePostgres(t, on, null).statements);
      }
    }
  });
});

describe('fastNormalize', () => {
  it('replaces integers standing alone, in order, and nothing else', () => {
    expect(fastNormalize('SELECT abalance FROM pgbench_accounts WHERE aid = 123;')).toBe('SELECT abalance FROM pgbench_accounts WHERE aid = $1;');
    expect(fastNormalize('select a from t1 where b in (1,22,333) and c = x2')).toBe('select a from t1 where b in ($1,$2,$3) and c = x2');
    expect(fastNormalize('select 1.5, 1e5, t.1, 2_000, -3')).toBe('select 1.5, 1e5, t.1, 2_000, -$1');
  });

  it('does not read texts with quotes, dollars, comments, slashes or non-ASCII', () => {
    for (const t of ["select 'a'", 'select "a"', 'select $1', 'select 1 -- x', 'select /* 1 */ 2', 'select 1 / 2', 'select é', 'select E\\x', 'select 1\u0000']) {
      expect(fastNormalize(t), t).toBeNull();
    }
  });
});
