import type * as tf from '@tensorflow/tfjs';
import { release, runStock, transpose, type KernelArgs } from './wasm-calls';

/**
 * Matrix products with a transposed operand (every dense-layer gradient: dA = dY·Bᵀ, dB = Aᵀ·dY).
 * The stock kernel handles them in a scalar loop; an explicit transpose (one memory pass) followed by
 * the plain XNNPACK product is many times faster.
 */
function batchMatMul(args: KernelArgs<'a' | 'b'>): tf.TensorInfo | tf.TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
  const { a, b } = inputs;
  if ((!transposeA && !transposeB) || a.dtype !== 'float32' || b.dtype !== 'float32') return runStock('BatchMatMul', args as never);
  const lastTwoSwapped = (rank: number): number[] => [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
  const aPlain = transposeA ? transpose(backend, a, lastTwoSwapped(a.shape.length)) : a;
  const bPlain = transposeB ? transpose(backend, b, lastTwoSwapped(b.shape.length)) : b;
  const out = runStock('BatchMatMul', {
    inputs: { a: aPlain, b: bPlain },
    backend: backend as unknown as tf.KernelBackend,
    attrs: { ...attrs, transposeA: false, transposeB: false } as unknown as tf.NamedAttrMap,
  });
  if (aPlain !== a) release(backend, aPlain);
  if (bPlain !== b) release(backend, bPlain);
  return out;
}

export const batchMatMulConfig: tf.KernelConfig = {
  kernelName: 'BatchMatMul',
  backendName: 'wasm',
  kernelFunc: batchMatMul as unknown as tf.KernelFunc,
};
