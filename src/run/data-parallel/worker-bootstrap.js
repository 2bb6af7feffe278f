// Worker threads do not inherit the main thread's TypeScript loader (ts-jest): when the sources run
// (the tests), load tsx, a devDependency, then the worker itself. The compiled build (dist/, the
// installed package) starts worker.js directly and never comes here.
require('tsx/cjs');
require('./worker.ts');
