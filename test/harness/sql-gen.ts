/**
 * Generators for the differential SQL suites (issue 23): query texts whose effect is known by
 * construction — which statements, of which kind, reading or writing which table — spelled with
 * every literal, comment and quoted-identifier form of the dialect, `;` inside all of them. The
 * suites run the same text on the real server and compare what it did with airlock's reading.
 *
 * Seeded and reproducible: AIRLOCK_FUZZ_SEED picks the seed (default fixed), AIRLOCK_FUZZ_RUNS
 * the number of texts per suite (default a few thousand; `make fuzz` raises it).
 */
import fc from 'fast-check';

export const FUZZ_SEED = Number(process.env.AIRLOCK_FUZZ_SEED ?? 20_231_123);
export const fuzzRuns = (defaultRuns: number): number => Number(process.env.AIRLOCK_FUZZ_RUNS ?? defaultRuns);

export interface Expected {
  kind: 'select' | 'insert';
  /** The table the statement reads (select … FROM) or writes (insert), unqualified. */
  table: string | null;
}

export interface Generated {
  text: string;
  statements: Expected[];
}

/** Characters that end or open quotes and comments in one dialect or the other. */
const CHARS = ['a', 'b', ' ', ';', '"', "'", '\\', '`', '-', '#', '/', '*', '\n', '$', 'é', '%', '_', '0', '!', 'M', 'n', 'x', 'U', '&', '+'];
const tricky = fc.array(fc.tuple(fc.constantFrom(...CHARS), fc.boolean()), { maxLength: 8 });

const join = (parts: readonly string[]): string => parts.join('');

// ---------------------------------------------------------------- MySQL / MariaDB

export interface MysqlMode {
  ansiQuotes: boolean;
  noBackslashEscapes: boolean;
}

function mysqlString(q: "'" | '"', content: ReadonlyArray<readonly [string, boolean]>, m: MysqlMode): string {
  return q + join(content.map(([c, alt]) => {
    if (c === q) return alt && !m.noBackslashEscapes ? `\\${q}` : q + q;
    if (c === '\\') return m.noBackslashEscapes ? '\\' : '\\\\';
    return c;
  })) + q;
}

function mysqlIdent(q: '`' | '"', content: ReadonlyArray<readonly [string, boolean]>): string {
  // Identifiers: no escapes but a doubled quote; none may end in a space or be empty.
  const body = join(content.map(([c]) => (c === q ? q + q : c === '\\' ? '\\' : c))).replace(/ +$/, '');
  return `${q}${body === '' ? 'c' : body}${q}`;
}

const mysqlLiteral = (m: MysqlMode): fc.Arbitrary<string> => fc.oneof(
  tricky.map((t) => mysqlString("'", t, m)),
  ...(m.ansiQuotes ? [] : [tricky.map((t) => mysqlString('"', t, m))]),
  fc.tuple(fc.constantFrom('_utf8mb4', '_binary', '_latin1', 'N', 'n'), fc.constantFrom('', ' '), tricky).map(([p, sp, t]) => `${p}${p.startsWith('_') ? sp : ''}${mysqlString("'", t, m)}`),
  fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 4 }).map((b) => `${b.length % 2 === 0 ? 'X' : 'x'}'${Buffer.from(b).toString('hex')}'`),
  fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 4 }).map((b) => `0x${Buffer.from(b).toString('hex')}`),
  fc.array(fc.constantFrom('0', '1'), { maxLength: 9 }).map((b) => `b'${b.join('')}'`),
  fc.array(fc.constantFrom('0', '1'), { minLength: 1, maxLength: 9 }).map((b) => `0b${b.join('')}`),
  fc.constantFrom('42', '-7', '1.5e3', '.5', '\\N', 'NULL', 'TRUE'),
);

const mysqlAlias = (m: MysqlMode): fc.Arbitrary<string> => fc.oneof(
  fc.constantFrom('c1', 'v'),
  tricky.map((t) => mysqlIdent('`', t)),
  ...(m.ansiQuotes ? [tricky.map((t) => mysqlIdent('"', t))] : []),
);

