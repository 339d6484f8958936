/**
 * From the words of one simple command to SimpleCommands: the command itself, then
 * whatever it runs in turn — a shell's `-c` script, `eval`'s text, a wrapper's command,
 * `find -exec`. Anything that runs text we cannot see makes the analysis opaque.
 */
import { scriptOptions, WRAPPERS, wrappedCommand } from './wrappers.js';
import { type AnalysisSink, MAX_DEPTH, type RedirectionWord, type Word } from './types.js';

export interface CommandContext {
  sink: AnalysisSink;
  depth: number;
  nested: boolean;
  /** Analyse text that will run as a command line, one level deeper. */
  script(text: string): void;
  /** The same context one level deeper, for commands derived from this one. */
  deeper(): CommandContext;
}

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'lksh', 'pdksh', 'oksh', 'ash', 'posh', 'yash',
  'rbash', 'fish', 'csh', 'tcsh']);
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=/;
const STDIN_REDIRECTION = /^0?(<|<<|<<-|<<<)$/;

export function emitSimple(words: Word[], redirs: RedirectionWord[], ctx: CommandContext): void {
  let i = 0;
  const assignments: string[] = [];
  // The name part must be unquoted: `"A=b" rm` runs a program called `A=b`.
  for (; i < words.length && ASSIGNMENT.test(words[i]?.raw ?? ''); i++) assignments.push(words[i]?.value ?? '');
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
  if (SHELLS.has(program)) return shellInvocation(words, redirs, ctx);
  switch (program) {
    case 'eval':
      return runScript(words.slice(1), 'eval', ctx);
    case 'source':
    case '.':
      return ctx.sink.markOpaque(`${program} runs the commands in a file`);
    case 'trap': {
      const action = words[1];
      if (action !== undefined && !action.value.startsWith('-')) runScript([action], 'trap', ctx);
      return;
    }
    case 'alias':
      for (const w of words.slice(1)) {
        const eq = w.value.indexOf('=');
        if (eq > 0) runScript([{ ...w, value: w.value.slice(eq + 1) }], 'alias', ctx);
      }
      return;
    case 'find':
      return findExec(words, ctx);
  }
  const spec = WRAPPERS[program];
  if (spec === undefined) return;
  const scripts = scriptOptions(words, spec);
  for (const s of scripts) runScript([s], program, ctx);
  const wrapped = wrappedCommand(words, spec);
  if (wrapped.kind === 'none') {
    if (wrapped.readsStdin && scripts.length === 0) ctx.sink.markOpaque(`${program} starts a shell that reads commands from stdin`);
    return;
  }
  if (wrapped.kind === 'noRun') return;
  if (spec.restIsScript === true) return runScript(wrapped.words, program, ctx);
  const argv0 = wrapped.words[0];
  if (program === 'xargs' && argv0 !== undefined && /\{\}|^-[iI]/.test(argv0.value)) {
    ctx.sink.markOpaque('xargs runs a program named by its input');
  }
  emitSimple(wrapped.words, redirs, ctx.deeper());
}

/** Words joined by spaces and run as a command line (eval's rule); unknown text is opaque. */
function runScript(words: Word[], by: string, ctx: CommandContext): void {
  if (words.length === 0) return;
  if (words.some((w) => w.dynamic)) {
    ctx.sink.markOpaque(`${by} runs a command line built at run time`);
    return;
  }
  ctx.script(words.map((w) => w.value).join(' '));
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
      if (v === '--rcfile' || v === '--init-file') i++;
      continue;
    }
    if (!/^[-+]./.test(v)) break;
    const letters = v.slice(1);
    if (v.startsWith('-') && letters.includes('c')) command = true;
    if (v.startsWith('-') && letters.includes('s')) stdin = true;
    if (/[oO]$/.test(letters)) i++;
  }
  const operand = words[i];
  const program = words[0]?.value ?? 'sh';
  if (command) {
    if (operand !== undefined) runScript([operand], `${program} -c`, ctx);
    return;
  }
  if (operand !== undefined && !stdin) return; // runs a script file, like `./file` would
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
    const cmd = words.slice(i + 1, end);
    if (cmd[0]?.value.includes('{}') === true) ctx.sink.markOpaque('find runs the files it finds');
    if (cmd.length > 0) emitSimple(cmd, [], ctx.deeper());
    i = end;
  }
}
