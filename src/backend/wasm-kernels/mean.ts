import * as tf from '@tensorflow/tfjs';
import { keptShape, sumAsMatMul } from './reduce-as-matmul';
import { release, reshape, runStock, runWasmKernel, KernelArgs } from './wasm-calls';

/**
 * Mean over leading axes (BatchNorm's batch statistics, tf.moments over [0,1,2]) or trailing axes:
 * the ones-product sum of sumAsMatMul times 1/M (one XNNPACK multiply). Other cases: stock kernel.
 */
function mean(args: KernelArgs<'x'>): tf.TensorInfo | tf.TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const { axis, keepDims } = attrs as unknown as tf.MeanAttrs;
  const total = sumAsMatMul(backend, inputs.x, axis);
  if (!total) return runStock('Mean', args as never);
  const count = inputs.x.shape.reduce((p, d) => p * d, 1) / Math.max(1, total.shape.reduce((p, d) => p * d, 1));
  const scale = runWasmKernel('Fill', backend, {}, { shape: [], value: 1 / count, dtype: 'float32' });
  const out = runWasmKernel('Multiply', backend, { a: total, b: scale });
  release(backend, total, scale);
  if (!keepDims) return out;
  const kept = reshape(backend, out, keptShape(inputs.x.shape, axis));
  release(backend, out);
  return kept;
}

export const meanConfig: tf.KernelConfig = {
  kernelName: 'Mean',
  backendName: 'wasm',
  kernelFunc: mean as unknown as tf.KernelFunc,
};
