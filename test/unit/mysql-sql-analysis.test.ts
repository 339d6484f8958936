/**
 * MySQL/MariaDB statement analysis (issue 7): statement kinds that comments, executable
 * comments, quoting and multi-statement texts cannot hide; tables, lineage and predicates
 * for policy and masking; fail closed on what cannot be read.
 */
import { describe, expect, it } from 'vitest';
import { analyzeMysql } from '../../parsers/sql/mysql/index.js';
import type { SqlSessionSettings, StatementAnalysis } from '../../parsers/sql/types.js';

const DEFAULT: SqlSessionSettings = { standardConformingStrings: false, searchPath: ['appdb'] };
const all = (sql: string, settings = DEFAULT): StatementAnalysis[] => analyzeMysql(sql, settings).statements;
const kinds = (sql: string, settings = DEFAULT): string[] => all(sql, settings).flatMap((s) => (s.unparsed ? ['UNPARSED', ...s.kinds] : s.kinds)).filter((k) => k !== 'empty');
const tables = (refs: StatementAnalysis['reads']): string[] => refs.map((r) => (r.schema === null ? r.name : `${r.schema}.${r.name}`));

describe('LOAD DATA LOCAL: its own kind, and the file it names', () => {
  const V: SqlSessionSettings = { ...DEFAULT, serverVersion: 101106 };
  const one = (sql: string, settings = V): StatementAnalysis => all(sql, settings)[0] as StatementAnalysis;
  const local: Array<[string, string, string]> = [
    ['plain', "LOAD DATA LOCAL INFILE '/tmp/in.csv' INTO TABLE imports", '/tmp/in.csv'],
    ['lower case, CONCURRENT', "load data concurrent local infile '/tmp/in.csv' replace into table imports (a, b)", '/tmp/in.csv'],
    ['LOCAL in an executable comment', "LOAD DATA /*!LOCAL*/ INFILE '/tmp/in.csv' INTO TABLE imports", '/tmp/in.csv'],
    ['LOCAL in a versioned comment the server runs', "LOAD DATA /*!50000 LOCAL */ INFILE '/tmp/in.csv' INTO TABLE imports", '/tmp/in.csv'],
    ['DATA LOCAL in a MariaDB comment', "LOAD /*M!100000 DATA LOCAL */ INFILE '/tmp/in.csv' INTO TABLE imports", '/tmp/in.csv'],
    ['comments between the words', "LOAD/**/DATA#x\nLOCAL/* */INFILE '/tmp/in.csv' INTO TABLE imports", '/tmp/in.csv'],
    ['an escaped quote and backslash, decoded as the server decodes them', "LOAD DATA LOCAL INFILE 'C:\\\\in\\'s.csv' INTO TABLE imports", "C:\\in's.csv"],
  ];
  for (const [name, sql, file] of local) {
    it(`${name}: load_data_local, file ${JSON.stringify(file)}`, () => {
      const s = one(sql);
      // load_data_local, and its effects for rules: insert (REPLACE: delete too).
      expect(s.kinds.filter((k) => k !== 'delete')).toEqual(['load_data', 'insert', 'load_data_local']);
      expect(s.localFile).toBe(file);
    });
  }

  it('the file is read per text, never from a shared shape of another text', () => {
    expect(one("LOAD DATA LOCAL INFILE '/tmp/a.csv' INTO TABLE imports").localFile).toBe('/tmp/a.csv');
    expect(one("LOAD DATA LOCAL INFILE '/tmp/b.csv' INTO TABLE imports").localFile).toBe('/tmp/b.csv');
  });

  it('a LOCAL the server skips (a version newer than it) is a server-side LOAD DATA', () => {
    expect(one("LOAD DATA /*!999999 LOCAL */ INFILE '/tmp/in.csv' INTO TABLE imports").kinds).toEqual(['load_data', 'insert']);
    expect(one("LOAD DATA INFILE '/tmp/in.csv' INTO TABLE imports").kinds).toEqual(['load_data', 'insert']);
  });

  it('with the server version unknown, a versioned LOCAL is read both ways: load_data_local', () => {
    expect(one("LOAD DATA /*!50000 LOCAL */ INFILE '/tmp/in.csv' INTO TABLE imports", DEFAULT).kinds).toContain('load_data_local');
  });

  it('a double-quoted file (an identifier under ANSI_QUOTES) names no file; LOAD XML is unparsed', () => {
    const dq = one('LOAD DATA LOCAL INFILE "/tmp/in.csv" INTO TABLE imports');
    expect(dq.kinds).toContain('load_data_local');
    expect(dq.localFile).toBeUndefined();
    expect(one("LOAD XML LOCAL INFILE '/tmp/in.xml' INTO TABLE imports").unparsed).toBe(true);
  });
});

