import { beforeAll, describe, expect, it } from 'vitest';
import { analyzePostgres, loadSqlParsers, type OutputLineage } from '../../parsers/sql/index.js';

const settings = { standardConformingStrings: true, searchPath: ['public'] };
const analyse = (sql: string) => {
  const s = analyzePostgres(sql, settings, null).statements[0];
  if (s === undefined) throw new Error('no statement');
  return s;
};
/** Outputs as "name<-rel.col,rel.col" (with "?" when unknown and "(*)" for an expansion). */
const outs = (sql: string): string[] =>
  (analyse(sql).outputs ?? []).map((o: OutputLineage) =>
    `${o.name ?? ''}${o.expansion === true ? '(*)' : ''}<-${o.sources.map((s) => `${s.relation.name}.${s.column}`).sort().join(',')}${o.unknown ? '?' : ''}`);
const preds = (sql: string): string[] => analyse(sql).predicateColumns.map((p) => `${p.relation.name}.${p.column}`).sort();

beforeAll(async () => { await loadSqlParsers(); });

describe('output lineage', () => {
  it('follows aliases, functions, casts, operators and CASE', () => {
    expect(outs("SELECT u.ssn AS x, upper(u.name)::text, u.a || '-' || u.b, CASE WHEN u.c THEN u.d END AS e FROM users u")).toEqual([
      'x<-users.ssn', 'upper<-users.name', '<-users.a,users.b', 'e<-users.c,users.d',
    ]);
  });

  it('treats whole-row references as the whole row', () => {
    expect(outs('SELECT c, row_to_json(c), c::text FROM customers c')).toEqual([
      'c<-customers.*,customers.c', 'row_to_json<-customers.*,customers.c', 'c<-customers.*,customers.c',
    ]);
    expect(outs('SELECT c.* FROM customers c')).toEqual(['(*)<-customers.*']);
    expect(outs('SELECT (c).ssn FROM customers c')).toContain('ssn<-customers.c,customers.ssn');
  });

  it('follows subqueries, CTEs, UNION and LATERAL', () => {
    expect(outs('SELECT s FROM (SELECT ssn AS s FROM users) x')).toEqual(['s<-users.ssn']);
    expect(outs('WITH x AS (SELECT ssn FROM users) SELECT * FROM x')).toEqual(['ssn<-users.ssn']);
    expect(outs('SELECT a FROM t UNION ALL SELECT b FROM u')).toEqual(['a<-t.a,u.b']);
    expect(outs('SELECT y.v FROM t, LATERAL (SELECT t.ssn AS v) y')).toEqual(['v<-t.ssn']);
    expect(outs('SELECT (SELECT max(ssn) FROM users) AS m')).toEqual(['m<-users.ssn']);
    expect(outs('WITH RECURSIVE r(n, s) AS (SELECT 1, ssn FROM users UNION ALL SELECT n + 1, s FROM r) SELECT s FROM r'))
      .toEqual(['s<-users.ssn']);
  });

  it('over-approximates an unqualified column over several tables', () => {
    expect(outs('SELECT ssn FROM a, b')).toEqual(['ssn<-a.ssn,b.ssn']);
  });

  it('marks user and SQL-text functions unknown', () => {
    expect(outs('SELECT my_fn(ssn) FROM users')).toEqual(['my_fn<-users.ssn?']);
    expect(outs("SELECT query_to_xml('select ssn from users', true, true, '')")).toEqual(['query_to_xml<-?']);
  });

  it('gives RETURNING and COPY lineage, and none for statements without rows', () => {
    expect(outs('DELETE FROM users WHERE id = 1 RETURNING ssn')).toEqual(['ssn<-users.ssn']);
    expect(outs('COPY users (ssn) TO STDOUT')).toEqual(['ssn<-users.ssn']);
    expect(outs('COPY (SELECT lower(email) FROM users) TO STDOUT')).toEqual(['lower<-users.email']);
    expect(analyse('UPDATE users SET a = 1 WHERE id = 2').outputs).toBeNull();
    expect(analyse('SELECT * INTO x FROM users').outputs).toBeNull();
  });

  it('marks a star over a table as an expansion', () => {
    expect(outs('SELECT * FROM users')).toEqual(['(*)<-users.*']);
  });
});

describe('predicate columns', () => {
  it('collects WHERE, JOIN ON, GROUP BY, HAVING and ORDER BY columns', () => {
    expect(preds('SELECT o.total FROM users u JOIN orders o ON o.uid = u.id WHERE u.ssn = $1 GROUP BY o.total HAVING max(u.age) > 3 ORDER BY o.day'))
      .toEqual(['orders.day', 'orders.total', 'orders.uid', 'users.age', 'users.id', 'users.ssn']);
  });

  it('counts an ordinal ORDER BY as every output column', () => {
    expect(preds('SELECT ssn, name FROM users ORDER BY 2')).toEqual(['users.name', 'users.ssn']);
  });

  it('includes predicates and outputs of subqueries in a WHERE', () => {
    expect(preds('SELECT 1 FROM t WHERE t.a IN (SELECT ssn FROM users WHERE dob > now())')).toEqual(['t.a', 'users.dob', 'users.ssn']);
  });

  it('includes UPDATE and DELETE conditions', () => {
    expect(preds("DELETE FROM users WHERE ssn LIKE '1%'")).toEqual(['users.ssn']);
  });
});
