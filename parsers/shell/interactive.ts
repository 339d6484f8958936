/**
 * What an SSH exec can become once it runs: a shell or an interpreter the caller types
 * into (interactive), or a file-transfer server that would bypass the SFTP judge.
 *
 * The lists are of program basenames (a trailing version such as `python3.12` or
 * `perl5.36` is ignored). They are deliberately wide: a program that can run a shell
 * from its own prompt (an editor's `:!sh`, a pager's `!`, psql's `\!`) is as good as a
 * shell once the caller has a terminal. Wrappers (`sudo`, `env`, `timeout` …) are not
 * listed: the analyser names the program they run.
 */
import { isShell } from './commands.js';
import { analyzeShell } from './index.js';
import { interpreterFor } from './interpreters.js';

/**
 * Shells and interpreters come from the analyser's own tables (parsers/shell/commands.ts,
 * interpreters.ts), so one list says what runs code; the REPLs below have no code option
 * there but still take typed code at their prompt.
 */
const REPLS = ['ipython', 'ipython3', 'irb', 'jshell', 'ghci', 'erl', 'iex', 'elixir', 'toybox', 'nu', 'elvish', 'xonsh'];

/** Programs that give the caller a terminal or a prompt that can run a shell (shell escapes, pagers, editors, nested logins). */
const TERMINAL_PROGRAMS = [
  'script', 'unbuffer', 'tmux', 'screen', 'dtach', 'abduco', 'socat', 'nc', 'ncat', 'netcat', 'telnet', 'ssh', 'login',
  'machinectl', 'docker', 'podman', 'kubectl', 'lxc', 'lxc-attach', 'systemd-run', 'run0',
  'vi', 'vim', 'nvim', 'view', 'vimdiff', 'ex', 'ed', 'emacs', 'nano', 'pico', 'joe', 'mcedit', 'mc', 'less', 'more', 'most', 'pg', 'man',
  'info', 'pager', 'sensible-pager', 'editor', 'sensible-editor', 'crontab', 'visudo', 'vipw', 'vigr', 'sudoedit', 'git', 'journalctl',
  'systemctl', 'psql', 'mysql', 'mariadb', 'sqlite3', 'redis-cli', 'mongo', 'mongosh', 'ftp', 'sftp', 'lftp', 'find',
  'watch', 'top', 'htop', 'tmate', 'zellij', 'byobu', 'ranger', 'nnn', 'vifm', 'aptitude', 'mutt', 'neomutt', 'irssi', 'weechat',
];

/** Programs that allocate a terminal of their own on the target: interactive even when the caller asked for none. */
const PTY_MAKERS = ['script', 'unbuffer', 'expect', 'tmux', 'screen', 'dtach', 'abduco', 'socat', 'tmate', 'zellij', 'byobu'];

const INTERACTIVE = new Set([...REPLS, ...TERMINAL_PROGRAMS]);
const MAKES_PTY = new Set(PTY_MAKERS);

/** `python3.12` → `python3`, `perl5.36.0` → `perl5` → `perl`: the name without a version tail. */
function baseName(program: string): string {
  const name = program.slice(program.lastIndexOf('/') + 1);
  return name.replace(/[0-9.]*$/, '').replace(/-$/, '') || name;
}

function listed(set: ReadonlySet<string>, program: string): boolean {
  const name = program.slice(program.lastIndexOf('/') + 1);
  return set.has(name) || set.has(baseName(name));
}

/** A shell, an interpreter of the analyser's table, or a program with a prompt that can run one. */
function canStartShell(program: string): boolean {
  const name = program.slice(program.lastIndexOf('/') + 1);
  return isShell(name) || isShell(baseName(name)) || interpreterFor(name) !== undefined || interpreterFor(baseName(name)) !== undefined || listed(INTERACTIVE, name);
}

export interface InteractiveVerdict {
  interactive: boolean;
  /** Why (a program name, or that the line cannot be known); '' when not interactive. */
  reason: string;
}

/**
 * Whether an exec counts as interactive for policy (`when: { interactive: true }`) and
 * is recorded like a shell. With a terminal (`pty`): any line that can start a shell,
 * an interpreter or a terminal program, or whose commands cannot all be known (opaque
 * or unparsable), or an empty one. Without: a program that makes a terminal of its own
 * (`script`, `tmux`, `expect` …), or a line that does not parse.
 */
export function execIsInteractive(command: string, pty: boolean): InteractiveVerdict {
  if (command.trim() === '') return { interactive: pty, reason: pty ? 'an empty command with a terminal is a login shell' : '' };
  const a = analyzeShell(command);
  if (a.unparsed) return { interactive: true, reason: 'the command line does not parse' };
  for (const c of a.commands) {
    if (c.program === '') continue;
    if (listed(MAKES_PTY, c.program)) return { interactive: true, reason: `${c.program} gives a terminal` };
    if (pty && canStartShell(c.program)) return { interactive: true, reason: `${c.program} can start a shell` };
    // A program named by an expansion (`$SHELL`, `$(which bash)`) could be any of them.
    if (pty && /[$`]/.test(c.argv[0] ?? '')) return { interactive: true, reason: 'the program is computed at run time' };
  }
  if (pty && a.opaque) return { interactive: true, reason: 'what the command line runs cannot be known' };
  return { interactive: false, reason: '' };
}

/** A file-transfer server an exec would start, which the SFTP judge would not see. */
export interface TransferServer {
  kind: 'sftp-server' | 'scp';
}

/**
 * An exec that starts the target's sftp-server (`sftp -s /usr/lib/openssh/sftp-server`)
 * or the legacy scp protocol's remote end (`scp -t` / `scp -f`, what `scp -O` runs),
 * anywhere in the line; null when it does not.
 */
export function transferServerOf(command: string): TransferServer | null {
  const a = analyzeShell(command);
  for (const c of a.commands) {
    const name = c.program.slice(c.program.lastIndexOf('/') + 1);
    if (name === 'sftp-server' || name === 'internal-sftp') return { kind: 'sftp-server' };
    if (name === 'scp' && c.argv.slice(1).some((w) => /^-[A-Za-z0-9]*[tf]/.test(w))) return { kind: 'scp' };
  }
  // A line the analyser cannot read whose words name one: refused all the same.
  if ((a.unparsed || a.opaque) && /(^|[\s/'"])(sftp-server|internal-sftp)\b|\bscp\b[^;&|]*\s-[A-Za-z0-9]*[tf]/.test(command)) {
    return { kind: /sftp/.test(command) ? 'sftp-server' : 'scp' };
  }
  return null;
}
