import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // expect.poll waits until a condition holds; its default 1 s would be a timed assertion on a
    // noisy machine (a page update that takes 1.1 s is not a bug). It passes as soon as it holds.
    expect: { poll: { timeout: 15_000 } },
    pool: 'forks',
  },
});
