import type * as tf from '@tensorflow/tfjs';
import { fastReduce, keptShape } from './fast-reduce';
import { release, reshape, runStock, type KernelArgs } from './wasm-calls';

/**
 * Sum over leading axes (BatchNorm and bias gradients: [N,H,W,C] → [C]) or trailing axes through
 * XNNPACK pooling / product kernels (see fastReduce); other axis sets and dtypes use the stock kernel.
 */
function sum(args: KernelArgs<'x'>): tf.TensorInfo | tf.TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const { axis, keepDims } = attrs as unknown as tf.SumAttrs;
  const out = fastReduce(backend, inputs.x, axis, 'sum');
  if (!out) return runStock('Sum', args as never);
  if (!keepDims) return out;
  const kept = reshape(backend, out, keptShape(inputs.x.shape, axis));
  release(backend, out);
  return kept;
}

export const sumConfig: tf.KernelConfig = {
  kernelName: 'Sum',
  backendName: 'wasm',
  kernelFunc: sum as unknown as tf.KernelFunc,
};
