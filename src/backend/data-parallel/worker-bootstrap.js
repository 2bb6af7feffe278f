// Worker threads do not inherit the main thread's TypeScript loader (tsx or ts-jest): load tsx here,
// then the worker itself. The compiled build (dist/) starts worker.js directly and never comes here.
require('tsx/cjs');
require('./worker.ts');
