/**
 * Which relations are views, for masking and for the pipelined write-ahead. MariaDB and
 * MySQL name a view (not its base tables) as the org_table of its columns, and the analysis
 * sees only the view's name: what a view's column holds cannot be known from the wire, so
 * masking treats it as unknown; and a view may call a stored function that writes, so a
 * SELECT of one is never forwarded before its record is durable. The answer comes from
 * information_schema on a side connection with the session's own lease, cached per listener
 * for a minute, and forgotten whenever a statement of any listener may have created,
 * changed or dropped a relation (forget()).
 */
import { ANY_SCHEMA } from '../../parsers/sql/types.js';
import { queryOnSideConnection, type UpstreamOptions } from './upstream.js';

/** A hex literal reads the same whatever the session's sql_mode (backslash escapes or not). */
const quote = (v: string): string => `_utf8 X'${Buffer.from(v, 'utf8').toString('hex')}'`;

function pair(n: string): string {
  const dot = n.indexOf('.');
  return `(${quote(n.slice(0, dot))}, ${quote(n.slice(dot + 1))})`;
}

const TTL_MS = 60_000;
const MAX_ENTRIES = 10_000;

/**
 * Bumped by any listener's forget(): every listener's answers are forgotten, and a look-up that
 * started before must not store what it read. Daemon-wide: two listeners may reach one database
 * (under different names), and DDL through one must not leave the other's answers trusted.
 */
let generation = 0;

export class MysqlCatalog {
  /** "schema.table" → is a view (true), a base table (false); absent: not looked up. */
  private readonly kinds = new Map<string, { view: boolean; at: number; generation: number }>();

  /** Forgets every answer, of every listener: a relation may have been created, replaced or dropped. */
  forget(): void {
    generation++;
    this.kinds.clear();
  }

  /** true: a view; false: a base table or no such relation; undefined: not known (treat as a view). */
  isView(schemaTable: string): boolean | undefined {
    const hit = this.kinds.get(schemaTable);
    if (hit === undefined || hit.generation !== generation || Date.now() - hit.at > TTL_MS) return undefined;
    return hit.view;
  }

  /** The look-up for the pipelined write-ahead in flight, if any. */
  private pipelining: Promise<void> | null = null;

  /**
   * load() for the pipelined write-ahead, which only gains speed from the answer: at most one
   * such look-up in flight per listener (a caller naming ever new relations costs the upstream
   * one side connection at a time); false, without asking, while another one runs.
   */
  async loadIfIdle(names: string[], upstream: UpstreamOptions): Promise<boolean> {
    if (this.pipelining !== null) return false;
    const p = this.load(names, upstream);
    this.pipelining = p;
    try {
      await p;
      return true;
    } finally {
      this.pipelining = null;
    }
  }

  /** Looks up the names not known yet. Throws when the upstream cannot be asked. */
  async load(names: string[], upstream: UpstreamOptions): Promise<void> {
    const missing = [...new Set(names)].filter((n) => this.isView(n) === undefined && n.includes('.'));
    if (missing.length === 0) return;
    const exact = missing.filter((n) => !n.startsWith(ANY_SCHEMA));
    const anywhere = missing.filter((n) => n.startsWith(ANY_SCHEMA)).map((n) => n.slice(ANY_SCHEMA.length));
    const where = [
      ...(exact.length > 0 ? [`(TABLE_SCHEMA, TABLE_NAME) IN (${exact.map(pair).join(', ')})`] : []),
      ...(anywhere.length > 0 ? [`TABLE_NAME IN (${anywhere.map(quote).join(', ')})`] : []),
    ];
    const started = generation;
    const rows = await queryOnSideConnection(upstream, `SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE ${where.join(' OR ')}`);
    if (started !== generation) return;
    const now = Date.now();
    if (this.kinds.size > MAX_ENTRIES) this.kinds.clear();
    // Names the server does not list are no relation at all (the statement will fail): not views.
    for (const n of missing) this.kinds.set(n, { view: false, at: now, generation: started });
    for (const [schema, table, type] of rows) {
      if (schema == null || table == null || type !== 'VIEW') continue;
      this.kinds.set(`${schema}.${table}`, { view: true, at: now, generation: started });
      // A table of that name in a schema airlock cannot name (search path unknown) may be this view.
      if (anywhere.includes(table)) this.kinds.set(`${ANY_SCHEMA}${table}`, { view: true, at: now, generation: started });
    }
  }
}
