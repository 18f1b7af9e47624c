import { defineConfig } from 'vitest/config'

// Two projects: unit tests need no network and run in parallel; end-to-end tests
// (*.e2e.test.ts) drive real sshd and etcd in lab hosts, need root, and run one
// file at a time because each brings up its own lab on a 2-core machine.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          globalSetup: ['test/support/tmpdir.ts'],
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.e2e.test.ts'],
        },
      },
      {
        test: {
          name: 'e2e',
          globalSetup: ['test/support/tmpdir.ts'],
          include: ['test/**/*.e2e.test.ts'],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
})
