/**
 * From the words of one simple command to SimpleCommands: the command itself, then
 * whatever it runs in turn — a shell's `-c` script, `eval`'s text, a wrapper's command,
 * `find -exec`. Anything that runs text we cannot see makes the analysis opaque.
 */
import { assignment, builtin, runScript } from './builtins.js';
import { commandOption, INERT_PROGRAMS, interpreterFor, interpreterOpacity, unknownCodeOption } from './interpreters.js';
import { scriptOptions, WRAPPER_ASSIGNMENT, WRAPPERS, wrappedCommand, type WrapperSpec } from './wrappers.js';
import { type CommandContext, MAX_DEPTH, namesLongOption, type RedirectionWord, type Word } from './types.js';

export type { CommandContext } from './types.js';

export const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'lksh', 'pdksh', 'oksh', 'ash', 'posh', 'yash',
  'rbash', 'fish', 'csh', 'tcsh']);
/** ksh93, bash5.2, zsh-5.9, busybox-sh …: versioned shell names. */
const VERSIONED_SHELL = /^(|ba|da|z|k|mk|lk|pdk|ok|a|po|ya|rba|fi|c|tc)sh[0-9.]*(-[A-Za-z0-9.]+)?$/;

export function isShell(program: string): boolean {
  return SHELLS.has(program) || VERSIONED_SHELL.test(program);
}

const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=/;
const STDIN_REDIRECTION = /^0?(<|<<|<<-|<<<)$/;

export function emitSimple(words: Word[], redirs: RedirectionWord[], ctx: CommandContext): void {
  let i = 0;
  const assignments: string[] = [];
  // The name part must be unquoted: `"A=b" rm` runs a program called `A=b`.
  for (; i < words.length && ASSIGNMENT.test(words[i]?.raw ?? ''); i++) {
    const w = words[i];
    if (w === undefined) break;
    assignments.push(w.value);
    assignment(w, ctx);
  }
  const argvWords = words.slice(i);
  const argv = argvWords.map((w) => w.value);
  const first = argvWords[0];
  const program = first === undefined ? '' : first.value.slice(first.value.lastIndexOf('/') + 1);
  ctx.sink.commands.push({
    argv,
    assignments,
    redirections: redirs.map((r) => ({ op: r.op, target: r.target.value })),
    text: argv.join(' '),
    program,
    nested: ctx.nested,
  });
  if (first === undefined) return;
  if (first.dynamic) ctx.sink.markOpaque(`program name is an expansion: ${first.raw}`);
  else if (first.pattern) ctx.sink.markOpaque(`program name is a glob or brace expansion: ${first.raw}`);
  runsInTurn(program, argvWords, redirs, ctx);
}

/** Whatever this command runs besides itself. */
function runsInTurn(program: string, words: Word[], redirs: RedirectionWord[], ctx: CommandContext): void {
  if (ctx.depth > MAX_DEPTH) {
    ctx.sink.markUnparsed('commands nested too deeply');
    return;
  }
  if (isShell(program)) return shellInvocation(words, redirs, ctx);
  if (builtin(program, words, ctx)) return;
  switch (program) {
    case 'alias':
      for (const w of words.slice(1)) {
        const eq = w.value.indexOf('=');
        if (eq > 0) runScript([{ ...w, value: w.value.slice(eq + 1) }], 'alias', ctx);
      }
      return;
    case 'find':
      return findExec(words, ctx);
  }
  const interpreter = interpreterFor(program);
  if (interpreter !== undefined) {
    const why = interpreterOpacity(program, interpreter, words);
    if (why !== null) ctx.sink.markOpaque(why);
    return;
  }
  const option = commandOption(program, words);
  if (option !== null) return ctx.sink.markOpaque(`${program} runs a command given in ${option}`);
  const spec = wrapperSpec(program, words);
  if (spec === undefined) {
    const code = INERT_PROGRAMS.has(program) ? null : unknownCodeOption(words);
    if (code !== null) ctx.sink.markOpaque(`${program} is given ${code}, which may take code to run`);
    return;
  }
  const shell = loginShell(program, words);
  if (shell !== null && !isShell(shell.slice(shell.lastIndexOf('/') + 1))) {
    return ctx.sink.markOpaque(`${program} runs ${shell} as the login shell`);
  }
  // `env BASH_ENV=… bash`, `sudo LD_PRELOAD=… ls`: the wrapper's own assignments count as the shell's.
  if (spec.assignments === true) for (const w of words.slice(1)) if (WRAPPER_ASSIGNMENT.test(w.value)) assignment(w, ctx);
  const scripts = scriptOptions(words, spec);
  for (const s of scripts) runScript([s], program, ctx);
  const wrapped = wrappedCommand(words, spec);
  if (wrapped.kind === 'none') {
    if (wrapped.readsStdin && scripts.length === 0) ctx.sink.markOpaque(`${program} starts a shell that reads commands from stdin`);
    return;
  }
  if (wrapped.kind === 'noRun') return;
  if (spec.restIsScript === true) return runScript(wrapped.words, program, ctx);
  emitSimple(program === 'xargs' ? xargsCommand(words, wrapped.words) : wrapped.words, redirs, ctx.deeper());
}

