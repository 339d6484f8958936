/**
 * Programs that run code airlock does not read: language interpreters, tools with a
 * command language of their own (`sed`'s `e`, `awk`'s `system()`, `dc`'s `!`), and tools
 * with an option whose value is a command (`tar --to-command`, `sort --compress-program`).
 * Every invocation of an interpreter is opaque (inline code, a script file and code on
 * stdin alike) unless all it asks is its version or help; a command-option tool is opaque
 * only when such an option appears. Shells are not here: their `-c` text is shell, which
 * airlock reads (commands.ts).
 *
 * Exported for the SSH adapter, which must know whether a pty exec starts an interpreter.
 */
import { namesLongOption, type Word } from './types.js';

export interface InterpreterSpec {
  /** Options whose value (next word, or attached) is code: `-e`, `-c`, `--eval`. Named in the reason. */
  code: string[];
  /** Options that switch off every way of running commands (`sed --sandbox`): then the call is readable. */
  sandbox?: string[];
}

const PYTHON: InterpreterSpec = { code: ['-c', '-m'] };
const PERL: InterpreterSpec = { code: ['-e', '-E', '-M', '-x'] };
const NODE: InterpreterSpec = { code: ['-e', '--eval', '-p', '--print', '-r', '--require', '--import', '--loader'] };
const AWK: InterpreterSpec = { code: ['-f', '--file', '-e', '--source', '-i', '--include', '-l', '--load'] };
const VI: InterpreterSpec = { code: ['-c', '--cmd', '-S', '-s', '-u'] };
const SQL_CLIENT: InterpreterSpec = { code: ['-c', '--command', '-e', '--execute', '-f', '--file', 'init-command', '--init-command'] };
const TCL: InterpreterSpec = { code: [] };

export const INTERPRETERS: Record<string, InterpreterSpec> = {
  python: PYTHON, python2: PYTHON, python3: PYTHON, pypy: PYTHON, pypy3: PYTHON, ipython: PYTHON, ipython3: PYTHON,
  perl: PERL, perl5: PERL,
  ruby: { code: ['-e', '-r', '-x'] }, irb: { code: ['-r'] }, jruby: { code: ['-e'] },
  node: NODE, nodejs: NODE, deno: { code: ['eval', 'run', 'repl'] }, bun: { code: ['-e', '--eval', '-p', '--print', 'run', 'x'] },
  php: { code: ['-r', '-B', '-R', '-E', '-F', '-a', '-d'] },
  lua: { code: ['-e', '-l'] }, luajit: { code: ['-e', '-l', '-b'] },
  tclsh: TCL, wish: TCL, expect: { code: ['-c', '-f'] },
  awk: AWK, gawk: AWK, mawk: { code: ['-f'] }, nawk: { code: ['-f'] },
  sed: { code: ['-e', '--expression', '-f', '--file'], sandbox: ['--sandbox'] },
  dc: { code: ['-e', '--expression', '-f', '--file'] },
  ed: { code: [] }, ex: VI, vi: VI, vim: VI, nvim: VI, view: VI, rvim: VI,
  emacs: { code: ['--eval', '-l', '--load', '-f', '--funcall', '--batch', '--script', '-x'] },
  R: { code: ['-e', '-f', '--file'] }, Rscript: { code: ['-e'] }, julia: { code: ['-e', '--eval', '-E', '--print', '-L', '--load'] },
  jshell: { code: [] }, groovy: { code: ['-e'] }, scala: { code: ['-e'] }, kotlinc: { code: ['-e', '-script'] },
  java: { code: ['-jar', '-cp', '-classpath', '--class-path', '-javaagent', '--source'] },
  pwsh: { code: ['-c', '-Command', '-f', '-File', '-e', '-EncodedCommand'] },
  powershell: { code: ['-c', '-Command', '-f', '-File', '-e', '-EncodedCommand'] },
  guile: { code: ['-c', '-l', '-e', '-s'] }, racket: { code: ['-e', '--eval', '-f', '--load', '-t', '-r'] },
  sbcl: { code: ['--eval', '--load', '--script'] }, clisp: { code: ['-x', '-i'] }, ocaml: { code: [] },
  ghci: { code: ['-e'] }, runghc: { code: [] }, runhaskell: { code: [] }, osascript: { code: ['-e'] },
  gdb: { code: ['-ex', '--ex', '-iex', '-x', '--command', '-ix', '--init-command', '--eval-command', '--batch'] },
  lldb: { code: ['-o', '--one-line', '-s', '--source', '-O'] },
  make: { code: ['-f', '--file', '--makefile', '--eval', '-E'] }, gmake: { code: ['-f', '--file', '--makefile', '--eval', '-E'] },
  psql: SQL_CLIENT, mysql: SQL_CLIENT, mariadb: SQL_CLIENT, sqlite3: { code: ['-cmd', '-init'] },
  // Remote and deferred shells: they hand their text to a shell airlock does not see.
  ssh: { code: ['-o', '-F'] }, rsh: { code: [] }, at: { code: ['-f'] }, batch: { code: ['-f'] },
  tmux: { code: [] }, screen: { code: [] }, crontab: { code: [] },
  // Build tools and package managers run the project's own scripts (package.json, Makefile, build.rs, hooks).
  npm: { code: ['exec', 'run', 'run-script', '-c', '--call'] }, npx: { code: ['-c', '--call'] }, yarn: { code: ['run', 'exec', 'dlx'] },
  pnpm: { code: ['run', 'exec', 'dlx'] }, cargo: { code: ['run', 'install'] }, go: { code: ['run', 'generate', 'test'] },
  mvn: { code: ['exec:exec', 'exec:java'] }, gradle: { code: [] }, rake: { code: ['-e', '--execute'] }, bundle: { code: ['exec'] },
  pip: { code: ['install'] }, pip3: { code: ['install'] }, poetry: { code: ['run'] }, uv: { code: ['run'] }, just: { code: [] },
  'ansible-playbook': { code: [] }, ansible: { code: ['-a', '--args', '-m'] },
  // Tools that run the commands they are given in ways too rich to model.
  parallel: { code: [] }, capsh: { code: ['--', '=='] }, bwrap: { code: [] }, 'systemd-nspawn': { code: [] },
  'start-stop-daemon': { code: ['-x', '--exec', '-a', '--startas'] }, perf: { code: [] },
};

