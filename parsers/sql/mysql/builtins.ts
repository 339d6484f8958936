/**
 * Built-in function names of MariaDB 10.11 and MySQL 8 (lower case): the server's own help
 * tables (mysql.help_topic) plus the reference manuals' function indexes. A call of any
 * other name is a stored function whose effects the text does not show (opaque). MySQL
 * resolves an unqualified name to the built-in first, so a name here is never a stored one.
 */
const NAMES = `
  abs acos adddate addtime aes_decrypt aes_encrypt any_value area asbinary ascii asin astext aswkb aswkt atan
  atan2 avg benchmark bigint bin bin_to_uuid binary binlog bit bit_and bit_count bit_length bit_or bit_xor
  blob bool boolean boundary buffer call cast ceil ceiling centroid char char_length character
  character_length charset chr clob close coalesce coercibility collation column_add column_check
  column_create column_delete column_exists column_get column_json column_list commit compress concat
  concat_ws connection_id constraint contains conv convert convert_tz convexhull cos cot count crc32 crc32c
  create crosses cume_dist curdate current_date current_role current_time current_timestamp current_user
  curtime database date date_add date_format date_sub datediff datetime day dayname dayofmonth dayofweek
  dayofyear dec decimal decode default degrees delete dense_rank des_decrypt des_encrypt describe dimension
  disjoint div do double dual elt encode encrypt endpoint enum envelope equals except exp explain export_set
  exteriorring extract extractvalue fetch field find_in_set first_value fixed float float4 float8 floor flush
  for format format_bytes format_pico_time found_rows from_base64 from_days from_unixtime geomcollfromtext
  geomcollfromwkb geometrycollection geometrycollectionfromtext geometrycollectionfromwkb geometryfromtext
  geometryfromwkb geometryn geometrytype geomfromtext geomfromwkb get_format get_lock glength goto grant
  greatest group_concat handler hex hour if ifnull ignore in inet4 inet6 inet6_aton inet6_ntoa inet_aton
  inet_ntoa insert instr int int1 int2 int3 int4 int8 integer interiorringn intersect intersects interval is
  is_free_lock is_ipv4 is_ipv4_compat is_ipv4_mapped is_ipv6 is_used_lock isclosed isempty isnull isring
  issimple iterate joins json_array json_array_append json_array_insert json_arrayagg json_compact
  json_contains json_contains_path json_depth json_detailed json_equals json_exists json_extract json_insert
  json_keys json_length json_loose json_merge json_merge_patch json_merge_preserve json_normalize json_object
  json_objectagg json_overlaps json_pretty json_query json_quote json_remove json_replace json_schema_valid
  json_search json_set json_table json_type json_unquote json_valid json_value kdf kill labels lag last_day
  last_insert_id last_value lastval lcase lead least leave left length lengthb like like_range limit
  linefromtext linefromwkb linestring linestringfromtext linestringfromwkb ln load_file localtime
  localtimestamp locate log log10 log2 longblob longtext loop lower lpad ltrim make_set makedate maketime
  master_gtid_wait master_pos_wait match max mbrcontains mbrcoveredby mbrdisjoint mbrequal mbrintersects
  mbroverlaps mbrtouches mbrwithin md5 median mediumblob mediumint mediumtext mhnsw microsecond mid middleint
  min minus minute mlinefromtext mlinefromwkb mod month monthname mpointfromtext mpointfromwkb mpolyfromtext
  mpolyfromwkb multilinestring multilinestringfromtext multilinestringfromwkb multipoint multipointfromtext
  multipointfromwkb multipolygon multipolygonfromtext multipolygonfromwkb natural_sort_key nchar nextval nosql
  now nth_value ntile nullif number numeric numgeometries numinteriorrings numpoints nvl nvl2 oct octet_length
  old_password open ord overlaps parentheses password percent_rank percentile_cont percentile_disc period_add
  period_diff pi point pointfromtext pointfromwkb pointn pointonsurface polyfromtext polyfromwkb polygon
  polygonfromtext polygonfromwkb position pow power previous procedure quarter quote radians rand random_bytes
  rank raw real regexp regexp_instr regexp_like regexp_replace regexp_substr release_all_locks release_lock
  repeat replace reset resignal return reverse revoke right rlike rollback round row row_count row_number
  rownum rpad rtrim savepoint schema sec_to_time second select sequences serial serializable session_user set
  setval sformat sha sha1 sha2 shutdown sign signal sin sleep smallint soundex space
  sql_thread_wait_after_gtids sqlstate sqrt srid startpoint std stddev stddev_pop stddev_samp str_to_date
  strcmp subdate subqueries substr substring substring_index subtime sum sys_guid sysdate system_user tan text
  time time_format time_to_sec timediff timestamp timestampadd timestampdiff tinyblob tinyint tinytext
  to_base64 to_char to_days to_seconds touches trim trunc truncate ucase uncompress uncompressed_length unhex
  unicode union unix_timestamp update updatexml upper user utc_date utc_time utc_timestamp uuid uuid_short
  uuid_to_bin values var_pop var_samp varbinary varchar varchar2 varcharacter variance vec_distance vector
  vectors version week weekday weekofyear weight_string while with within wsrep_last_seen_gtid
  wsrep_last_written_gtid wsrep_sync_wait_upto_gtid x xmltype xor y year yearweek
`;

export const BUILTIN_FUNCTIONS: ReadonlySet<string> = new Set(NAMES.split(/\s+/).filter((n) => n !== ''));
