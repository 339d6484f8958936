/**
 * Which MySQL/MariaDB statements may be forwarded while their audit record is still syncing
 * (the result is then held until the record is durable): the MySQL counterpart of
 * effect-free.ts. Only what the analysis proves has no effect: one plain SELECT, not
 * unparsed or opaque, writing nothing, whose every function is a built-in on the allow-list
 * below (a stored function may write; MySQL resolves an unqualified built-in name before a
 * stored one — when the server has that built-in and the name touches its parenthesis — and
 * a qualified `db.f()` is never on the list), with no SELECT … INTO, no
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

/**
 * Built-in functions with no effect on data, locks, sequences, files or the session, lower
 * case: only names that are built-ins in MySQL 8 and in MariaDB 10.x alike. A name one server
 * does not know as a built-in is a call of the database's stored function of that name there
 * (MariaDB has no ANY_VALUE, BIN_TO_UUID, REGEXP_LIKE …; MySQL no NVL, SFORMAT, COLUMN_GET …).
 */
const PURE: ReadonlySet<string> = new Set(
  `
  abs acos adddate addtime aes_decrypt aes_encrypt ascii asin atan atan2 avg bin bit_and
  bit_count bit_length bit_or bit_xor ceil ceiling char char_length character_length charset coalesce
  coercibility collation compress concat concat_ws connection_id conv convert convert_tz cos cot count crc32
  cume_dist curdate current_date current_role current_time current_timestamp current_user curtime
  database date date_add date_format date_sub datediff day dayname dayofmonth dayofweek dayofyear degrees
  dense_rank elt exp export_set extract extractvalue field find_in_set first_value floor format
  found_rows from_base64 from_days from_unixtime get_format greatest group_concat hex hour
  if ifnull inet6_aton inet6_ntoa inet_aton inet_ntoa insert instr is_ipv4 is_ipv4_compat is_ipv4_mapped
  is_ipv6 isnull json_array json_array_append json_array_insert json_contains
  json_contains_path json_depth json_extract json_insert json_keys
  json_length json_merge json_merge_patch json_merge_preserve json_object
  json_quote json_remove json_replace
  json_search json_set json_type json_unquote json_valid lag last_day last_value lcase
  lead least left length ln localtime localtimestamp locate log log10 log2 lower lpad ltrim make_set
  makedate maketime match max md5 microsecond mid min minute mod month monthname now
  nth_value ntile nullif oct octet_length ord percent_rank
  period_add period_diff pi position pow power quarter quote radians rand rank regexp_instr
  regexp_replace regexp_substr repeat replace reverse right round row_count row_number rpad rtrim
  sec_to_time second session_user sha sha1 sha2 sign sin soundex space sqrt std stddev stddev_pop
  stddev_samp str_to_date strcmp subdate substr substring substring_index subtime sum sysdate
  system_user tan time time_format time_to_sec timediff timestamp timestampadd timestampdiff to_base64
  to_days to_seconds trim truncate ucase uncompress uncompressed_length unhex unix_timestamp upper
  user utc_date utc_time utc_timestamp uuid var_pop var_samp variance version week weekday
  weekofyear weight_string year yearweek
`
    .split(/\s+/)
    .filter((n) => n !== ''),
);

/** The allow-list, for the test that asks the real server whether each name is its built-in. */
export const PIPELINED_BUILTINS: ReadonlySet<string> = PURE;

/**
 * SELECT … INTO (a variable, OUTFILE, DUMPFILE), locking reads (FOR UPDATE, FOR SHARE, LOCK IN
 * SHARE MODE), `:=` (assigns a user variable), NEXT/PREVIOUS VALUE FOR and, under MariaDB's
 * sql_mode=ORACLE, `seq.nextval` — a column reference to the analysis (steps a sequence), and
 * PROCEDURE (runs a procedure on the result). Matched anywhere in the text, comments and
 * literals included: a false match only costs the pipelining.
 */
const EFFECT_WORDS = /(?<![A-Za-z_$])(?:into|for\s+(?:update|share)|lock\s+in\s+share\s+mode|(?:next|previous)\s+value\s+for|procedure|nextval)(?![A-Za-z0-9_$])|:=/i;

/**
 * A word of those phrases followed by a comment or an executable comment's end: the server
 * reads `FOR/**\/UPDATE`, `FOR -- …⏎UPDATE`, `/*!FOR*\/ UPDATE` and `FOR /*!50000 UPDATE *\/` as
 * FOR UPDATE. (A word may also follow a version number directly, `/*!50000FOR`: no word
 * boundary is asked for before one.)
 */
const COMMENT_IN_PHRASE = /(?<![A-Za-z_$])(?:for|lock|in|share|next|previous|value)\s*(?:\/\*|\*\/|--|#)/i;

/**
 * `isBaseTable` says whether a relation read is known to be a base table (false for a view,
 * and for one not looked up).
 */
/**
 * Whether every whole-word occurrence of a function's name in the text touches an opening
 * parenthesis. The grammar's own functions (COUNT, MAX, TRIM, NOW, SUBSTR, POSITION …) are
 * built-ins only when written so: with a space, a newline or a comment before the
 * parenthesis, backquoted, or ended by an executable comment's `*\/`, the same name calls the
 * database's stored function of that name (unless sql_mode has IGNORE_SPACE). Matched
 * anywhere, literals included: a false match only costs the pipelining.
 */
function touchesParenthesis(text: string, name: string): boolean {
  for (const m of text.matchAll(new RegExp(`(?<![A-Za-z0-9_$\u0080-\uffff])${name}(?![A-Za-z0-9_$\u0080-\uffff])`, 'gi'))) {
    if (text[m.index + name.length] !== '(') return false;
  }
  return true;
}

export function isEffectFreeMysql(statement: StatementAnalysis, isBaseTable: (ref: RelationRef) => boolean): boolean {
  if (statement.unparsed || statement.opaque) return false;
  if (statement.kinds.length !== 1 || statement.kinds[0] !== 'select') return false;
  if (statement.writes.length > 0) return false;
  if (!statement.functions.every((f) => PURE.has(f) && touchesParenthesis(statement.text, f))) return false;
  if (EFFECT_WORDS.test(statement.text) || COMMENT_IN_PHRASE.test(statement.text)) return false;
  return statement.reads.every(isBaseTable);
}

/** The text-only part of isEffectFreeMysql: worth looking the relations up only when this holds. */
export function mayBeEffectFreeMysql(statement: StatementAnalysis): boolean {
  return isEffectFreeMysql(statement, () => true);
}
