// The MySQL result masker on its own: plans from column definitions (provenance under any
// alias, lineage for computed columns, fail closed when neither is known), text and binary
// row rewriting, and ERR text scrubbing. Expected row bytes are written by hand.
import { describe, expect, it } from 'vitest';
import { ResultMasker } from '../../protocols/mysql/result-masking.js';
import { MysqlCatalog } from '../../protocols/mysql/catalog.js';
import type { UpstreamOptions } from '../../protocols/mysql/upstream.js';
import type { ColumnDefinition } from '../../protocols/mysql/codec/messages/resultset.js';
import type { Session } from '../../src/core/session-types.js';
import type { MaskPlan } from '../../src/core/types.js';
import type { RelationRef, StatementAnalysis } from '../../parsers/sql/types.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const plan: MaskPlan = {
  columns: [{ rule: 'mask-ssn', columns: ['appdb.users.ssn'], method: 'partial', keep: 4 }, { rule: 'hide-salary', columns: ['appdb.users.salary'], method: 'null' }],
  detectors: [],
  jsonPaths: [],
  denyPredicates: false,
};

// Only what ResultMasker reads of a session: its mask plan and how names resolve (database appdb).
const session = {
  maskPlan: plan,
  resolveRelation: (ref: RelationRef): string[] => [`${ref.schema ?? 'appdb'}.${ref.name}`],
} as unknown as Session;

const col = (c: Partial<ColumnDefinition>): ColumnDefinition => ({ catalog: 'def', schema: '', table: '', orgTable: '', name: 'x', orgName: '', characterSet: 45, columnLength: 80, columnType: 0xfd, flags: 0, decimals: 0, ...c });
const statement = (outputs: StatementAnalysis['outputs'], reads: RelationRef[] = [{ schema: null, name: 'users' }]): StatementAnalysis => ({
  text: 'select', kinds: ['select'], reads, writes: [], functions: [], withoutWhere: false, opaque: false, unparsed: false, outputs, predicateColumns: [],
});

/** What information_schema would say: appdb.v is a view, everything else a base table. */
class KnownCatalog extends MysqlCatalog {
  override isView(schemaTable: string): boolean | undefined {
    return schemaTable === 'appdb.v';
  }
}
const catalog = { views: new KnownCatalog(), upstream: {} as UpstreamOptions };

describe('ResultMasker', () => {
  const m = new ResultMasker(session, 'k'.repeat(32), catalog);

  const users = { schema: null, name: 'users' };
  const of = (...cols: string[]): StatementAnalysis => statement(cols.map((c) => ({ name: c, sources: [{ relation: users, column: c }], unknown: false })));

  it('judges a column by its definition whatever the alias, and leaves others', () => {
    // Even where the analysis got the alias wrong, the server's org_name masks it.
    const p = m.plan([col({ schema: 'appdb', table: 'u', orgTable: 'users', name: 'x', orgName: 'ssn' }), col({ schema: 'appdb', table: 'u', orgTable: 'users', name: 'name', orgName: 'name' })], of('id', 'name'));
    expect(p?.map((c) => c.rule?.rule ?? null)).toEqual(['mask-ssn', null]);
    // Without an analysis nothing can be known: every column is withheld.
    expect(m.plan([col({ schema: 'appdb', table: 'u', orgTable: 'users', name: 'name', orgName: 'name' })], null)?.[0]?.rule?.method).toBe('null');
  });

  it('masks a computed column by lineage, and fails closed without it', () => {
    const computed = [col({ name: 'c' })];
    const viaLineage = m.plan(computed, statement([{ name: 'c', sources: [{ relation: { schema: null, name: 'users' }, column: 'ssn' }], unknown: false }]));
    expect(viaLineage?.[0]?.rule?.rule).toBe('mask-ssn');
    const clean = m.plan(computed, statement([{ name: 'c', sources: [{ relation: { schema: null, name: 'users' }, column: 'name' }], unknown: false }]));
    expect(clean).toBeNull();
    // No analysis: the statement may touch anything, so the strongest rule applies.
    expect(m.plan(computed, null)?.[0]?.rule?.method).toBe('null');
  });

  it('withholds what depends on a view, and everything when views cannot be known', () => {
    const fromView = m.plan([col({ schema: 'appdb', table: 'v', orgTable: 'v', name: 's', orgName: 's' })], statement([{ name: 's', sources: [{ relation: { schema: null, name: 'v' }, column: 's' }], unknown: false }], [{ schema: null, name: 'v' }]));
    expect(fromView?.[0]?.rule?.method).toBe('null');
    const blind = new ResultMasker(session, 'k'.repeat(32));
    expect(blind.plan([col({ schema: 'appdb', table: 'u', orgTable: 'users', name: 'name', orgName: 'name' })], statement([{ name: 'name', sources: [{ relation: { schema: null, name: 'users' }, column: 'name' }], unknown: false }]))?.[0]?.rule?.method).toBe('null');
  });

  it('expands * by the column definitions, and distrusts a derived table named like a base table', () => {
    const star = statement([{ name: null, sources: [{ relation: { schema: null, name: 'users' }, column: '*' }], unknown: false, expansion: true }]);
    const cols = [col({ schema: 'appdb', table: 'users', orgTable: 'users', name: 'id', orgName: 'id', columnType: 0x03 }), col({ schema: 'appdb', table: 'users', orgTable: 'users', name: 'ssn', orgName: 'ssn' })];
    expect(m.plan(cols, star)?.map((c) => c.rule?.rule ?? null)).toEqual([null, 'mask-ssn']);
    const tricked = { ...star, text: 'SELECT * FROM (SELECT ssn AS id, name AS ssn FROM users) users' };
    expect(m.plan(cols, tricked)?.map((c) => c.rule?.method ?? null)).toEqual(['null', 'null']);
  });

  it('rewrites text rows and binary rows in their own encodings', () => {
    const p = m.plan([col({ schema: 'appdb', orgTable: 'users', orgName: 'ssn' }), col({ schema: 'appdb', orgTable: 'users', orgName: 'salary', columnType: 0x03 }), col({ schema: 'appdb', orgTable: 'users', orgName: 'id', columnType: 0x03 })], of('ssn', 'salary', 'id'));
    if (p === null) throw new Error('plan');
    // text: "123-45-6789", "5000", "7"
    const text = Buffer.concat([hex('0b'), Buffer.from('123-45-6789'), hex('04'), Buffer.from('5000'), hex('01 37')]);
    expect(m.row(text, p, false)).toEqual(Buffer.concat([hex('0b'), Buffer.from('***-**-6789'), hex('fb 01 37')]));
    // binary: header, null bitmap (3 columns), VAR_STRING, LONG 5000, LONG 7 → salary becomes NULL (bit 1+2 = 3)
    const bin = Buffer.concat([hex('00 00 0b'), Buffer.from('123-45-6789'), hex('88130000 07000000')]);
    expect(m.row(bin, p, true)).toEqual(Buffer.concat([hex('00 08 0b'), Buffer.from('***-**-6789'), hex('07000000')]));
  });

  it('scrubs quoted values and values masked earlier from server errors', () => {
    const e = m.scrubError({ type: 'ERR', code: 1062, sqlState: '23000', message: "Duplicate entry '987-65-4321' for key 'ssn'" });
    expect(e?.message).toBe("Duplicate entry '[redacted]' for key '[redacted]'");
    const again = m.scrubError({ type: 'ERR', code: 1105, sqlState: 'HY000', message: 'value 123-45-6789 is bad' });
    expect(again?.message).toBe('value [redacted] is bad');
  });
});
