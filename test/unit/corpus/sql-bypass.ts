/**
 * Bypass corpus for PostgreSQL statement analysis, by class. Each entry is a query string
 * and what the analysis must report, summed over all its statements. `writes` and `reads`
 * list relations as "schema.name" (schema empty when unqualified) that must be present;
 * `noWrites` means no statement may report any write; `kindsAbsent` must not appear.
 */

export interface BypassCase {
  sql: string;
  kinds?: string[];
  kindsAbsent?: string[];
  writes?: string[];
  reads?: string[];
  noWrites?: boolean;
  opaque?: boolean;
  unparsed?: boolean;
  withoutWhere?: boolean;
  statements?: number;
  /** standard_conforming_strings; default on. */
  scs?: boolean;
}

export const bypassCorpus: Record<string, BypassCase[]> = {
  'case and whitespace games': [
    { sql: 'DeLeTe\tFROM\n\n  secrets', kinds: ['delete'], writes: ['.secrets'], withoutWhere: true },
    { sql: 'delete/**/from/**/secrets', kinds: ['delete'], writes: ['.secrets'] },
    { sql: '\u00a0DELETE FROM secrets', unparsed: true },
    { sql: 'DELETE FROM SECRETS', writes: ['.secrets'] },
  ],
  'comments': [
    { sql: 'SELECT 1 -- ; DELETE FROM secrets', noWrites: true, statements: 1 },
    { sql: 'SELECT 1 /* ; DELETE FROM secrets */', noWrites: true, statements: 1 },
    { sql: 'SELECT 1 /* outer /* inner */ ; DELETE FROM secrets */', noWrites: true, statements: 1 },
    { sql: 'SELECT 1 /* outer /* inner */ */; DELETE FROM secrets', writes: ['.secrets'], statements: 2 },
    { sql: '/* x */ DELETE /* y */ FROM /* z */ secrets -- w', writes: ['.secrets'] },
    { sql: 'SELECT 1 --\r; DELETE FROM secrets', writes: ['.secrets'], statements: 2 },
    { sql: 'SELECT 1 --\n DELETE FROM secrets', reads: ['.secrets'], noWrites: true, statements: 1 },
  ],
  'quoted and qualified identifiers': [
    { sql: 'DELETE FROM "public"."secrets"', writes: ['public.secrets'] },
    { sql: 'DELETE FROM "Secrets"', writes: ['.Secrets'] },
    { sql: 'DELETE FROM PUBLIC.SECRETS', writes: ['public.secrets'] },
    { sql: 'DELETE FROM mydb.public.secrets', writes: ['public.secrets'] },
    { sql: 'DELETE FROM "sec""rets"', writes: ['.sec"rets'] },
  ],
  'unicode identifiers': [
    { sql: 'DELETE FROM U&"s\\0065crets"', writes: ['.secrets'] },
    { sql: 'DELETE FROM U&"s!0065crets" UESCAPE \'!\'', writes: ['.secrets'] },
    { sql: 'DELETE FROM U&"\\+000073ecrets"', writes: ['.secrets'] },
  ],
  'escape strings hiding a statement': [
    { sql: "SELECT E'\\''; DELETE FROM secrets; --'", writes: ['.secrets'], statements: 2 },
    { sql: "SELECT E'\\\\'; DELETE FROM secrets; --'", writes: ['.secrets'], statements: 2 },
    { sql: "SELECT E'x\\'; DELETE FROM secrets; --'", noWrites: true, statements: 1 },
    { sql: "SELECT E'a'\n'\\''; DELETE FROM secrets; --'", writes: ['.secrets'] },
  ],
  'dollar quoting': [
    { sql: 'SELECT $$; DELETE FROM secrets; $$', noWrites: true, statements: 1 },
    { sql: 'SELECT $t$ ); DELETE FROM secrets; $x$ $t$', noWrites: true, statements: 1 },
    { sql: 'SELECT $t$ a $t$; DELETE FROM secrets', writes: ['.secrets'], statements: 2 },
    { sql: 'SELECT $a$ $b$ $a$; DELETE FROM secrets; -- $b$', writes: ['.secrets'] },
  ],
  'several statements in one message': [
    { sql: 'SELECT 1; DELETE FROM secrets', kinds: ['select', 'delete'], writes: ['.secrets'], statements: 2 },
    { sql: 'BEGIN; UPDATE a SET x = 1 WHERE y = 2; COMMIT', kinds: ['transaction', 'update'], statements: 3 },
    { sql: 'SELECT 1;;; DROP TABLE secrets', kinds: ['drop'], writes: ['.secrets'] },
  ],
  'data-modifying CTEs': [
    { sql: 'WITH d AS (DELETE FROM secrets RETURNING *) SELECT * FROM d', kinds: ['select', 'delete'], writes: ['.secrets'] },
    { sql: 'WITH u AS (UPDATE secrets SET x = 1 RETURNING 1) SELECT 1', writes: ['.secrets'], withoutWhere: true },
    { sql: 'SELECT * FROM (WITH d AS (DELETE FROM secrets RETURNING 1) SELECT * FROM d) s', writes: ['.secrets'] },
    { sql: 'WITH a AS (SELECT 1), b AS (INSERT INTO audit SELECT * FROM a RETURNING 1) SELECT 1', writes: ['.audit'] },
  ],
  'COPY of a write': [
    { sql: 'COPY (DELETE FROM secrets RETURNING *) TO STDOUT', kinds: ['copy', 'delete'], writes: ['.secrets'] },
    { sql: 'COPY secrets FROM STDIN', kinds: ['copy'], writes: ['.secrets'] },
    { sql: 'COPY secrets TO STDOUT', kinds: ['copy'], reads: ['.secrets'], noWrites: true },
    { sql: "COPY secrets FROM PROGRAM 'cat /etc/passwd'", writes: ['.secrets'], opaque: true },
  ],
  'EXPLAIN ANALYZE of a write': [
    { sql: 'EXPLAIN ANALYZE DELETE FROM secrets', kinds: ['explain', 'delete'], writes: ['.secrets'] },
    { sql: 'EXPLAIN (ANALYZE) DELETE FROM secrets', writes: ['.secrets'] },
    { sql: 'EXPLAIN (ANALYZE true, FORMAT json) DELETE FROM secrets', writes: ['.secrets'] },
    { sql: 'EXPLAIN (ANALYZE 1) DELETE FROM secrets', writes: ['.secrets'] },
    { sql: 'EXPLAIN (ANALYZE on) DELETE FROM secrets', writes: ['.secrets'] },
  ],
  'MERGE': [
    { sql: 'MERGE INTO secrets s USING src ON s.id = src.id WHEN MATCHED THEN DELETE', kinds: ['merge', 'delete'], writes: ['.secrets'], reads: ['.src'] },
    { sql: 'MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)', kinds: ['merge', 'insert'], writes: ['.t'] },
  ],
  'indirect execution': [
    { sql: 'DO $$BEGIN DELETE FROM secrets; END$$', kinds: ['do', 'delete'], writes: ['.secrets'], opaque: true },
    { sql: "DO $$BEGIN EXECUTE 'DELETE FROM ' || 'secrets'; END$$", kinds: ['do'], opaque: true },
    { sql: "DO LANGUAGE plpgsql 'BEGIN DELETE FROM secrets; END'", writes: ['.secrets'], opaque: true },
    { sql: 'CALL purge_secrets()', kinds: ['call'], opaque: true },
    { sql: 'PREPARE p AS DELETE FROM secrets', kinds: ['prepare', 'delete'], writes: ['.secrets'] },
    { sql: 'EXECUTE p', kinds: ['execute'], opaque: true },
    { sql: 'CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$DELETE FROM secrets$$', kinds: ['create', 'delete'], writes: ['.secrets'] },
    { sql: 'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC DELETE FROM secrets; SELECT 1; END', writes: ['.secrets'] },
    { sql: "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS 'BEGIN DELETE FROM secrets; END'", writes: ['.secrets'] },
    { sql: 'SELECT f()', opaque: true },
    { sql: 'SELECT public.lower(x) FROM t', opaque: true },
    { sql: "SELECT query_to_xml('DELETE FROM secrets RETURNING 1', true, true, '')", opaque: true },
    { sql: "SELECT dblink_exec('dbname=x', 'DELETE FROM secrets')", opaque: true },
    { sql: 'SELECT 1 OPERATOR(public.===) 2', opaque: true },
    { sql: 'SELECT 1 === 2', opaque: true },
    { sql: 'CREATE RULE r AS ON SELECT TO t DO INSTEAD DELETE FROM secrets', writes: ['.secrets', '.t'] },
    { sql: 'DECLARE c CURSOR FOR SELECT * FROM secrets', kinds: ['declare', 'select'], reads: ['.secrets'] },
    { sql: 'CREATE EXTENSION dblink', opaque: true },
    { sql: "LOAD 'evil'", kinds: ['load'], opaque: true },
  ],
  'CTE named after a keyword or a table': [
    { sql: 'WITH "delete" AS (SELECT 1) SELECT * FROM "delete"', kinds: ['select'], noWrites: true },
    { sql: 'WITH secrets AS (SELECT 1) SELECT * FROM secrets', noWrites: true },
    { sql: 'WITH secrets AS (SELECT * FROM secrets) SELECT * FROM secrets', reads: ['.secrets'] },
    { sql: 'WITH x AS (SELECT 1) SELECT * FROM public.x', reads: ['public.x'] },
    { sql: 'WITH x AS (SELECT 1) DELETE FROM x', writes: ['.x'] },
    { sql: 'SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) a, x', reads: ['.x'] },
  ],
  'standard_conforming_strings off': [
    { sql: "SELECT 'a\\'' ; DELETE FROM secrets; -- '", scs: false, writes: ['.secrets'], statements: 2 },
    { sql: "SELECT 'a\\'' ; DELETE FROM secrets; -- '", scs: true, noWrites: true, statements: 1 },
    { sql: "SELECT '\\'; DELETE FROM secrets; --'", scs: true, writes: ['.secrets'] },
    { sql: "SELECT '\\'; DELETE FROM secrets; --'", scs: false, noWrites: true, statements: 1 },
    { sql: "SELECT N'a\\'' ; DELETE FROM secrets; -- '", scs: false, writes: ['.secrets'] },
    { sql: "SELECT 'a'\n'b\\'' ; DELETE FROM secrets; -- '", scs: false, writes: ['.secrets'] },
    { sql: "SELECT $$\\'$$; DELETE FROM secrets", scs: false, writes: ['.secrets'] },
    { sql: "SELECT B'01', '\\'' ; DELETE FROM secrets; -- '", scs: false, writes: ['.secrets'] },
    { sql: "SELECT 1 -- '\\'\n; DELETE FROM secrets", scs: false, writes: ['.secrets'] },
  ],
  'other statement kinds': [
    { sql: 'TRUNCATE secrets, other', kinds: ['truncate'], writes: ['.secrets', '.other'] },
    { sql: 'DROP TABLE a.secrets CASCADE', kinds: ['drop'], writes: ['a.secrets'] },
    { sql: 'DROP SCHEMA s CASCADE', kinds: ['drop'], writes: ['s.*'] },
    { sql: 'ALTER TABLE secrets DISABLE ROW LEVEL SECURITY', kinds: ['alter'], writes: ['.secrets'] },
    { sql: 'GRANT SELECT ON secrets TO bob', kinds: ['grant'], writes: ['.secrets'] },
    { sql: 'REVOKE ALL ON ALL TABLES IN SCHEMA s FROM bob', kinds: ['revoke'], writes: ['s.*'] },
    { sql: 'CREATE TABLE copy AS SELECT * FROM secrets', kinds: ['create', 'select'], writes: ['.copy'], reads: ['.secrets'] },
    { sql: 'SELECT * INTO copy FROM secrets', kinds: ['select', 'create'], writes: ['.copy'], reads: ['.secrets'] },
    { sql: 'SELECT * INTO TEMP copy FROM secrets', writes: ['pg_temp.copy'] },
    { sql: 'LOCK TABLE secrets IN ACCESS EXCLUSIVE MODE', kinds: ['lock'], reads: ['.secrets'] },
    { sql: 'VACUUM FULL secrets', kinds: ['vacuum'], writes: ['.secrets'] },
    { sql: 'SET search_path = evil, public', kinds: ['set'] },
    { sql: 'RESET ALL', kinds: ['reset'] },
    { sql: 'SHOW search_path', kinds: ['show'] },
    { sql: "LISTEN ch; NOTIFY ch, 'x'; UNLISTEN ch", kinds: ['listen', 'notify', 'unlisten'] },
    { sql: 'SELECT * FROM secrets FOR UPDATE', kinds: ['select'], reads: ['.secrets'], noWrites: true },
    { sql: 'INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2', writes: ['.t'], reads: ['.t'] },
    { sql: 'CREATE TRIGGER tr AFTER INSERT ON secrets FOR EACH ROW EXECUTE FUNCTION f()', writes: ['.secrets'] },
    { sql: 'CREATE TABLE p1 PARTITION OF secrets FOR VALUES IN (1)', writes: ['.p1', '.secrets'] },
    { sql: 'REFRESH MATERIALIZED VIEW mv', kinds: ['refresh'], writes: ['.mv'] },
  ],
  'unparsable text': [
    { sql: 'DELET FROM secrets', unparsed: true, opaque: true },
    { sql: 'SELECT 1; DELET FROM secrets', unparsed: true, statements: 1 },
    { sql: "SELECT 'unterminated", unparsed: true },
  ],
  'harmless must pass': [
    { sql: "SELECT 'drop table x'", kinds: ['select'], noWrites: true, opaque: false },
    { sql: "SELECT 'DELETE FROM secrets; --'", noWrites: true, opaque: false, statements: 1 },
    { sql: 'EXPLAIN DELETE FROM secrets', kinds: ['explain'], kindsAbsent: ['delete'], noWrites: true, withoutWhere: false },
    { sql: 'EXPLAIN (ANALYZE false) DELETE FROM secrets', kindsAbsent: ['delete'], noWrites: true },
    { sql: 'EXPLAIN (ANALYZE off, VERBOSE) UPDATE secrets SET x = 1', kindsAbsent: ['update'], noWrites: true },
    { sql: 'SELECT 1 /* DELETE FROM secrets /* nested */ still comment */', noWrites: true, kindsAbsent: ['delete'] },
    { sql: 'INSERT INTO archive SELECT * FROM secrets WHERE id = 1', writes: ['.archive'], reads: ['.secrets'] },
    { sql: 'SELECT count(*), now(), lower(name), coalesce(a, b) FROM t WHERE x ~ \'a\'', opaque: false, noWrites: true },
    { sql: 'SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a', opaque: false },
    { sql: 'SELECT $1::int, $2', opaque: false, noWrites: true },
    { sql: 'DELETE FROM t WHERE CURRENT OF c', withoutWhere: false },
    { sql: '', kinds: ['empty'], opaque: false },
    { sql: ' ; ', kinds: ['empty'], opaque: false },
  ],
};
