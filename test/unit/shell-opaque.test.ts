/**
 * Issue 27 items 1 and 7: every construct that runs text airlock cannot read is opaque, and
 * every entry of the interpreter, command-option and wrapper tables has a case here. The
 * red team's bypasses of a `programs: [rm]` deny rule are listed by name.
 */
import { describe, expect, it } from 'vitest';
import { analyzeShell, valueMayRunCode } from '../../parsers/shell/index.js';
import { COMMAND_OPTIONS, INTERPRETERS } from '../../parsers/shell/interpreters.js';
import { WRAPPERS } from '../../parsers/shell/wrappers.js';

function opaque(line: string): boolean {
  const a = analyzeShell(line);
  return a.opaque || a.unparsed;
}
function programs(line: string): string[] {
  return analyzeShell(line).commands.map((c) => c.program);
}
/** The line is safe for a `programs: [rm]` deny rule: either rm is found or the line is opaque. */
function rmCaught(line: string): boolean {
  return opaque(line) || programs(line).includes('rm');
}

describe('red-team bypasses of programs: [rm] are caught', () => {
  const bypasses = [
    `perl -e 'system "rm -rf /tmp/x"'`,
    `python3 -c 'import os; os.system("rm x")'`,
    `awk 'BEGIN{system("rm x")}'`,
    `sed -n '1e rm x' /etc/hostname`,
    `tar -cf /dev/null /etc/hostname --checkpoint=1 --checkpoint-action=exec='rm x'`,
    'python3',
    'bash <(echo rm x)',
    `bash /dev/stdin <<< 'rm x'`,
    'sh ./s.sh',
    `trap -- 'rm x' EXIT`,
    'hash -p /bin/rm del; del x',
    `mapfile -C 'rm x' -c 1 < /etc/hostname`,
    `PS4='$(rm x)'; set -x; :`,
    `x='$(rm y)'; echo \${x@P}`,
    `let 'a[$(rm x)]'`,
    `x='a[$(rm y)]'; (( x ))`,
    `x='a[$(rm y)]'; [[ x -eq 0 ]]`,
    `printf -v 'a[$(rm x)]' 1`,
    `test -v 'a[$(rm x)]'`,
    `declare -i n; n='a[$(rm x)]'`,
    `read 'a[$(rm x)]' <<< 1`,
    `read x <<< 1; (( x ))`,
    `read x; echo \${!x}`,
    'setarch x86_64 rm x',
    'setarch x86_64 -R rm x',
    'linux64 rm x',
    'prlimit --nofile=1024 rm x',
    'ssh-agent rm x',
    'runuser -u root -- rm x',
    'runuser root',
    'unshare -m',
    'unshare -r rm x',
    'nsenter -t 1 -m rm x',
    'chroot /',
    'script -q',
    'script -qc "rm x" /dev/null',
    'parallel rm ::: x',
    'echo x | xargs sh -c',
    'echo rm x | xargs env',
    'find . -exec env {} \\;',
    'find . -exec sh -c {} \\;',
    'ip netns exec ns rm x',
    `git -c core.pager='rm x' log`,
    `sort --compress-program=rm x`,
    `rsync -e 'rm x' a b:`,
    `LESSOPEN='|rm %s' less /etc/hostname`,
    `BASH_ENV=/tmp/x bash -c ls`,
    `PATH=/tmp/evil:$PATH ls`,
    `export PROMPT_COMMAND='rm x'`,
    `foolang -e 'rm x'`,
    `vim -c '!rm x' -c q`,
    `bash --rcfile /tmp/x -i`,
    `compgen -C 'rm x' x`,
    `bind -x '"\\C-a": rm x'`,
    'enable -f /tmp/evil.so rm',
    `ssh localhost rm x`,
    'make',
    'crontab /tmp/tab',
    // GNU long options abbreviate; a sandbox option after `--` is a file name.
    `tar -cf /dev/null f --to-com='rm x'`,
    `tar -cf /dev/null f --checkpoint-act=exec='rm x'`,
    `env --split-str='rm x'`,
    'sudo --us root rm x',
    `sed -n -e '1e rm x' -- --sandbox`,
    `sed -n '1e rm x' f -- --sandbox`,
    // Versioned and variant names of shells and interpreters.
    'ksh93 ./s.sh',
    'bash5.2 /dev/stdin',
    `original-awk 'BEGIN{system("rm x")}'`,
    `python3.11-dbg -c 'import os'`,
    // A wrapper's assignments are the environment of what it runs.
    'env BASH_ENV=/tmp/x bash -c ls',
    `sudo PS4='$(rm x)' bash -xc :`,
    `SUDO_EDITOR='rm x' sudoedit f`,
    'SHELL=/tmp/x script -q /dev/null',
    'fc -s',
    'su -s /bin/rm root -- -f x',
    'su -ls /bin/rm root -- -f x',
    'su -ls/bin/rm root -- -f x',
    'su --shell=/bin/rm root -- -f x',
    'runuser -s /usr/bin/rm root -- x',
    'env -a sh rm x',
    'systemd-run --shell',
    'machinectl shell .host /bin/rm x',
    `env 'BASH_FUNC_ls%%=() { rm x; }' bash ./s`,
    'time -- rm x',
    'time -p -- rm x',
    `mapfile -c 1 -C 'rm x' a < f`,
    'openssl engine -t dynamic -pre SO_PATH:/tmp/x.so',
  ];
  for (const line of bypasses) it(JSON.stringify(line), () => expect(rmCaught(line), analyzeShell(line).reasons.join('; ')).toBe(true));
});

