import * as crypto from 'crypto';
import * as fs from 'fs';
import { writeJsonDurable } from '../core/durable-file';
import * as os from 'os';
import * as path from 'path';

/**
 * Where `atflow setup-tensorflow` builds the tensorflow backend, and the record it leaves so that a lost
 * build is not lost silently. The package goes into the project whose node_modules holds the
 * @tensorflow/tfjs that atflow loads (a project depending on atflow, or a clone): there it shares that
 * one tfjs, and npm counts it as atflow's optional dependency, so the project's next `npm install` keeps
 * it. `npm ci` deletes node_modules and the build with it; the record lives in atflow's cache, outside
 * node_modules, and lets start-up say that the backend is gone and how to get it back.
 */
export interface TensorflowSetupRecord {
  readonly project: string;
  /** @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu */
  readonly package: string;
  /** The cached wheel it was built against (deps/.atflow-staged), e.g. tensorflow_cpu-2.21.0-cp311-…. */
  readonly staged: string | null;
  readonly builtAt: string;
}

/** atflow's cache root: ATFLOW_CACHE_DIR, else $XDG_CACHE_HOME/atflow, else ~/.cache/atflow (as scripts/setup-tensorflow.sh). */
export function atflowCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.ATFLOW_CACHE_DIR || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'atflow');
}

/** The folder whose node_modules holds the @tensorflow/tfjs atflow loads, or null if it cannot be resolved. */
export function tensorflowProject(): string | null {
  try {
    // <project>/node_modules/@tensorflow/tfjs/package.json
    return path.resolve(require.resolve('@tensorflow/tfjs/package.json'), '..', '..', '..', '..');
  } catch {
    return null;
  }
}

/** The directory a tfjs-node package is (or would be) installed in, next to atflow's tfjs. */
export function tensorflowPackageDir(project: string, pkg: string): string {
  return path.join(project, 'node_modules', ...pkg.split('/'));
}

/** True when the package's native addon (lib/napi-v*\/tfjs_binding.node) has been built or downloaded. */
export function hasBuiltAddon(dir: string): boolean {
  const lib = path.join(dir, 'lib');
  if (!fs.existsSync(lib)) return false;
  return fs.readdirSync(lib).some((d) => d.startsWith('napi-v') && fs.existsSync(path.join(lib, d, 'tfjs_binding.node')));
}

function recordFile(project: string, env: NodeJS.ProcessEnv): string {
  const key = crypto.createHash('sha256').update(path.resolve(project)).digest('hex').slice(0, 16);
  return path.join(atflowCacheDir(env), 'tensorflow', 'projects', `${key}.json`);
}

/** Records that `pkg` was built in `project` (written atomically; replaces an earlier record). */
export function writeSetupRecord(project: string, pkg: string, env: NodeJS.ProcessEnv = process.env): TensorflowSetupRecord {
  const dir = tensorflowPackageDir(project, pkg);
  let staged: string | null = null;
  try {
    staged = fs.readFileSync(path.join(dir, 'deps', '.atflow-staged'), 'utf8').trim() || null;
  } catch {
    // built some other way (tfjs-node's own download): nothing staged
  }
  const record: TensorflowSetupRecord = { project: path.resolve(project), package: pkg, staged, builtAt: new Date().toISOString() };
  const file = recordFile(project, env);
  writeJsonDurable(file, record, { mkdir: true });
  return record;
}

export function readSetupRecord(project: string, env: NodeJS.ProcessEnv = process.env): TensorflowSetupRecord | null {
  try {
    const r = JSON.parse(fs.readFileSync(recordFile(project, env), 'utf8'));
    return r && typeof r.package === 'string' && path.resolve(r.project) === path.resolve(project) ? r : null;
  } catch {
    return null;
  }
}

/** Forgets the record (the backend is no longer wanted in this project). */
export function removeSetupRecord(project: string, env: NodeJS.ProcessEnv = process.env): void {
  fs.rmSync(recordFile(project, env), { force: true });
}

/**
 * When `atflow setup-tensorflow` built the backend in this project and its package or addon is no longer
 * there: one sentence that says so, why it happens, and the command that restores it. Otherwise null.
 */
export function lostTensorflowSetup(env: NodeJS.ProcessEnv = process.env): string | null {
  const project = tensorflowProject();
  if (!project) return null;
  const record = readSetupRecord(project, env);
  if (!record || hasBuiltAddon(tensorflowPackageDir(project, record.package))) return null;
  const gpu = record.package.endsWith('-gpu') ? ' --gpu' : '';
  return (
    `the tensorflow backend that \`atflow setup-tensorflow\` built in ${project} ` +
    `on ${record.builtAt.slice(0, 10)} (${record.package}) is gone ` +
    (`from its node_modules (\`npm ci\`, or npm reinstalling ` +
      `${record.package}, deletes it): \`npx atflow setup-tensorflow${gpu}\` ` +
      `builds it again `) +
    `(the TensorFlow library stays cached)`
  );
}
