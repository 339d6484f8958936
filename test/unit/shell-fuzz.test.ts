import { describe, expect, it } from 'vitest';
import { analyzeShell } from '../../parsers/shell/index.js';

const FRAGMENTS = [
  "'", '"', '`', '$(', ')', '(', '{', '}', ';', '&&', '||', '|', '&', '#', ' ', ' ', ' ', '\n', '\\', '$', '${', "$'",
  'if', 'then', 'else', 'fi', 'case', 'in', 'esac', ';;', 'do', 'done', 'for', 'while', '<<', '<<<', 'EOF', '<', '>',
  '2>&1', 'x=', 'a', 'echo', 'sh -c', 'eval', '[[', ']]', '((', '))', '*', 'sudo', 'function', 'f()', 'time', '!',
];

/** A fixed-seed generator, so a failure is reproducible by its index. */
function lines(seed: number, count: number): string[] {
  let s = seed;
  const rand = (n: number): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % n;
  };
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    let line = '';
    const len = 1 + rand(12);
    for (let j = 0; j < len; j++) line += FRAGMENTS[rand(FRAGMENTS.length)];
    out.push(line);
  }
  return out;
}

describe('random lines', () => {
  it('never throw and always produce well-formed results', () => {
    for (const line of lines(1, 3000)) {
      const a = analyzeShell(line);
      for (const c of a.commands) expect(c.text).toBe(c.argv.join(' '));
      expect(a.reasons.length > 0).toBe(a.unparsed || a.opaque);
    }
  });

  // The property a deny list relies on: whatever precedes it, a command on its own line
  // is either found or the line is reported unparsed. (A trailing backslash joins the
  // lines, as the shell would, so those prefixes are left out.)
  it('a command after any prefix is found or the line is unparsed', () => {
    for (const prefix of lines(7, 3000)) {
      if (prefix.endsWith('\\')) continue;
      const a = analyzeShell(`${prefix}\nrmzz -rf /`);
      const found = a.commands.some((c) => c.program === 'rmzz');
      expect(found || a.unparsed, JSON.stringify(prefix)).toBe(true);
    }
  });
});