describe('readable lines stay readable', () => {
  const plain = [
    'ls -la /tmp', 'grep -e foo -c file', 'echo -e "a\\tb"', 'head -c 10 f', 'wc -c f', 'git status', 'git log --oneline',
    'sed --sandbox -n 1p f', 'python3 --version', 'perl --version', 'tar -tf a.tar', 'sort -u f', 'for ((i=0; i<3; i++)); do echo $i; done',
    'x=$(date); echo $x', 'echo "${arr[$i]}"', "echo 'costs $5'", 'trap - EXIT', 'trap -p', 'hash -r', 'mapfile -t lines < f',
    "sh -c 'ls; id'", 'curl -c jar -e ref http://x', 'jq -e .a f', 'find . -name x -exec ls {} +', 'xargs rm',
  ];
  for (const line of plain) it(JSON.stringify(line), () => expect(opaque(line), analyzeShell(line).reasons.join('; ')).toBe(false));
});

describe('every interpreter is opaque with code, a script or stdin, and not for --version', () => {
  for (const [name, spec] of Object.entries(INTERPRETERS)) {
    it(name, () => {
      const code = spec.code[0];
      if (code !== undefined) expect(opaque(`${name} ${code} 'x'`), `${name} ${code}`).toBe(true);
      expect(opaque(`${name} ./script`), `${name} script`).toBe(true);
      expect(opaque(name), `${name} alone`).toBe(true);
      expect(opaque(`echo x | ${name}`), `stdin to ${name}`).toBe(true);
      expect(opaque(`${name} --version`), `${name} --version`).toBe(false);
      expect(opaque(`sudo ${name} -h`), `sudo ${name} -h`).toBe(false);
      expect(opaque(`sudo ${name} ./script`), `sudo ${name} script`).toBe(true);
    });
  }
  it('versioned names are interpreters too', () => {
    for (const n of ['python3.12', 'perl5.36', 'lua5.4', 'php8.2', 'node18']) expect(opaque(`${n} -e x`), n).toBe(true);
  });
  it('sed --sandbox is readable; sed without it is not', () => {
    expect(opaque("sed --sandbox 's/a/b/' f")).toBe(false);
    expect(opaque("sed 's/a/b/e' f")).toBe(true);
  });
});

