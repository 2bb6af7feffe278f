/**
 * Many tests start the CLI (`node bin/atflow.js`, sweep children, the package test), and the CLI runs
 * the compiled dist/, while jest runs src/ through ts-jest. So that no test ever runs stale code, dist/ is
 * rebuilt here whenever a source changed since the last build. The check (modification times against
 * dist/.build-stamp) costs milliseconds, so this is cheaper than building inside `npm test` on every run,
 * and it also covers running a single test file with `npx jest test/x.test.ts`.
 */
const { build, isFresh } = require('../scripts/build.js');

module.exports = async function ensureFreshDist() {
  if (isFresh()) return;
  process.stderr.write('\njest global setup: src/ changed since dist/ was built; rebuilding dist/ (npm run build)\n');
  const code = build();
  // 2: type errors, but every file was emitted; `npm test` reports them in its type-check step.
  if (code === 2) process.stderr.write('jest global setup: dist/ built with type errors (see above)\n');
  else if (code !== 0) throw new Error(`npm run build failed (tsc exit ${code}); the CLI tests would run a stale or missing dist/`);
};
