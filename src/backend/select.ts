import * as tf from '@tensorflow/tfjs';
import * as os from 'os';
import * as path from 'path';
import { AtflowError } from '../core/errors';
import { registerFusedBatchNorm } from './batch-norm-train';
import { registerReluGrad } from './relu-grad';
import { registerTensorflowPaddingKernels } from './tensorflow-kernels';
import { hasBuiltAddon, lostTensorflowSetup } from './tensorflow-setup';

/**
 * Backend choice: `tensorflow` (tfjs-node-gpu, then tfjs-node: libtensorflow, its own thread pools),
 * else `wasm` (XNNPACK + atflow's training kernels), else `cpu` (pure JS: a numerical reference).
 * ATFLOW_BACKEND=cpu|wasm|tensorflow forces one.
 */
import { BACKEND_NAMES, type BackendInfo, type BackendName } from '../core/backend-info';

export { BACKEND_NAMES, type BackendInfo, type BackendName };

const TF_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

const HOW_TO_GET_TENSORFLOW =
  'install it with `npm install @tensorflow/tfjs-node` (or `-node-gpu`) where the libtensorflow download works, ' +
  'or build it from a pip TensorFlow wheel with `npx atflow setup-tensorflow` (see README, "Backends")';

let loadedTfNode: { pkg: string; mod: any } | null | undefined;
/** Why each tfjs-node package could not be loaded, for the error message. */
let tfNodeProblems: string[] = [];

/**
 * The directory of an installed package, or null. Resolving package.json does not execute the package:
 * tfjs-node registers its kernels before it looks for its native addon, so requiring an unbuilt one
 * would leave half a backend behind.
 */
function packageDir(pkg: string): string | null {
  try {
    return path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    return null;
  }
}

/**
 * libtensorflow installs its own (absl) handlers for SIGINT / SIGTERM when it loads, over Node's: Ctrl-C
 * would kill the process instead of reaching atflow's stop-at-the-next-batch handler. Re-adding Node's
 * listeners makes libuv install its handler again; listeners added later get it anyway.
 */
function reclaimSignals(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const listeners = process.listeners(sig);
    process.removeAllListeners(sig);
    for (const l of listeners) process.on(sig, l as NodeJS.SignalsListener);
  }
}

/** Loads tfjs-node(-gpu) if installed and built; null if not. Never throws. */
export function loadTensorflowBinding(): { pkg: string; mod: any } | null {
  if (loadedTfNode !== undefined) return loadedTfNode;
  loadedTfNode = null;
  tfNodeProblems = [];
  const only = process.env.ATFLOW_TFJS_NODE_PACKAGE;
  for (const pkg of TF_NODE_PACKAGES) {
    if (only && only !== pkg) continue;
    const dir = packageDir(pkg);
    if (!dir) {
      tfNodeProblems.push(`${pkg} is not installed`);
      continue;
    }
    if (!hasBuiltAddon(dir)) {
      tfNodeProblems.push(`${pkg} is installed but its native addon is not built`);
      continue;
    }
    try {
      // TensorFlow reads this once, when it loads: without it every process starts with INFO lines (oneDNN,
      // cpu_feature_guard). A value set by the user (or by the CLI's --verbose) is kept.
      process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';

      const mod = require(pkg);
      reclaimSignals();
      loadedTfNode = { pkg, mod };
      break;
    } catch (e) {
      // e.g. the addon cannot find libtensorflow: report it, try the next package
      tfNodeProblems.push(`${pkg} failed to load: ${String((e as Error)?.message ?? e).split('\n')[0]}`);
    }
  }
  return loadedTfNode;
}

export function tensorflowAvailable(): boolean {
  return loadTensorflowBinding() !== null;
}

async function initTensorflow(): Promise<BackendInfo> {
  const binding = loadTensorflowBinding();
  if (!binding) {
    const why = tfNodeProblems.length ? ` (${tfNodeProblems.join('; ')})` : '';
    const lost = lostTensorflowSetup();
    throw new AtflowError('BACKEND', `backend 'tensorflow' is not available${why}: ${lost ?? HOW_TO_GET_TENSORFLOW}`, {
      problems: [...tfNodeProblems],
    });
  }
  // tfjs-node registers its backend on the tfjs-core instance it depends on; it is the same instance
  // as ours when versions match (they are pinned together in package.json).
  if (!(await tf.setBackend('tensorflow'))) {
    throw new AtflowError('BACKEND', `backend 'tensorflow' failed to initialise (${binding.pkg})`);
  }
  // atflow's convolutions use PyTorch's numeric padding, which tfjs-node's kernels reject
  registerTensorflowPaddingKernels();
  // train-mode BatchNorm as TensorFlow's fused ops
  registerFusedBatchNorm();
  return {
    name: 'tensorflow',
    provider: binding.pkg,
    tfjsVersion: tf.version.tfjs,
    tensorflowVersion: tensorflowLibraryVersion(),
    threads: tensorflowThreads(),
  };
}

/** The version of the TensorFlow C library the addon runs on (TF_Version(), e.g. '2.21.0'), not tfjs-node's own. */
function tensorflowLibraryVersion(): string | null {
  try {
    const v = (tf.backend() as any)?.binding?.TF_Version;
    return typeof v === 'string' && v.length > 0 ? v : null;
  } catch {
    return null;
  }
}

