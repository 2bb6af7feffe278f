#!/usr/bin/env node
// The CLI runs the TypeScript sources directly through tsx, so a clean clone needs no build step.
require('tsx/cjs');
require('../src/cli/main.ts');
