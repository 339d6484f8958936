/**
 * The protocol-neutral description of SQL text, produced once per statement by
 * parsers/sql and consumed by policy (deny/approve) and masking (lineage).
 */

export const STATEMENT_KINDS = [
  'select', 'insert', 'update', 'delete', 'merge', 'copy', 'create', 'alter', 'drop',
  'truncate', 'grant', 'revoke', 'set', 'show', 'transaction', 'call', 'do', 'execute',
  'prepare', 'deallocate', 'explain', 'vacuum', 'analyze', 'lock', 'listen', 'notify',
  'unlisten', 'declare', 'fetch', 'close', 'discard', 'reset', 'comment', 'reindex',
  'cluster', 'checkpoint', 'load', 'refresh', 'reassign', 'security_label', 'import',
  'use', 'replace', 'load_data', 'load_data_local', 'into_outfile', 'handler', 'kill', 'flush', 'describe',
  'empty', 'other',
  // pseudo-kind for the start of a session (connection-level approval)
  'connect',
] as const;

export type StatementKind = (typeof STATEMENT_KINDS)[number];

export type SqlDialect = 'postgres' | 'mysql';

/** A relation as written in the statement, case-folded as the server folds it. */
export interface RelationRef {
  /** null when unqualified: resolved against the session's search_path by the caller. */
  schema: string | null;
  name: string;
}

/** Where one output column of a statement comes from (for masking by lineage). */
export interface OutputLineage {
  /** The output column's name as the server will report it, when known. */
  name: string | null;
  /** Source columns it depends on; `column: '*'` means the whole row of that relation. */
  sources: Array<{ relation: RelationRef; column: string }>;
  /** Lineage could not be determined (opaque function, unknown construct). */
  unknown: boolean;
  /**
   * This entry stands for the zero or more columns a `*` (or `t.*`, or `COPY t TO`) expands
   * to, whose number the text does not tell: positions after it are not known from the text.
   */
  expansion?: boolean;
}

export interface StatementAnalysis {
  /** The statement's own text, a slice of the query string. */
  text: string;
  /** Top-level kind first, then every nested effect (explain analyze of a delete → ['explain', 'delete']). */
  kinds: StatementKind[];
  reads: RelationRef[];
  writes: RelationRef[];
  /** Function names called, lower-cased, schema-qualified when written so (`pg_catalog.now`). */
  functions: string[];
  /**
   * An unbounded write at any depth (policy's `without_where` / `unbounded`): a write that may
   * change rows the text does not pin — UPDATE/DELETE without a WHERE that pins the target,
   * TRUNCATE, an upsert or REPLACE from an unbounded source, a MERGE not pinned by its ON.
   * When the analysis cannot tell, it is true. (The name is kept from its first meaning.)
   */
  withoutWhere: boolean;
  /** Effects cannot be known from the text (DO, CALL, EXECUTE, functions that run SQL text). */
  opaque: boolean;
  /** The text did not parse. kinds is ['other'] and nothing else is known. */
  unparsed: boolean;
  /**
   * With unparsed: the server would reject the text too, as a syntax error (why, in words).
   * Absent when airlock merely cannot read a statement the server may accept.
   */
  syntaxError?: string;
  /** Output lineage, for statements that return rows; null when the statement returns none or it is unknown. */
  outputs: OutputLineage[] | null;
  /** Columns used in WHERE/JOIN ON/GROUP BY/ORDER BY/HAVING (inference channel), as relation+column. */
  predicateColumns: Array<{ relation: RelationRef; column: string }>;
  /**
   * For statements that write: the columns the written values are computed from (`column: '*'`
   * for a whole row), or `unknown`. Absent when not known (treat as unknown).
   */
  writeSources?: { sources: Array<{ relation: RelationRef; column: string }>; unknown: boolean };
  /**
   * MySQL `LOAD DATA LOCAL INFILE '<file>'` (kind load_data_local): the file name as the
   * server will ask the client for it (the literal's decoded value). Absent when not one
   * literal, or when two readings of the text name different files.
   */
  localFile?: string;
}

export interface SqlAnalysis {
  dialect: SqlDialect;
  statements: StatementAnalysis[];
}

/** Session settings that change how text is read. */
export interface SqlSessionSettings {
  standardConformingStrings: boolean;
  searchPath: string[];
  /** Postgres: the session user, for "$user" in search_path. */
  user?: string;
  /** MySQL: sql_mode has ANSI_QUOTES ("x" is an identifier). Unknown: a double-quoted token is read both ways. */
  ansiQuotes?: boolean;
  /** MySQL: the server version as executable comments write it (10.11.6 → 101106). */
  serverVersion?: number;
}

/**
 * Prefix of a candidate relation name whose schema is unknown ("<any>.orders"): matchers
 * compare only the table part. Used once a session's search_path can no longer be followed.
 */
export const ANY_SCHEMA = '\u0000any.';
