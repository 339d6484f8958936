/**
 * Catalog values (statistics, other sessions' statement text) count as masked columns for an
 * identity under any column rule; errors of statements that read masked columns are withheld
 * unless a known-safe template (issue 25 items 2 and 3, issue 27 item 6).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { analyzePostgres, loadSqlParsers, resolveRelation, type RelationRef } from '../../parsers/sql/index.js';
import { ColumnMasker, MYSQL_SAFE_TEMPLATES, PG_SAFE_TEMPLATES, judgeOutput, readsMaskedData, safeMessage, withheldMessage } from '../../src/masking/index.js';
import type { MaskPlan } from '../../src/core/types.js';

const settings = { standardConformingStrings: true, searchPath: ['public'] };
const plan = (columns: string[]): MaskPlan => ({ columns: columns.length === 0 ? [] : [{ rule: 'pii', columns, method: 'partial', keep: 4 }], detectors: [], jsonPaths: [], denyPredicates: false });
const masked = new ColumnMasker(plan(['public.customers.ssn']));
const unmasked = new ColumnMasker(plan([]));
const resolve = (ref: RelationRef): string[] => resolveRelation(ref, settings);
const none = (): string[] | null => null;
const analyse = (sql: string) => {
  const s = analyzePostgres(sql, settings, null).statements[0];
  if (s === undefined) throw new Error('no statement');
  return s;
};
/** The rule name each output column of `sql` is masked by ('' for none). */
const judged = (sql: string, m = masked): string[] => (analyse(sql).outputs ?? []).map((o) => judgeOutput(o, m, resolve, none, analyse(sql).reads)?.rule ?? '');

beforeAll(async () => {
  await loadSqlParsers();
});

describe('catalog values', () => {
  it('masks value-bearing statistics and statement-text columns, by name, case-insensitively', () => {
    for (const c of ['pg_catalog.pg_stats.histogram_bounds', 'pg_catalog.pg_stats.most_common_vals', 'pg_catalog.pg_statistic.stavalues3',
      'pg_catalog.pg_stats_ext_exprs.most_common_elems', 'pg_catalog.pg_stat_activity.query', 'extensions.pg_stat_statements.query',
      'information_schema.PROCESSLIST.INFO', 'information_schema.PROCESSLIST.INFO_BINARY', 'performance_schema.events_statements_history_long.SQL_TEXT',
      'performance_schema.events_statements_current.DIGEST_TEXT', 'performance_schema.events_statements_history.MESSAGE_TEXT', 'performance_schema.threads.PROCESSLIST_INFO', 'mysql.column_stats.histogram',
      'mysql.column_stats.min_value', 'sys.x$processlist.current_statement', 'information_schema.COLUMN_STATISTICS.HISTOGRAM']) {
      expect(masked.methodFor(c)?.rule, c).toBe('airlock-catalog-values');
    }
    for (const c of ['pg_catalog.pg_stats.null_frac', 'pg_catalog.pg_stat_activity.pid', 'information_schema.PROCESSLIST.USER', 'public.customers.name']) {
      expect(masked.methodFor(c), c).toBeNull();
    }
  });

  it('applies only to identities under a column rule', () => {
    expect(unmasked.methodFor('pg_catalog.pg_stats.histogram_bounds')).toBeNull();
    expect(unmasked.strongestForTable('pg_catalog.pg_stats')).toBeNull();
  });

  it('follows lineage into the catalog views and the functions behind them', () => {
    expect(judged("SELECT attname, histogram_bounds::text FROM pg_stats WHERE tablename = 'customers'")).toEqual(['', 'airlock-catalog-values']);
    expect(judged('SELECT s FROM pg_stats s')).toEqual(['airlock-catalog-values']);
    expect(judged('SELECT query FROM pg_stat_get_activity(NULL)')).toEqual(['airlock-catalog-values']);
    expect(judged('SELECT a.query, t.x FROM pg_stat_get_activity(NULL) a, (SELECT 1 AS x) t')).toEqual(['airlock-catalog-values', '']);
    expect(judged('SELECT pg_catalog.pg_stat_get_backend_activity(1)')).toEqual(['airlock-catalog-values']);
    expect(judged('SELECT query FROM public.pg_stat_statements(true)')[0]).not.toBe('');
    expect(judged('SELECT m.values FROM pg_statistic_ext_data d, pg_mcv_list_items(d.stxdmcv) m')).toEqual(['airlock-catalog-values']);
    // In FROM the function reads like a relation: its columns by name.
    expect(judged('SELECT pid, query FROM pg_stat_get_activity(NULL)')).toEqual(['', 'airlock-catalog-values']);
    expect(judged('SELECT a.* FROM pg_stat_get_activity(NULL) a')).toEqual(['airlock-catalog-values']);
    // Renamed columns no longer say which column they are: the whole row.
    expect(judged('SELECT p FROM pg_stat_get_activity(NULL) AS a(d, p, u, ap, st, q)')).toEqual(['airlock-catalog-values']);
  });

  it('judges a column of a table renamed in FROM as the whole row', () => {
    expect(judged('SELECT upper(x) FROM customers AS t(a, b, c, x)')).toEqual(['pii']);
    expect(judged('SELECT upper(name) FROM customers')).toEqual(['']);
  });
});

