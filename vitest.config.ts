import { defineConfig } from 'vitest/config'

// Two projects: unit tests need no network and run in parallel; end-to-end tests
// (*.e2e.test.ts) drive real sshd and etcd in lab hosts and need root. Each file
// brings up its own lab (own name, subnet, namespaces), so two files run at once:
// much of a lab test is waiting on etcd and SSH, which a 2-core machine overlaps.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          // Unit tests first, then the lab files (projects with different maxWorkers need their own group).
          sequence: { groupOrder: 0 },
          globalSetup: ['test/support/tmpdir.ts'],
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.e2e.test.ts'],
        },
      },
      {
        test: {
          name: 'e2e',
          sequence: { groupOrder: 1 },
          globalSetup: ['test/support/tmpdir.ts'],
          include: ['test/**/*.e2e.test.ts'],
          fileParallelism: true,
          maxWorkers: 2,
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
})
