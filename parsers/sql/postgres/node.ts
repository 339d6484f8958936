/**
 * Narrowing helpers over libpg-query's JSON parse tree. The tree is walked as `unknown`
 * on purpose: a construct this code has no handler for is still visited generically, so
 * a relation or a function call inside it is never silently skipped.
 */

export type JsonObject = { readonly [key: string]: unknown };

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** A wrapped node `{ "SelectStmt": { ... } }` → its type name and fields; null for a bare struct. */
export function unwrap(value: unknown): { type: string; fields: JsonObject } | null {
  if (!isObject(value)) return null;
  const keys = Object.keys(value);
  if (keys.length !== 1) return null;
  const type = keys[0];
  if (type === undefined || !/^[A-Z]/.test(type)) return null;
  const fields = value[type];
  return isObject(fields) ? { type, fields } : null;
}

/** The fields of `value` when it is a node of `type`, wrapped or bare (libpg-query emits typed pointers bare). */
export function nodeOf(value: unknown, type: string): JsonObject | null {
  const node = unwrap(value);
  if (node !== null) return node.type === type ? node.fields : null;
  return isObject(value) ? value : null;
}

/** A list of `{ String: { sval } }` nodes (qualified names, operator names) → the strings. */
export function names(value: unknown): string[] {
  const out: string[] = [];
  for (const item of list(value)) {
    const node = unwrap(item);
    if (node?.type === 'String') out.push(str(node.fields.sval) ?? '');
    else if (node?.type === 'A_Star') out.push('*');
  }
  return out;
}

/** The string value of a `String` node or of a string `A_Const`, else null. */
export function stringValue(value: unknown): string | null {
  const node = unwrap(value);
  if (node === null) return null;
  if (node.type === 'String') return str(node.fields.sval);
  if (node.type === 'A_Const') {
    const s = node.fields.sval;
    return isObject(s) ? str(s.sval) : null;
  }
  return null;
}
