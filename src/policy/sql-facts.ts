/**
 * The names one statement's relations and functions can stand for, computed lazily
 * once per decision and shared by every rule that asks.
 */
import type { RelationRef, StatementAnalysis } from '../../parsers/sql/types.js';

export class SqlFacts {
  private reads: string[] | null = null;
  private writes: string[] | null = null;
  private all: string[] | null = null;
  private fns: string[] | null = null;

  constructor(
    readonly statement: StatementAnalysis,
    private readonly resolveRelation: (ref: RelationRef) => string[],
  ) {}

  readNames(): string[] {
    this.reads ??= this.namesOf(this.statement.reads);
    return this.reads;
  }

  writtenNames(): string[] {
    this.writes ??= this.namesOf(this.statement.writes);
    return this.writes;
  }

  allNames(): string[] {
    this.all ??= [...new Set([...this.readNames(), ...this.writtenNames()])];
    return this.all;
  }

  /**
   * Each function as written, its bare name, and for an unqualified call every schema it
   * could resolve to (pg_catalog is searched first implicitly), so `pg_read_file`,
   * `pg_catalog.pg_read_file` and `*.pg_read_file` all match a call written either way.
   */
  functionNames(): string[] {
    if (this.fns === null) {
      const out = new Set<string>();
      for (const f of this.statement.functions) {
        out.add(f);
        const dot = f.lastIndexOf('.');
        if (dot >= 0) {
          out.add(f.slice(dot + 1));
        } else {
          out.add(`pg_catalog.${f}`);
          for (const c of this.resolveRelation({ schema: null, name: f })) out.add(c);
        }
      }
      this.fns = [...out];
    }
    return this.fns;
  }

  /** schema.name for each relation; unqualified ones through every search_path candidate. */
  private namesOf(refs: RelationRef[]): string[] {
    const out = new Set<string>();
    for (const ref of refs) {
      if (ref.schema !== null) {
        out.add(`${ref.schema}.${ref.name}`);
      } else {
        const candidates = this.resolveRelation(ref);
        // No search_path known: assume the default one rather than match nothing.
        if (candidates.length === 0) out.add(`public.${ref.name}`);
        for (const c of candidates) out.add(c);
      }
    }
    return [...out];
  }
}
