/**
 * Programs that run another program given in their arguments (`sudo rm`, `timeout 5 rm`),
 * and how to find it: which options take a value, how many operands precede the command.
 * Option names follow each tool's man page (GNU coreutils, util-linux, sudo 1.9).
 */
import { namesLongOption, type Word } from './types.js';

export interface WrapperSpec {
  /** Options that take the next word as their value (`-u root`); short ones may attach it (`-uroot`). */
  withArg?: string[];
  /** Operands between the options and the command (`timeout 5 rm`: 1). */
  positionals?: number;
  /** Options after which nothing is run (`command -v rm`). */
  noRun?: string[];
  /** Options whose value is a command line run by a shell (`su -c '…'`, `env -S '…'`). */
  script?: string[];
  /** Options that start a shell reading stdin when no command follows (`sudo -i`). */
  shell?: string[];
  /** Leading NAME=value words belong to the wrapper (`env FOO=1 rm`). */
  assignments?: boolean;
  /** Never runs a command from its operands; only `script` options do (`su user -c …`). */
  commandless?: boolean;
  /** Without a script option, it reads commands from stdin (`su`). */
  stdinShell?: boolean;
  /** The words after the options are joined into one command line for `sh -c` (`watch`, `sg`). */
  restIsScript?: boolean;
  /** Operands before the options (`setarch x86_64 -R rm`: 1). */
  leading?: number;
  /** A first operand with a `:` is a security context, not the command (`runcon user_u:r:t cmd`). */
  contextOperand?: boolean;
  /** With no command it starts the user's shell, which reads commands from stdin (`chroot /mnt`, `unshare -m`). */
  defaultShell?: boolean;
}

const SUDO_ARGS = ['-u', '-g', '-p', '-C', '-D', '-r', '-t', '-U', '-T', '-R', '--user', '--group', '--prompt',
  '--close-from', '--chdir', '--role', '--type', '--other-user', '--command-timeout', '--chroot', '--host'];
const SU_ARGS = ['-s', '--shell', '-g', '--group', '-G', '--supp-group', '-w', '--whitelist-environment'];
const SU_SCRIPT = ['-c', '--command', '--session-command'];
const TRACE_ARGS = ['-e', '-o', '-p', '-s', '-u', '-E', '-a', '-b', '-I', '-O', '-S', '-P', '-X', '-A', '-D', '-n',
  '-l', '-x', '-w', '--output', '--signal', '--trace', '--user', '--env'];

