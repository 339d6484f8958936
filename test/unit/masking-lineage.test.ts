import { describe, expect, it } from 'vitest';
import type { OutputLineage, RelationRef } from '../../parsers/sql/types.js';
import { ColumnMasker, judgeOutput } from '../../src/masking/index.js';
import type { ColumnMaskRule, MaskPlan } from '../../src/core/types.js';

function plan(columns: ColumnMaskRule[]): MaskPlan {
  return { columns, detectors: [], jsonPaths: [], denyPredicates: false };
}

const ssnRedact: ColumnMaskRule = { rule: 'ssn', columns: ['public.users.ssn'], method: 'redact' };
const emailMask: ColumnMaskRule = { rule: 'email', columns: ['public.users.email', 'crm.*.email'], method: 'email' };
const ssnPartial: ColumnMaskRule = { rule: 'ssn-soft', columns: ['*.*.ssn'], method: 'partial', keep: 4 };
const cardNull: ColumnMaskRule = { rule: 'cards', columns: ['billing.cards.number'], method: 'null' };
const hashAll: ColumnMaskRule = { rule: 'anon', columns: ['hr.**'], method: 'hash' };

const masker = new ColumnMasker(plan([emailMask, ssnPartial, ssnRedact, cardNull, hashAll]));

const CATALOG: Record<string, string[]> = {
  'public.users': ['id', 'name', 'email', 'ssn'],
  'public.orders': ['id', 'user_id', 'total'],
  'billing.cards': ['id', 'number'],
};
const columnsOf = (t: string): string[] | null => CATALOG[t] ?? null;
/** search_path public: unqualified names resolve to public (or nothing when unknown). */
const resolve = (r: RelationRef): string[] => {
  if (r.schema !== null) return [`${r.schema}.${r.name}`];
  if (r.name === 'ambiguous') return ['public.orders', 'public.users'];
  if (r.name === 'mystery') return [];
  return [`public.${r.name}`];
};
const rel = (name: string, schema: string | null = null): RelationRef => ({ schema, name });
const out = (sources: Array<[RelationRef, string]>, unknown = false): OutputLineage => ({
  name: null,
  sources: sources.map(([relation, column]) => ({ relation, column })),
  unknown,
});
const judge = (l: OutputLineage, reads?: RelationRef[]): string | null =>
  judgeOutput(l, masker, resolve, columnsOf, reads)?.rule ?? null;

describe('ColumnMasker', () => {
  it('matches globs over schema.table.column', () => {
    expect(masker.methodFor('public.users.email')?.rule).toBe('email');
    expect(masker.methodFor('crm.leads.email')?.rule).toBe('email');
    expect(masker.methodFor('public.users.name')).toBeNull();
    expect(masker.methodFor('hr.staff.salary')?.rule).toBe('anon');
  });

  it('the most destructive rule wins when several match: null > redact > hash > fixed > partial > email', () => {
    expect(masker.methodFor('public.users.ssn')?.rule).toBe('ssn');
    expect(masker.methodFor('other.people.ssn')?.rule).toBe('ssn-soft');
    const m = new ColumnMasker(
      plan([
        { rule: 'e', columns: ['s.t.c'], method: 'email' },
        { rule: 'p', columns: ['s.t.c'], method: 'partial' },
        { rule: 'f', columns: ['s.t.c'], method: 'fixed', fixed: 'x' },
        { rule: 'h', columns: ['s.t.c'], method: 'hash' },
      ]),
    );
    expect(m.methodFor('s.t.c')?.rule).toBe('h');
    const n = new ColumnMasker(plan([{ rule: 'r', columns: ['s.t.c'], method: 'redact' }, { rule: 'n', columns: ['s.t.*'], method: 'null' }]));
    expect(n.methodFor('s.t.c')?.rule).toBe('n');
  });

  it('knows which tables have masked columns', () => {
    expect(masker.tableHasMaskedColumns('public.users')).toBe(true);
    expect(masker.tableHasMaskedColumns('billing.cards')).toBe(true);
    expect(masker.tableHasMaskedColumns('crm.leads')).toBe(true);
    // "*.*.ssn" may name a column of any table: fail closed.
    expect(masker.tableHasMaskedColumns('public.orders')).toBe(true);
    const narrow = new ColumnMasker(plan([ssnRedact, cardNull]));
    expect(narrow.tableHasMaskedColumns('public.orders')).toBe(false);
    expect(narrow.tableHasMaskedColumns('public.users')).toBe(true);
    const hr = new ColumnMasker(plan([hashAll]));
    expect(hr.tableHasMaskedColumns('hr.staff')).toBe(true);
    expect(hr.tableHasMaskedColumns('public.orders')).toBe(false);
    expect(new ColumnMasker(plan([{ rule: 'x', columns: ['**.ssn'], method: 'redact' }])).tableHasMaskedColumns('any.table')).toBe(true);
    expect(new ColumnMasker(plan([{ rule: 'x', columns: ['public.users.**'], method: 'redact' }])).tableHasMaskedColumns('public.users')).toBe(true);
  });
});

