// `npm run test:resilience`: the long resilience suite (minutes-long soak, several SIGKILLs on
// PostgreSQL, ten times the fuzz cases), one file at a time, with results/latest.md written at the end.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/resilience/**/*.test.ts'],
    globalSetup: ['test/resilience/report-setup.ts'],
    env: { RESILIENCE_LONG: '1' },
    fileParallelism: false,
    testTimeout: 900_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
