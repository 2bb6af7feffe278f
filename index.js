// atflow as a library: the TypeScript sources run through tsx, so `require('atflow')` needs no build step.
require('tsx/cjs');
module.exports = require('./src/index.ts');
