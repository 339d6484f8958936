/**
 * MySQL/MariaDB statement analysis — until the node-sql-parser based analysis lands,
 * every text is one unparsed, opaque statement: rules that need structure fail closed.
 */
import type { SqlAnalysis, SqlSessionSettings } from '../types.js';

export function analyzeMysql(text: string, _settings: SqlSessionSettings): SqlAnalysis {
  return {
    dialect: 'mysql',
    statements: [
      { text, kinds: ['other'], reads: [], writes: [], functions: [], withoutWhere: false, opaque: true, unparsed: true, outputs: null, predicateColumns: [] },
    ],
  };
}
