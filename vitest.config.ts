import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // `npm run bench`, never part of `npm test`: figures are printed side by side, nothing is asserted.
    benchmark: { include: ['bench/**/*.bench.ts'] },
    // The end-to-end suites start real Envoy processes; give them room on a 2-core machine.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Suites that bind processes use free ports, but Envoy start-up is CPU-heavy: one file at a time keeps it stable.
    fileParallelism: false,
  },
});
