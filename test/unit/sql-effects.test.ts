/**
 * Rules match effects, not syntax (issue 25, item 4): every way rows are added, changed or
 * removed carries the kind a rule names, and `without_where` (alias `unbounded`) is every write
 * whose text does not pin the rows it changes — in both dialects, through the real analysers
 * and the real policy engine.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { analyzePostgres, loadSqlParsers } from '../../parsers/sql/index.js';
import { analyzeMysql } from '../../parsers/sql/mysql/index.js';
import type { StatementAnalysis } from '../../parsers/sql/types.js';
import { Policy, type PolicyContext } from '../../src/policy/index.js';
import { type RuleConfig } from '../../src/config/index.js';
import { validateConfig } from '../../app/config.js';
import type { Identity } from '../../src/core/types.js';

beforeAll(async () => { await loadSqlParsers(); });

const pg = (sql: string): StatementAnalysis[] => analyzePostgres(sql, { standardConformingStrings: true, searchPath: ['public'] }, null).statements;
const my = (sql: string): StatementAnalysis[] => analyzeMysql(sql, { standardConformingStrings: false, searchPath: ['appdb'] }).statements;
const unbounded = (all: StatementAnalysis[]): boolean => all.some((s) => s.withoutWhere);
const kinds = (all: StatementAnalysis[]): string[] => all.flatMap((s) => s.kinds);

describe('PostgreSQL: unbounded writes', () => {
  const cases: Array<[string, string]> = [
    ['no WHERE', 'UPDATE customers SET notes = 1'],
    ['WHERE true', 'UPDATE customers SET notes = 1 WHERE true'],
    ['WHERE 1=1', 'DELETE FROM customers WHERE 1 = 1'],
    ["WHERE 'a'='a'", "DELETE FROM customers WHERE 'a' = 'a'"],
    ['WHERE NOT false', 'DELETE FROM customers WHERE NOT false'],
    ['WHERE id = id', 'DELETE FROM customers WHERE id = id'],
    ['a pin OR a constant', 'DELETE FROM customers WHERE id = 1 OR true'],
    ['a range', 'DELETE FROM customers WHERE id > 0'],
    ['IS NOT NULL', 'DELETE FROM customers WHERE id IS NOT NULL'],
    ['a subquery over the target', 'DELETE FROM customers WHERE id IN (SELECT id FROM customers)'],
    ['an unqualified column beside another relation', 'UPDATE customers SET notes = 1 FROM orders WHERE id = 1'],
    ['the table name where an alias hides it', 'UPDATE customers AS c SET notes = 1 FROM customers WHERE customers.id = 1'],
    ['a join to a whole table', 'UPDATE customers c SET notes = o.note FROM orders o WHERE c.id = o.customer_id'],
    ['a left join ON does not pin the left side', 'UPDATE customers c SET notes = 1 FROM orders o LEFT JOIN items i ON o.id = i.order_id WHERE i.id = 1 AND c.id = o.customer_id'],
    ['upsert from SELECT *', "INSERT INTO customers SELECT * FROM customers ON CONFLICT (id) DO UPDATE SET notes = 'x'"],
    ['upsert from a set-returning function', "INSERT INTO customers (id, notes) SELECT generate_series(1, 1000000), 'x' ON CONFLICT (id) DO UPDATE SET notes = 'x'"],
    ['upsert from unnest', "INSERT INTO customers (id) SELECT * FROM unnest($1::int[]) ON CONFLICT (id) DO UPDATE SET notes = 'x'"],
    ['MERGE ON true', "MERGE INTO customers c USING (SELECT 1) s ON true WHEN MATCHED THEN UPDATE SET notes = 'x'"],
    ['MERGE from a whole table', 'MERGE INTO customers c USING customers s ON c.id = s.id WHEN MATCHED THEN DELETE'],
    ['MERGE … NOT MATCHED BY SOURCE', 'MERGE INTO customers c USING (VALUES (1)) s(id) ON c.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE'],
    ['TRUNCATE', 'TRUNCATE customers'],
    ['a data-modifying CTE', 'WITH d AS (DELETE FROM customers WHERE 1 = 1 RETURNING *) SELECT count(*) FROM d'],
    ['an upsert inside a CTE', "WITH u AS (INSERT INTO customers SELECT * FROM customers ON CONFLICT (id) DO UPDATE SET notes = 'x' RETURNING 1) SELECT 1"],
    ['EXPLAIN ANALYZE runs it', 'EXPLAIN ANALYZE DELETE FROM customers WHERE true'],
    ['a volatile function, evaluated per row', "DELETE FROM customers WHERE id = nextval('s')"],
    ['random()', 'DELETE FROM customers WHERE id = (random() * 10)::int'],
    ['a subquery of a million rows with k = 1, "pinned" by k', "INSERT INTO customers (id, notes) SELECT s.id, 'x' FROM (SELECT 1 AS k, g AS id FROM generate_series(1, 1000000) g) s WHERE s.k = 1 ON CONFLICT (id) DO UPDATE SET notes = 'x'"],
    ['a recursive CTE "pinned" by a constant column', "WITH RECURSIVE r(k, id) AS (SELECT 1, 1 UNION ALL SELECT 1, id + 1 FROM r WHERE id < 100) INSERT INTO customers (id, notes) SELECT id, 'x' FROM r WHERE k = 1 ON CONFLICT (id) DO UPDATE SET notes = 'x'"],
    ['a CTE name that is a table to the CTE before it', "WITH a AS (SELECT * FROM customers), customers AS (SELECT 1 AS id) INSERT INTO customers SELECT * FROM a ON CONFLICT (id) DO UPDATE SET notes = 'x'"],
    ['a CTE of the outer statement', "WITH r AS (SELECT 1 AS k, g AS id FROM generate_series(1, 100) g), u AS (INSERT INTO customers (id) SELECT id FROM r WHERE k = 1 ON CONFLICT (id) DO UPDATE SET notes = 'x' RETURNING 1) SELECT 1"],
    ['a join to a set-returning function', 'UPDATE customers SET notes = 1 FROM generate_series(1, 10) g WHERE customers.id = g'],
  ];
  for (const [name, sql] of cases) it(`${name}: ${sql}`, () => expect(unbounded(pg(sql))).toBe(true));

  const bounded: Array<[string, string]> = [
    ['a pinned key', 'UPDATE customers SET notes = 1 WHERE id = 1'],
    ['a parameter', 'DELETE FROM customers WHERE id = $1'],
    ['IN a list, ANY of an array', 'DELETE FROM customers WHERE id IN (1, 2) AND id = ANY($1::int[])'],
    ['each arm of an OR pins', 'DELETE FROM customers WHERE id = 1 OR id = 2'],
    ['a pin beside anything', "UPDATE customers SET notes = 1 WHERE id = 7::bigint AND lower(name) LIKE 'a%'"],
    ['WHERE CURRENT OF', 'DELETE FROM customers WHERE CURRENT OF c'],
    ['a join chain to a pinned row', 'UPDATE customers c SET notes = o.note FROM orders o WHERE o.id = 5 AND c.id = o.customer_id'],
    ['FROM VALUES', 'UPDATE customers c SET notes = v.n FROM (VALUES (1, 2), (3, 4)) v(id, n) WHERE c.id = v.id'],
    ['upsert of VALUES', "INSERT INTO customers VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET notes = excluded.notes"],
    ['upsert of a pinned SELECT', "INSERT INTO customers SELECT * FROM customers WHERE id = 3 ON CONFLICT (id) DO UPDATE SET notes = 'x'"],
    ['upsert whose DO UPDATE WHERE pins', "INSERT INTO customers SELECT * FROM customers ON CONFLICT (id) DO UPDATE SET notes = 'x' WHERE customers.id = 1"],
    ['DO NOTHING changes no row', 'INSERT INTO customers SELECT * FROM customers ON CONFLICT DO NOTHING'],
    ['MERGE of a bounded source by key', "MERGE INTO customers c USING (VALUES (1, 'x')) s(id, n) ON c.id = s.id WHEN MATCHED THEN UPDATE SET notes = s.n"],
    ['MERGE that only inserts', 'MERGE INTO customers c USING customers s ON c.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)'],
    ['plain INSERT … SELECT adds rows only', 'INSERT INTO customers SELECT * FROM customers'],
    ['COPY FROM adds rows only', 'COPY customers FROM STDIN'],
    ['a CTE of VALUES', "WITH v AS (VALUES (1, 'x')) INSERT INTO customers SELECT * FROM v ON CONFLICT (id) DO UPDATE SET notes = 'x'"],
    ['FROM a one-row subquery', 'UPDATE customers c SET notes = 1 FROM (SELECT 1 AS id) s WHERE c.id = s.id'],
    ['EXPLAIN without ANALYZE runs nothing', 'EXPLAIN DELETE FROM customers'],
  ];
  for (const [name, sql] of bounded) it(`bounded — ${name}: ${sql}`, () => expect(unbounded(pg(sql))).toBe(false));
});

describe('PostgreSQL: effects as kinds, targets as written tables', () => {
  it('COPY FROM is an insert into its table; COPY TO is not', () => {
    const [s] = pg('COPY orders FROM STDIN');
    expect(s?.kinds).toEqual(['copy', 'insert']);
    expect(s?.writes).toEqual([{ schema: null, name: 'orders' }]);
    expect(kinds(pg('COPY orders TO STDOUT'))).not.toContain('insert');
  });
  it('ON CONFLICT DO UPDATE is an update too, DO NOTHING is not', () => {
    expect(kinds(pg("INSERT INTO orders VALUES (1) ON CONFLICT (id) DO UPDATE SET amount = 2"))).toEqual(['insert', 'update']);
    expect(kinds(pg('INSERT INTO orders VALUES (1) ON CONFLICT DO NOTHING'))).toEqual(['insert']);
    expect(pg('INSERT INTO shop.orders AS o SELECT * FROM orders ON CONFLICT (id) DO UPDATE SET amount = 2')[0]?.writes).toEqual([{ schema: 'shop', name: 'orders' }]);
  });
  it('MERGE has the kinds of its actions and writes its target', () => {
    const [s] = pg('MERGE INTO orders o USING (SELECT 1 AS id) s ON o.id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (s.id)');
    expect(s?.kinds).toEqual(['merge', 'delete', 'insert']);
    expect(s?.writes).toEqual([{ schema: null, name: 'orders' }]);
  });
  it('TRUNCATE is a delete', () => expect(kinds(pg('TRUNCATE orders'))).toEqual(['truncate', 'delete']));
});

describe('MySQL: unbounded writes', () => {
  const cases: Array<[string, string]> = [
    ['no WHERE', 'UPDATE customers SET notes = 1'],
    ['WHERE 1', 'DELETE FROM customers WHERE 1'],
    ['WHERE 1=1', 'DELETE FROM customers WHERE 1 = 1'],
    ["WHERE 'a'='a'", "UPDATE customers SET notes = 1 WHERE 'a' = 'a'"],
    ['WHERE NOT false', 'UPDATE customers SET notes = 1 WHERE NOT false'],
    ['a pin OR 1', 'DELETE FROM customers WHERE id = 1 OR 1'],
    ['|| is OR to the server', 'DELETE FROM customers WHERE id = 1 || 1'],
    ['&& then || (the parser groups it the other way)', 'DELETE FROM customers WHERE id = 1 && 1 || 1'],
    ['XOR', 'DELETE FROM customers WHERE id = 1 XOR 1'],
    ['a subquery', 'DELETE FROM customers WHERE id IN (SELECT id FROM customers)'],
    ['upsert from SELECT *', "INSERT INTO customers SELECT * FROM customers ON DUPLICATE KEY UPDATE notes = 'x'"],
    ['REPLACE … SELECT', 'REPLACE INTO customers SELECT * FROM customers'],
    ['REPLACE from a derived table', 'REPLACE INTO customers SELECT * FROM (SELECT * FROM customers) d'],
    ['multi-table UPDATE without WHERE', 'UPDATE customers c JOIN orders o ON o.cid = c.id SET c.notes = 1'],
    ['comma-join UPDATE joined to a whole table', 'UPDATE customers c, orders o SET c.notes = 1 WHERE c.id = o.cid'],
    ['multi-table DELETE without WHERE', 'DELETE c FROM customers c JOIN orders o ON o.cid = c.id'],
    ['LEFT JOIN ON pins nothing', 'UPDATE customers c LEFT JOIN orders o ON o.cid = c.id SET c.notes = 1 WHERE o.id = 3'],
    ['LOAD DATA … REPLACE', "LOAD DATA INFILE '/tmp/x' REPLACE INTO TABLE customers"],
    ['TRUNCATE', 'TRUNCATE customers'],
    ['a string column = 0 (every non-numeric string is 0)', 'DELETE FROM customers WHERE notes = 0'],
    ['= 00', 'DELETE FROM customers WHERE notes = 00'],
    ['= FALSE', 'DELETE FROM customers WHERE notes = FALSE'],
    ['= 1 - 1', 'DELETE FROM customers WHERE notes = 1 - 1'],
    ["= CAST('0' AS SIGNED)", "DELETE FROM customers WHERE notes = CAST('0' AS SIGNED)"],
    ['= @var (may hold 0)', 'DELETE FROM customers WHERE notes = @v'],
    ['= 0x00', 'DELETE FROM customers WHERE notes = 0x00'],
    ['IN a list holding 0', 'DELETE FROM customers WHERE notes IN (1, 0)'],
    ['RAND()', 'DELETE FROM customers WHERE id = RAND()'],
    ['a derived table "pinned" by a constant column', "REPLACE INTO customers SELECT d.id, 'x' FROM (SELECT 1 AS k, seq AS id FROM seq_1_to_100) d WHERE d.k = 1"],
    ['a CTE "pinned" by a constant column', "INSERT INTO customers WITH r AS (SELECT 1 AS k, seq AS id FROM seq_1_to_100) SELECT id, 'x' FROM r WHERE k = 1 ON DUPLICATE KEY UPDATE notes = 'x'"],
  ];
  for (const [name, sql] of cases) it(`${name}: ${sql}`, () => expect(unbounded(my(sql))).toBe(true));

  it('a shape shared by texts that differ only in literals keeps zero apart (no cached answer crosses)', () => {
    expect(unbounded(my("DELETE FROM customers WHERE notes = 'abc'"))).toBe(false);
    expect(unbounded(my('DELETE FROM customers WHERE notes = 0'))).toBe(true);
    expect(unbounded(my('DELETE FROM customers WHERE notes = 5'))).toBe(false);
    expect(unbounded(my('DELETE FROM customers WHERE notes = 000'))).toBe(true);
  });

  const bounded: Array<[string, string]> = [
    ['a pinned key', 'UPDATE customers SET notes = 1 WHERE id = 1'],
    ['a placeholder', 'DELETE FROM customers WHERE id = ?'],
    ['IN a list', 'DELETE FROM customers WHERE id IN (1, 2, 3)'],
    ['an inner join chain to a pinned row', 'UPDATE customers c JOIN orders o ON o.cid = c.id SET c.notes = o.note WHERE o.id = 1'],
    ['multi-table DELETE, every target pinned', 'DELETE c, o FROM customers c JOIN orders o ON o.cid = c.id WHERE c.id = 2'],
    ['upsert of VALUES', "INSERT INTO customers VALUES (1, 'x') ON DUPLICATE KEY UPDATE notes = 'x'"],
    ['upsert of SET', "INSERT INTO customers SET id = 1 ON DUPLICATE KEY UPDATE notes = 'x'"],
    ['upsert of a pinned SELECT', "INSERT INTO customers SELECT * FROM customers WHERE id = 1 ON DUPLICATE KEY UPDATE notes = 'x'"],
    ['REPLACE of VALUES', "REPLACE INTO customers VALUES (1, 'x')"],
    ['a CTE of one row', "INSERT INTO customers WITH r AS (SELECT 1 AS id) SELECT id, 'x' FROM r ON DUPLICATE KEY UPDATE notes = 'x'"],
    ['a join to a one-row derived table', 'UPDATE customers c JOIN (SELECT 1 AS id) d ON c.id = d.id SET c.notes = 1'],
    ['plain INSERT … SELECT adds rows only', 'INSERT INTO customers SELECT * FROM customers'],
    ['LOAD DATA without REPLACE adds rows only', "LOAD DATA INFILE '/tmp/x' INTO TABLE customers"],
  ];
  for (const [name, sql] of bounded) it(`bounded — ${name}: ${sql}`, () => expect(unbounded(my(sql))).toBe(false));

  it('LOAD DATA is an insert into its table (REPLACE: a delete too); TRUNCATE a delete', () => {
    const [s] = my("LOAD DATA INFILE '/tmp/x' REPLACE INTO TABLE customers");
    expect(s?.kinds).toEqual(['load_data', 'insert', 'delete']);
    expect(s?.writes).toEqual([{ schema: null, name: 'customers' }]);
    expect(kinds(my('TRUNCATE customers'))).toEqual(['truncate', 'delete']);
  });

  it('a multi-table DELETE writes the tables its aliases name (DELETE x FROM orders AS x writes orders, not x)', () => {
    const [s] = my('DELETE x FROM shop.orders AS x JOIN customers c ON c.id = x.cid WHERE c.id = 1');
    expect(s?.writes).toEqual([{ schema: 'shop', name: 'orders' }]);
    expect(s?.withoutWhere).toBe(false);
  });
});

describe('policy: rules about inserts, updates, deletes and unbounded writes see the effects', () => {
  const identity: Identity = { subject: 'alice', issuer: 'https://idp', groups: ['dev'], kind: 'human', expiresAt: Date.now() + 3_600_000 };
  const ctx: PolicyContext = { identity, connection: 'appdb', resolveRelation: (r) => [r.schema === null ? `public.${r.name}` : `${r.schema}.${r.name}`] };
  function rules(doc: unknown[]): RuleConfig[] {
    const r = validateConfig({ rules: doc });
    if (!r.ok) throw new Error(r.problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
    return r.config.rules;
  }
  const policy = new Policy(rules([
    { name: 'no-unbounded', when: { statements: ['update', 'delete'], without_where: true }, effect: 'deny' },
    { name: 'orders-writes', when: { statements: ['insert', 'update', 'delete', 'merge'], tables: ['public.orders'] }, effect: 'approve', approvers: ['dba'] },
  ]));
  const decide = (s: StatementAnalysis | undefined, dialect: 'postgres' | 'mysql' = 'postgres') => {
    if (s === undefined) throw new Error('no statement');
    return policy.decide({ kind: 'sql', dialect, text: s.text, statement: s }, ctx);
  };

  it('COPY orders FROM STDIN is held by the rule about inserts into public.orders', () => {
    const d = decide(pg('COPY orders FROM STDIN')[0]);
    expect(d.effect).toBe('hold');
    if (d.effect === 'hold') expect(d.rule).toBe('orders-writes');
  });
  it('LOAD DATA into orders is held too', () => expect(decide(my("LOAD DATA INFILE '/tmp/x' INTO TABLE orders")[0], 'mysql').effect).toBe('hold'));
  it('an unbounded upsert, MERGE and REPLACE are denied, naming why', () => {
    for (const s of [pg("INSERT INTO customers SELECT * FROM customers ON CONFLICT (id) DO UPDATE SET notes = 'x'")[0],
      pg("MERGE INTO customers c USING (SELECT 1) s ON true WHEN MATCHED THEN UPDATE SET notes = 'x'")[0]]) {
      const d = decide(s);
      expect(d.effect, s?.text).toBe('deny');
      if (d.effect === 'deny') expect(d.reason).toContain('unbounded UPDATE');
    }
    expect(decide(my('REPLACE INTO customers SELECT * FROM customers')[0], 'mysql').effect).toBe('deny');
  });
  it('bounded writes are not denied', () => {
    expect(decide(pg('UPDATE customers SET notes = 1 WHERE id = 1')[0]).effect).toBe('allow');
    expect(decide(pg("INSERT INTO customers VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET notes = 'x'")[0]).effect).toBe('allow');
  });
  it('`unbounded` is an alias of without_where; the two must agree', () => {
    const alias = new Policy(rules([{ name: 'u', when: { statements: ['update'], unbounded: true }, effect: 'deny' }]));
    const s = pg('UPDATE customers SET notes = 1 WHERE 1 = 1')[0] as StatementAnalysis;
    expect(alias.decide({ kind: 'sql', dialect: 'postgres', text: s.text, statement: s }, ctx).effect).toBe('deny');
    const r = validateConfig({ rules: [{ name: 'x', when: { without_where: true, unbounded: false }, effect: 'deny' }] });
    expect(r.ok).toBe(false);
  });
});
