/**
 * Bypass corpus for MySQL/MariaDB statement analysis, by class (issue 7). Each entry is a
 * COM_QUERY text run against table `t` (3 rows) in database `bypass`, and what the analysis
 * must report over all its statements:
 *
 * - `kinds`: each must appear, unless `orUnparsed` and some statement is unparsed;
 * - `kindsAbsent`: no statement may report these; `statements`: how many statements;
 * - `unparsed` / `opaque` / `withoutWhere`: some statement must say so (or, false: none);
 * - `reads` / `writes`: "schema.name" (schema empty when unqualified) that must be present.
 *
 * The test also runs every text on a real MariaDB (the oracle): what the server did to `t`
 * (dropped it, removed or added rows) must be visible in the analysis, and when the
 * analysis parsed every statement the server must have answered with as many results.
 */

export interface MysqlBypassCase {
  sql: string;
  kinds?: string[];
  orUnparsed?: boolean;
  kindsAbsent?: string[];
  statements?: number;
  unparsed?: boolean;
  opaque?: boolean;
  withoutWhere?: boolean;
  reads?: string[];
  writes?: string[];
  /** Session modes the analysis (and the oracle's session) reads the text under. */
  noBackslashEscapes?: boolean;
  ansiQuotes?: boolean;
  /** The server version the analysis is told (default: unknown). */
  serverVersion?: number;
  /** Do not run it on the server (writes files, needs state). */
  noOracle?: boolean;
}

