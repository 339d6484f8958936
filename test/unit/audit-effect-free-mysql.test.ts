/**
 * Which MySQL/MariaDB statements may be forwarded while their audit record syncs (pipelined
 * write-ahead, issue 17): one plain SELECT of base tables with only allow-listed built-ins;
 * any doubt is synced first.
 */
import { describe, expect, it } from 'vitest';
import { analyzeMysql } from '../../parsers/sql/mysql/index.js';
import { isEffectFreeMysql } from '../../src/audit/effect-free-mysql.js';
import type { RelationRef } from '../../parsers/sql/types.js';

const settings = { standardConformingStrings: false, searchPath: ['"app"'], ansiQuotes: false };
const VIEWS = new Set(['v_customers']);
const baseTable = (ref: RelationRef): boolean => !VIEWS.has(ref.name);

function effectFree(sql: string): boolean[] {
  return analyzeMysql(sql, settings).statements.map((s) => isEffectFreeMysql(s, baseTable));
}

describe('effect-free MySQL statements', () => {
  it.each([
    'SELECT c FROM sbtest1 WHERE id = 42',
    'SELECT 1',
    'SELECT a.id, b.name FROM a JOIN b ON a.id = b.id WHERE a.x > 3 ORDER BY 1 LIMIT 10',
    'SELECT COUNT(*), MAX(id), CONCAT(name, \'!\'), NOW(), RAND(), UUID() FROM customers GROUP BY name',
    'SELECT id FROM customers WHERE id IN (SELECT id FROM orders)',
    'SELECT @counter, @@version',
  ])('%s: pipelined', (sql) => {
    expect(effectFree(sql)).toEqual([true]);
  });

  it.each([
    ['an INSERT', 'INSERT INTO t VALUES (1)'],
    ['an UPDATE', 'UPDATE t SET a = 1 WHERE id = 2'],
    ['a REPLACE', 'REPLACE INTO t VALUES (1)'],
    ['SET', 'SET @a = 1'],
    ['CALL', 'CALL p()'],
    ['SLEEP', 'SELECT SLEEP(1)'],
    ['BENCHMARK', 'SELECT BENCHMARK(10, MD5(1))'],
    ['GET_LOCK', "SELECT GET_LOCK('x', 1)"],
    ['RELEASE_LOCK', "SELECT RELEASE_LOCK('x')"],
    ['LAST_INSERT_ID(x)', 'SELECT LAST_INSERT_ID(5)'],
    ['NEXTVAL', 'SELECT NEXTVAL(s)'],
    ['NEXT VALUE FOR', 'SELECT NEXT VALUE FOR s'],
    ['LOAD_FILE', "SELECT LOAD_FILE('/etc/passwd')"],
    ['UUID_SHORT (a server counter)', 'SELECT UUID_SHORT()'],
    ['a stored function', 'SELECT touch()'],
    ['a schema-qualified function named like a built-in', 'SELECT app.now()'],
    ['a stored function in WHERE', 'SELECT id FROM t WHERE f(id) = 1'],
    ['a view', 'SELECT * FROM v_customers'],
    ['a view in a subquery', 'SELECT id FROM t WHERE id IN (SELECT id FROM v_customers)'],
    ['FOR UPDATE', 'SELECT * FROM t WHERE id = 1 FOR UPDATE'],
    ['LOCK IN SHARE MODE', 'SELECT * FROM t LOCK IN SHARE MODE'],
    ['FOR UPDATE in an executable comment', 'SELECT * FROM t /*!50000 FOR UPDATE */'],
    ['SELECT INTO a variable', 'SELECT id INTO @x FROM t LIMIT 1'],
    ['SELECT INTO OUTFILE', "SELECT * FROM t INTO OUTFILE '/tmp/x'"],
    ['a user variable assignment', 'SELECT @n := @n + 1 FROM t'],
    ['text that does not parse', 'SELEC 1'],
    // Red team: names that call a stored function although they are built-ins elsewhere or otherwise written.
    ['a MySQL-only built-in name (MariaDB: a stored function)', 'SELECT ANY_VALUE(id) FROM t'],
    ['REGEXP_LIKE (not in MariaDB)', "SELECT REGEXP_LIKE(name, 'a') FROM t"],
    ['BIN_TO_UUID (not in MariaDB)', 'SELECT BIN_TO_UUID(id) FROM t'],
    ['a MariaDB-only built-in name (MySQL: a stored function)', 'SELECT NVL(a, 1) FROM t'],
    ['SFORMAT (not in MySQL)', "SELECT SFORMAT('{}', 1)"],
    ['COUNT with a space before its parenthesis', 'SELECT COUNT (id) FROM t'],
    ['MAX with a newline before its parenthesis', 'SELECT max\n(id) FROM t'],
    ['COUNT with a comment before its parenthesis', 'SELECT count/**/(id) FROM t'],
    ['COUNT ended by an executable comment', 'SELECT /*!count*/(id) FROM t'],
    ['TRIM backquoted', 'SELECT `trim`(name) FROM t'],
    ['ABS backquoted', 'SELECT `abs`(id) FROM t'],
    ["Oracle mode's seq.nextval (steps the sequence)", 'SELECT s.nextval FROM dual'],
    ["Oracle mode's seq.nextval, backquoted", 'SELECT `s`.`NEXTVAL` FROM dual'],
    ['FOR UPDATE split by a comment', 'SELECT * FROM t FOR/**/UPDATE'],
    ['FOR UPDATE split by a line comment', 'SELECT * FROM t FOR -- x\nUPDATE'],
    ['FOR UPDATE split by a hash comment', 'SELECT * FROM t FOR#x\nUPDATE'],
    ['FOR in an executable comment, UPDATE after it', 'SELECT * FROM t /*!FOR*/ UPDATE'],
    ['UPDATE in a versioned comment after FOR', 'SELECT * FROM t FOR /*!50000 UPDATE */'],
    ['FOR UPDATE right after a version number', 'SELECT * FROM t /*!50000FOR UPDATE*/'],
  ])('%s: synced before forwarded', (_what, sql) => {
    expect(effectFree(sql).every((x) => x)).toBe(false);
  });

  it('a SELECT followed by an INSERT: the INSERT is not effect-free', () => {
    expect(effectFree('SELECT 1; INSERT INTO t VALUES (1)')).toEqual([true, false]);
  });
});
