/**
 * Runs in every test file before it loads. On `wasm`, runs default to one data-parallel worker per core
 * (ATFLOW_WORKERS unset): tests that execute whole runs keep the single-thread chain unless they ask for
 * workers themselves (test/run/data-parallel), so that a clean clone's suite (wasm) and one with the
 * tensorflow backend run the same code paths and stay within CI's time on 2 cores.
 */
process.env.ATFLOW_WORKERS ??= '1';
