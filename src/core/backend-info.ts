/**
 * Which tfjs backend a run uses, as data: core types (the run-start event, summaries) carry it, so it
 * lives below the backend layer that chooses and initialises one (src/backend/select.ts).
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