describe('every command option makes its tool opaque', () => {
  for (const [name, options] of Object.entries(COMMAND_OPTIONS)) {
    it(name, () => {
      for (const o of options) {
        const word = o.startsWith('--') ? `${o}='rm x'` : `${o} 'rm x'`;
        expect(opaque(`${name} ${word} y`), `${name} ${word}`).toBe(true);
      }
      expect(opaque(`${name} plain-operand`), `${name} plain`).toBe(false);
    });
  }
});

/** One line per wrapper, in which the wrapped program is rm. */
const WRAPPED: Record<string, string> = {
  sudo: 'sudo -u root rm x', doas: 'doas -u root rm x', run0: 'run0 -u root rm x', pkexec: 'pkexec --user root rm x',
  su: "su -c 'rm x' root", runuser: "runuser -u root -- rm x", sg: "sg wheel 'rm x'", newgrp: "newgrp wheel <<< 'rm x'",
  env: 'env -i A=1 rm x', nice: 'nice -n 5 rm x', nohup: 'nohup rm x', setsid: 'setsid -f rm x', timeout: 'timeout -s KILL 5 rm x',
  stdbuf: 'stdbuf -oL rm x', ionice: 'ionice -c 3 rm x', taskset: 'taskset -c 0 rm x', chrt: 'chrt -f 10 rm x',
  chroot: 'chroot --userspec=a:b / rm x', flock: 'flock -w 5 /tmp/l rm x', script: "script -c 'rm x' /dev/null",
  watch: "watch -n 1 'rm x'", exec: 'exec -a del rm x', command: 'command -p rm x', builtin: "builtin eval 'rm x'",
  coproc: 'coproc rm x', busybox: 'busybox rm x', toybox: 'toybox rm x', xargs: 'xargs -0 -n1 rm', time: 'time -p rm x',
  strace: 'strace -f -o /dev/null rm x', ltrace: 'ltrace -o /dev/null rm x', nsenter: 'nsenter -t 1 -m rm x',
  unshare: 'unshare --propagation private -m rm x', setarch: 'setarch x86_64 -R rm x', linux32: 'linux32 rm x', linux64: 'linux64 rm x',
  i386: 'i386 rm x', x86_64: 'x86_64 rm x', uname26: 'uname26 rm x', prlimit: 'prlimit --nofile=10 -p 1 rm x',
  'ssh-agent': 'ssh-agent -t 60 rm x', numactl: 'numactl -N 0 rm x', cgexec: 'cgexec -g cpu:g rm x', runcon: 'runcon u:r:t:s0 rm x',
  entr: "entr -s 'rm x'", 'xvfb-run': 'xvfb-run -n 5 rm x', fakeroot: 'fakeroot -- rm x', fakechroot: 'fakechroot rm x',
  eatmydata: 'eatmydata rm x', nocache: 'nocache rm x', catchsegv: 'catchsegv rm x', trickle: 'trickle -d 10 rm x',
  daemonize: 'daemonize -c / /bin/rm x', 'dbus-launch': 'dbus-launch rm x', setpriv: 'setpriv --reuid 0 rm x',
  chpst: 'chpst -u root rm x', 'systemd-run': 'systemd-run --uid 0 rm x', caffeinate: 'caffeinate -t 5 rm x', unbuffer: 'unbuffer rm x',
  torsocks: 'torsocks rm x', proxychains: 'proxychains -f c rm x', proxychains4: 'proxychains4 -f c rm x', firejail: 'firejail rm x',
  'dbus-run-session': 'dbus-run-session rm x', valgrind: 'valgrind rm x', rlwrap: 'rlwrap rm x',
};

