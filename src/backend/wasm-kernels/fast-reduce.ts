import * as tf from '@tensorflow/tfjs';
import { release, reshape, runWasmKernel, type WasmBackendLike } from './wasm-calls';

/**
 * float32 Sum / Mean over a leading run of axes ([0..k): BatchNorm statistics, bias and broadcast-add
 * gradients, e.g. [N,H,W,C] → [C]) or a trailing run ([k..r): per-row reductions) through fast wasm
 * kernels. The stock wasm reduction first moves the reduced axes innermost with a generic transpose
 * (~30 ms for [16,32,32,64]).
 *  - leading: x viewed as [1, M, 1, C] and one XNNPACK average pooling with an M×1 window (~0.5 ms;
 *    a product ones[1,M]·X[M,C] would make X the weights operand, which XNNPACK repacks each call);
 *  - trailing: X[R,M]·ones[M,1], one XNNPACK product with X as the input operand.
 * Returns null for other axis sets and dtypes (the caller falls back to the stock kernel). The result
 * has the reduced shape without kept dims.
 */
export function fastReduce(backend: WasmBackendLike, x: tf.TensorInfo, axis: number | number[], op: 'sum' | 'mean'): tf.TensorInfo | null {
  if (x.dtype !== 'float32') return null;
  const shape = x.shape;
  const rank = shape.length;
  if (rank === 0) return null;
  const axes = [...new Set(tf.util.parseAxisParam(axis, shape))].sort((a, b) => a - b);
  if (axes.length === 0) return null;
  if (!axes.every((a, i) => i === 0 || a === axes[i - 1] + 1)) return null;
  const leading = axes[0] === 0;
  const trailing = axes[axes.length - 1] === rank - 1;
  if (!leading && !trailing) return null;
  const size = (dims: readonly number[]) => dims.reduce((p, d) => p * d, 1);
  const outShape = shape.filter((_, i) => !axes.includes(i));
  const m = size(axes.map((a) => shape[a]));
  const rest = size(outShape);
  if (m === 0 || rest === 0) return null;
  // reducing axes of size 1 changes nothing (XNNPACK refuses a 1×1 pooling window)
  if (m === 1) return reshape(backend, x, outShape);

  let reduced: tf.TensorInfo;
  let isMean: boolean;
  if (leading) {
    const view = reshape(backend, x, [1, m, 1, rest]);
    reduced = runWasmKernel(
      'AvgPool',
      backend,
      { x: view },
      { filterSize: [m, 1], strides: [1, 1], pad: 'valid', dimRoundingMode: undefined },
    );
    release(backend, view);
    isMean = true;
  } else {
    const view = reshape(backend, x, [1, rest, m]);
    const ones = runWasmKernel('Fill', backend, {}, { shape: [1, m, 1], value: 1, dtype: 'float32' });
    reduced = runWasmKernel('BatchMatMul', backend, { a: view, b: ones }, { transposeA: false, transposeB: false });
    release(backend, view, ones);
    isMean = false;
  }
  const wantMean = op === 'mean';
  if (isMean !== wantMean) {
    const factor = runWasmKernel('Fill', backend, {}, { shape: [], value: wantMean ? 1 / m : m, dtype: 'float32' });
    const scaled = runWasmKernel('Multiply', backend, { a: reduced, b: factor });
    release(backend, reduced, factor);
    reduced = scaled;
  }
  const out = reshape(backend, reduced, outShape);
  release(backend, reduced);
  return out;
}

/** The shape with reduced axes kept as 1s (keepDims). */
export function keptShape(shape: readonly number[], axis: number | number[]): number[] {
  const axes = tf.util.parseAxisParam(axis, [...shape]);
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}
