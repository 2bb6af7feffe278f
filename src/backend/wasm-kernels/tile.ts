import type * as tf from '@tensorflow/tfjs';
import { release, reshape, runStock, runWasmKernel, type KernelArgs } from './wasm-calls';

/**
 * Tile as one broadcasting XNNPACK multiply: x viewed as [1, d0, 1, d1, ...] times ones of shape
 * [r0, 1, r1, 1, ...] is [r0, d0, r1, d1, ...], i.e. tile(x, r) once reshaped. Axes with rep 1 are
 * merged into their neighbours so the rank stays within XNNPACK's limit. Multiplying by 1 keeps
 * every value (NaN, ±Inf, -0) bit-exact.
 */
function tile(args: KernelArgs<'x'>): tf.TensorInfo | tf.TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const { x } = inputs;
  const { reps } = attrs as unknown as tf.TileAttrs;
  if (x.dtype !== 'float32') return runStock('Tile', args as never);
  // Build the broadcast view: runs of rep-1 axes collapse into one data axis.
  const dataShape: number[] = [];
  const onesShape: number[] = [];
  for (let i = 0; i < x.shape.length; i++) {
    if (reps[i] !== 1) {
      dataShape.push(1, x.shape[i]);
      onesShape.push(reps[i], 1);
    } else if (dataShape.length > 0 && onesShape[onesShape.length - 1] === 1) {
      dataShape[dataShape.length - 1] *= x.shape[i];
    } else {
      dataShape.push(x.shape[i]);
      onesShape.push(1);
    }
  }
  if (dataShape.length > 6) return runStock('Tile', args as never);
  const outShape = x.shape.map((d, i) => d * reps[i]);
  const view = reshape(backend, x, dataShape);
  const ones = runWasmKernel('Fill', backend, {}, { shape: onesShape, value: 1, dtype: 'float32' });
  const product = runWasmKernel('Multiply', backend, { a: view, b: ones });
  release(backend, view, ones);
  const out = reshape(backend, product, outShape);
  release(backend, product);
  return out;
}

export const tileConfig: tf.KernelConfig = {
  kernelName: 'Tile',
  backendName: 'wasm',
  kernelFunc: tile as unknown as tf.KernelFunc,
};
