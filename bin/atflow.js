#!/usr/bin/env node
'use strict';
// The `atflow` command. It always runs the CLI (no "am I the main module" check: behind npm's symlinks
// in node_modules/.bin, npx or a global install, neither require.main nor argv[1] looks like this file).
// It runs the compiled library in dist/, which `npm ci` / `npm install` build (the `prepare` script)
// and the published package ships; in a checkout, `npm run build` refreshes it after editing src/.
const path = require('path');

const entry = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
let cli;
try {
  cli = require(entry);
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(entry)) {
    process.stderr.write(`atflow: ${entry} is missing: run \`npm run build\` in ${path.join(__dirname, '..')} (npm ci runs it)\n`);
    process.exit(1);
  }
  throw e;
}
cli.runCli(process.argv);
