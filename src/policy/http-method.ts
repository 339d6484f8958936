/**
 * The method an HTTP request may take effect as. Frameworks let a header replace the
 * request line's method (Symfony, ASP.NET, Express's method-override, Google and OData
 * APIs): `POST /admin/x` with `X-HTTP-Method-Override: DELETE` deletes there. Policy judges
 * every method a request may mean, so a rule about DELETE sees that one.
 */

/** Headers some upstream reads as the request's method (lower case, as Node gives them). */
export const METHOD_OVERRIDE_HEADERS: readonly string[] = ['x-http-method-override', 'x-http-method', 'x-method-override'];

export interface MethodOverride {
  /** An override header present, lower-cased. */
  header: string;
  /** Every method the headers name, upper-cased (a repeated header's values are comma-joined). */
  methods: string[];
}

/** The override the request's headers carry, or null when none of them is present. */
export function methodOverride(headers: Readonly<Record<string, string>>): MethodOverride | null {
  let header: string | null = null;
  const methods = new Set<string>();
  for (const [key, value] of Object.entries(headers)) {
    const name = key.toLowerCase();
    if (!METHOD_OVERRIDE_HEADERS.includes(name)) continue;
    header ??= name;
    for (const m of value.split(',')) {
      const method = m.trim().toUpperCase();
      if (method !== '') methods.add(method);
    }
  }
  return header === null ? null : { header, methods: [...methods] };
}