/**
 * TensorFlow's intra-op pool size: TF_NUM_INTRAOP_THREADS when set (TensorFlow reads it), else one
 * thread per schedulable CPU (TensorFlow's default, which honours the CPU affinity mask as this does).
 */
function tensorflowThreads(): number {
  const fromEnv = Number(process.env.TF_NUM_INTRAOP_THREADS);
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

let wasmRegistered = false;
async function initWasm(): Promise<BackendInfo> {
  if (!wasmRegistered) {
    // Importing registers the 'wasm' backend; atflow's training kernels are added by registerWasmTrainingKernels.
    require('@tensorflow/tfjs-backend-wasm');
    wasmRegistered = true;
    try {
      // Optional: the training kernels live in ./wasm-kernels when present.
      const k = require('./wasm-kernels');
      if (typeof k.registerWasmTrainingKernels === 'function') k.registerWasmTrainingKernels();
    } catch (e: any) {
      if (e?.code !== 'MODULE_NOT_FOUND') throw e;
    }
  }
  if (!(await tf.setBackend('wasm'))) throw new AtflowError('BACKEND', `backend 'wasm' failed to initialise`);
  return { name: 'wasm', provider: '@tensorflow/tfjs-backend-wasm', tfjsVersion: tf.version.tfjs, tensorflowVersion: null, threads: 1 };
}

async function initCpu(): Promise<BackendInfo> {
  await tf.setBackend('cpu');
  return { name: 'cpu', provider: '@tensorflow/tfjs-backend-cpu', tfjsVersion: tf.version.tfjs, tensorflowVersion: null, threads: 1 };
}

let current: BackendInfo | null = null;

/** The backend chosen by the last initBackend call, or null. */
export function currentBackend(): BackendInfo | null {
  return current;
}

/**
 * Chooses and initialises a backend. `requested` (or ATFLOW_BACKEND) forces one; 'auto' or nothing
 * tries tensorflow → wasm → cpu. Asking for one that is not available is an error saying how to get it.
 */
export async function initBackend(requested?: BackendName | 'auto'): Promise<BackendInfo> {
  const want = (requested ?? (process.env.ATFLOW_BACKEND as BackendName | 'auto' | undefined) ?? 'auto') || 'auto';
  if (want !== 'auto' && !BACKEND_NAMES.includes(want as BackendName)) {
    // the GPU is not a backend of its own: it is `tensorflow` built against TensorFlow's CUDA wheel
    if (/^(gpu|cuda|tensorflow-gpu|tfjs-node-gpu)$/i.test(want)) {
      throw new AtflowError(
        'BACKEND',
        `unknown backend '${want}' (ATFLOW_BACKEND / --backend): the GPU is used through the 'tensorflow' backend built for CUDA. ` +
          'Run `npm run setup:tensorflow -- --gpu` once (it builds @tensorflow/tfjs-node-gpu against the pip wheel tensorflow==2.21.0; ' +
          ('it needs python3 with pip, a C++ toolchain for node-gyp, an NVIDIA ' +
            'GPU with its driver, and the CUDA libraries: `pip install ' +
            "'tensorflow[and-cuda]'` brings them), ") +
          `then pass --backend tensorflow (or nothing: it is picked first when built). Expected one of auto, ${BACKEND_NAMES.join(', ')}`,
        { value: want },
      );
    }
    throw new AtflowError(
      'BACKEND',
      `unknown backend '${want}' (ATFLOW_BACKEND / --backend): expected one of auto, ${BACKEND_NAMES.join(', ')}`,
      { value: want },
    );
  }
  // ReLU's gradient as one kernel on every backend (see relu-grad.ts)
  registerReluGrad();
  if (want === 'tensorflow') current = await initTensorflow();
  else if (want === 'wasm') current = await initWasm();
  else if (want === 'cpu') current = await initCpu();
  else if (tensorflowAvailable()) current = await initTensorflow();
  else {
    noticeLostTensorflow();
    try {
      current = await initWasm();
    } catch {
      current = await initCpu();
    }
  }
  return current;
}

let lostNoticeShown = false;
/** The automatic choice falls back to wasm: say so once per process if a tensorflow build was lost (see tensorflow-setup.ts). */
function noticeLostTensorflow(): void {
  if (lostNoticeShown) return;
  lostNoticeShown = true;
  const lost = lostTensorflowSetup();
  if (lost) process.stderr.write(`atflow: ${lost}. Running on wasm (ATFLOW_BACKEND=wasm chooses it and silences this).\n`);
}

/** Backends that can be initialised in this process (for conformance suites). */
export function availableBackends(): BackendName[] {
  const out: BackendName[] = ['cpu', 'wasm'];
  if (tensorflowAvailable()) out.push('tensorflow');
  return out;
}

export function describeBackend(b: BackendInfo): string {
  return (
    `${b.name} (${b.provider}, tfjs ` +
    `${b.tfjsVersion}${b.tensorflowVersion ? `, TensorFlow ${b.tensorflowVersion}` : ''}, ` +
    `${b.threads} thread${b.threads === 1 ? '' : 's'})`
  );
}