describe('judgeOutput', () => {
  it('a plain or aliased source column takes its own rule', () => {
    expect(judge(out([[rel('users'), 'ssn']]))).toBe('ssn');
    expect(judge(out([[rel('users', 'public'), 'email']]))).toBe('email');
    expect(judge(out([[rel('users'), 'name']]))).toBeNull();
  });

  it('a computed column depending on a masked column is masked (upper(ssn), ssn || name)', () => {
    expect(judge(out([[rel('users'), 'name'], [rel('users'), 'ssn']]))).toBe('ssn');
    expect(judge(out([[rel('users'), 'email'], [rel('cards', 'billing'), 'number']]))).toBe('cards');
  });

  it('a whole-row reference (row_to_json(u), SELECT u) is masked if the table has a masked column', () => {
    expect(judge(out([[rel('users'), '*']]))).toBe('ssn');
    expect(judge(out([[rel('cards', 'billing'), '*']]))).toBe('cards');
    const narrow = new ColumnMasker(plan([ssnRedact]));
    expect(judgeOutput(out([[rel('orders'), '*']]), narrow, resolve, columnsOf)).toBeNull();
    // Columns unknown to the catalog: judged by the table globs.
    expect(judgeOutput(out([[rel('accounts', 'crm'), '*']]), new ColumnMasker(plan([emailMask])), resolve, () => null)?.rule).toBe('email');
  });

  it('an ambiguous relation is judged under every name it may stand for', () => {
    expect(judge(out([[rel('ambiguous'), 'ssn']]))).toBe('ssn');
  });

  it('a relation that resolves to nothing fails closed with the strongest rule of the plan', () => {
    expect(judge(out([[rel('mystery'), 'x']]))).toBe('cards');
  });

  it('unknown lineage masks with the strongest rule of the tables involved (fail closed)', () => {
    const narrow = new ColumnMasker(plan([ssnRedact, emailMask]));
    const j = (l: OutputLineage, reads?: RelationRef[]): string | null => judgeOutput(l, narrow, resolve, columnsOf, reads)?.rule ?? null;
    expect(j(out([[rel('users'), 'name']], true))).toBe('ssn');
    expect(j(out([], true), [rel('orders'), rel('users')])).toBe('ssn');
    expect(j(out([], true), [rel('orders')])).toBeNull();
    // Nothing named at all (SELECT some_function()): the function may read anything.
    expect(j(out([], true))).toBe('ssn');
    expect(j(out([], true), [])).toBe('ssn');
  });

  it('nothing is masked when the plan has no column rules', () => {
    const none = new ColumnMasker(plan([]));
    expect(judgeOutput(out([], true), none, resolve, columnsOf)).toBeNull();
    expect(judgeOutput(out([[rel('users'), '*']]), none, resolve, columnsOf)).toBeNull();
  });
});