export const mysqlBypassCorpus: Record<string, MysqlBypassCase[]> = {
  'executable comments are SQL': [
    { sql: 'DELETE/*! FROM t */', kinds: ['delete'], writes: ['.t'], withoutWhere: true },
    { sql: '/*!50000 DROP TABLE t*/', kinds: ['drop'], writes: ['.t'] },
    { sql: '/*! DROP TABLE t */', kinds: ['drop'] },
    { sql: '/*M!100000 DROP TABLE t */', kinds: ['drop'] },
    { sql: '/*!100000 DROP TABLE t */', kinds: ['drop'] },
    { sql: '/*!DROP*/ TABLE t', kinds: ['drop'] },
    { sql: 'DROP /*!TABLE*/ t', kinds: ['drop'] },
    { sql: 'SELECT 1 /*!, (SELECT COUNT(*) FROM t) */', kinds: ['select'], reads: ['.t'] },
    { sql: 'SELECT 1 /*!999999 ; DROP TABLE t */', unparsed: true },
    { sql: 'SELECT 1 /*! +1 /* nested */ ; DROP TABLE t */', unparsed: true },
    // A versioned comment newer than the server is a comment: the WHERE is not there.
    { sql: 'DELETE FROM t /*!999999 WHERE a = 1 */', kinds: ['delete'], withoutWhere: true },
    { sql: 'DELETE FROM t /*!999999 WHERE a = 1 */', kinds: ['delete'], withoutWhere: true, serverVersion: 101119 },
    { sql: 'DELETE FROM t /*!50000 WHERE a = 1 */', kinds: ['delete'], withoutWhere: false, serverVersion: 101119 },
    { sql: 'SELECT 1 /*!999999 FROM t */; DROP TABLE t', kinds: ['drop'], statements: 2 },
  ],
  'comments': [
    { sql: 'SELECT 1; DROP TABLE t', kinds: ['select', 'drop'], statements: 2 },
    { sql: 'DROP/**/TABLE t', kinds: ['drop'] },
    { sql: 'DROP TABLE t#x\n', kinds: ['drop'] },
    { sql: 'DROP--x\nTABLE t', kinds: ['drop'], orUnparsed: true },
    { sql: 'SELECT 1--1', kinds: ['select'], unparsed: false, statements: 1 },
    { sql: 'SELECT 1 -- ; DROP TABLE t', kindsAbsent: ['drop'], statements: 1 },
    { sql: 'SELECT 1 #; DROP TABLE t', kindsAbsent: ['drop'], statements: 1 },
    { sql: 'SELECT 1 --\t; DROP TABLE t', kindsAbsent: ['drop'], statements: 1 },
    { sql: 'SELECT 1 --\u0001; DROP TABLE t', kindsAbsent: ['drop'], statements: 1 },
    { sql: 'SELECT 1 -- x\n; DROP TABLE t', kinds: ['drop'], statements: 2 },
    { sql: 'SELECT 1 --; DROP TABLE t', kinds: ['drop'], orUnparsed: true },
    { sql: 'SELECT 1 /* ; DROP TABLE t */', kindsAbsent: ['drop'], statements: 1 },
    // MySQL comments do not nest: the first */ ends it.
    { sql: 'SELECT 1 /* /* */ ; DROP TABLE t', kinds: ['drop'], statements: 2 },
    { sql: 'SELECT 1 /* unterminated ; DROP TABLE t', unparsed: true },
  ],
  'strings and escapes': [
    { sql: "SELECT '\\'; DROP TABLE t; -- '", kindsAbsent: ['drop'], statements: 1 },
    { sql: "SELECT '\\'; DROP TABLE t; -- '", kinds: ['drop'], noBackslashEscapes: true },
    { sql: "SELECT 'a'';DROP TABLE t;--'", kindsAbsent: ['drop'], statements: 1 },
    { sql: "SELECT 'a\\\\'; DROP TABLE t", kinds: ['drop'], statements: 2 },
    { sql: "SELECT _binary'\\'; DROP TABLE t; -- '", kindsAbsent: ['drop'], statements: 1 },
    { sql: "SELECT x'41'; DROP TABLE t", kinds: ['drop'], statements: 2 },
    { sql: 'SELECT "\\"; DROP TABLE t; -- "', kinds: ['drop'], orUnparsed: true },
    { sql: 'SELECT "\\"; DROP TABLE t; -- "', kindsAbsent: ['drop'], statements: 1, ansiQuotes: false },
    { sql: 'SELECT "a"; DROP TABLE t', kinds: ['drop'], ansiQuotes: true },
    { sql: 'SELECT "a" FROM t', reads: ['.t'], ansiQuotes: true },
    { sql: 'SELECT \\N; DROP TABLE t', kinds: ['drop'], statements: 2 },
    { sql: 'SELECT \\N', unparsed: false },
    { sql: "SELECT 'unterminated; DROP TABLE t", unparsed: true },
  ],
  'backtick identifiers': [
    { sql: 'DROP TABLE `t`', kinds: ['drop'], writes: ['.t'] },
    { sql: 'DROP TABLE `bypass`.`t`', kinds: ['drop'], writes: ['bypass.t'] },
    { sql: 'SELECT `;DROP TABLE t;` FROM t', kindsAbsent: ['drop'], statements: 1 },
    { sql: 'SELECT 1 AS `a``b`; DROP TABLE t', kinds: ['drop'], statements: 2 },
    { sql: 'SELECT 1 AS `a; DROP TABLE t', unparsed: true },
    { sql: 'DeLeTe\tFROM\n`T`', kinds: ['delete'], writes: ['.t'] },
  ],
  'statements that run other statements': [
    { sql: 'BEGIN NOT ATOMIC DROP TABLE t; END', unparsed: true },
    { sql: 'lbl: BEGIN NOT ATOMIC DROP TABLE t; END', unparsed: true },
    { sql: 'IF 1 THEN DROP TABLE t; END IF', unparsed: true },
    { sql: 'SET STATEMENT max_statement_time=100 FOR DROP TABLE t', kinds: ['drop'], orUnparsed: true },
    { sql: 'CREATE PROCEDURE p() BEGIN DROP TABLE t; END', kinds: ['create'], opaque: true, statements: 1 },
    { sql: 'CREATE DEFINER=CURRENT_USER TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1', kinds: ['create'], opaque: true },
    { sql: "EXECUTE IMMEDIATE 'DROP TABLE t'", kinds: ['execute', 'drop'], opaque: true },
    { sql: "PREPARE s FROM 'DROP TABLE t'; EXECUTE s", kinds: ['prepare', 'drop', 'execute'], opaque: true, statements: 2 },
    { sql: "PREPARE s FROM 'DROP\\'; TABLE t'", unparsed: true },
    { sql: "SET @q = 'DROP TABLE t'; PREPARE s FROM @q; EXECUTE s", kinds: ['prepare', 'execute'], opaque: true },
    { sql: 'CALL p()', kinds: ['call'], opaque: true, noOracle: true },
    { sql: 'HANDLER t OPEN', kinds: ['handler'], opaque: true, reads: ['.t'] },
    { sql: 'DO (SELECT COUNT(*) FROM t)', kinds: ['do'], reads: ['.t'] },
    { sql: 'ANALYZE DELETE FROM t', kinds: ['analyze', 'delete'], withoutWhere: true },
    { sql: 'EXPLAIN DELETE FROM t', kinds: ['explain', 'delete'] },
    { sql: "SELECT * FROM t INTO OUTFILE '/nonexistent/x'", kinds: ['into_outfile'], reads: ['.t'] },
    { sql: "SELECT a FROM t INTO DUMPFILE '/nonexistent/y'", kinds: ['into_outfile'] },
    { sql: "LOAD DATA INFILE '/nonexistent' INTO TABLE t", kinds: ['load_data'], writes: ['.t'] },
    { sql: "REPLACE INTO t VALUES (1, 'x')", kinds: ['replace', 'insert', 'delete'], writes: ['.t'] },
    { sql: "INSERT INTO t VALUES (1, 'x') ON DUPLICATE KEY UPDATE b = 'y'", kinds: ['insert', 'update'] },
    { sql: 'INSERT INTO t SELECT * FROM t', kinds: ['insert'], reads: ['.t'], writes: ['.t'] },
    { sql: 'WITH x AS (SELECT a FROM t) DELETE FROM t WHERE a IN (SELECT a FROM x)', kinds: ['delete'], orUnparsed: true },
    { sql: 'BEGIN; DELETE FROM t; COMMIT', kinds: ['transaction', 'delete'], withoutWhere: true, statements: 3 },
    { sql: 'BEGIN WORK; DELETE FROM t WHERE a = 1; ROLLBACK', kinds: ['transaction', 'delete'], withoutWhere: false, statements: 3 },
  ],
  'session statements': [
    { sql: 'SET @x = (SELECT b FROM t LIMIT 1)', kinds: ['set'], reads: ['.t'] },
    { sql: 'SET NAMES utf8mb4', kinds: ['set'], unparsed: false },
    { sql: 'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED', kinds: ['set'], unparsed: false },
    { sql: 'KILL 999999', kinds: ['kill'], unparsed: false, noOracle: true },
    { sql: 'KILL QUERY 999999', kinds: ['kill'], unparsed: false, noOracle: true },
    { sql: 'FLUSH TABLES t', kinds: ['flush'], reads: ['.t'] },
    { sql: 'SHOW TABLES', kinds: ['show'] },
    { sql: 'SHOW TABLES WHERE (SELECT COUNT(*) FROM t) > 0', unparsed: true },
    { sql: 'DESCRIBE t', kinds: ['describe'] },
    { sql: 'USE bypass', kinds: ['use'] },
    { sql: 'LOCK TABLES t READ; UNLOCK TABLES', kinds: ['lock'], reads: ['.t'], statements: 2 },
    { sql: 'GRANT SELECT ON bypass.* TO nobody@localhost', kinds: ['grant'], orUnparsed: true, noOracle: true },
    { sql: 'TRUNCATE t', kinds: ['truncate'], writes: ['.t'] },
    { sql: 'TRUNCATE TABLE bypass.t', kinds: ['truncate'], writes: ['bypass.t'] },
    { sql: 'RENAME TABLE t TO u', kinds: ['alter'], writes: ['.t'] },
    { sql: '\u00a0DELETE FROM t', unparsed: true },
  ],
};