describe('kinds a deny list can rely on', () => {
  const dangerous: Array<[string, string, string]> = [
    ['plain', 'DROP TABLE users', 'drop'],
    ['block comment between keywords', 'DROP/**/TABLE users', 'drop'],
    ['executable comment', '/*!50000 DROP TABLE users*/', 'drop'],
    ['executable comment without version', '/*! DROP TABLE users */', 'drop'],
    ['MariaDB executable comment', '/*M!100000 DELETE FROM users */', 'delete'],
    ['executable comment hiding the FROM', 'DELETE/*! FROM users */', 'delete'],
    ['hash comment', 'DROP TABLE users#x\n', 'drop'],
    ['double dash without a space is not a comment', 'DROP--x\nTABLE users', 'drop'],
    ['second statement', 'SELECT 1; DROP TABLE users', 'drop'],
    ['backslash-escaped quote keeps the string open', "SELECT '\\'; DROP TABLE users; -- '", 'select'],
    ['lower case and newlines', 'dRoP\n\ttAbLe `users`', 'drop'],
    ['truncate', 'TRUNCATE users', 'truncate'],
    ['replace is a write', 'REPLACE INTO users VALUES (1)', 'replace'],
    ['into outfile', "SELECT * FROM users INTO OUTFILE '/tmp/x'", 'into_outfile'],
    ['into dumpfile in a comment', "SELECT ssn FROM users /*!INTO DUMPFILE '/tmp/y'*/", 'into_outfile'],
    ['load data', "LOAD DATA INFILE '/etc/passwd' INTO TABLE users", 'load_data'],
    ['explain analyze runs the statement', 'EXPLAIN ANALYZE DELETE FROM users WHERE id = 1', 'delete'],
    ['MariaDB ANALYZE runs the statement', 'ANALYZE DELETE FROM users WHERE id = 1', 'delete'],
  ];
  for (const [name, sql, kind] of dangerous) {
    it(`${name}: ${JSON.stringify(sql)} is ${kind}`, () => {
      expect(kinds(sql)).toContain(kind);
    });
  }

  it('the string in "SELECT \'\\\'; DROP …" is one statement: nothing else runs', () => {
    expect(kinds("SELECT '\\'; DROP TABLE users; -- '")).toEqual(['select']);
  });

  it('under NO_BACKSLASH_ESCAPES the same text is two statements and the DROP is seen', () => {
    expect(kinds("SELECT 'a\\'; DROP TABLE users; -- '", { ...DEFAULT, standardConformingStrings: true })).toEqual(['select', 'drop']);
  });

  it('1--1 is arithmetic, not a comment', () => {
    expect(all('SELECT 1--1; DROP TABLE users').map((s) => s.kinds[0])).toEqual(['select', 'drop']);
  });

  it('reads a double-quoted token both ways when ANSI_QUOTES may be on', () => {
    const [s] = all('SELECT "ssn" FROM users');
    expect(s?.outputs?.[0]?.unknown).toBe(true);
    expect(kinds('DROP TABLE "users"')).toContain('drop');
  });

  it('a versioned comment newer than the server is a comment', () => {
    expect(kinds('SELECT 1 /*!999999 ; DROP TABLE users */', { ...DEFAULT, serverVersion: 101106 })).toEqual(['select']);
  });
});

describe('fail closed', () => {
  const unreadable: Array<[string, string]> = [
    ['unterminated comment', 'SELECT 1 /* no end'],
    ['unterminated string', "SELECT 'x"],
    ['unterminated backtick', 'SELECT `x'],
    ['";" inside an executable comment', '/*!50000 SELECT 1; DROP TABLE users */'],
    ['a comment inside an executable comment', '/*!50000 DROP /* x */ TABLE users */'],
    ['PREPARE from a variable', 'PREPARE s FROM @q'],
    ['HANDLER', 'HANDLER users OPEN'],
  ];
  for (const [name, sql] of unreadable) {
    it(`${name} is unparsed or opaque`, () => {
      const s = all(sql);
      expect(s.some((x) => x.unparsed || x.opaque)).toBe(true);
    });
  }

  it('CALL, DO and stored programs are opaque', () => {
    expect(all('CALL p()')[0]?.opaque).toBe(true);
    expect(all('DO SLEEP(1)')[0]?.opaque).toBe(true);
    expect(all('CREATE PROCEDURE p() BEGIN DELETE FROM users; END')[0]?.opaque).toBe(true);
  });
});

