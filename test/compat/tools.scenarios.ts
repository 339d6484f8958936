import type { Scenario } from './differential.js';
export const toolScenarios: Scenario[] = [];