/** Whitespace and comments the server skips (version 10.x: `/*!999999 … *\/` is skipped). */
const mysqlGap = (m: MysqlMode): fc.Arbitrary<string> => {
  const noClose = tricky.map((t) => join(t.map(([c]) => c)).replace(/\*\//g, '* /').replace(/^[!M]/, ' '));
  const line = tricky.map((t) => join(t.map(([c]) => c)).replace(/\n/g, ' '));
  const one = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(' ', '\n', '\t') },
    fc.tuple(noClose, fc.boolean()).map(([c, nested]) => (nested ? `/* /* ${c} */` : `/* ${c}*/`)),
    line.map((c) => `-- ${c}\n`),
    line.map((c) => `#${c}\n`),
    noClose.map((c) => `/*!999999 ${c}*/`),
    noClose.map((c) => `/*M!999999 ${c}*/`),
    fc.constant('/*!*/'),
  );
  void m;
  return fc.array(one, { minLength: 1, maxLength: 3 }).map((g) => ` ${g.join('')} `.replace(/^ +| +$/g, ' '));
};

/** A select-list item; sometimes inside an executable comment the server runs. */
const mysqlItem = (m: MysqlMode): fc.Arbitrary<string> => fc.tuple(mysqlLiteral(m), fc.option(mysqlAlias(m)), fc.constantFrom('', '/*!', '/*!50000', '/*M!100000')).map(([lit, alias, exec]) => {
  const item = alias === null ? lit : `${lit} AS ${alias}`;
  return exec === '' ? item : `${exec} ${item} */`;
});

const mysqlTable = (m: MysqlMode, name: string): fc.Arbitrary<string> => fc.constantFrom(
  name, `\`${name}\``, `appdb.${name}`, `\`appdb\`.\`${name}\``, ...(m.ansiQuotes ? [`"${name}"`, `"appdb"."${name}"`] : []),
);

export const mysqlStatement = (m: MysqlMode): fc.Arbitrary<{ text: string; expected: Expected }> => fc.oneof(
  fc.tuple(mysqlGap(m), fc.array(mysqlItem(m), { minLength: 1, maxLength: 3 }), mysqlGap(m), fc.option(mysqlTable(m, 't1'))).map(([g, items, g2, from]) => ({
    text: `SELECT${g}${items.join(`${g2},`)}${from === null ? '' : `${g2}FROM ${from} LIMIT 1`}`,
    expected: { kind: 'select' as const, table: from === null ? null : 't1' },
  })),
  fc.tuple(mysqlGap(m), mysqlTable(m, 't2'), mysqlLiteral(m), mysqlGap(m)).map(([g, t, lit, g2]) => ({
    text: `INSERT${g}INTO ${t} (v) VALUES (${g2}${lit}${g2})`,
    expected: { kind: 'insert' as const, table: 't2' },
  })),
);

export const mysqlText = (m: MysqlMode): fc.Arbitrary<Generated> => fc.tuple(
  fc.array(fc.tuple(mysqlStatement(m), mysqlGap(m)), { minLength: 1, maxLength: 3 }),
  fc.constantFrom('', ';', ' ;'),
).map(([sts, end]) => ({
  text: sts.map(([s, g]) => `${s.text}${g}`).join(';') + end,
  statements: sts.map(([s]) => s.expected),
}));

// ---------------------------------------------------------------- PostgreSQL

export interface PgMode {
  standardConformingStrings: boolean;
}

function pgPlain(content: ReadonlyArray<readonly [string, boolean]>, m: PgMode): string {
  return `'${join(content.map(([c, alt]) => (c === "'" ? (alt && !m.standardConformingStrings ? "\\'" : "''") : c === '\\' && !m.standardConformingStrings ? '\\\\' : c)))}'`;
}

function pgEscape(content: ReadonlyArray<readonly [string, boolean]>): string {
  return `E'${join(content.map(([c, alt]) => (c === "'" ? (alt ? "\\'" : "''") : c === '\\' ? '\\\\' : c === 'a' && alt ? '\\x61' : c === 'b' && alt ? '\\142' : c === 'n' && alt ? '\\u006e' : c)))}'`;
}

function pgUnicode(content: ReadonlyArray<readonly [string, boolean]>, esc: '\\' | '!', q: "'" | '"'): string {
  const body = join(content.map(([c, alt]) => (c === q ? q + q : c === esc ? esc + esc : alt && /[a-z]/.test(c) ? `${esc}${c.charCodeAt(0).toString(16).padStart(4, '0')}` : c)));
  if (q === '"' && body.replace(/""/g, '"') === '') return 'U&"c"';
  return `U&${q}${body}${q}${esc === '\\' ? '' : ` UESCAPE '${esc}'`}`;
}