export const WRAPPERS: Record<string, WrapperSpec> = {
  sudo: { withArg: SUDO_ARGS, shell: ['-s', '-i', '--shell', '--login'], assignments: true,
    noRun: ['-l', '--list', '-e', '--edit', '-V', '--version'] },
  doas: { withArg: ['-u', '-C', '-a'], shell: ['-s'] },
  run0: { withArg: ['-u', '--user', '-g', '--group', '-D', '--chdir', '--setenv', '--unit', '--property', '--description',
    '--slice', '--nice', '--machine', '--background'], defaultShell: true },
  pkexec: { withArg: ['--user'] },
  su: { withArg: SU_ARGS, script: SU_SCRIPT, commandless: true, stdinShell: true },
  runuser: { withArg: [...SU_ARGS, '-u', '--user'], script: SU_SCRIPT },
  sg: { script: ['-c'], positionals: 1, restIsScript: true, defaultShell: true },
  newgrp: { commandless: true, stdinShell: true },
  env: { withArg: ['-u', '--unset', '-C', '--chdir', '-P', '-a', '--argv0'], script: ['-S', '--split-string'], assignments: true },
  nice: { withArg: ['-n', '--adjustment'] },
  nohup: {},
  setsid: {},
  timeout: { withArg: ['-s', '--signal', '-k', '--kill-after'], positionals: 1 },
  stdbuf: { withArg: ['-i', '-o', '-e', '--input', '--output', '--error'] },
  ionice: { withArg: ['-c', '-n', '-p', '-P', '-u', '--class', '--classdata', '--pid', '--pgid', '--uid'] },
  taskset: { positionals: 1 },
  chrt: { withArg: ['-T', '-P', '-D', '--sched-runtime', '--sched-period', '--sched-deadline'], positionals: 1 },
  chroot: { withArg: ['--userspec', '--groups'], positionals: 1, defaultShell: true },
  flock: { withArg: ['-w', '--timeout', '-E', '--conflict-exit-code'], script: ['-c', '--command'], positionals: 1 },
  script: { withArg: ['-t', '--timing', '-I', '-O', '-B', '-T', '-E', '-m', '--log-in', '--log-out', '--log-io',
    '--log-timing', '--logging-format', '--echo', '--output-limit'], script: ['-c', '--command'], commandless: true, stdinShell: true },
  watch: { withArg: ['-n', '--interval', '-q', '--equexit'], restIsScript: true },
  exec: { withArg: ['-a'] },
  command: { noRun: ['-v', '-V'] },
  builtin: {},
  coproc: {},
  busybox: {},
  toybox: {},
  xargs: { withArg: ['-a', '-d', '-E', '-I', '-L', '-n', '-P', '-s', '--arg-file', '--delimiter', '--max-args',
    '--max-procs', '--max-chars', '--max-lines', '--process-slot-var'] },
  time: { withArg: ['-f', '-o', '--format', '--output'] },
  strace: { withArg: TRACE_ARGS },
  ltrace: { withArg: TRACE_ARGS },
  nsenter: { withArg: ['-t', '--target', '-S', '--setuid', '-G', '--setgid', '-w', '--wd', '-N', '--net-socket',
    '--user-parent'], defaultShell: true },
  unshare: { withArg: ['-S', '--setuid', '-G', '--setgid', '--map-user', '--map-group', '--map-users', '--map-groups',
    '-R', '--root', '-w', '--wd', '--propagation', '--setgroups'], defaultShell: true },
  // setarch(8): `setarch arch [options] [program]`, and the arch-named links; the default program is /bin/sh.
  setarch: { leading: 1, defaultShell: true },
  linux32: { defaultShell: true },
  linux64: { defaultShell: true },
  i386: { defaultShell: true },
  x86_64: { defaultShell: true },
  uname26: { defaultShell: true },
  // prlimit(1): limits are `--nofile=N` or attached short values; `-p pid` alone runs nothing.
  prlimit: { withArg: ['-p', '--pid', '-o', '--output'] },
  'ssh-agent': { withArg: ['-a', '-E', '-t', '-P', '-O'], noRun: ['-k', '-T'] },
  numactl: { withArg: ['-i', '--interleave', '-N', '--cpunodebind', '-C', '--physcpubind', '-m', '--membind', '-p',
    '--preferred', '-P', '--preferred-many', '-w', '--weighted-interleave'] },
  cgexec: { withArg: ['-g'] },
  runcon: { withArg: ['-u', '--user', '-r', '--role', '-t', '--type', '-l', '--range'], contextOperand: true },
  entr: { script: ['-s'] },
  'xvfb-run': { withArg: ['-n', '--server-num', '-e', '--error-file', '-f', '--auth-file', '-p', '--xauth-protocol',
    '-s', '--server-args', '-w', '--wait'] },
  fakeroot: { withArg: ['-l', '--lib', '--faked', '-s', '-i', '-b'], defaultShell: true },
  fakechroot: { withArg: ['-l', '--lib', '-d', '--elfloader', '-s', '--use-system-libs', '-c', '--config-dir'], defaultShell: true },
  eatmydata: {},
  nocache: {},
  catchsegv: {},
  trickle: { withArg: ['-d', '-u', '-w', '-t', '-l', '-n'] },
  daemonize: { withArg: ['-a', '-c', '-e', '-E', '-o', '-p', '-l', '-u'] },
  'dbus-launch': { withArg: ['--config-file', '--autolaunch'] },
  setpriv: { withArg: ['--reuid', '--regid', '--groups', '--inh-caps', '--ambient-caps', '--bounding-set',
    '--securebits', '--selinux-label', '--apparmor-profile'] },
  chpst: { withArg: ['-u', '-U', '-b', '-e', '-/', '-n', '-l', '-L', '-m', '-d', '-o', '-p', '-f', '-c', '-r', '-t'] },
  'systemd-run': { shell: ['-S', '--shell'], withArg: ['-p', '--property', '-u', '--unit', '-E', '--setenv', '-M', '--machine', '--uid',
    '--gid', '--description', '--slice', '-H', '--host', '--working-directory'] },
  caffeinate: { withArg: ['-t', '-w'] },
  unbuffer: {},
  torsocks: {},
  proxychains: { withArg: ['-f'] },
  proxychains4: { withArg: ['-f'] },
  firejail: { defaultShell: true },
  'dbus-run-session': {},
  valgrind: {},
  rlwrap: {},
};

