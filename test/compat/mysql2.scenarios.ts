import type { Scenario } from './differential.js';
export const mysql2Scenarios: Scenario[] = [];