describe('what session statements are', () => {
  it('clients\' own start-up statements parse', () => {
    for (const sql of ['SET NAMES utf8mb4', 'select @@version_comment limit 1', 'SET autocommit=1', 'SHOW DATABASES', 'USE appdb', 'BEGIN', 'COMMIT', 'KILL QUERY 5', 'SELECT DATABASE()']) {
      expect(all(sql)[0]?.unparsed, sql).toBe(false);
    }
  });
});

describe('tables, predicates and lineage', () => {
  it('reads and writes, qualified and not', () => {
    const [s] = all('UPDATE users u JOIN shop.orders o ON o.uid = u.id SET u.name = o.note WHERE o.id = 1');
    expect(tables(s?.writes ?? [])).toContain('users');
    expect(tables(s?.reads ?? [])).toEqual(expect.arrayContaining(['users', 'shop.orders']));
    expect(s?.withoutWhere).toBe(false);
    expect(all('DELETE FROM users')[0]?.withoutWhere).toBe(true);
  });

  it('output lineage through aliases, expressions, JSON_OBJECT, GROUP_CONCAT and UNION', () => {
    const [s] = all("SELECT u.name AS n, CONCAT(u.ssn, 'x') c, JSON_OBJECT('k', ssn) j, GROUP_CONCAT(ssn SEPARATOR ',') g FROM appdb.users u");
    const src = (i: number): string[] => (s?.outputs?.[i]?.sources ?? []).map((x) => `${x.relation.name}.${x.column}`);
    expect(src(0)).toEqual(['users.name']);
    expect(src(1)).toEqual(['users.ssn']);
    expect(src(2)).toEqual(['users.ssn']);
    expect(src(3)).toEqual(['users.ssn']);
    const [u] = all('SELECT name FROM notes UNION SELECT ssn FROM users');
    expect((u?.outputs?.[0]?.sources ?? []).map((x) => x.column)).toContain('ssn');
  });

  it('a whole row (*) and a user function are not followed by name', () => {
    const [s] = all('SELECT *, my_func(id) FROM users');
    expect(s?.outputs?.[0]?.expansion).toBe(true);
    expect(s?.outputs?.[1]?.unknown).toBe(true);
  });

  it('columns in WHERE, JOIN ON, GROUP BY and ORDER BY are predicates', () => {
    const [s] = all('SELECT count(*) FROM users u JOIN notes n ON n.id = u.id WHERE u.ssn LIKE "1%" GROUP BY u.name ORDER BY u.id');
    const cols = (s?.predicateColumns ?? []).map((p) => p.column);
    expect(cols).toEqual(expect.arrayContaining(['ssn', 'name', 'id']));
  });

  it('two texts that differ only in literals share one parse, each with its own text', () => {
    const a = all('SELECT name FROM users WHERE id = 1')[0];
    const b = all("SELECT name FROM users WHERE id = 2 AND name = 'x'")[0];
    expect(a?.text).toBe('SELECT name FROM users WHERE id = 1');
    expect(b?.text).toBe("SELECT name FROM users WHERE id = 2 AND name = 'x'");
    expect(tables(b?.reads ?? [])).toEqual(['users']);
  });
});

