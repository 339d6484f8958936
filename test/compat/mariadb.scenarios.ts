import type { Scenario } from './differential.js';
export const mariadbScenarios: Scenario[] = [];
