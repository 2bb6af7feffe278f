import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { batchMatMulConfig } from './batch-mat-mul';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter';
import { conv2dBackpropInputConfig } from './conv2d-backprop-input';
import { maxPoolGradConfig } from './max-pool-grad';
import { meanConfig } from './mean';
import { sumConfig } from './sum';
import { tileConfig } from './tile';
import { rememberStockKernel } from './wasm-calls';

/** atflow's wasm training kernels, each a composition of fast (XNNPACK) wasm kernels. */
export const WASM_TRAINING_KERNELS: readonly tf.KernelConfig[] = [
  conv2dBackpropInputConfig,
  conv2dBackpropFilterConfig,
  maxPoolGradConfig,
  batchMatMulConfig,
  tileConfig,
  sumConfig,
  meanConfig,
];

let registered = false;

/**
 * Registers the training kernels for 'wasm', replacing the stock ones. The stock kernel stays
 * reachable as the fallback for cases a replacement does not handle; its setup function is kept so
 * that fallback works once the backend initialises. Idempotent.
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  for (const config of WASM_TRAINING_KERNELS) {
    const stock = tf.getKernel(config.kernelName, 'wasm');
    if (stock) {
      rememberStockKernel(stock);
      tf.unregisterKernel(config.kernelName, 'wasm');
    }
    tf.registerKernel({ ...config, setupFunc: stock?.setupFunc, disposeFunc: stock?.disposeFunc });
  }
}

/** Names of the kernels atflow registers for 'wasm'. */
export function wasmTrainingKernelNames(): string[] {
  return WASM_TRAINING_KERNELS.map((k) => k.kernelName);
}