function pgDollar(content: ReadonlyArray<readonly [string, boolean]>, tag: string): string {
  let body = join(content.map(([c]) => c));
  const close = `$${tag}$`;
  while (body.includes(close)) body = body.replace(close, '');
  // A body ending in `$tag` would join the closing `$`: `$a$x$a$a$` … keep it simple.
  if (body.endsWith('$')) body += ' ';
  return `${close}${body}${close}`;
}

const pgLiteral = (m: PgMode): fc.Arbitrary<string> => fc.oneof(
  tricky.map((t) => pgPlain(t, m)),
  tricky.map((t) => pgEscape(t)),
  fc.tuple(tricky, fc.constantFrom('\\' as const, '!' as const)).map(([t, e]) => (m.standardConformingStrings ? pgUnicode(t, e, "'") : pgPlain(t, m))),
  fc.tuple(tricky, fc.constantFrom('', 'a', 'tag', '_x1')).map(([t, tag]) => pgDollar(t, tag)),
  fc.array(fc.constantFrom('0', '1'), { maxLength: 9 }).map((b) => `B'${b.join('')}'`),
  fc.array(fc.integer({ min: 0, max: 15 }), { maxLength: 6 }).map((b) => `X'${b.map((x) => x.toString(16)).join('')}'`),
  fc.constantFrom('42', '-7', '1.5e3', '.5', 'NULL', 'TRUE', "'x'::text", 'text \'x\''),
);

const pgAlias: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('c1', 'v'),
  tricky.map((t) => {
    const body = join(t.map(([c]) => (c === '"' ? '""' : c)));
    return body === '' ? '"c"' : `"${body}"`;
  }),
  fc.tuple(tricky, fc.constantFrom('\\' as const, '!' as const)).map(([t, e]) => pgUnicode(t, e, '"')),
);

const pgGap: fc.Arbitrary<string> = (() => {
  const noClose = tricky.map((t) => join(t.map(([c]) => c)).replace(/\*\//g, '* /').replace(/\/\*/g, '/ *'));
  const line = tricky.map((t) => join(t.map(([c]) => c)).replace(/\n/g, ' '));
  const one = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(' ', '\n', '\t') },
    noClose.map((c) => `/* ${c}*/`),
    fc.tuple(noClose, noClose).map(([a, b]) => `/* ${a} /* ${b} */ ${a} */`),
    line.map((c) => `--${c}\n`),
  );
  return fc.array(one, { minLength: 1, maxLength: 3 }).map((g) => ` ${g.join('')} `);
})();

const pgTable = (name: string): fc.Arbitrary<string> => fc.constantFrom(name, `"${name}"`, `public.${name}`, `"public"."${name}"`, `U&"\\0074${name.slice(1)}"`);

export const pgStatement = (m: PgMode): fc.Arbitrary<{ text: string; expected: Expected }> => fc.oneof(
  fc.tuple(pgGap, fc.array(fc.tuple(pgLiteral(m), fc.option(pgAlias)), { minLength: 1, maxLength: 3 }), pgGap, fc.option(pgTable('t1'))).map(([g, items, g2, from]) => ({
    text: `SELECT${g}${items.map(([l, a]) => (a === null ? l : `${l} AS ${a}`)).join(`${g2},`)}${from === null ? '' : `${g2}FROM ${from} LIMIT 1`}`,
    expected: { kind: 'select' as const, table: from === null ? null : 't1' },
  })),
  fc.tuple(pgGap, pgTable('t2'), pgLiteral(m), pgGap).map(([g, t, lit, g2]) => ({
    text: `INSERT${g}INTO ${t} (v) VALUES (${g2}(${lit})::text${g2})`,
    expected: { kind: 'insert' as const, table: 't2' },
  })),
);

export const pgText = (m: PgMode): fc.Arbitrary<Generated> => fc.tuple(
  fc.array(fc.tuple(pgStatement(m), pgGap), { minLength: 1, maxLength: 3 }),
  fc.constantFrom('', ';', ' ;'),
).map(([sts, end]) => ({
  text: sts.map(([s, g]) => `${s.text}${g}`).join(';') + end,
  statements: sts.map(([s]) => s.expected),
}));