/** python3.12, perl5.36, lua5.4, php8.2, ruby3.2, node18, python3.11-dbg …: versioned interpreter names. */
const VERSIONED = /^(python|pypy|perl|ruby|lua|php|node|tclsh|wish|guile|julia|jython)[0-9.]*(-[A-Za-z0-9.]+)?$/;
/** gawk, mawk, original-awk, goawk, busybox's awk …: anything named *awk is awk. */
const AWKISH = /awk$/;

/** The interpreter table entry for a program name, versioned names included. */
export function interpreterFor(program: string): InterpreterSpec | undefined {
  const direct = Object.hasOwn(INTERPRETERS, program) ? INTERPRETERS[program] : undefined;
  if (direct !== undefined) return direct;
  const m = VERSIONED.exec(program);
  if (m?.[1] !== undefined) return INTERPRETERS[m[1]] ?? { code: [] };
  return AWKISH.test(program) ? INTERPRETERS.awk : undefined;
}

/** Only asks for a version or help: runs no code. */
const INERT = /^(-V|--version|-h|--help|-version|-help)$/;

/**
 * Why running this interpreter is opaque, or null when it is not (only `--version`,
 * or a sandbox option that disables its commands).
 */
export function interpreterOpacity(program: string, spec: InterpreterSpec, words: Word[]): string | null {
  const args = words.slice(1);
  if (args.length > 0 && args.every((w) => INERT.test(w.value))) return null;
  if (sandboxed(spec, args)) return null;
  for (const w of args) {
    const name = w.value.startsWith('--') ? (w.value.split('=', 1)[0] ?? w.value) : w.value.slice(0, 2);
    if (spec.code.includes(w.value) || spec.code.some((c) => c === name || namesLongOption(w.value, c))) return `${program} runs code given in ${name}`;
  }
  if (args.some((w) => !w.value.startsWith('-'))) return `${program} runs code airlock does not read (a script, a program text or a file)`;
  return `${program} reads code from stdin`;
}

/**
 * A sandbox option among the options, before the first operand and any `--`: after them it
 * may be a file name (`sed -e '1e rm x' -- --sandbox`, or any operand under POSIXLY_CORRECT).
 */
