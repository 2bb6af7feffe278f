import * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../core/errors';

/**
 * Backend choice: `tensorflow` (tfjs-node-gpu, then tfjs-node: libtensorflow, its own thread pools),
 * else `wasm` (XNNPACK + atflow's training kernels), else `cpu` (pure JS: a numerical reference).
 * ATFLOW_BACKEND=cpu|wasm|tensorflow forces one.
 */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

export interface BackendInfo {
  readonly name: BackendName;
  /** Which package provides it: '@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-backend-wasm', ... */
  readonly provider: string;
  /** tfjs version, and for `tensorflow` the TensorFlow C library version it runs on. */
  readonly tfjsVersion: string;
  readonly tensorflowVersion: string | null;
  readonly threads: number;
}

const TF_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

const HOW_TO_GET_TENSORFLOW =
  'install it with `npm install @tensorflow/tfjs-node` (or `-node-gpu`) where the libtensorflow download works, ' +
  'or build it from a pip TensorFlow wheel with `npm run setup:tensorflow` (see README, "Backends")';

let loadedTfNode: { pkg: string; mod: any } | null | undefined;

/** Loads tfjs-node(-gpu) if installed and built; null if not. Never throws. */
export function loadTensorflowBinding(): { pkg: string; mod: any } | null {
  if (loadedTfNode !== undefined) return loadedTfNode;
  loadedTfNode = null;
  const only = process.env.ATFLOW_TFJS_NODE_PACKAGE;
  for (const pkg of TF_NODE_PACKAGES) {
    if (only && only !== pkg) continue;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mod = require(pkg);
      loadedTfNode = { pkg, mod };
      break;
    } catch {
      // not installed, or its native addon is missing: try the next one
    }
  }
  return loadedTfNode;
}

export function tensorflowAvailable(): boolean {
  return loadTensorflowBinding() !== null;
}

async function initTensorflow(): Promise<BackendInfo> {
  const binding = loadTensorflowBinding();
  if (!binding) throw new AtflowError('BACKEND', `backend 'tensorflow' is not available: ${HOW_TO_GET_TENSORFLOW}`);
  // tfjs-node registers its backend on the tfjs-core instance it depends on; it is the same instance
  // as ours when versions match (they are pinned together in package.json).
  if (!(await tf.setBackend('tensorflow'))) {
    throw new AtflowError('BACKEND', `backend 'tensorflow' failed to initialise (${binding.pkg})`);
  }
  const versions = (binding.mod.version ?? {}) as Record<string, string>;
  const threads = Number(process.env.TF_NUM_INTRAOP_THREADS) || require('os').cpus().length;
  return {
    name: 'tensorflow',
    provider: binding.pkg,
    tfjsVersion: tf.version.tfjs,
    tensorflowVersion: versions.tensorflow ?? tfNodeLibVersion(binding.mod) ?? null,
    threads,
  };
}

function tfNodeLibVersion(mod: any): string | null {
  try {
    const backend = tf.backend() as any;
    const v = backend?.binding?.TF_Version ?? mod?.version?.['tfjs-node'];
    return typeof v === 'string' ? v : null;
  } catch {
    return null;
  }
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
    throw new AtflowError('BACKEND', `unknown backend '${want}' (ATFLOW_BACKEND / --backend): expected one of auto, ${BACKEND_NAMES.join(', ')}`, { value: want });
  }
  if (want === 'tensorflow') current = await initTensorflow();
  else if (want === 'wasm') current = await initWasm();
  else if (want === 'cpu') current = await initCpu();
  else if (tensorflowAvailable()) current = await initTensorflow();
  else {
    try {
      current = await initWasm();
    } catch {
      current = await initCpu();
    }
  }
  return current;
}

/** Backends that can be initialised in this process (for conformance suites). */
export function availableBackends(): BackendName[] {
  const out: BackendName[] = ['cpu', 'wasm'];
  if (tensorflowAvailable()) out.push('tensorflow');
  return out;
}

export function describeBackend(b: BackendInfo): string {
  return `${b.name} (${b.provider}, tfjs ${b.tfjsVersion}${b.tensorflowVersion ? `, TensorFlow ${b.tensorflowVersion}` : ''}, ${b.threads} thread${b.threads === 1 ? '' : 's'})`;
}
