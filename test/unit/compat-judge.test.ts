/**
 * The compat suite's verdicts (test/compat/differential.ts): a difference fails unless listed,
 * and a listed difference that did not occur (a stale entry) fails too, so the list stays true.
 */
import { describe, expect, it } from 'vitest';
import { judge, type ExpectedDifference, type Scenario } from '../compat/differential.js';

const scenario: Scenario = { driver: 'mysql2', name: 'x', run: async () => undefined };
const listed: ExpectedDifference[] = [{ driver: 'mysql2', scenario: 'x', readme: 'Client compatibility', why: 'because' }];
const a = { value: { v: 1 }, threw: false };
const b = { value: { v: 2 }, threw: false };

describe('compat verdicts', () => {
  it('same outcomes and no entry: same; a difference with no entry: different', () => {
    expect(judge(scenario, a, a, []).verdict).toBe('same');
    expect(judge(scenario, a, b, []).verdict).toBe('different');
  });

  it('a listed difference that occurs is expected', () => {
    expect(judge(scenario, a, b, listed)).toMatchObject({ verdict: 'expected difference', note: 'because (README: Client compatibility)' });
  });

  it('a listed difference that did not occur fails as stale', () => {
    expect(judge(scenario, a, a, listed)).toMatchObject({ verdict: 'different', note: expect.stringContaining('remove the entry') });
  });
});
