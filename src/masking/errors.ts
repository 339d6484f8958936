/**
 * Server errors and warnings of a statement that reads masked columns (issue 25 item 2). A
 * server puts the value it choked on into its message, quoted or not (`date field value out
 * of range: 123456789-13-01`), and into detail, hint, context: no scrubbing by shape can
 * know every spelling. So when the statement reads a masked column (for this identity),
 * the text is withheld unless the message is a known-safe template whose every variable
 * part is written in the statement itself; what remains is the SQLSTATE's class and code.
 */
import type { RelationRef, StatementAnalysis } from '../../parsers/sql/types.js';
import type { ColumnMasker } from './columns.js';
import { judgeOutput } from './columns.js';

export const DETAILS_WITHHELD = 'details withheld: the statement reads masked columns';

/** SQLSTATE classes (SQL standard; PostgreSQL Appendix A; MySQL uses the same classes). */
const SQLSTATE_CLASSES: Readonly<Record<string, string>> = {
  '00': 'successful completion', '01': 'warning', '02': 'no data', '03': 'SQL statement not yet complete', '08': 'connection exception',
  '09': 'triggered action exception', '0A': 'feature not supported', '0B': 'invalid transaction initiation',
  '0F': 'locator exception', '0L': 'invalid grantor', '0P': 'invalid role specification', '0Z': 'diagnostics exception',
  '20': 'case not found', '21': 'cardinality violation', '22': 'data exception', '23': 'integrity constraint violation',
  '24': 'invalid cursor state', '25': 'invalid transaction state', '26': 'invalid SQL statement name',
  '27': 'triggered data change violation', '28': 'invalid authorization specification', '2B': 'dependent privilege descriptors still exist',
  '2D': 'invalid transaction termination', '2F': 'SQL routine exception', '34': 'invalid cursor name',
  '38': 'external routine exception', '39': 'external routine invocation exception', '3B': 'savepoint exception',
  '3D': 'invalid catalog name', '3F': 'invalid schema name', '40': 'transaction rollback',
  '42': 'syntax error or access rule violation', '44': 'WITH CHECK OPTION violation', '53': 'insufficient resources',
  '54': 'program limit exceeded', '55': 'object not in prerequisite state', '57': 'operator intervention',
  '58': 'system error', 'F0': 'configuration file error', 'HV': 'foreign data wrapper error',
  'P0': 'PL/pgSQL error', 'XX': 'internal error', 'HY': 'general error',
};

/** The generic text of a SQLSTATE: its class's name. */
export function sqlstateText(sqlstate: string): string {
  return SQLSTATE_CLASSES[sqlstate.slice(0, 2).toUpperCase()] ?? 'error';
}

/** "data exception (SQLSTATE 22008); details withheld: …" */
export function withheldMessage(sqlstate: string, code?: string | number): string {
  const id = code === undefined ? `SQLSTATE ${sqlstate}` : `error ${code}, SQLSTATE ${sqlstate}`;
  return `${sqlstateText(sqlstate)} (${id}); ${DETAILS_WITHHELD}`;
}

/**
 * A message that may stay, with every captured part replaced by "[redacted]": the fixed words
 * say what went wrong, and no part that could come from stored data remains. (Keeping a part
 * because the statement text contains it would be an oracle: `left(ssn, 1)::regclass` fails with
 * `relation "1" does not exist`, and the caller chooses which guesses the text contains.) The
 * Postgres position field still points psql's caret into the caller's own text.
 */
export interface SafeTemplate {
  /** SQLSTATE (Postgres) or error number (MySQL), as a string. */
  code: string;
  pattern: RegExp;
}

export const PG_SAFE_TEMPLATES: readonly SafeTemplate[] = [
  { code: '42601', pattern: /^syntax error at or near "(.*)"$/s },
  { code: '42601', pattern: /^syntax error at end of input$/ },
  { code: '42P01', pattern: /^relation "(.*)" does not exist$/s },
  { code: '42703', pattern: /^column "(.*)" does not exist$/s },
  { code: '42703', pattern: /^column ([^\s"]+) does not exist$/ },
  { code: '42883', pattern: /^function ([\w.]+)\([\w ,[\]."]*\) does not exist$/ },
  { code: '42501', pattern: /^permission denied for (?:table|relation|view|schema|sequence|function) ([\w.]+)$/ },
  { code: '22012', pattern: /^division by zero$/ },
  { code: '22P02', pattern: /^invalid input syntax for (?:type )?[\w ]+: "(.*)"$/s },
  { code: '25P02', pattern: /^current transaction is aborted, commands ignored until end of transaction block$/ },
  { code: '57014', pattern: /^canceling statement due to (?:statement timeout|user request|lock timeout)$/ },
];

export const MYSQL_SAFE_TEMPLATES: readonly SafeTemplate[] = [
  { code: '1064', pattern: /^You have an error in your SQL syntax; check the manual that corresponds to your (?:MariaDB|MySQL) server version for the right syntax to use near '(.*)' at line \d+$/s },
  { code: '1146', pattern: /^Table '(.*)' doesn't exist$/s },
  // The second quoted part names the clause ('field list', 'where clause', 'SELECT' …), never data.
  { code: '1054', pattern: /^Unknown column '(.*)' in '[A-Za-z ]+'$/s },
  { code: '1305', pattern: /^FUNCTION (\S+) does not exist$/ },
  { code: '1142', pattern: /^\w+ command denied to user '(.*)'@'(.*)' for table [`'](.*)[`']$/s },
];

/** The message of a safe template with its variable parts redacted, or null when it must be withheld. */
export function safeMessage(templates: readonly SafeTemplate[], code: string, message: string): string | null {
  for (const t of templates) {
    if (t.code !== code) continue;
    // Group positions (the `d` flag), replaced from the last so earlier offsets stay valid.
    const m = new RegExp(t.pattern.source, `${t.pattern.flags}d`).exec(message);
    if (m === null) continue;
    const spans = (m.indices ?? []).slice(1).filter((x): x is [number, number] => x !== undefined);
    let out = message;
    for (const [from, to] of spans.sort((x, y) => y[0] - x[0])) out = `${out.slice(0, from)}[redacted]${out.slice(to)}`;
    return out;
  }
  return null;
}

/**
 * Whether a statement reads a column masked for this identity: it reads a relation with a
 * masked column, any of its outputs or predicates is masked, or what it reads cannot be
 * known (no analysis, unparsed, opaque effects). Fail closed.
 */
export function readsMaskedData(
  st: StatementAnalysis | null,
  masker: ColumnMasker,
  resolve: (ref: RelationRef) => string[],
  columnsOf: (schemaTable: string) => string[] | null,
): boolean {
  if (masker.empty) return false;
  if (st === null || st.unparsed || st.opaque) return true;
  for (const ref of [...st.reads, ...st.writes]) {
    const tables = resolve(ref);
    if (tables.length === 0 || tables.some((t) => masker.strongestForTable(t) !== null)) return true;
  }
  for (const p of st.predicateColumns) {
    for (const t of resolve(p.relation)) if ((p.column === '*' ? masker.strongestForTable(t) : masker.methodFor(`${t}.${p.column}`)) !== null) return true;
  }
  return (st.outputs ?? []).some((o) => judgeOutput(o, masker, resolve, columnsOf, st.reads) !== null);
}
