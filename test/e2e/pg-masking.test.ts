/**
 * Result masking (issue 4): a leak corpus by class. Every query goes through airlock as an
 * identity under mask rules; none of the raw values seeded in the table may appear in
 * anything the client receives — rows, errors, notices, notifications — in text or binary.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, type PgCluster } from '../../app/dev/pgcluster.js';
import { startAppDb } from '../harness/appdb.js';
import { createTestIssuer, type TestIssuer } from '../harness/issuer.js';
import { startAirlock, type RunningAirlock } from '../harness/airlock.js';
import { psql } from '../harness/clients.js';
import { readdirSync, readFileSync } from 'node:fs';

let stateDir = '';

let upstream: PgCluster;
let issuer: TestIssuer;
let airlock: RunningAirlock;
let support: string;
let strict: string;
let dba: string;
let port = 0;

const SSNS = ['123-45-6789', '987-65-4321'];
const EMAILS = ['ada.lovelace@example.com', 'alan.turing@example.org'];
const CARDS = ['4111111111111111', '5500005555555559'];
const RAW = [...SSNS, ...EMAILS.map((e) => e.split('@')[0] ?? e), ...CARDS];

beforeAll(async () => {
  issuer = await createTestIssuer();
  const db = await startAppDb({ password: 'mask-pw', setupSql: `CREATE TABLE customers (id int primary key, name text, email text, ssn text, card_number text, notes text);
     INSERT INTO customers VALUES
       (1, 'Ada', '${EMAILS[0]}', '${SSNS[0]}', '${CARDS[0]}', 'call ada.lovelace@example.com'),
       (2, 'Alan', '${EMAILS[1]}', '${SSNS[1]}', '${CARDS[1]}', 'no notes');
     CREATE VIEW customer_ssn AS SELECT id, name, ssn FROM customers;
     CREATE VIEW customer_ssn2 AS SELECT * FROM customer_ssn;
     CREATE VIEW customer_mixed AS SELECT c.id, upper(c.name) AS shout, lower(c.email) AS mail, c.ssn AS tax_id FROM customers c;
     CREATE VIEW customer_mixed2 AS SELECT m.id, m.shout, m.tax_id FROM customer_mixed m;
     CREATE TABLE other (x text);` });
  upstream = db.upstream;
  port = await freePort();
  stateDir = join(db.dir, 'state');
  airlock = await startAirlock({
    state_dir: stateDir,
    auth: { issuers: [{ issuer: issuer.issuer, audience: 'airlock', jwks: issuer.jwksFile }] },
    connections: [
      db.connection('appdb', port, { allow_groups: ['support', 'strict', 'dba'], record: { results: 'rows' } }),
    ],
    rules: [
      { name: 'pii-for-support', when: { groups: ['support', 'strict'] }, effect: 'mask', columns: ['public.customers.email', '*.customers.ssn'], method: 'redact' },
      { name: 'cards-partial', when: { groups: ['support', 'strict'] }, effect: 'mask', columns: ['public.customers.card_number'], method: 'partial', keep: 4 },
      { name: 'emails-in-text', when: { groups: ['support', 'strict'] }, effect: 'mask', detect: ['email'], method: 'redact' },
      { name: 'strict-predicates', when: { groups: ['strict'] }, effect: 'mask', columns: ['*.customers.ssn'], method: 'redact', deny_predicates: true },
    ],
  });
  support = await issuer.token({ sub: 'sam', groups: ['support'] });
  strict = await issuer.token({ sub: 'sue', groups: ['strict'] });
  dba = await issuer.token({ sub: 'bob', groups: ['dba'] });
}, 120_000);

afterAll(async () => {
  await airlock?.stop();
  await upstream?.stop();
});

function expectNoRaw(text: string, what: string): void {
  for (const v of RAW) expect(text, `${what} leaked ${v}`).not.toContain(v);
}

const leakCorpus: Array<[string, string]> = [
  ['plain columns', 'SELECT * FROM customers'],
  ['alias', 'SELECT ssn AS x, email AS y FROM customers c'],
  ['qualified alias', 'SELECT c.ssn AS "Harmless" FROM customers AS c'],
  ['function', 'SELECT upper(ssn), lower(email) FROM customers'],
  ['cast', 'SELECT ssn::varchar(50), email::text FROM customers'],
  ['concatenation', "SELECT ssn || '', 'x' || email FROM customers"],
  ['CASE', "SELECT CASE WHEN id > 0 THEN ssn ELSE 'n' END FROM customers"],
  ['substring', 'SELECT substr(ssn, 1, 11), left(card_number, 16) FROM customers'],
  ['aggregate string_agg', "SELECT string_agg(ssn, ',') FROM customers"],
  ['aggregate array_agg', 'SELECT array_agg(email) FROM customers'],
  ['aggregate json_agg', 'SELECT json_agg(ssn) FROM customers'],
  ['whole row', 'SELECT c FROM customers c'],
  ['row_to_json', 'SELECT row_to_json(c) FROM customers c'],
  ['to_jsonb', 'SELECT to_jsonb(c) FROM customers c'],
  ['row cast to text', 'SELECT c::text FROM customers c'],
  ['field of row', 'SELECT (c).ssn FROM customers c'],
  ['star of alias', 'SELECT c.* FROM customers c'],
  ['subquery', 'SELECT (SELECT ssn FROM customers WHERE id = 1)'],
  ['derived table', 'SELECT x FROM (SELECT ssn AS x FROM customers) t'],
  ['CTE', 'WITH x AS (SELECT ssn AS s FROM customers) SELECT s FROM x'],
  ['UNION', "SELECT ssn FROM customers UNION ALL SELECT 'padding'"],
  ['LATERAL', 'SELECT l.s FROM customers c, LATERAL (SELECT c.ssn AS s) l'],
  ['view', 'SELECT * FROM customer_ssn'],
  ['view of a view', 'SELECT ssn FROM customer_ssn2'],
  ['unqualified through search_path', 'SET search_path = public; SELECT ssn FROM customers'],
  ['unqualified after search_path change', "SELECT set_config('search_path', 'public', false); SELECT ssn FROM customers"],
  ['format()', "SELECT format('%s', ssn) FROM customers"],
  ['free-text detector', 'SELECT notes FROM customers'],
];

const NULLED = new Set(['aggregate array_agg', 'whole row']);

describe('masking leak corpus through psql (text format)', () => {
  for (const [cls, sql] of leakCorpus) {
    it(`masks: ${cls}`, async () => {
      const r = await psql({ port, token: support }, ['-At', '-c', sql]);
      // The query runs (masking is not refusal) and its output is masked.
      expect(r.stderr, cls).toBe('');
      // Types no masked text can be valid for (arrays, records) come back as NULL.
      if (!NULLED.has(cls)) expect(r.stdout.trim(), cls).toContain('[redacted]');
      expectNoRaw(r.stdout + r.stderr, cls);
    });
  }

  it('forwards unmasked columns unchanged and masks by method', async () => {
    const r = await psql({ port, token: support }, ['-At', '-F', ',', '-c', 'SELECT id, name, ssn, card_number, email FROM customers ORDER BY id']);
    const rows = r.stdout.trim().split('\n');
    expect(rows[0]).toBe('1,Ada,[redacted],************1111,[redacted]');
    expect(rows[1]).toBe('2,Alan,[redacted],************5559,[redacted]');
  });

  it('follows a view column by column: columns that read no masked column pass, the others are masked', async () => {
    const r = await psql({ port, token: support }, ['-At', '-F', ',', '-c', 'SELECT id, shout, mail, tax_id FROM customer_mixed ORDER BY id']);
    expect(r.stdout.trim().split('\n')).toEqual(['1,ADA,[redacted],[redacted]', '2,ALAN,[redacted],[redacted]']);
    expectNoRaw(r.stdout, 'mixed view');
    // A view over a view keeps the whole inner view's sources: every column masked (fail closed).
    const nested = await psql({ port, token: support }, ['-At', '-F', ',', '-c', 'SELECT id, shout, tax_id FROM customer_mixed2 ORDER BY id']);
    expect(nested.stdout).not.toContain('ADA');
    expectNoRaw(nested.stdout, 'view of a mixed view');
  });

  it('shows raw values to an identity under no mask rule', async () => {
    const r = await psql({ port, token: dba }, ['-At', '-c', 'SELECT ssn FROM customers ORDER BY id']);
    expect(r.stdout.trim().split('\n')).toEqual(SSNS);
  });
});

describe('side channels', () => {
  it('scrubs a masked value out of an error message', async () => {
    const r = await psql({ port, token: support }, ['-At', '-c', 'SELECT ssn::int FROM customers']);
    expect(r.stderr).toContain('invalid input syntax');
    expectNoRaw(r.stderr, 'error');
  });

  it('masks COPY … TO STDOUT by column position (table and query form, psql \\copy)', async () => {
    const t = await psql({ port, token: support }, ['-At', '-c', 'COPY customers TO STDOUT']);
    expect(t.stderr).toBe('');
    expect(t.stdout.split('\n')[0]).toBe('1\tAda\t[redacted]\t[redacted]\t************1111\tcall ada.lovelace@example.com'.replace('ada.lovelace@example.com', '[redacted]'));
    expectNoRaw(t.stdout, 'COPY table');
    const q = await psql({ port, token: support }, ['-At', '-c', 'COPY (SELECT id, upper(ssn), name FROM customers ORDER BY id) TO STDOUT']);
    expect(q.stdout.trim().split('\n')).toEqual(['1\t[redacted]\tAda', '2\t[redacted]\tAlan']);
    const c = await psql({ port, token: support }, ['-At', '-c', '\\copy (select id, ssn from customers order by id) to stdout']);
    expect(c.stdout.trim().split('\n')).toEqual(['1\t[redacted]', '2\t[redacted]']);
    const d = await psql({ port, token: dba }, ['-At', '-c', 'COPY (SELECT ssn FROM customers ORDER BY id) TO STDOUT']);
    expect(d.stdout.trim().split('\n')).toEqual(SSNS);
  });

  it('follows cursors: FETCH results are masked', async () => {
    const r = await psql({ port, token: support }, ['-At', '-c', 'BEGIN; DECLARE cur CURSOR FOR SELECT ssn, upper(ssn) FROM customers; FETCH ALL FROM cur; COMMIT']);
    expect(r.stdout).toContain('[redacted]');
    expectNoRaw(r.stdout + r.stderr, 'cursor');
  });

  const refused: Array<[string, string]> = [
    ['COPY in CSV format', 'COPY customers TO STDOUT WITH (FORMAT csv)'],
    ['COPY in binary format', 'COPY (SELECT ssn FROM customers) TO STDOUT (FORMAT binary)'],
    ['COPY FROM into a masked table', 'COPY customers FROM STDIN'],
    ['CREATE TABLE AS', 'CREATE TABLE leak AS SELECT ssn FROM customers'],
    ['SELECT INTO', 'SELECT ssn INTO leak2 FROM customers'],
    ['INSERT … SELECT', 'INSERT INTO other SELECT ssn FROM customers'],
    ['view over a masked table', 'CREATE VIEW leak3 AS SELECT ssn FROM customers'],
    ['pg_notify', "SELECT pg_notify('c', ssn) FROM customers"],
    ['DO block', "DO $$ BEGIN RAISE NOTICE '%', (SELECT ssn FROM customers LIMIT 1); END $$"],
    ['UPDATE copying a masked column into an unmasked one', 'UPDATE customers SET notes = ssn WHERE id = 1'],
    ['UPDATE copying a whole row', 'UPDATE customers c SET notes = c::text WHERE id = 1'],
    ['UPDATE through a scalar subquery', 'UPDATE customers SET notes = (SELECT max(email) FROM customers) WHERE id = 1'],
    ['INSERT … SELECT *', 'INSERT INTO other SELECT c::text FROM customers c'],
    ['data-modifying CTE', 'WITH x AS (UPDATE customers SET notes = ssn WHERE id = 2 RETURNING id) SELECT count(*) FROM x'],
    ['ON CONFLICT DO UPDATE', "INSERT INTO customers (id, name) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET notes = excluded.name"],
  ];
  for (const [cls, sql] of refused) {
    it(`refuses ${cls}`, async () => {
      const r = await psql({ port, token: support }, ['-At', '-c', sql]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/airlock: denied by rule/);
      expectNoRaw(r.stdout + r.stderr, cls);
    });
  }
  it('leaves no copy behind', async () => {
    expect(await upstream.psql("select count(*) from pg_class where relname in ('leak','leak2','leak3')", { db: 'appdb' })).toBe('0');
    expect(await upstream.psql('select count(*) from other', { db: 'appdb' })).toBe('0');
  });

  it('allows writes whose values come from no masked column, and leaves the masked columns as they were', async () => {
    const statements = [
      "UPDATE customers SET name = 'Ada L' WHERE id = 1",
      "INSERT INTO customers (id, name) VALUES (3, 'Grace')",
      "UPDATE customers SET notes = upper(name) WHERE id = 3",
      'DELETE FROM customers WHERE id = 3',
      "UPDATE customers SET name = 'Ada' WHERE id = 1 RETURNING ssn",
    ];
    for (const sql of statements) {
      const r = await psql({ port, token: support }, ['-At', '-c', sql]);
      expect(r.stderr, sql).toBe('');
      expectNoRaw(r.stdout, sql);
    }
    expect(await upstream.psql("select name || ',' || ssn from customers where id = 1", { db: 'appdb' })).toBe(`Ada,${SSNS[0]}`);
    expect(await upstream.psql('select count(*) from customers', { db: 'appdb' })).toBe('2');
    expect(await upstream.psql("select count(*) from customers where notes like '%-%-%'", { db: 'appdb' })).toBe('0');
  });

  it('denies predicates on masked columns under deny_predicates', async () => {
    const r = await psql({ port, token: strict }, ['-At', '-c', "SELECT id FROM customers WHERE ssn LIKE '1%'"]);
    expect(r.stderr).toContain('deny_predicates');
    const g = await psql({ port, token: strict }, ['-At', '-c', 'SELECT count(*) FROM customers GROUP BY substr(ssn, 1, 1)']);
    expect(g.stderr).toContain('deny_predicates');
    const e = await psql({ port, token: strict }, ['-At', '-c', 'EXPLAIN SELECT * FROM customers WHERE id = 1']);
    expect(e.stderr).toContain('deny_predicates');
  });
});

describe('masking through node-postgres (extended protocol)', () => {
  const client = (): pg.Client => new pg.Client({ host: '127.0.0.1', port, user: 'sam', database: 'appdb', password: support });

  it('masks parameterised queries, named statements and binary results', async () => {
    const c = client();
    await c.connect();
    try {
      const a = await c.query('SELECT id, ssn, email, upper(ssn) AS u FROM customers WHERE id = $1', [1]);
      expect(a.rows[0]).toMatchObject({ id: 1, ssn: '[redacted]', email: '[redacted]' });
      for (let i = 0; i < 3; i++) {
        const b = await c.query({ name: 'by-id', text: 'SELECT c FROM customers c WHERE id = $1', values: [2] });
        expectNoRaw(JSON.stringify(b.rows), 'named whole-row');
      }
      const bin = await c.query({ text: 'SELECT id, ssn, card_number FROM customers ORDER BY id', values: [], binary: true } as pg.QueryConfig);
      expectNoRaw(JSON.stringify(bin.rows.map((r: Record<string, unknown>) => Object.values(r).map((v) => (Buffer.isBuffer(v) ? v.toString('latin1') : String(v))))), 'binary');
      const err = await c.query('SELECT ssn::int FROM customers WHERE id = $1', [1]).catch((e: Error) => e);
      expectNoRaw(String((err as Error).message), 'extended error');
    } finally {
      await c.end();
    }
  });
});

describe('the audit log of masked sessions', () => {
  it('records results as the client received them (masked), with the masked column names, and no raw value', async () => {
    await psql({ port, token: support }, ['-At', '-c', 'SELECT id, ssn FROM customers ORDER BY id']);
    await new Promise((r) => setTimeout(r, 500));
    const dir = join(stateDir, 'audit');
    const text = readdirSync(dir).filter((f) => f.endsWith('.jsonl')).map((f) => readFileSync(join(dir, f), 'utf8')).join('');
    const results = text.split('\n').filter((l) => l.includes('"type":"result"')).map((l) => JSON.parse(l) as { event: { maskedColumns?: string[]; data?: string[][]; rows: number } });
    const withSsn = results.filter((r) => r.event.maskedColumns?.includes('ssn') && r.event.data?.[0]?.length === 2).pop();
    expect(withSsn?.event.rows).toBe(2);
    expect(withSsn?.event.data).toEqual([['1', '[redacted]'], ['2', '[redacted]']]);
    // The dba's unmasked rows are recorded too (they are what that client received) — but never a masked
    // identity's raw values, and never a token.
    const maskedOnly = results.filter((r) => (r.event.maskedColumns ?? []).length > 0).map((r) => JSON.stringify(r));
    for (const line of maskedOnly) expectNoRaw(line, 'audit result');
    expect(text).not.toContain(support);
  });
});
