/**
 * A Python for tests that compare with PyTorch (tests only; atflow never runs Python): the one venv of the
 * checks, .cache/python-venv, made by scripts/python-setup.sh (`npm run setup:python`) from the package index
 * pip is configured with on this machine; CI's .ci/run makes it first, and a test run without it makes it
 * here (once; the script's lock keeps two jest workers from building it at the same time).
 * ATFLOW_TEST_PYTHON=/path/to/python uses that interpreter instead (it must already have the packages).
 * Anything missing is an error that says what failed: these tests do not skip.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
const SETUP = path.join(ROOT, 'scripts', 'python-setup.sh');
const PYTHON = path.join(ROOT, '.cache', 'python-venv', 'bin', 'python');

/** The python of the checks' venv, in which `modules` import (scripts/python-setup.sh installs them all). */
export function pythonWith(modules: readonly string[]): string {
  const probe = `import ${modules.join(', ')}`;
  const own = process.env.ATFLOW_TEST_PYTHON;
  if (own) {
    const r = spawnSync(own, ['-c', probe], { encoding: 'utf8' });
    if (r.status !== 0)
      throw new Error(`ATFLOW_TEST_PYTHON=${own} cannot '${probe}': ${(r.stderr || String(r.error)).trim().split('\n').pop()}`);
    return own;
  }
  const made = spawnSync('bash', [SETUP], { encoding: 'utf8', timeout: 15 * 60_000 });
  const r = made.status === 0 ? spawnSync(PYTHON, ['-c', probe], { encoding: 'utf8' }) : made;
  if (r.status !== 0) {
    const why = (r.stderr || r.stdout || String(r.error ?? '')).trim().split('\n').slice(-8).join('\n');
    throw new Error(
      `could not have a Python venv where '${probe}' works at ${PYTHON} (scripts/python-setup.sh; needs python3 with venv, and pip's package index): ${why}\n` +
        'set ATFLOW_TEST_PYTHON to a python that has them to use it instead',
    );
  }
  return PYTHON;
}
