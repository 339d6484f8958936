/**
 * Differential check against the real bash: every program bash tries to run for a random
 * line must be among the programs analyzeShell finds, unless it reported the line unparsed
 * or opaque. bash runs with PATH pointing nowhere and a command_not_found_handle that only
 * records the name, in a scratch directory, so no external program ever executes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeShell } from '../../parsers/shell/index.js';

const haveBash = spawnSync('bash', ['-c', 'true']).status === 0;

const FRAGMENTS = ["'", '"', '`', '$(', ')', '(', '{ ', ' }', ';', '&&', '||', '|', '#', ' ', ' ', ' ', ' ', '\n', '\\',
  '$', '$x', 'if ', 'then ', 'else ', 'fi', 'case ', ' in ', 'esac', ';;', 'do ', 'done', 'for ', '<<<', 'x', 'y',
  'echo ', 'eval ', '[[ ', ' ]]', '((', '))', 'a=', 'while ', 'f()', 'zz', 'qq', "$'", '<(', '=', '!', 'time ', '\t',
  'true', 'command ', 'builtin ', 'exec '];

/** Issue 27: builtins that run text later, bind names or evaluate subscripts. */
const OPAQUE_FRAGMENTS = ["'", '"', '$(', ')', ';', '|', ' ', ' ', '\n', '$x', 'x', 'zz', 'qq', 'echo ', 'eval ', 'trap ', '-- ',
  'EXIT', 'let ', "'a[$(zz)]'", '"a[\\$(zz)]"', '(( x ))', 'x=', 'read x', '<<< ', 'hash -p /x/y zz', 'PS4=', 'set -x;', '${x@P}',
  '${!x}', 'mapfile -C zz ', 'printf -v ', 'declare -i ', 'source ', 'fc -s', '[[ ', ' -eq ', ' ]]', 'test -v ', 'a[x]=1',
  '${a[x]}', 'command ', 'builtin ', 'exec ', 'alias ', 'shopt -s expand_aliases;', 'f()', '{ ', ' }', 'compgen -C zz x',
  '`zz`', "$'\\x24(zz)'", 'export ', 'local ', 'a '];

function lines(seed: number, count: number, fragments = FRAGMENTS): string[] {
  let s = seed;
  const rand = (n: number): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % n;
  };
  return Array.from({ length: count }, () => {
    let line = '';
    for (let j = 1 + rand(10); j > 0; j--) line += fragments[rand(fragments.length)];
    return line;
  });
}

describe.skipIf(!haveBash)('programs bash runs are programs analyzeShell finds', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-shell-'));
  const env = join(dir, 'env.sh');
  writeFileSync(env, 'command_not_found_handle() { printf "%s\\n" "$1" >&3; return 127; }\nPATH=/nonexistent\n');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['on 400 random lines', lines(2024, 400)],
    ['on 400 lines of trap, let, subscripts, prompts and callbacks', lines(27, 400, OPAQUE_FRAGMENTS)],
  ])('%s', (_name, batch) => {
    for (const line of batch) {
      const res = spawnSync('bash', ['-c', line], {
        cwd: dir, env: { BASH_ENV: env }, stdio: ['ignore', 'ignore', 'ignore', 'pipe'], timeout: 2000,
      });
      const ran = String(res.output[3] ?? '').split('\n').filter((p) => p !== '');
      const a = analyzeShell(line);
      if (a.unparsed || a.opaque) continue;
      const found = new Set(a.commands.map((c) => c.program));
      expect(ran.filter((p) => !found.has(p)), JSON.stringify(line)).toEqual([]);
    }
  });
});
