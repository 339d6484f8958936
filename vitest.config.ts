import { defineConfig } from 'vitest/config';

// Integration tests start real servers; two cores are all we have, so files run
// in a small pool and each test gets generous time (no wall-clock assertions).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    fileParallelism: true,
  },
});
