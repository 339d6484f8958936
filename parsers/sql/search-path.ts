/** How the server finds an unqualified relation (PostgreSQL docs, "The Schema Search Path"). */
import type { RelationRef, SqlSessionSettings } from './types.js';

/**
 * Candidate "schema.table" names for `ref`. Unqualified: the session's temporary schema
 * (`pg_temp`) and `pg_catalog` first unless the path names them, then each path entry with
 * "$user" replaced by the session user (dropped when the user is unknown). Schemas that do
 * not exist are kept: the caller cannot know, and listing one more name only fails closed.
 */
export function resolveRelation(ref: RelationRef, settings: SqlSessionSettings): string[] {
  if (ref.schema !== null) return [`${ref.schema}.${ref.name}`];
  const path: string[] = [];
  for (const entry of settings.searchPath) {
    const schema = entry === '$user' ? settings.user : entry;
    if (schema !== undefined && schema !== '' && !path.includes(schema)) path.push(schema);
  }
  if (!path.includes('pg_catalog')) path.unshift('pg_catalog');
  if (!path.includes('pg_temp')) path.unshift('pg_temp');
  return path.map((schema) => `${schema}.${ref.name}`);
}

/**
 * The value of search_path as the server reports it (`"$user", public`, `"My Schema",x`) →
 * folded schema names: unquoted lower-cased, quoted kept with `""` undoubled.
 */
export function parseSearchPath(value: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < value.length) {
    while (i < value.length && /[\s,]/.test(value[i] ?? '')) i++;
    if (i >= value.length) break;
    if (value[i] === '"') {
      let name = '';
      i++;
      while (i < value.length) {
        if (value[i] === '"') { if (value[i + 1] === '"') { name += '"'; i += 2; continue; } i++; break; }
        name += value[i];
        i++;
      }
      out.push(name);
    } else {
      let j = i;
      while (j < value.length && value[j] !== ',') j++;
      out.push(value.slice(i, j).trim().toLowerCase());
      i = j;
    }
  }
  return out;
}
