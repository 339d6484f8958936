/**
 * Catalog relations that hold copies of stored values or of other sessions' statement text
 * (issue 25 items 2 and 3, issue 27 item 6). Statistics keep sample values of every analysed
 * column (most common values, histogram bounds); activity views keep each session's SQL
 * text, literals included. No column rule names them, and airlock cannot tell which row
 * describes which masked column, so for an identity under any column mask rule these
 * columns are masked as a whole, whatever column they describe.
 *
 * Globs over lower-cased "schema.table.column" (MySQL information_schema and
 * performance_schema names are case-insensitive; a Postgres name that only differs by case
 * is over-masked, never under-masked).
 */
import type { ColumnMaskRule } from '../core/types.js';

export const CATALOG_VALUES_RULE_NAME = 'airlock-catalog-values';

export const CATALOG_VALUE_COLUMNS: readonly string[] = [
  // PostgreSQL statistics (pg_stats and its extended forms; the tables under them).
  'pg_catalog.pg_stats.most_common_vals',
  'pg_catalog.pg_stats.most_common_elems',
  'pg_catalog.pg_stats.histogram_bounds',
  'pg_catalog.pg_stats_ext.most_common_vals',
  'pg_catalog.pg_stats_ext_exprs.most_common_vals',
  'pg_catalog.pg_stats_ext_exprs.most_common_elems',
  'pg_catalog.pg_stats_ext_exprs.histogram_bounds',
  'pg_catalog.pg_statistic.stavalues*',
  'pg_catalog.pg_statistic_ext_data.stxdmcv',
  'pg_catalog.pg_statistic_ext_data.stxdexpr',
  // PostgreSQL statement text of every session.
  'pg_catalog.pg_stat_activity.query',
  '*.pg_stat_statements.query',
  // Functions that return either: the SQL analysis names a call as the relation `pg_catalog.<name>`
  // (its columns by name in FROM, "*" for a scalar call or a whole row, which any glob of the table masks).
  'pg_catalog.pg_stat_get_activity.query',
  'pg_catalog.pg_stat_get_backend_activity.*',
  'pg_catalog.pg_mcv_list_items.*',
  // MariaDB / MySQL statistics.
  'mysql.column_stats.min_value',
  'mysql.column_stats.max_value',
  'mysql.column_stats.histogram',
  'information_schema.column_statistics.histogram',
  // MariaDB / MySQL statement text of every session.
  'information_schema.processlist.info*',
  'information_schema.innodb_trx.trx_query',
  'information_schema.query_cache_info.statement_text',
  'performance_schema.events_statements_*.sql_text',
  'performance_schema.events_statements_*.digest_text',
  'performance_schema.events_statements_*.query_sample_text',
  // The error or warning text of another session's statement names the value it failed on.
  'performance_schema.events_statements_*.message_text',
  'performance_schema.error_log.data',
  'performance_schema.threads.processlist_info',
  'performance_schema.prepared_statements_instances.sql_text',
  'mysql.general_log.argument',
  'mysql.slow_log.sql_text',
  'sys.*.*query*',
  'sys.*.*statement*',
  'sys.*.*sql_text*',
  'sys.*.*digest*',
];

/** The rule these columns are masked by; its name shows in the audit log. */
export const CATALOG_VALUES_RULE: ColumnMaskRule = Object.freeze({
  rule: CATALOG_VALUES_RULE_NAME,
  columns: [...CATALOG_VALUE_COLUMNS],
  method: 'redact',
}) as ColumnMaskRule;