describe('errors of statements that read masked columns', () => {
  it('knows which statements read masked columns', () => {
    const reads = (sql: string): boolean => readsMaskedData(analyse(sql), masked, resolve, none);
    expect(reads("SELECT make_date(replace(ssn, '-', '')::int, 13, 1) FROM customers")).toBe(true);
    expect(reads('SELECT id FROM customers')).toBe(true); // a table with a masked column: anything about it may be in the text
    expect(reads('SELECT query FROM pg_stat_activity')).toBe(true);
    expect(reads('SELECT make_date(2024, 13, 1)')).toBe(false);
    expect(reads('SELECT my_function()')).toBe(true); // unknown: fail closed
    expect(readsMaskedData(null, masked, resolve, none)).toBe(true);
    expect(readsMaskedData(analyse('SELECT ssn FROM customers'), unmasked, resolve, none)).toBe(false);
  });

  it('keeps a safe template with every variable part redacted, whatever the statement text holds', () => {
    expect(safeMessage(PG_SAFE_TEMPLATES, '42703', 'column "nosuch" does not exist')).toBe('column "[redacted]" does not exist');
    // `left(ssn, 1)::regclass`: the part may come from data even when the text contains it.
    expect(safeMessage(PG_SAFE_TEMPLATES, '42P01', 'relation "1" does not exist')).toBe('relation "[redacted]" does not exist');
    expect(safeMessage(PG_SAFE_TEMPLATES, '22008', 'date field value out of range: 123456789-13-01')).toBeNull();
    expect(safeMessage(PG_SAFE_TEMPLATES, '22P02', 'invalid input syntax for type integer: "123-45-6789"')).toBe('invalid input syntax for type integer: "[redacted]"');
    expect(safeMessage(PG_SAFE_TEMPLATES, '22012', 'division by zero')).toBe('division by zero');
    // The same text under another code is not the template.
    expect(safeMessage(PG_SAFE_TEMPLATES, '22008', 'column "nosuch" does not exist')).toBeNull();
    expect(safeMessage(MYSQL_SAFE_TEMPLATES, '1146', "Table 'appdb.nosuch' doesn't exist")).toBe("Table '[redacted]' doesn't exist");
    expect(safeMessage(MYSQL_SAFE_TEMPLATES, '1054', "Unknown column '123-45-6789' in 'SELECT'")).toBe("Unknown column '[redacted]' in 'SELECT'");
    expect(safeMessage(MYSQL_SAFE_TEMPLATES, '1062', "Duplicate entry '123-45-6789' for key 'PRIMARY'")).toBeNull();
  });

  it('says what was withheld with the SQLSTATE class', () => {
    expect(withheldMessage('22008')).toBe('data exception (SQLSTATE 22008); details withheld: the statement reads masked columns');
    expect(withheldMessage('23000', 1062)).toBe('integrity constraint violation (error 1062, SQLSTATE 23000); details withheld: the statement reads masked columns');
  });
});
