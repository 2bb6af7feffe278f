#!/usr/bin/env node
'use strict';
/**
 * `npm run build` (and `prepare`, which `npm ci` / `npm install` / `npm pack` run): compiles src/ into
 * dist/ (JavaScript, .d.ts, source maps with their sources inlined, since src/ is not published).
 * dist/ is emptied first: tsc never deletes the output of a source file that was removed or renamed,
 * and the CLI loads every file in dist/cli/commands. The stamp written last lets test/global-setup.js
 * tell a complete, current build from a stale one.
 */
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.join(__dirname, '..');
const dist = path.join(root, 'dist');
const STAMP = path.join(dist, '.build-stamp');

function build() {
  fs.rmSync(dist, { recursive: true, force: true });
  let tsc;
  try {
    tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
  } catch {
    process.stderr.write('atflow build: typescript is not installed (a devDependency): run `npm ci` without --omit=dev, or install the packed tarball (`npm pack`), which holds dist/\n');
    return 1;
  }
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  // tsc exits 2 when it found type errors but wrote every output anyway: dist/ then matches src/ (so the
  // stamp is written), but the exit code still fails `npm run build` and `prepare`.
  if (r.status === 0 || r.status === 2) fs.writeFileSync(STAMP, `${new Date().toISOString()}\n`);
  return r.status ?? 1;
}

/** The newest modification time among the build's inputs; a directory's changes when a file is added or removed. */
function newestInput() {
  let newest = 0;
  const visit = (p) => {
    const st = fs.statSync(p);
    newest = Math.max(newest, st.mtimeMs);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) visit(path.join(p, e));
  };
  visit(path.join(root, 'src'));
  for (const f of ['tsconfig.json', 'tsconfig.build.json', 'scripts/build.js']) visit(path.join(root, f));
  return newest;
}

/** True when dist/ was built completely after the last change to its inputs. */
function isFresh() {
  try {
    return fs.statSync(STAMP).mtimeMs >= newestInput();
  } catch {
    return false;
  }
}

module.exports = { build, isFresh, newestInput };

if (require.main === module) process.exit(build());
