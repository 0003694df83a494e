import { defineConfig } from 'vitest/config';

// Interop and integration tests spawn openssl and servers: give them room, and keep
// workers to the two cores this machine kind has.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    setupFiles: ['test/helpers/setup.ts'],
  },
});
