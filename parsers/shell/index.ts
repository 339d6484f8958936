/**
 * Shell command lines as policy sees them: every simple command that could run,
 * found the way a POSIX shell (and bash) would parse the line.
 */
import { parseScript } from './grammar.js';
import { AnalysisSink, type ShellAnalysis } from './types.js';

export type { Redirection, ShellAnalysis, SimpleCommand } from './types.js';

/**
 * Whether bash could run code in this value if a command line evaluated the variable holding
 * it as a name or arithmetic (`(( LC_X ))`, `a[LC_X]=1`, `${!LC_X}` with LC_X = `a[$(rm y)]`).
 * For values that reach the shell from outside the line: SSH `env` requests.
 */
export function valueMayRunCode(value: string): boolean {
  return /\[[^\]]*[$`]/.test(value);
}

export { INTERPRETERS, interpreterFor, isCodeVariable } from './interpreters.js';
export { isShell, SHELLS } from './commands.js';

/** Variables an SSH client may set by default (`env_allow`: LANG, LC_*, TERM). */
const CLIENT_SET_VARIABLES = /\b(TERM|LANG|LANGUAGE|LC_[A-Za-z_]+)\b/;

export function analyzeShell(line: string): ShellAnalysis {
  const sink = new AnalysisSink();
  parseScript(line, sink, 0, false);
  // An SSH client sets these (env requests, the pty's terminal type): their values are unknown.
  if (CLIENT_SET_VARIABLES.test(line)) sink.unknownValues = true;
  // A value airlock cannot see, evaluated as a name or in arithmetic: `read x; (( x ))`
  // with x = `a[$(rm y)]` runs rm.
  if (sink.evaluatesNames && sink.unknownValues) sink.markOpaque('a value airlock cannot see is evaluated as a name or arithmetic, whose subscripts run $(…)');
  return { commands: sink.commands, unparsed: sink.unparsed, opaque: sink.opaque, reasons: sink.reasons };
}