describe('lineage a masking rule can rely on', () => {
  const src = (s: StatementAnalysis | undefined, i: number): string[] => (s?.outputs?.[i]?.sources ?? []).map((x) => `${x.relation.schema ?? ''}.${x.relation.name}.${x.column}`);

  it('column names compare folded: SSN is ssn', () => {
    const [s] = all('SELECT UPPER(SSN) FROM Users');
    expect(src(s, 0)).toEqual(['.users.ssn']);
  });

  it('a user variable holds whatever an earlier statement put there: unknown', () => {
    const [set, sel] = all('SET @x = (SELECT ssn FROM users LIMIT 1); SELECT @x, @@version');
    expect(tables(set?.reads ?? [])).toEqual(['users']);
    expect(sel?.outputs?.[0]?.unknown).toBe(true);
    expect(sel?.outputs?.[1]?.unknown).toBe(false);
  });

  it('derived tables and CTEs are followed by column name', () => {
    const [d] = all('SELECT d.s, d.n FROM (SELECT ssn AS s, name AS n FROM appdb.users) d');
    expect(src(d, 0)).toEqual(['appdb.users.ssn']);
    expect(src(d, 1)).toEqual(['appdb.users.name']);
    const [c] = all('WITH x AS (SELECT ssn, name FROM users) SELECT name, CONCAT(ssn) FROM x');
    expect(src(c, 0)).toEqual(['.users.name']);
    expect(src(c, 1)).toEqual(['.users.ssn']);
    expect(tables(c?.reads ?? [])).toEqual(['users']);
  });

  it('CASE, a scalar subquery and * through a derived table', () => {
    const [s] = all("SELECT CASE WHEN id > 1 THEN ssn ELSE 'x' END, (SELECT MAX(ssn) FROM users), t.* FROM users, (SELECT ssn FROM users) t");
    expect(src(s, 0)).toEqual(expect.arrayContaining(['.users.id', '.users.ssn']));
    expect(src(s, 1)).toEqual(['.users.ssn']);
    expect(src(s, 2)).toEqual(['.users.ssn']);
  });

  it('a stored function call is opaque and its output unknown; built-ins are not', () => {
    const [s] = all('SELECT appdb.leak(ssn), LOWER(name) FROM users');
    expect(s?.opaque).toBe(true);
    expect(s?.functions).toEqual(expect.arrayContaining(['appdb.leak', 'lower']));
    expect(s?.outputs?.[0]?.unknown).toBe(true);
    expect(s?.outputs?.[1]?.unknown).toBe(false);
    expect(all('SELECT LOWER(name) FROM users')[0]?.opaque).toBe(false);
  });

  it('what an INSERT … SELECT and an UPDATE write comes from', () => {
    const [i] = all('INSERT INTO notes (body) SELECT ssn FROM users');
    expect((i?.writeSources?.sources ?? []).map((x) => x.column)).toEqual(['ssn']);
    const [u] = all('UPDATE notes n JOIN users u ON u.id = n.id SET n.body = u.name');
    expect((u?.writeSources?.sources ?? []).map((x) => x.column)).toEqual(['name']);
    expect(all('SELECT ssn INTO @v FROM users')[0]?.outputs).toBeNull();
  });
});

describe('cost', () => {
  it('reports µs per statement (fresh parses and cached shapes)', () => {
    const n = 300;
    let t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) all(`SELECT c.name, CONCAT(c.email, '') FROM appdb.customers c${i} JOIN orders o ON o.cid = c${i}.id WHERE c${i}.id = ${i}`);
    const fresh = Number(process.hrtime.bigint() - t) / 1000 / n;
    t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) all(`SELECT c.name, CONCAT(c.email, '') FROM appdb.customers c JOIN orders o ON o.cid = c.id WHERE c.id = ${i}`);
    const shaped = Number(process.hrtime.bigint() - t) / 1000 / n;
    console.log(`mysql analysis: ${fresh.toFixed(0)} µs/statement fresh, ${shaped.toFixed(0)} µs/statement by shape`);
    expect(n).toBe(300);
  });
});

describe('CTE names are scoped as the server scopes them (red team: a CTE name hid a view read)', () => {
  it.each([
    ['a relation beside a derived table whose CTE has its name', 'SELECT * FROM (WITH v AS (SELECT 1) SELECT * FROM v) a, v', ['v']],
    ['a non-recursive CTE reading the relation of its own name', 'WITH v AS (SELECT * FROM v) SELECT * FROM v', ['v']],
    ['a CTE reading a relation named like a later CTE', 'WITH a AS (SELECT * FROM v), v AS (SELECT 5) SELECT * FROM a', ['v']],
    ['a scalar subquery whose CTE has the name of a relation read outside it', 'SELECT (WITH v AS (SELECT 1) SELECT 1), n FROM v', ['v']],
    ['a recursive CTE reading itself', 'WITH RECURSIVE r AS (SELECT 1 UNION ALL SELECT 1 FROM r) SELECT * FROM r', []],
    ['a CTE reading an earlier one', 'WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b, t', ['t']],
  ])('%s', (_what, sql, reads) => {
    const [s] = all(sql);
    expect(tables(s?.reads ?? []).sort()).toEqual([...reads].sort());
  });
});
