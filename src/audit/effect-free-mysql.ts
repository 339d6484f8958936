/**
 * Which MySQL/MariaDB statements may be forwarded while their audit record is still syncing
 * (the result is then held until the record is durable): the MySQL counterpart of
 * effect-free.ts. Only what the analysis proves has no effect: one plain SELECT, not
 * unparsed or opaque, writing nothing, whose every function is a built-in on the allow-list
 * below (a stored function may write; MySQL resolves an unqualified built-in name before a
 * stored one, and a qualified `db.f()` is never on the list), with no SELECT … INTO, no
 * locking read, no user-variable assignment, no sequence step and no PROCEDURE clause, and
 * whose every relation read is known to be a base table — a view may call a stored function
 * that writes, so a relation the caller cannot vouch for (not looked up, or a view) keeps
 * the statement durable-before-forwarded. Everything else — and any doubt — is synced first.
 *
 * Effects are what matter, not determinism: RAND(), UUID() and NOW() are allowed; SLEEP,
 * BENCHMARK, GET_LOCK and its kin, LAST_INSERT_ID, NEXTVAL/SETVAL/LASTVAL, LOAD_FILE,
 * UUID_SHORT (a server counter) and the replication waits are not.
 */
import type { RelationRef, StatementAnalysis } from '../../parsers/sql/types.js';

/** Built-in functions with no effect on data, locks, sequences, files or the session (MariaDB 10.11 / MySQL 8 names, lower case). */
const PURE = new Set(
  `
  abs acos adddate addtime aes_decrypt aes_encrypt any_value ascii asin atan atan2 avg bin bin_to_uuid bit_and
  bit_count bit_length bit_or bit_xor ceil ceiling char char_length character_length charset chr coalesce
  coercibility collation column_check column_create column_exists column_get column_json column_list
  column_add column_delete compress concat concat_ws connection_id conv convert convert_tz cos cot count crc32
  crc32c cume_dist curdate current_date current_role current_time current_timestamp current_user curtime
  database date date_add date_format date_sub datediff day dayname dayofmonth dayofweek dayofyear degrees
  dense_rank elt exp export_set extract extractvalue field find_in_set first_value floor format format_bytes
  format_pico_time found_rows from_base64 from_days from_unixtime get_format greatest group_concat hex hour
  if ifnull inet6_aton inet6_ntoa inet_aton inet_ntoa insert instr is_ipv4 is_ipv4_compat is_ipv4_mapped
  is_ipv6 isnull json_array json_array_append json_array_insert json_arrayagg json_compact json_contains
  json_contains_path json_depth json_detailed json_equals json_exists json_extract json_insert json_keys
  json_length json_loose json_merge json_merge_patch json_merge_preserve json_normalize json_object
  json_objectagg json_overlaps json_pretty json_query json_quote json_remove json_replace json_schema_valid
  json_search json_set json_table json_type json_unquote json_valid json_value lag last_day last_value lcase
  lead least left length lengthb ln localtime localtimestamp locate log log10 log2 lower lpad ltrim make_set
  makedate maketime match max md5 median microsecond mid min minute mod month monthname natural_sort_key now
  nth_value ntile nullif nvl nvl2 oct octet_length ord percent_rank percentile_cont percentile_disc
  period_add period_diff pi position pow power quarter quote radians rand random_bytes rank regexp_instr
  regexp_like regexp_replace regexp_substr repeat replace reverse right round row_count row_number rpad rtrim
  sec_to_time second session_user sformat sha sha1 sha2 sign sin soundex space sqrt std stddev stddev_pop
  stddev_samp str_to_date strcmp subdate substr substring substring_index subtime sum sys_guid sysdate
  system_user tan time time_format time_to_sec timediff timestamp timestampadd timestampdiff to_base64
  to_char to_days to_seconds trim truncate ucase uncompress uncompressed_length unhex unix_timestamp upper
  user utc_date utc_time utc_timestamp uuid uuid_to_bin var_pop var_samp variance version week weekday
  weekofyear weight_string year yearweek
`
    .split(/\s+/)
    .filter((n) => n !== ''),
);

/**
 * SELECT … INTO (a variable, OUTFILE, DUMPFILE), locking reads (FOR UPDATE, FOR SHARE, LOCK IN
 * SHARE MODE), `:=` (assigns a user variable), NEXT/PREVIOUS VALUE FOR (steps a sequence), and
 * PROCEDURE (runs a procedure on the result). Matched anywhere in the text, comments and
 * literals included: a false match only costs the pipelining.
 */
const EFFECT_WORDS = /\binto\b|\bfor\s+(?:update|share)\b|\block\s+in\s+share\s+mode\b|:=|\b(?:next|previous)\s+value\s+for\b|\bprocedure\b/i;

/**
 * `isBaseTable` says whether a relation read is known to be a base table (false for a view,
 * and for one not looked up).
 */
export function isEffectFreeMysql(statement: StatementAnalysis, isBaseTable: (ref: RelationRef) => boolean): boolean {
  if (statement.unparsed || statement.opaque) return false;
  if (statement.kinds.length !== 1 || statement.kinds[0] !== 'select') return false;
  if (statement.writes.length > 0) return false;
  if (!statement.functions.every((f) => PURE.has(f))) return false;
  if (EFFECT_WORDS.test(statement.text)) return false;
  return statement.reads.every(isBaseTable);
}

/** The text-only part of isEffectFreeMysql: worth looking the relations up only when this holds. */
export function mayBeEffectFreeMysql(statement: StatementAnalysis): boolean {
  return isEffectFreeMysql(statement, () => true);
}