describe('every wrapper: the wrapped rm is found', () => {
  it('has a case for each table entry', () => {
    expect(Object.keys(WRAPPERS).filter((k) => WRAPPED[k] === undefined)).toEqual([]);
  });
  for (const [name, line] of Object.entries(WRAPPED)) {
    // newgrp only starts a shell: what it reads is opaque.
    if (name === 'newgrp') it(name, () => expect(opaque(line)).toBe(true));
    else it(name, () => expect(programs(line), `${line}: ${analyzeShell(line).reasons.join('; ')}`).toContain('rm'));
  }
  it('wrappers that start a shell with no command are opaque', () => {
    for (const line of ['chroot /mnt', 'unshare -m', 'nsenter -t 1 -a', 'setarch x86_64', 'linux64', 'firejail', 'fakeroot', 'script -q /dev/null', 'run0', 'newgrp wheel', 'sudo -s', 'su -', 'runuser -l root']) {
      expect(opaque(line), line).toBe(true);
    }
  });
});

describe('values from outside the line (SSH env requests)', () => {
  it('a value with code in a subscript is flagged, ordinary values are not', () => {
    expect(valueMayRunCode('a[$(rm x)]')).toBe(true);
    expect(valueMayRunCode('x[`rm x`]')).toBe(true);
    expect(valueMayRunCode('en_US.UTF-8')).toBe(false);
    expect(valueMayRunCode('xterm-256color')).toBe(false);
  });
});

describe('bash constructs that run text later or bind names', () => {
  const cases: Array<[string, boolean]> = [
    ["trap 'rm x' EXIT", true], ["trap -- 'ls' INT", true], ['trap - INT', false], ["trap '' INT", false],
    ['hash -p /bin/rm ls', true], ['hash ls', false],
    ['mapfile -C cb -c 1 a < f', true], ['readarray -tC cb a < f', true], ['mapfile -t a < f', false],
    ['complete -C /tmp/x git', true], ['compgen -F f', true], ['compgen -W "a b" a', false],
    ["bind -x '\"\\C-x\": ls'", true], ['bind -l', false], ['enable -f ./x.so x', true], ['enable -n echo', false],
    ['source x', true], ['. x', true], ['eval "$x"', true], ['exec bash', true], ['exec 3>&-', false], ['command eval "$x"', true],
    ["PS1='$(ls)'", true], ["PS4='x'", true], ["declare PS4='$(ls)'", true], ["export PROMPT_COMMAND=ls", true], ["LD_PRELOAD=/tmp/x.so ls", true],
    ["echo ${x@P}", true], ['echo ${x@Q}', false],
    ["let 'a[$(ls)]'", true], ["let 'i+=1'", false], ["x='a[`ls`]'", true], ["x=$'a[\\x24(ls)]'", true], ["x=a\\[\\$\\(ls\\)\\]", true],
    ['read x; (( x ))', true], ['read x; echo $x', false], ['x=$(cat f); echo $((x + 1))', true], ['x=$(cat f); [[ $x -eq 1 ]]', true],
    ['x=$(cat f); echo ${a[x]}', true], ['x=$(cat f); a[x]=1', true], ['read -r x; echo ${!x}', true], ['printf -v "$n" 1', true],
    ['declare "$n"=1', true], ['read "$n"', true],
    ["a=('b[$(ls)]'); (( a ))", true], ['(( $(cat f) ))', true], ['set -- $(cat f); (( $1 ))', true], ['echo $(( `cat f` ))', true],
    ['for ((i=0; i<$(wc -l < f); i++)); do :; done', true], ['(( TERM ))', true], ['x=$(cat f); echo ${a:0:x}', true], ['read x; echo ${@:x}', true], ['read x; echo ${x:-d}', false], ['echo $(( LC_X + 1 ))', true], ['echo $TERM', false], ['n=3; for ((i=0; i<n; i++)); do echo $(date); done', true], ['echo $((1+2)); ls', false], ["declare -a a=('b[$(ls)]')", true], ["let x=${y:-'a[$(ls)]'}", true], ['a=(1 2 3); (( a ))', false],
    ['cat <(ls)', false], ['bash <(ls)', true], ['source <(ls)', true], ['diff <(ls a) <(ls b)', false],
  ];
  for (const [line, want] of cases) it(JSON.stringify(line), () => expect(opaque(line), analyzeShell(line).reasons.join('; ')).toBe(want));
});
