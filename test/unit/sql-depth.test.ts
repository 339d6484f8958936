/** Statements nested deeper than the parsers follow are AIRLOCK_TOO_COMPLEX, never an internal error (issue 25, item 6). */
import { beforeAll, describe, expect, it } from 'vitest';
import { analyzePostgres, loadSqlParsers, type SqlSessionSettings } from '../../parsers/sql/index.js';
import { analyzeMysql } from '../../parsers/sql/mysql/index.js';

const settings: SqlSessionSettings = { standardConformingStrings: true, searchPath: ['public'] };
const nested = (open: string, close: string, n: number): string => `SELECT ${open.repeat(n)}1${close.repeat(n)}`;

beforeAll(() => loadSqlParsers());

describe('nested too deeply', () => {
  for (const text of [nested('ARRAY[', ']', 3000), nested('abs(', ')', 3000), nested('(SELECT ', ')', 3000), nested('(', ')', 20000), `SELECT ${'NOT '.repeat(3000)}true`]) {
    it(`postgres: ${text.slice(0, 20)}… (${text.length} chars)`, () => {
      expect(() => analyzePostgres(text, settings, null)).toThrow(expect.objectContaining({ code: 'AIRLOCK_TOO_COMPLEX', message: expect.stringMatching(/nested too deeply for airlock to read/) }));
    });
  }
  for (const text of [nested('abs(', ')', 3000), nested('(SELECT ', ')', 3000), nested('(', ')', 3000), `SELECT 1${'+1'.repeat(20000)}`]) {
    it(`mysql: ${text.slice(0, 20)}… (${text.length} chars)`, () => {
      expect(() => analyzeMysql(text, settings)).toThrow(expect.objectContaining({ code: 'AIRLOCK_TOO_COMPLEX' }));
    });
  }
  it('moderate nesting still parses', () => {
    expect(analyzePostgres(nested('ARRAY[', ']', 50), settings, null).statements[0]?.kinds).toEqual(['select']);
    expect(analyzeMysql(nested('abs(', ')', 50), settings).statements[0]?.kinds).toEqual(['select']);
  });
});
