import { beforeAll, describe, expect, it } from 'vitest';
import { analyzePostgres, loadSqlParsers, type RelationRef } from '../../parsers/sql/index.js';
import { bypassCorpus } from './corpus/sql-bypass.js';

const name = (r: RelationRef): string => `${r.schema ?? ''}.${r.name}`;

beforeAll(async () => { await loadSqlParsers(); });

describe.each(Object.entries(bypassCorpus))('bypass class: %s', (_cls, cases) => {
  it.each(cases.map((c) => [c.sql, c] as const))('%s', (_sql, c) => {
    const settings = { standardConformingStrings: c.scs ?? true, searchPath: ['"$user"', 'public'] };
    // Each case runs cold and again through the cache: a cached answer must be the same answer.
    for (const cache of [null, undefined]) {
      const { statements } = analyzePostgres(c.sql, settings, cache);
      const kinds = statements.flatMap((s) => s.kinds);
      const writes = statements.flatMap((s) => s.writes.map(name));
      const reads = statements.flatMap((s) => s.reads.map(name));
      if (c.statements !== undefined) expect(statements).toHaveLength(c.statements);
      for (const k of c.kinds ?? []) expect(kinds).toContain(k);
      for (const k of c.kindsAbsent ?? []) expect(kinds).not.toContain(k);
      for (const w of c.writes ?? []) expect(writes).toContain(w);
      for (const r of c.reads ?? []) expect(reads).toContain(r);
      if (c.noWrites === true) expect(writes).toEqual([]);
      if (c.opaque !== undefined) expect(statements.some((s) => s.opaque)).toBe(c.opaque);
      if (c.unparsed !== undefined) expect(statements.some((s) => s.unparsed)).toBe(c.unparsed);
      if (c.withoutWhere !== undefined) expect(statements.some((s) => s.withoutWhere)).toBe(c.withoutWhere);
    }
  });
});