/** The program `su -s prog` and `runuser -s prog` run as the user's shell, with the other operands as its arguments. */
function loginShell(program: string, words: Word[]): string | null {
  if (program !== 'su' && program !== 'runuser') return null;
  for (let i = 1; i < words.length; i++) {
    const v = words[i]?.value ?? '';
    if (v === '--') return null;
    if (v.startsWith('--') && namesLongOption(v, '--shell') && !v.includes('=')) return words[i + 1]?.value ?? '';
    if (v.startsWith('--') && namesLongOption(v, '--shell')) return v.slice(v.indexOf('=') + 1);
    if (!v.startsWith('-') || v.startsWith('--')) continue;
    // A cluster: `-ls prog`, `-lsprog`; after -c, -g, -G or -w the rest is their value.
    for (let k = 1; k < v.length; k++) {
      if (v[k] === 's') return k + 1 < v.length ? v.slice(k + 1) : (words[i + 1]?.value ?? '');
      if ('cgGw'.includes(v[k] ?? '')) break;
    }
  }
  return null;
}

/** `runuser -u user cmd` runs a command; `runuser user` is su. */
function wrapperSpec(program: string, words: Word[]): WrapperSpec | undefined {
  if (program === 'runuser' && !words.some((w) => /^(-u|--user)(=|$)/.test(w.value))) return WRAPPERS.su;
  return Object.hasOwn(WRAPPERS, program) ? WRAPPERS[program] : undefined;
}

/**
 * xargs adds its input to the command: words holding the replace string (`-I X`, `-i`)
 * are run-time values, and without one the input is appended as more arguments.
 */
function xargsCommand(all: Word[], command: Word[]): Word[] {
  let replace: string | null = null;
  for (let i = 1; i < all.length - command.length; i++) {
    const v = all[i]?.value ?? '';
    if (v === '-I') replace = all[i + 1]?.value ?? null;
    else if (v.startsWith('-I')) replace = v.slice(2);
    else if (v === '-i' || v === '--replace') replace = '{}';
    else if (v.startsWith('-i')) replace = v.slice(2);
    else if (v.startsWith('--replace=')) replace = v.slice('--replace='.length);
  }
  const input: Word = { value: replace ?? '{}', raw: '', quoted: false, dynamic: true, pattern: false };
  if (replace === null || replace === '') return [...command, input];
  return command.map((w) => (w.value.includes(replace) ? { ...w, dynamic: true } : w));
}

/** `sh [options] -c 'script' [name args…]`, `sh file`, or `sh` reading stdin. */
function shellInvocation(words: Word[], redirs: RedirectionWord[], ctx: CommandContext): void {
  let command = false;
  let stdin = false;
  let i = 1;
  for (; i < words.length; i++) {
    const v = words[i]?.value ?? '';
    if (v === '--' || v === '-') {
      i++;
      break;
    }
    if (v.startsWith('--')) {
      if (v === '--command') command = true;
      if (v === '--rcfile' || v === '--init-file') {
        ctx.sink.markOpaque(`${words[0]?.value ?? 'sh'} ${v} runs a file airlock does not read`);
        i++;
      }
      continue;
    }
    if (!/^[-+]./.test(v)) break;
    const letters = v.slice(1);
    if (v.startsWith('-') && letters.includes('c')) command = true;
    if (v.startsWith('-') && letters.includes('s')) stdin = true;
    if (v.startsWith('-') && letters.includes('i')) ctx.sink.markOpaque(`${words[0]?.value ?? 'sh'} -i runs startup files airlock does not read`);
    if (/[oO]$/.test(letters)) i++;
  }
  const operand = words[i];
  const program = words[0]?.value ?? 'sh';
  if (command) {
    if (operand !== undefined) runScript([operand], `${program} -c`, ctx);
    return;
  }
  if (operand !== undefined && !stdin) {
    ctx.sink.markOpaque(`${program} runs a script file airlock does not read: ${operand.raw}`);
    return;
  }
  const feed = redirs.filter((r) => STDIN_REDIRECTION.test(r.op)).at(-1);
  if (feed === undefined) {
    ctx.sink.markOpaque(`${program} reads commands from stdin`);
  } else if (feed.op.endsWith('<') && !feed.op.endsWith('<<')) {
    ctx.sink.markOpaque(`${program} reads commands from a file`);
  } else if (feed.body === undefined) {
    ctx.sink.markUnparsed(`${program} reads a here-document whose body is not on the line`);
  } else if (feed.bodyDynamic === true) {
    ctx.sink.markOpaque(`${program} reads a here-document built at run time`);
  } else {
    ctx.script(feed.body);
  }
}

/** `find … -exec cmd {} ;` and its -execdir/-ok/-okdir kin. */
function findExec(words: Word[], ctx: CommandContext): void {
  for (let i = 1; i < words.length; i++) {
    if (!/^-(exec|execdir|ok|okdir)$/.test(words[i]?.value ?? '')) continue;
    let end = i + 1;
    while (end < words.length && words[end]?.value !== ';' && words[end]?.value !== '+') end++;
    // `{}` becomes each file found: a value known only at run time.
    const cmd = words.slice(i + 1, end).map((w) => (w.value.includes('{}') ? { ...w, dynamic: true } : w));
    if (cmd[0]?.value.includes('{}') === true) ctx.sink.markOpaque('find runs the files it finds');
    if (cmd.length > 0) emitSimple(cmd, [], ctx.deeper());
    i = end;
  }
}