function sandboxed(spec: InterpreterSpec, args: Word[]): boolean {
  const sandbox = spec.sandbox;
  if (sandbox === undefined) return false;
  for (let i = 0; i < args.length; i++) {
    const v = args[i]?.value ?? '';
    if (v === '--' || !v.startsWith('-') || v === '-') return false;
    if (sandbox.includes(v)) return true;
    if (spec.code.includes(v)) i++; // its value
  }
  return false;
}

/**
 * Tools that are not interpreters but take an option whose value is a command they run
 * (via `sh -c` or directly). Any of these options makes the call opaque.
 */
export const COMMAND_OPTIONS: Record<string, string[]> = {
  tar: ['--checkpoint-action', '--to-command', '--use-compress-program', '-I', '--info-script', '-F', '--new-volume-script',
    '--rsh-command', '--rmt-command'],
  sort: ['--compress-program'],
  split: ['--filter'],
  rsync: ['-e', '--rsh', '--rsync-path'],
  scp: ['-S', '-o', '-F'],
  sftp: ['-S', '-D', '-o', '-F'],
  zip: ['-TT', '--unzip-command'],
  man: ['-P', '--pager', '-H', '--html'],
  tcpdump: ['-z'],
  wget: ['-e', '--execute', '--use-askpass', '--config'],
  rg: ['--pre'],
  git: ['-c', '--config-env', '--exec-path', '--upload-pack', '-u', '--receive-pack', '--exec', '-x', '--extcmd', '--tool',
    'foreach', 'bisect', 'filter-branch', 'difftool', 'mergetool', 'daemon', 'config', 'alias', 'credential'],
  apt: ['-o', '--option', '-c', '--config-file'],
  'apt-get': ['-o', '--option', '-c', '--config-file'],
  dpkg: ['--pre-invoke', '--post-invoke', '--status-logger'],
  sdiff: ['--diff-program'],
  diff3: ['--diff-program'],
  nmap: ['--script', '-sC'],
  ip: ['exec', '-batch'],
  flatpak: ['--command'],
  machinectl: ['shell', 'login'],
  openssl: ['engine', '-engine', '-provider', '-provider-path', '-keyform', '-load'],
  // Containers: what runs inside (with the host's files mounted, as root) is not this line's to read.
  docker: ['run', 'exec', 'create', 'build', 'compose', 'start', 'cp', 'attach', 'container', 'buildx', 'plugin', '-H', '--host', '--context'],
  podman: ['run', 'exec', 'create', 'build', 'compose', 'start', 'cp', 'attach', 'container', 'play', 'kube', '-H', '--url', '--connection'],
  kubectl: ['exec', 'run', 'debug', 'attach', 'cp', 'apply', 'create', 'patch', 'replace', 'plugin', '--kubeconfig', '--server', '-s'],
};

/** The command option used in these words, or null. Short options match clustered or attached (`-xzI prog`). */
export function commandOption(program: string, words: Word[]): string | null {
  const options = Object.hasOwn(COMMAND_OPTIONS, program) ? COMMAND_OPTIONS[program] : undefined;
  if (options === undefined) return null;
  for (const w of words.slice(1)) {
    const v = w.value;
    for (const o of options) {
      if (v === o) return o;
      if (namesLongOption(v, o)) return o;
      // A single-letter short option, in a cluster or with an attached value.
      if (/^-[A-Za-z]$/.test(o) && /^-[A-Za-z0-9]/.test(v) && !v.startsWith('--') && v.slice(1).includes(o.slice(1))) return o;
    }
    if (program === 'tar' && w === words[1] && !v.startsWith('-') && /[IF]/.test(v)) return 'I or F';
  }
  return null;
}

/**
 * Programs whose options never run anything, so that `grep -e`, `head -c`, `echo -e`
 * are data. Anything in no table (here, wrappers.ts, builtins.ts) that is given a
 * code-looking option is opaque.
 */
