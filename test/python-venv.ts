/**
 * A Python for tests that compare with PyTorch (tests only; atflow never runs Python): the venv
 * .cache/test-venv in the checkout (gitignored), made with `python3 -m venv` and filled with `pip install`
 * from the package index pip is configured with on this machine (CI's is the same kind of machine, so
 * .ci/run needs no step of its own). Made once and reused; a lock keeps two jest workers from building it
 * at the same time. ATFLOW_TEST_PYTHON=/path/to/python uses that interpreter instead (it must already
 * have the packages). Anything missing is an error that says what failed: these tests do not skip.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
const VENV = path.join(ROOT, '.cache', 'test-venv');

/** The python of a venv in which `modules` import, installing `packages` (pip names) when they do not. */
export function pythonWith(packages: readonly string[], modules: readonly string[] = packages): string {
  const probe = `import ${modules.join(', ')}`;
  const own = process.env.ATFLOW_TEST_PYTHON;
  if (own) {
    const r = spawnSync(own, ['-c', probe], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ATFLOW_TEST_PYTHON=${own} cannot '${probe}': ${(r.stderr || String(r.error)).trim().split('\n').pop()}`);
    return own;
  }
  fs.mkdirSync(path.dirname(VENV), { recursive: true });
  const python = path.join(VENV, 'bin', 'python');
  // pip: --retries 0 so that an index this machine cannot reach fails over at once instead of backing off
  const script = [
    'set -e',
    `[ -x "${python}" ] || python3 -m venv "${VENV}"`,
    `"${python}" -c "${probe}" 2>/dev/null && exit 0`,
    `echo "test-venv: pip install ${packages.join(' ')} into ${VENV}" >&2`,
    `"${python}" -m pip install --retries 0 --disable-pip-version-check -q ${packages.map((p) => `'${p}'`).join(' ')}`,
    `"${python}" -c "${probe}"`,
  ].join('\n');
  const r = spawnSync('flock', [`${VENV}.lock`, 'bash', '-c', script], { encoding: 'utf8', timeout: 15 * 60_000 });
  if (r.status !== 0) {
    const why = (r.stderr || String(r.error ?? '')).trim().split('\n').slice(-8).join('\n');
    throw new Error(
      `could not make a Python venv with ${packages.join(', ')} at ${VENV} (needs python3 with venv, and pip's package index): ${why}\n` +
        'set ATFLOW_TEST_PYTHON to a python that has them to use it instead',
    );
  }
  return python;
}
