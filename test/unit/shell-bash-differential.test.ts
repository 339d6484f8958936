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

function lines(seed: number, count: number): string[] {
  let s = seed;
  const rand = (n: number): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % n;
  };
  return Array.from({ length: count }, () => {
    let line = '';
    for (let j = 1 + rand(10); j > 0; j--) line += FRAGMENTS[rand(FRAGMENTS.length)];
    return line;
  });
}

describe.skipIf(!haveBash)('programs bash runs are programs analyzeShell finds', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-shell-'));
  const env = join(dir, 'env.sh');
  writeFileSync(env, 'command_not_found_handle() { printf "%s\\n" "$1" >&3; return 127; }\nPATH=/nonexistent\n');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('on 400 random lines', () => {
    for (const line of lines(2024, 400)) {
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
