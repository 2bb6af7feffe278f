import type * as tf from '@tensorflow/tfjs';
import { fastReduce, keptShape } from './fast-reduce';
import { release, reshape, runStock, type KernelArgs } from './wasm-calls';

/**
 * Mean over leading axes (BatchNorm's batch statistics: tf.moments over [0,1,2] is one XNNPACK
 * average pooling) or trailing axes (see fastReduce); other cases use the stock kernel.
 */
function mean(args: KernelArgs<'x'>): tf.TensorInfo | tf.TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const { axis, keepDims } = attrs as unknown as tf.MeanAttrs;
  const out = fastReduce(backend, inputs.x, axis, 'mean');
  if (!out) return runStock('Mean', args as never);
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
