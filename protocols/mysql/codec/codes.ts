/**
 * MySQL client/server protocol constants in one table each, with the value the wire
 * carries. Sources: MySQL "Client/Server Protocol" reference (include/mysql_com.h,
 * include/field_types.h) and MariaDB "Client/Server Protocol" (capabilities, ERR codes).
 */

/** Capability flags (mysql_com.h CLIENT_*), a 32-bit set exchanged in the handshake. */
export const Capability = {
  LONG_PASSWORD: 0x1, // MariaDB servers clear this bit to announce extended capabilities
  FOUND_ROWS: 0x2,
  LONG_FLAG: 0x4,
  CONNECT_WITH_DB: 0x8,
  NO_SCHEMA: 0x10,
  COMPRESS: 0x20,
  ODBC: 0x40,
  LOCAL_FILES: 0x80,
  IGNORE_SPACE: 0x100,
  PROTOCOL_41: 0x200,
  INTERACTIVE: 0x400,
  SSL: 0x800,
  IGNORE_SIGPIPE: 0x1000,
  TRANSACTIONS: 0x2000,
  RESERVED: 0x4000,
  SECURE_CONNECTION: 0x8000,
  MULTI_STATEMENTS: 0x10000,
  MULTI_RESULTS: 0x20000,
  PS_MULTI_RESULTS: 0x40000,
  PLUGIN_AUTH: 0x80000,
  CONNECT_ATTRS: 0x100000,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 0x200000,
  CAN_HANDLE_EXPIRED_PASSWORDS: 0x400000,
  SESSION_TRACK: 0x800000,
  DEPRECATE_EOF: 0x1000000,
  OPTIONAL_RESULTSET_METADATA: 0x2000000,
  ZSTD_COMPRESSION: 0x4000000,
  QUERY_ATTRIBUTES: 0x8000000,
  MULTI_FACTOR_AUTHENTICATION: 0x10000000,
  SSL_VERIFY_SERVER_CERT: 0x40000000,
  REMEMBER_OPTIONS: 0x80000000,
} as const;

/**
 * MariaDB extended capabilities (MariaDB "Connection": capabilities 1 << 32 and up), the 32-bit
 * set in the last 4 reserved bytes of the greeting and the response when CLIENT_MYSQL is cleared.
 */
export const MariadbCapability = {
  PROGRESS: 0x1,
  COM_MULTI: 0x2,
  STMT_BULK_OPERATIONS: 0x4,
  /** Column definitions carry a type name and format (`json`, `uuid`, `inet6` …) after org_name. */
  EXTENDED_METADATA: 0x8,
  CACHE_METADATA: 0x10,
  BULK_UNIT_RESULTS: 0x20,
} as const;

/** Server status flags (mysql_com.h SERVER_*), carried by OK and EOF packets. */
export const ServerStatus = {
  IN_TRANS: 0x1,
  AUTOCOMMIT: 0x2,
  MORE_RESULTS_EXISTS: 0x8,
  NO_GOOD_INDEX_USED: 0x10,
  NO_INDEX_USED: 0x20,
  CURSOR_EXISTS: 0x40,
  LAST_ROW_SENT: 0x80,
  DB_DROPPED: 0x100,
  NO_BACKSLASH_ESCAPES: 0x200,
  METADATA_CHANGED: 0x400,
  QUERY_WAS_SLOW: 0x800,
  PS_OUT_PARAMS: 0x1000,
  IN_TRANS_READONLY: 0x2000,
  SESSION_STATE_CHANGED: 0x4000,
} as const;

/** Command bytes (mysql_com.h enum_server_command): the first byte of a command-phase packet. */
export const Command = {
  COM_SLEEP: 0x00,
  COM_QUIT: 0x01,
  COM_INIT_DB: 0x02,
  COM_QUERY: 0x03,
  COM_FIELD_LIST: 0x04,
  COM_CREATE_DB: 0x05,
  COM_DROP_DB: 0x06,
  COM_REFRESH: 0x07,
  COM_SHUTDOWN: 0x08,
  COM_STATISTICS: 0x09,
  COM_PROCESS_INFO: 0x0a,
  COM_CONNECT: 0x0b,
  COM_PROCESS_KILL: 0x0c,
  COM_DEBUG: 0x0d,
  COM_PING: 0x0e,
  COM_TIME: 0x0f,
  COM_DELAYED_INSERT: 0x10,
  COM_CHANGE_USER: 0x11,
  COM_BINLOG_DUMP: 0x12,
  COM_TABLE_DUMP: 0x13,
  COM_CONNECT_OUT: 0x14,
  COM_REGISTER_SLAVE: 0x15,
  COM_STMT_PREPARE: 0x16,
  COM_STMT_EXECUTE: 0x17,
  COM_STMT_SEND_LONG_DATA: 0x18,
  COM_STMT_CLOSE: 0x19,
  COM_STMT_RESET: 0x1a,
  COM_SET_OPTION: 0x1b,
  COM_STMT_FETCH: 0x1c,
  COM_DAEMON: 0x1d,
  COM_BINLOG_DUMP_GTID: 0x1e,
  COM_RESET_CONNECTION: 0x1f,
  /** MariaDB: one prepared statement executed for many rows of parameters (STMT_BULK_OPERATIONS). */
  COM_STMT_BULK_EXECUTE: 0xfa,
} as const;