export type Wrapped =
  | { kind: 'command'; words: Word[] }
  | { kind: 'none'; readsStdin: boolean }
  | { kind: 'noRun' };

/** env(1) and sudo(8) take any leading word with a `=` as an assignment: `BASH_FUNC_f%%=() { … }` too. */
export const WRAPPER_ASSIGNMENT = /^[^=-][^=]*=/;

/** Values of script options anywhere in the words (su and friends accept options after operands). */
export function scriptOptions(words: Word[], spec: WrapperSpec): Word[] {
  const names = spec.script ?? [];
  const out: Word[] = [];
  for (let i = 1; i < words.length; i++) {
    const w = words[i];
    if (w === undefined) continue;
    const v = w.value;
    if (v === '--') break;
    if (v.startsWith('--')) {
      const eq = v.indexOf('=');
      if (!names.some((n) => namesLongOption(v, n))) continue;
      const value = eq < 0 ? words[i + 1] : { ...w, value: v.slice(eq + 1) };
      if (value !== undefined) out.push(value);
      continue;
    }
    if (!v.startsWith('-')) continue;
    for (let k = 1; k < v.length; k++) {
      if (names.includes('-' + v[k])) {
        const attached = v.slice(k + 1);
        const value = attached !== '' ? { ...w, value: attached } : words[i + 1];
        if (value !== undefined) out.push(value);
        break;
      }
      if ((spec.withArg ?? []).includes('-' + v[k])) break;
    }
  }
  return out;
}

/** The command a wrapper runs: words after its options and operands. */
export function wrappedCommand(words: Word[], spec: WrapperSpec): Wrapped {
  const withArg = spec.withArg ?? [];
  let shell = false;
  let i = 1 + (spec.leading ?? 0);
  while (i < words.length) {
    const v = words[i]?.value ?? '';
    if (v === '--') {
      i++;
      break;
    }
    if (spec.assignments === true && (WRAPPER_ASSIGNMENT.test(v) || v === '-')) {
      i++;
      continue;
    }
    if (!v.startsWith('-') || v === '-') break;
    if (v.startsWith('--')) {
      const is = (list: string[] | undefined): boolean => list?.some((o) => namesLongOption(v, o)) === true;
      if (is(spec.noRun)) return { kind: 'noRun' };
      if (is(spec.shell)) shell = true;
      const takesNext = !v.includes('=') && (is(withArg) || is(spec.script));
      i += takesNext ? 2 : 1;
      continue;
    }
    let takesNext = false;
    for (let k = 1; k < v.length; k++) {
      const opt = '-' + v[k];
      if (spec.noRun?.includes(opt) === true) return { kind: 'noRun' };
      if (spec.shell?.includes(opt) === true) shell = true;
      if (withArg.includes(opt) || spec.script?.includes(opt) === true) {
        takesNext = k === v.length - 1;
        break;
      }
    }
    i += takesNext ? 2 : 1;
  }
  if (spec.commandless === true) return { kind: 'none', readsStdin: spec.stdinShell === true };
  i += spec.positionals ?? 0;
  if (spec.contextOperand === true && words[i]?.value.includes(':') === true) i++;
  const rest = words.slice(i);
  if (rest.length === 0) return { kind: 'none', readsStdin: shell || spec.defaultShell === true };
  return { kind: 'command', words: rest };
}
