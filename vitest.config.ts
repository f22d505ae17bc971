import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'back-end', root: 'back-end', include: ['src/**/*.test.ts'], environment: 'node' } },
      {
        test: {
          name: 'scripts',
          root: 'scripts',
          include: ['**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'front-end',
          root: 'front-end',
          include: ['src/**/*.test.ts', 'plugins/**/*.test.ts'],
          environment: 'happy-dom',
        },
      },
      { test: { name: 'monitoring', root: 'monitoring', include: ['*.test.ts'], environment: 'node' } },
      { test: { name: 'deploy', root: 'deploy', include: ['*.test.ts'], environment: 'node', testTimeout: 60_000 } },
      {
        test: {
          name: 'e2e',
          root: 'e2e',
          include: ['**/*.test.ts'],
          environment: 'node',
          // One stack, brought up once: the files share it, so they run one after another.
          fileParallelism: false,
          globalSetup: ['./stack-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 1_800_000,
        },
      },
    ],
  },
});
