/**
 * What a function or operator name tells about a statement's effects. Built-in recognition
 * is by name only (pg_catalog, or unqualified): an overload of the same name created in a
 * searched schema is not told apart, a limit the report states.
 */
import { PG_CATALOG_FUNCTION_NAMES } from './catalog-functions.js';

const CATALOG_FUNCTIONS: ReadonlySet<string> = new Set(PG_CATALOG_FUNCTION_NAMES.split(/\s+/).filter((n) => n !== ''));

/** Built-ins that execute SQL text or read whole relations named by a run-time value. */
const RUNS_SQL_TEXT: ReadonlySet<string> = new Set([
  'query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema',
  'cursor_to_xml', 'cursor_to_xmlschema',
  'table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema',
  'schema_to_xml', 'schema_to_xmlschema', 'schema_to_xml_and_xmlschema',
  'database_to_xml', 'database_to_xmlschema', 'database_to_xml_and_xmlschema',
  'ts_stat', 'ts_rewrite',
  // dblink lives in an extension schema, but name it so a qualified call is caught too.
  'dblink', 'dblink_exec', 'dblink_open', 'dblink_fetch', 'dblink_send_query', 'dblink_get_result',
  'dblink_build_sql_insert', 'dblink_build_sql_update', 'dblink_build_sql_delete',
]);

/** Operator symbols in pg_catalog (PostgreSQL 15 pg_operator). */
const CATALOG_OPERATORS: ReadonlySet<string> = new Set(
  ('!! !~ !~* !~~ !~~* # ## #- #> #>> % & && &< &<| &> * *< *<= *<> *= *> *>= + - -> ->> -|- / < <-> << ' +
    '<<= <<| <= <> <@ <^ = > >= >> >>= >^ ? ?# ?& ?- ?-| ?| ?|| @ @-@ @> @? @@ @@@ ^ ^@ | |&> |/ |>> || ||/ ' +
    '~ ~* ~<=~ ~<~ ~= ~>=~ ~>~ ~~ ~~* !=').split(' '),
);

const TABLESAMPLE_METHODS: ReadonlySet<string> = new Set(['system', 'bernoulli']);

export interface RoutineVerdict {
  /** A built-in of pg_catalog by name. */
  builtin: boolean;
  /** Running it executes SQL text or code the statement does not show. */
  opaque: boolean;
}

function isCatalogSchema(schema: string | undefined): boolean {
  return schema === undefined || schema === 'pg_catalog';
}

/** `parts` is the folded qualified name, e.g. ['pg_catalog', 'now'] or ['lower']. */
export function classifyFunction(parts: readonly string[]): RoutineVerdict {
  const name = parts[parts.length - 1] ?? '';
  const schema = parts.length > 1 ? parts[parts.length - 2] : undefined;
  if (RUNS_SQL_TEXT.has(name)) return { builtin: CATALOG_FUNCTIONS.has(name), opaque: true };
  const builtin = isCatalogSchema(schema) && CATALOG_FUNCTIONS.has(name);
  return { builtin, opaque: !builtin };
}

export function classifyOperator(parts: readonly string[]): RoutineVerdict {
  const name = parts[parts.length - 1] ?? '';
  const schema = parts.length > 1 ? parts[parts.length - 2] : undefined;
  const builtin = isCatalogSchema(schema) && CATALOG_OPERATORS.has(name);
  return { builtin, opaque: !builtin };
}

export function classifyTablesample(parts: readonly string[]): RoutineVerdict {
  const name = parts[parts.length - 1] ?? '';
  const schema = parts.length > 1 ? parts[parts.length - 2] : undefined;
  const builtin = isCatalogSchema(schema) && TABLESAMPLE_METHODS.has(name);
  return { builtin, opaque: !builtin };
}
