import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { tensorflowAvailable } from '../../src/backend/select';
import { chooseTensorflowLogLevel } from '../../src/cli/main';

/**
 * The bin as npm installs it: a symlink named `atflow` (node_modules/.bin, npx, npm link, npm i -g).
 * It used to print nothing and exit 0 there, because main() ran only when argv[1] ended in atflow.js.
 * test/package/ checks the real installs; this is the quick check of the same thing from the checkout.
 */
const ROOT = path.join(__dirname, '..', '..');
const VERSION = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;

let dir: string;
let atflow: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-bin-'));
  atflow = path.join(dir, 'atflow');
  fs.symlinkSync(path.join(ROOT, 'bin', 'atflow.js'), atflow);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs the symlinked bin; `unset` names variables removed from the environment. */
const run = (args: string[], env: NodeJS.ProcessEnv = {}, unset: string[] = []) => {
  const childEnv = { ...process.env, ...env };
  for (const name of unset) delete childEnv[name];
  return spawnSync(atflow, args, { cwd: dir, encoding: 'utf8', env: childEnv, timeout: 120_000 });
};

describe('bin/atflow.js behind a symlink named atflow', () => {
  it('runs the command: models --json prints the models', () => {
    const r = run(['models', '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)[0]).toEqual({ name: 'mlp', classes: 10, parameters: 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10 });
  });

  it('--version and -V print the version from package.json', () => {
    for (const flag of ['--version', '-V']) {
      const r = run([flag]);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`${VERSION}\n`);
    }
  });

  it('exits non-zero on every kind of failure', () => {
    const missing = run(['run', path.join(dir, 'missing.json')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('missing.json');
    expect(run(['no-such-command']).status).toBe(1);
    expect(run(['models', '--no-such-option']).status).toBe(1);
    expect(run([]).status).toBe(1);
  });

  it('--backend gpu / cuda says how to get the GPU: the tensorflow backend built by setup:tensorflow -- --gpu, and what that needs', () => {
    for (const [args, env] of [
      [['backend', '--backend', 'gpu'], {}],
      [['backend'], { ATFLOW_BACKEND: 'cuda' }],
    ] as const) {
      const r = run([...args], env);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('npm run setup:tensorflow -- --gpu');
      expect(r.stderr).toMatch(/NVIDIA GPU with its driver.*tensorflow\[and-cuda\]/);
      expect(r.stderr).toContain('--backend tensorflow');
    }
  });
});

describe("TensorFlow's native log level", () => {
  it('is 2 unless the user set it; --verbose (before any --) makes it 0', () => {
    const pick = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
      chooseTensorflowLogLevel(['node', 'atflow', ...argv], env);
      return env.TF_CPP_MIN_LOG_LEVEL;
    };
    expect(pick(['run', 'c.json'])).toBe('2');
    expect(pick(['run', 'c.json', '--verbose'])).toBe('0');
    expect(pick(['--verbose', 'run', 'c.json'])).toBe('0');
    expect(pick(['sweep', 's.json', '--', '--verbose'])).toBe('2');
    expect(pick(['run', 'c.json'], { TF_CPP_MIN_LOG_LEVEL: '1' })).toBe('1');
    expect(pick(['run', 'c.json', '--verbose'], { TF_CPP_MIN_LOG_LEVEL: '3' })).toBe('3');
  });

  // Needs the tensorflow backend; where it is not built there are no native log lines to hide.
  (tensorflowAvailable() ? it : it.skip)('hides the cpu_feature_guard INFO line on the tensorflow backend unless --verbose', () => {
    const env = { ATFLOW_BACKEND: 'tensorflow' };
    const quiet = run(['backend'], env, ['TF_CPP_MIN_LOG_LEVEL']);
    expect(quiet.status).toBe(0);
    expect(quiet.stdout).toMatch(/^tensorflow/);
    expect(quiet.stderr).not.toContain('cpu_feature_guard');
    const verbose = run(['backend', '--verbose'], env, ['TF_CPP_MIN_LOG_LEVEL']);
    expect(verbose.status).toBe(0);
    expect(verbose.stderr).toContain('cpu_feature_guard');
  });
});
