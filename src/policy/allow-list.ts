/**
 * `programs_allowed`: the SSH allow-list. A line passes only when airlock can read all of
 * it and every simple command it would run — nested ones included (`$(…)`, `sh -c`, the
 * command a wrapper runs) — is on the list with its arguments, and writes no file by
 * redirection. A deny list names what to stop and loses to every spelling it did not
 * foresee; an allow-list names what may run and loses nothing to a new spelling.
 */
import type { SimpleCommand, ShellAnalysis } from '../../parsers/shell/index.js';
import type { RuleConfig } from '../config/index.js';
import { GlobSet } from './glob.js';

type Entry = NonNullable<RuleConfig['when']['programs_allowed']>[number];

/** Where a program named by path may live and still be the program its basename names. */
const SYSTEM_DIRS = new Set(['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/local/sbin']);
/** Redirections that write a file. `2>&1`, `>&-` and /dev/null are not writes; `>& file` is. */
const WRITES = /^[0-9]*(>|>>|>\||&>|&>>|<>|>&)$/;
/** `>&` duplicates a descriptor when its target is a number or `-`. */
const DUPLICATE = /^([0-9]+-?|-)$/;
const HARMLESS_TARGETS = new Set(['/dev/null', '/dev/stdout', '/dev/stderr']);

interface CompiledEntry {
  /** Matches the basename, or the whole argv[0] when the entry names a path. */
  program: GlobSet;
  byPath: boolean;
  /** Globs over the arguments joined by single spaces; null: any arguments. */
  args: GlobSet | null;
  /** `""` in args: no arguments at all. */
  bare: boolean;
}

export interface NotAllowed {
  /** The program that is not allowed; '' when the line as a whole cannot be allowed. */
  program: string;
  why: string;
}

export class ProgramAllowList {
  private readonly entries: CompiledEntry[];

  constructor(entries: Entry[]) {
    this.entries = entries.map((e) => {
      const program = typeof e === 'string' ? e : e.program;
      const args = typeof e === 'string' ? undefined : e.args;
      return {
        program: new GlobSet([program], { separator: null }),
        byPath: program.includes('/'),
        args: args === undefined ? null : new GlobSet(args.filter((a) => a !== ''), { separator: null }),
        bare: args?.includes('') === true,
      };
    });
  }

  /** Why this line is outside the list, or null when every command on it is allowed. */
  check(a: ShellAnalysis): NotAllowed | null {
    if (a.unparsed) return { program: '', why: 'airlock could not parse the line' };
    if (a.opaque) return { program: '', why: `what the line runs cannot be known from its text (${a.reasons[0] ?? 'opaque'})` };
    for (const c of a.commands) {
      const refused = this.refuses(c);
      if (refused !== null) return refused;
    }
    return null;
  }

  private refuses(c: SimpleCommand): NotAllowed | null {
    const write = c.redirections.find((r) => WRITES.test(r.op) && !HARMLESS_TARGETS.has(r.target) && !(r.op.endsWith('>&') && DUPLICATE.test(r.target)));
    if (write !== undefined) return { program: c.program, why: `it writes ${write.target} by redirection` };
    const argv0 = c.argv[0];
    if (argv0 === undefined) return null; // only assignments (code variables are already opaque)
    const args = c.argv.slice(1).join(' ');
    for (const e of this.entries) {
      if (e.byPath ? !e.program.test(argv0) : !e.program.test(c.program)) continue;
      // `/tmp/git status` is not git: a bare name needs its path in a system directory.
      if (!e.byPath && argv0.includes('/') && !SYSTEM_DIRS.has(argv0.slice(0, argv0.lastIndexOf('/')))) continue;
      if (e.args === null || (args === '' ? e.bare : e.args.test(args))) return null;
    }
    return { program: c.program, why: `no programs_allowed entry admits "${c.text}"` };
  }
}
