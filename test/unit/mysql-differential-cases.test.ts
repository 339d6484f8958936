// Cases the differential suite against MariaDB found (issue 23, test/integration/sql-differential-mysql.test.ts),
// kept as regression tests: what the server ran is in each comment.
import { describe, expect, it } from 'vitest';
import { analyzeMysql } from '../../parsers/sql/mysql/index.js';

const read = (text: string, ansiQuotes?: boolean) =>
  analyzeMysql(text, { standardConformingStrings: false, searchPath: ['appdb'], serverVersion: 101106, ...(ansiQuotes === undefined ? {} : { ansiQuotes }) }).statements.map((s) => ({ kinds: s.kinds, unparsed: s.unparsed, writes: s.writes.map((w) => w.name) }));

describe('MySQL reading agrees with MariaDB', () => {
  it('a nested comment inside a skipped versioned comment is refused (MariaDB ends it at the second */ and runs what follows)', () => {
    // MariaDB 10.11: SELECT 1 /*!999999 /* */ ' */ , 2 -- '  →  1, 2 (airlock used to see one string)
    expect(read("SELECT 1 /*!999999 /* */ ' */ ; DROP TABLE t -- '")).toEqual([{ kinds: ['other'], unparsed: true, writes: [] }]);
    expect(read("SELECT 1 /*M!999999 /*/ ' */ ; DROP TABLE t -- '")).toEqual([{ kinds: ['other'], unparsed: true, writes: [] }]);
    expect(read('SELECT 1 /*!999999 x */ , 2')).toEqual([{ kinds: ['select'], unparsed: false, writes: [] }]);
  });

  it('an executable comment ends at the first */ outside a quote', () => {
    // SELECT /*! '*/' */ , 2  →  '*/', 2
    expect(read("SELECT /*! '*/' */ , 2")).toEqual([{ kinds: ['select'], unparsed: false, writes: [] }]);
    // a ';' inside a string inside an executable comment is no boundary; a bare one is refused
    expect(read("SELECT /*! ';' */ , 2")).toEqual([{ kinds: ['select'], unparsed: false, writes: [] }]);
    expect(read('SELECT /*! 1; DROP TABLE t */ , 2')[0]?.unparsed).toBe(true);
  });

  it('.5, and charset introducers before a string, are read (they were refused)', () => {
    expect(read('SELECT .5')).toEqual([{ kinds: ['select'], unparsed: false, writes: [] }]);
    expect(read("INSERT INTO t2 (v) VALUES (_utf8mb4'')")).toEqual([{ kinds: ['insert'], unparsed: false, writes: ['t2'] }]);
    expect(read("SELECT _binary 'x' AS `c`")).toEqual([{ kinds: ['select'], unparsed: false, writes: [] }]);
  });

  it('with ANSI_QUOTES unknown, a reading that cannot tokenize runs nothing: SELECT "a\\"b" is one string', () => {
    expect(read('SELECT "a\\"b"')).toEqual([{ kinds: ['select'], unparsed: false, writes: [] }]);
    // only the ANSI_QUOTES reading tokenizes: its DROP is seen
    expect(read('SELECT "a\\"; DROP TABLE t; SELECT "b"').map((s) => s.kinds[0])).toEqual(['select', 'drop', 'select']);
  });
});
