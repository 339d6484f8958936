/**
 * The high-entropy token heuristic: a long run of base64/base64url characters that looks
 * random rather than like words, paths, identifiers, UUIDs or hex digests.
 *
 * Thresholds come from sampling random tokens: the entropy floor sits at about the 1st
 * percentile of random base64 (mixed case) or base36 (one case plus digits) strings of
 * the same length, so nearly every random token passes while identifiers ("camelCase",
 * "snake_case_2024") fail on the word-run test. Pure hex (and UUIDs) is deliberately
 * not flagged: commit ids and digests are everywhere in output; hex secrets with a
 * known shape are caught by their own detectors.
 */
import { charClasses, shannonEntropy } from './validators.js';

const MIN_LENGTH = 20;
const HEXISH = /^[0-9a-fA-F-]+$/;
/** A capitalised or lower-case word of four or more letters, or an upper-case one. */
const WORD_RUN = /[A-Z]?[a-z]{3,}|[A-Z]{4,}/g;
const SEPARATOR = /[/_+-]/g;

function mixedFloor(n: number): number {
  return Math.min(0.83 * Math.log2(n), 4.8);
}

function singleCaseFloor(n: number): number {
  return Math.min(0.75 * Math.log2(n), 4.3);
}

/** Share of the token covered by word-like runs: about 0.2 for random base64 (0.55 at the 95th percentile), 0.65+ for identifiers. */
function wordCoverage(s: string): number {
  let covered = 0;
  for (const m of s.matchAll(WORD_RUN)) covered += m[0].length;
  return covered / s.length;
}

/** How often consecutive characters switch between letter and digit: about 0.4 for random base36. */
function letterDigitSwitchRate(s: string): number {
  let switches = 0;
  let prev = -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const kind = c >= 48 && c <= 57 ? 1 : (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ? 0 : -1;
    if (kind === -1) continue;
    if (prev !== -1 && kind !== prev) switches++;
    prev = kind;
    n++;
  }
  return n < 2 ? 0 : switches / (n - 1);
}

export function looksRandom(token: string): boolean {
  const s = token.replace(/=+$/, '');
  if (s.length < MIN_LENGTH) return false;
  if (HEXISH.test(s)) return false;
  if (s.startsWith('/') || s.startsWith('./') || s.includes('//')) return false;
  // Paths, CONSTANT_NAMES and kebab-case names are dense in separators; base64 has about one in 32.
  const separators = s.match(SEPARATOR)?.length ?? 0;
  if (separators > Math.max(3, s.length / 10)) return false;
  const c = charClasses(s);
  if (c.digit === 0 || c.upper + c.lower === 0) return false;
  const h = shannonEntropy(s);
  if (c.upper > 0 && c.lower > 0) return h >= mixedFloor(s.length) && wordCoverage(s) < 0.6;
  const digitShare = c.digit / (c.upper + c.lower + c.digit);
  if (s.length < 24 || digitShare < 0.15 || digitShare > 0.85) return false;
  return h >= singleCaseFloor(s.length) && letterDigitSwitchRate(s) >= 0.25;
}
