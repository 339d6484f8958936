/**
 * Shell builtins that run text later, bind a name to a program, or take names and values
 * that bash evaluates (bash(1) "SHELL BUILTIN COMMANDS"), and the eval rule they share.
 */
import type { CommandContext } from './types.js';
import { isCodeVariable } from './interpreters.js';
import type { Word } from './types.js';

/** A leading or declared `NAME=value`: a code variable is opaque, a value built at run time is unknown. */
export function assignment(w: Word, ctx: CommandContext): void {
  const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(w.value)?.[0] ?? '';
  if (isCodeVariable(name)) ctx.sink.markOpaque(`assigning ${name} makes a shell or a tool run its value`);
  if (w.value[name.length] === '[') ctx.sink.evaluatesNames = true;
  if (w.dynamic) ctx.sink.unknownValues = true;
}

/**
 * Option letters from every `-abc` word up to `--`. Not only those before the first operand:
 * an option's value (`mapfile -c 1 -C cb`) looks like one, and over-reading fails closed.
 */
function shortFlags(words: Word[]): string {
  let out = '';
  for (const w of words.slice(1)) {
    if (w.value === '--') break;
    if (w.value.startsWith('-') && !w.value.startsWith('--')) out += w.value.slice(1);
  }
  return out;
}

/**
 * Shell builtins that run text later, bind a name to a program or evaluate names
 * (bash(1) "SHELL BUILTIN COMMANDS"). True when the builtin was handled here.
 */
export function builtin(program: string, words: Word[], ctx: CommandContext): boolean {
  const sink = ctx.sink;
  const flags = shortFlags(words);
  const args = words.slice(1);
  switch (program) {
    case 'eval':
      runScript(args, 'eval', ctx);
      return true;
    case 'source':
    case '.':
      sink.markOpaque(`${program} runs the commands in a file`);
      return true;
    case 'trap': {
      const rest = args[0]?.value === '--' ? args.slice(1) : args;
      const action = rest[0];
      if (action === undefined || /^-[lp]+$/.test(action.value) || action.value === '-' || action.value === '') return true;
      // The action runs later, on a signal or at exit, under conditions the line does not show.
      sink.markOpaque('trap runs its action later');
      runScript([action], 'trap', ctx);
      return true;
    }
    case 'fc':
      // Only `fc -l` (with -n, -r) lists; anything else edits or re-runs history.
      if (!flags.includes('l') || /[^lnr]/.test(flags)) sink.markOpaque('fc runs commands from the history list');
      return true;
    case 'hash':
      if (flags.includes('p')) sink.markOpaque('hash -p binds a command name to any file');
      return true;
    case 'mapfile':
    case 'readarray':
      if (flags.includes('C')) sink.markOpaque(`${program} -C runs a callback`);
      sink.unknownValues = true;
      return true;
    case 'complete':
    case 'compgen':
      if (/[CF]/.test(flags)) sink.markOpaque(`${program} -C/-F runs a command or function`);
      return true;
    case 'bind':
      if (flags.includes('x')) sink.markOpaque('bind -x runs a command on a key');
      return true;
    case 'enable':
      if (flags.includes('f')) sink.markOpaque('enable -f loads a builtin from a shared object');
      return true;
    case 'let':
      sink.evaluatesNames = true;
      return true;
    case 'unset':
    case 'test':
    case '[':
      if (program === 'unset' || args.some((w) => /^-[vR]$/.test(w.value))) sink.evaluatesNames = true;
      return false;
    case 'read':
    case 'getopts':
      sink.unknownValues = true;
      if (args.some((w) => w.dynamic && !w.value.startsWith('-'))) sink.markOpaque(`${program} assigns to a name taken from an expansion`);
      return true;
    case 'printf': {
      const v = args.findIndex((w) => w.value === '-v' || (w.value.startsWith('-v') && w.value.length > 2));
      if (v >= 0) {
        sink.unknownValues = true;
        const target = args[v]?.value === '-v' ? args[v + 1] : args[v];
        if (target?.dynamic === true) sink.markOpaque('printf -v assigns to a name taken from an expansion');
      }
      return true;
    }
    case 'declare':
    case 'typeset':
    case 'local':
    case 'export':
    case 'readonly':
      if (/[inaA]/.test(flags)) sink.evaluatesNames = true;
      for (const w of args) {
        if (w.value.startsWith('-') || w.value.startsWith('+')) continue;
        if (w.dynamic && !/^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?(=|$)/.test(w.raw)) {
          sink.markOpaque(`${program} takes a name from an expansion: ${w.raw}`);
          continue;
        }
        assignment(w, ctx);
      }
      return true;
  }
  return false;
}

/** Words joined by spaces and run as a command line (eval's rule); unknown text is opaque. */
export function runScript(words: Word[], by: string, ctx: CommandContext): void {
  if (words.length === 0) return;
  if (words.some((w) => w.dynamic)) {
    ctx.sink.markOpaque(`${by} runs a command line built at run time`);
    return;
  }
  ctx.script(words.map((w) => w.value).join(' '));
}
