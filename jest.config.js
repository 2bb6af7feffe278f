/** Tests are TypeScript, transpiled per file (type checking is `npm run typecheck`, part of `npm test`). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { isolatedModules: true, diagnostics: false }],
  },
  // The CLI that tests start runs dist/: rebuilt first when src/ is newer (see the file).
  globalSetup: '<rootDir>/test/global-setup.js',
  testTimeout: 120000,
  // ATFLOW_WORKERS=1 unless set: whole runs stay single-thread in tests (see the file)
  setupFiles: ['<rootDir>/test/setup-env.ts'],
  // tf backends and wasm modules are per process: one worker per core is all this machine has.
  maxWorkers: 2,
};
