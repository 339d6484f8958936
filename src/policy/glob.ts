/**
 * Globs for rule matching, compiled once to anchored RegExps (case-sensitive unless asked).
 *
 *   *       any run of characters within one segment (never crosses the separator)
 *   **      any run of characters, separators included
 *   ?       exactly one character other than the separator
 *   [abc] [a-z] [!abc] [^abc]   one character from (or not from) the class
 *   \x      the character x, literally
 *
 * The separator depends on what is matched: '.' for schema.table[.column] and
 * function names, '/' for file and URL paths, none for subjects, connections,
 * command lines and host:port (there `*` and `**` are the same).
 */
import { AirlockError } from '../util/errors.js';
import { ANY_SCHEMA } from '../../parsers/sql/types.js';

export type GlobSeparator = '.' | '/' | null;

export interface GlobOptions {
  /** Default '.'. */
  separator?: GlobSeparator;
  /** Letters match either case (HTTP paths: many upstreams fold case). Default false. */
  ignoreCase?: boolean;
}

/** Why a glob is malformed, or null when it is fine. The one check config validation and compileGlob share. */
export function globProblem(glob: string): string | null {
  if (glob.length === 0) return 'empty glob';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '\\') {
      if (i + 1 >= glob.length) return 'glob ends with a lone backslash';
      i++;
    } else if (c === ']') {
      return `unmatched "]" at ${i}`;
    } else if (c === '[') {
      const end = classEnd(glob, i);
      if (end === -1) return `unclosed "[" at ${i}`;
      const body = glob.slice(i + 1, end);
      const inner = body.startsWith('!') || body.startsWith('^') ? body.slice(1) : body;
      if (inner.length === 0) return `empty character class at ${i}`;
      if (inner.includes('[')) return `nested "[" in character class at ${i}`;
      const ranges = inner.replace(/\\(.)/g, '$1');
      for (let k = 1; k + 1 < ranges.length; k++) {
        const lo = ranges[k - 1] ?? '';
        const hi = ranges[k + 1] ?? '';
        if (ranges[k] === '-' && lo > hi) return `reversed range ${lo}-${hi} at ${i}`;
      }
      i = end;
    }
  }
  return null;
}

/** Index of the "]" closing the class opened at `open`, or -1. A "]" right after "[" or "[!" is literal. */
function classEnd(glob: string, open: number): number {
  let i = open + 1;
  if (glob[i] === '!' || glob[i] === '^') i++;
  if (glob[i] === ']') i++;
  for (; i < glob.length; i++) {
    if (glob[i] === '\\') i++;
    else if (glob[i] === ']') return i;
  }
  return -1;
}

// SyntaxCharacters and '/': the only identity escapes a 'u' RegExp accepts.
const REGEX_SPECIAL = /[\\^$.*+?()[\]{}|/]/g;

function escapeRegex(s: string): string {
  return s.replace(REGEX_SPECIAL, '\\$&');
}

/** Compiles a glob; throws AIRLOCK_CONFIG_INVALID when malformed (config validation reports it earlier). */
export function compileGlob(glob: string, options: GlobOptions = {}): RegExp {
  const problem = globProblem(glob);
  if (problem !== null) throw new AirlockError('AIRLOCK_CONFIG_INVALID', `malformed glob "${glob}": ${problem}`);
  const sep = options.separator === undefined ? '.' : options.separator;
  const notSep = sep === null ? '[^]' : `[^${escapeRegex(sep)}]`;
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] ?? '';
    if (c === '\\') {
      out += escapeRegex(glob[i + 1] ?? '');
      i++;
    } else if (c === '*') {
      if (glob[i + 1] === '*') {
        while (glob[i + 1] === '*') i++;
        out += '[^]*';
      } else {
        out += `${notSep}*`;
      }
    } else if (c === '?') {
      out += notSep;
    } else if (c === '[') {
      const end = classEnd(glob, i);
      let body = glob.slice(i + 1, end);
      let negate = false;
      if (body.startsWith('!') || body.startsWith('^')) {
        negate = true;
        body = body.slice(1);
      }
      const cls = body.replace(/\\(.)|([\\\]^[])/g, (_m, esc: string | undefined, special: string | undefined) =>
        esc !== undefined ? escapeClassChar(esc) : escapeClassChar(special ?? ''),
      );
      // A negated class never matches the separator, like `?`.
      out += negate ? `[^${cls}${sep === null ? '' : escapeClassChar(sep)}]` : `[${cls}]`;
      i = end;
    } else {
      out += escapeRegex(c);
    }
  }
  return new RegExp(`^${out}$`, options.ignoreCase === true ? 'iu' : 'u');
}

function escapeClassChar(c: string): string {
  return /[\\\]^[-]/.test(c) ? `\\${c}` : c;
}

/** Index of the first separator in a glob that is not escaped or inside a class, or -1. */
function firstSeparator(glob: string, sep: string): number {
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '\\') i++;
    else if (c === '[') i = Math.max(i, classEnd(glob, i));
    else if (c === sep) return i;
  }
  return -1;
}

/**
 * The glob with its first segment made a wildcard: what `<any schema>.name` must match.
 * `secret.orders` → `*.orders`; a first segment with `**` stays as it is.
 */
function anyFirstSegment(glob: string, sep: string): string {
  const i = firstSeparator(glob, sep);
  if (i < 0) return glob;
  const head = glob.slice(0, i);
  return head.includes('**') ? glob : `*${glob.slice(i)}`;
}

/** A set of globs tested as one. */
export class GlobSet {
  private readonly regexps: RegExp[];
  private anyRegexps: RegExp[] | null = null;
  private schemaRegexps: RegExp[] | null = null;
  private readonly options: GlobOptions;

  constructor(readonly globs: readonly string[], options: GlobOptions = {}) {
    this.options = options;
    this.regexps = globs.map((g) => compileGlob(g, options));
  }

  /**
   * The first glob that matches `value`, or null. A value that starts with ANY_SCHEMA
   * ("<any>.orders": the schema could not be known) matches every glob whose parts after
   * the first segment match — fail closed.
   */
  match(value: string): string | null {
    let regexps = this.regexps;
    let v = value;
    // "schema.*": every table of a schema (DROP SCHEMA, GRANT … ON ALL TABLES IN SCHEMA):
    // it matches every glob whose first segment matches the schema.
    const sep0 = this.options.separator === undefined ? '.' : this.options.separator;
    if (sep0 !== null && value.endsWith(`${sep0}*`) && !value.startsWith(ANY_SCHEMA)) {
      this.schemaRegexps ??= this.globs.map((g) => {
        const i = firstSeparator(g, sep0);
        return compileGlob(i < 0 ? g : g.slice(0, i), this.options);
      });
      const schema = value.slice(0, -2);
      for (let i = 0; i < this.schemaRegexps.length; i++) {
        if (this.schemaRegexps[i]?.test(schema) === true) return this.globs[i] ?? null;
      }
    }
    if (value.startsWith(ANY_SCHEMA)) {
      const sep = this.options.separator === undefined ? '.' : this.options.separator;
      if (sep !== null) {
        this.anyRegexps ??= this.globs.map((g) => compileGlob(anyFirstSegment(g, sep), this.options));
        regexps = this.anyRegexps;
        v = `_${sep}${value.slice(ANY_SCHEMA.length)}`;
      }
    }
    for (let i = 0; i < regexps.length; i++) {
      if (regexps[i]?.test(v) === true) return this.globs[i] ?? null;
    }
    return null;
  }

  test(value: string): boolean {
    return this.match(value) !== null;
  }
}