export const INERT_PROGRAMS = new Set([
  'grep', 'egrep', 'fgrep', 'zgrep', 'ag', 'echo', 'printf', 'head', 'tail', 'wc', 'cut', 'ls', 'cat', 'tac', 'tr',
  'date', 'df', 'du', 'ps', 'id', 'uname', 'stat', 'touch', 'mkdir', 'rmdir', 'rm', 'cp', 'mv', 'ln', 'chmod', 'chown',
  'chgrp', 'kill', 'pkill', 'pgrep', 'test', '[', 'true', 'false', 'sleep', 'seq', 'tee', 'diff', 'cmp', 'basename',
  'dirname', 'realpath', 'readlink', 'md5sum', 'sha1sum', 'sha256sum', 'sha512sum', 'base64', 'od', 'xxd', 'hexdump',
  'nl', 'paste', 'join', 'comm', 'fold', 'fmt', 'rev', 'column', 'uniq', 'free', 'uptime', 'whoami', 'hostname', 'pwd',
  'file', 'which', 'type', 'whereis', 'lsof', 'netstat', 'ss', 'ping', 'curl', 'jq', 'systemctl', 'cd', 'unset', 'set',
  'shift', 'exit', 'return', 'wait', 'jobs', 'umask', 'ulimit', 'shopt', 'cksum', 'sum', 'expand', 'unexpand',
  'truncate', 'dd', 'sync', 'mktemp', 'install', 'shred', 'tput', 'stty', 'clear', 'zcat', 'gzip', 'gunzip', 'bzip2',
  'xz', 'unxz', 'lsblk', 'mount', 'umount', 'dmesg', 'last', 'w', 'who', 'users', 'groups', 'getent', 'unalias',
  'pushd', 'popd', 'dirs', 'disown', 'bg', 'fg', 'times', 'caller', 'help', 'history', 'fc', 'logout', 'suspend',
]);

const CODE_SHORT = /^-[A-Za-z]?[cexE]$/;
const CODE_LONG = /^--(eval|exec|execute|command|cmd|run|script|expression|code|shell|exec-command|pre-invoke|post-invoke|hook|filter|pager|editor)(=|$)/;
/** `-e'system("rm x")'`: an attached value that looks like code, not a cluster of flags. */
const CODE_ATTACHED = /^-[A-Za-z]?[cexE].*[\s;|&()'"$`{}]/;
/** `-oProxyCommand=…`, `--checkpoint-action=exec=…`, `core.pager=…`. */
const CODE_VALUE = /(exec|command|cmd|pager|editor|askpass|hook)\s*=/i;

/**
 * For a program in no table: the option that looks like it takes code (`-e`, `-c`, `-x`,
 * `--eval`, `--exec`, `…Command=`), or null. A heuristic for unknown tools; the allow-list
 * (`programs_allowed`) is the promise, this is a net under the deny list.
 */
export function unknownCodeOption(words: Word[]): string | null {
  for (const w of words.slice(1)) {
    const v = w.value;
    if (v === '--') return null;
    if (CODE_SHORT.test(v) || CODE_LONG.test(v) || CODE_ATTACHED.test(v) || (v.startsWith('-') && CODE_VALUE.test(v))) return v.split('=', 1)[0] ?? v;
  }
  return null;
}

/**
 * Variables whose value a shell or a common tool runs as code (bash(1) "Shell Variables",
 * ld.so(8), less(1), git(1)): assigning one is opaque. PATH changes which binary a name runs.
 */
const CODE_VARIABLES = /^(SHELL|[A-Z_]*EDITOR|[A-Z_]*PAGER|[A-Z_]*_COMMAND|[A-Z_]*_CMD|POSIXLY_CORRECT|PS[0-4]|PROMPT_COMMAND|BASH_ENV|ENV|SHELLOPTS|BASHOPTS|BASH_FUNC_.*|LD_PRELOAD|LD_AUDIT|LD_LIBRARY_PATH|LESSOPEN|LESSCLOSE|PAGER|[A-Z]+_PAGER|GIT_PAGER|MANPAGER|SYSTEMD_PAGER|EDITOR|VISUAL|GIT_EDITOR|GIT_SEQUENCE_EDITOR|GIT_SSH|GIT_SSH_COMMAND|GIT_EXTERNAL_DIFF|GIT_PROXY_COMMAND|GIT_CONFIG_.*|[A-Z_]*ASKPASS|PERL5OPT|PERL5LIB|NODE_OPTIONS|RUBYOPT|PYTHONSTARTUP|PYTHONPATH|PYTHONHOME|PATH|BROWSER|TAR_OPTIONS|RSYNC_RSH|INPUTRC|HOME|XDG_CONFIG_HOME|GIT_DIR)$/;

export function isCodeVariable(name: string): boolean {
  return CODE_VARIABLES.test(name);
}
