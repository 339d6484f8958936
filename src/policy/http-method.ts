/**
 * The method an HTTP request may take effect as. Frameworks let a header replace the
 * request line's method (Symfony, ASP.NET, Express's method-override, Google and OData
 * APIs): `POST /admin/x` with `X-HTTP-Method-Override: DELETE` deletes there; Symfony and
 * Laravel also read a `_method` query parameter. Policy judges every method a request may
 * mean, so a rule about DELETE sees that one. (A `_method` field in a form body is not seen.)
 */

/** Headers some upstream reads as the request's method (lower case, as Node gives them). */
export const METHOD_OVERRIDE_HEADERS: readonly string[] = ['x-http-method-override', 'x-http-method', 'x-method-override'];

export interface MethodOverride {
  /** An override header present, lower-cased. */
  header: string;
  /** Every method the headers name, upper-cased (a repeated header's values are comma-joined). */
  methods: string[];
}

/** The query parameter Symfony and Laravel read as the method. */
export const METHOD_OVERRIDE_PARAMETER = '_method';

/** The override the request's headers (or query) carry, or null when none is present. */
export function methodOverride(headers: Readonly<Record<string, string>>, query = ''): MethodOverride | null {
  let header: string | null = null;
  const methods = new Set<string>();
  for (const value of queryValues(query, METHOD_OVERRIDE_PARAMETER)) {
    header ??= `${METHOD_OVERRIDE_PARAMETER} (query parameter)`;
    const method = value.trim().toUpperCase();
    if (method !== '') methods.add(method);
  }
  for (const [key, value] of Object.entries(headers)) {
    // CGI and PHP read X_HTTP_METHOD_OVERRIDE as the same field (HTTP_X_HTTP_METHOD_OVERRIDE).
    const name = key.toLowerCase().replace(/_/g, '-');
    if (!METHOD_OVERRIDE_HEADERS.includes(name)) continue;
    header ??= name;
    for (const m of value.split(',')) {
      const method = m.trim().toUpperCase();
      if (method !== '') methods.add(method);
    }
  }
  return header === null ? null : { header, methods: [...methods] };
}

/** Every value of a query parameter, its name and value percent-decoded as a form reader does. */
function queryValues(query: string, name: string): string[] {
  if (query === '') return [];
  const out: string[] = [];
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const key = decodeForm(eq < 0 ? pair : pair.slice(0, eq));
    // PHP reads `_method[]` and `_method[x]` too: any bracketed form of the name counts.
    if (key === name || key.startsWith(`${name}[`)) out.push(decodeForm(eq < 0 ? '' : pair.slice(eq + 1)));
  }
  return out;
}

function decodeForm(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}
