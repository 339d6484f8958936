/**
 * What policy needs to know about a shell command line: every simple command that
 * could run, and whether anything could run that the text does not show.
 */

export interface Redirection {
  /** The operator with its file descriptor prefix: `>`, `2>&`, `<<<`, `<<`, `&>>`. */
  op: string;
  /** The target word after quote removal; a here-document's delimiter. */
  target: string;
}

export interface SimpleCommand {
  /** Words after quote removal; expansions (`$x`, `$(…)`) kept as written. Leading assignments removed. */
  argv: string[];
  /** Leading `NAME=value` words. */
  assignments: string[];
  redirections: Redirection[];
  /** argv joined by single spaces, for `commands` globs. */
  text: string;
  /** Basename of argv[0]; '' when there is no argv. */
  program: string;
  /** Came from `$(…)`, backticks, `<(…)`, `sh -c`, `eval`, a here-document fed to a shell, or a wrapper (`sudo rm` → `rm`). */
  nested: boolean;
}

export interface ShellAnalysis {
  commands: SimpleCommand[];
  /** The line is not valid shell: unterminated quote, unbalanced `$(`, missing here-document body … */
  unparsed: boolean;
  /** Something may run that cannot be known from the text: `$x` as a program, `eval "$x"`, `source`, a shell reading stdin … */
  opaque: boolean;
  /** Why `unparsed` or `opaque` were set, one line each. */
  reasons: string[];
}

/** One word as lexed: its value after quote removal and what the raw text contained. */
export interface Word {
  value: string;
  raw: string;
  /** Some part was quoted or escaped; a quoted word is never a reserved word. */
  quoted: boolean;
  /** Contains a parameter, command or arithmetic expansion: its run-time value is unknown. */
  dynamic: boolean;
  /** Contains an unquoted glob or brace-expansion character: `*`, `?`, `[`, `{`. */
  pattern: boolean;
  /** A `$` or backtick came from quoted or escaped text: inert here, code if bash later evaluates the value. */
  literalCode?: boolean;
}

/** A redirection as the grammar sees it, with the here-document body once read. */
export interface RedirectionWord {
  op: string;
  target: Word;
  /** Here-document body, or the here-string word's value. */
  body?: string;
  /** The body undergoes expansion (unquoted here-document delimiter, dynamic here-string). */
  bodyDynamic?: boolean;
}

/** Collects results across every nesting level of one analysis. */
export class AnalysisSink {
  readonly commands: SimpleCommand[] = [];
  unparsed = false;
  opaque = false;
  readonly reasons: string[] = [];
  /**
   * The line evaluates text as a name or an arithmetic expression (`((…))`, `$((…))`, `let`,
   * `[[ -eq ]]`, `${!x}`, `read`, `printf -v` …), where an array subscript runs `$(…)`.
   */
  evaluatesNames = false;
  /** The line has a value its text does not show: a command substitution's output, `read`, `mapfile`. */
  unknownValues = false;

  markUnparsed(reason: string): void {
    this.unparsed = true;
    this.note(reason);
  }

  markOpaque(reason: string): void {
    this.opaque = true;
    this.note(reason);
  }

  private note(reason: string): void {
    // Enough to explain a decision; a hostile line must not grow this without bound.
    if (this.reasons.length < MAX_REASONS && !this.reasons.includes(reason)) this.reasons.push(reason);
  }
}

const MAX_REASONS = 16;

/**
 * Whether an option word names this long option: exactly, with `=value`, or abbreviated as
 * GNU getopt_long accepts (`--to-com` is `--to-command`, `--split-str` is `--split-string`).
 */
export function namesLongOption(word: string, option: string): boolean {
  if (!word.startsWith('--') || !option.startsWith('--')) return false;
  const name = word.split('=', 1)[0] ?? word;
  return name === option || (name.length >= 3 && option.startsWith(name));
}

/** Deeper nesting than this (`$($($(…)))`, `sh -c "sh -c …"`) fails closed as unparsed. */
export const MAX_DEPTH = 24;

/** What a simple command is analysed in (commands.ts and builtins.ts both take it; here so neither imports the other for it). */
export interface CommandContext {
  sink: AnalysisSink;
  depth: number;
  nested: boolean;
  /** Analyse text that will run as a command line, one level deeper. */
  script(text: string): void;
  /** The same context one level deeper, for commands derived from this one. */
  deeper(): CommandContext;
}