export type CommandName = keyof typeof Command;

const COMMAND_NAMES = new Map<number, CommandName>(Object.entries(Command).map(([k, v]) => [v, k as CommandName]));

export function commandName(code: number): string {
  return COMMAND_NAMES.get(code) ?? `0x${code.toString(16).padStart(2, '0')}`;
}

/** First byte of a response packet (generic response packets). */
export const PacketHeader = {
  OK: 0x00,
  /** AuthMoreData during authentication. */
  AUTH_MORE_DATA: 0x01,
  /** LOCAL INFILE request in a COM_QUERY response; NULL marker in a text row. */
  LOCAL_INFILE: 0xfb,
  /** EOF; AuthSwitchRequest during authentication; OK terminator under DEPRECATE_EOF. */
  EOF: 0xfe,
  ERR: 0xff,
} as const;

/** Column types (field_types.h enum_field_types). */
export const ColumnType = {
  DECIMAL: 0x00,
  TINY: 0x01,
  SHORT: 0x02,
  LONG: 0x03,
  FLOAT: 0x04,
  DOUBLE: 0x05,
  NULL: 0x06,
  TIMESTAMP: 0x07,
  LONGLONG: 0x08,
  INT24: 0x09,
  DATE: 0x0a,
  TIME: 0x0b,
  DATETIME: 0x0c,
  YEAR: 0x0d,
  NEWDATE: 0x0e,
  VARCHAR: 0x0f,
  BIT: 0x10,
  TIMESTAMP2: 0x11,
  DATETIME2: 0x12,
  TIME2: 0x13,
  JSON: 0xf5,
  NEWDECIMAL: 0xf6,
  ENUM: 0xf7,
  SET: 0xf8,
  TINY_BLOB: 0xf9,
  MEDIUM_BLOB: 0xfa,
  LONG_BLOB: 0xfb,
  BLOB: 0xfc,
  VAR_STRING: 0xfd,
  STRING: 0xfe,
  GEOMETRY: 0xff,
} as const;

/** Server error numbers airlock answers with (mysqld_error.h) and their SQLSTATE. */
export const ErrorNumber = {
  ER_CON_COUNT_ERROR: 1040,
  ER_ACCESS_DENIED_ERROR: 1045,
  ER_UNKNOWN_COM_ERROR: 1047,
  ER_SERVER_SHUTDOWN: 1053,
  ER_NET_PACKET_TOO_LARGE: 1153,
  ER_NET_READ_ERROR: 1158,
  ER_NET_PACKETS_OUT_OF_ORDER: 1156,
  ER_NOT_SUPPORTED_AUTH_MODE: 1251,
  ER_TABLEACCESS_DENIED_ERROR: 1142,
  ER_SPECIFIC_ACCESS_DENIED_ERROR: 1227,
  ER_NOT_SUPPORTED_YET: 1235,
  ER_LOAD_INFILE_CAPABILITY_DISABLED: 3948,
  ER_CONNECT_TO_FOREIGN_DATA_SOURCE: 1429,
  ER_UNKNOWN_STMT_HANDLER: 1243,
  ER_UNKNOWN_ERROR: 1105,
  ER_HANDSHAKE_ERROR: 1043,
  ER_SECURE_TRANSPORT_REQUIRED: 3159,
  ER_QUERY_INTERRUPTED: 1317,
  ER_NO_SUCH_THREAD: 1094,
  ER_STACK_OVERRUN_NEED_MORE: 1436,
  ER_PARSE_ERROR: 1064,
} as const;

/** Largest payload of one physical packet; a logical packet this long continues in the next. */
export const MAX_PACKET_PAYLOAD = 0xffffff;

export const CLEAR_PASSWORD = 'mysql_clear_password';
export const NATIVE_PASSWORD = 'mysql_native_password';
export const CACHING_SHA2_PASSWORD = 'caching_sha2_password';
export const SHA256_PASSWORD = 'sha256_password';
export const CLIENT_ED25519 = 'client_ed25519';

/** utf8mb4_general_ci: the collation airlock announces and requests. */
export const UTF8MB4_GENERAL_CI = 45;
