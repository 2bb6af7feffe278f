import * as tf from '@tensorflow/tfjs';
import { release, reshape, runWasmKernel, WasmBackendLike } from './wasm-calls';

/**
 * A float32 sum over a leading run of axes ([0..k): BatchNorm statistics and bias / broadcast-add
 * gradients, e.g. [N,H,W,C] → [C]) or a trailing run ([k..r): per-row sums), as one XNNPACK matrix
 * product with a vector of ones: ones[1,M]·X[M,C] or X[R,M]·ones[M,1]. The stock wasm reduction first
 * transposes the reduced axes innermost with a generic (slow) transpose. Returns null for other axis
 * sets (the caller falls back to the stock kernel). The result has the reduced shape without kept dims.
 */
export function sumAsMatMul(backend: WasmBackendLike, x: tf.TensorInfo, axis: number | number[]): tf.TensorInfo | null {
  if (x.dtype !== 'float32') return null;
  const shape = x.shape;
  const rank = shape.length;
  if (rank === 0) return null;
  const axes = [...new Set(tf.util.parseAxisParam(axis, shape))].sort((a, b) => a - b);
  if (axes.length === 0) return null;
  const contiguous = axes.every((a, i) => i === 0 || a === axes[i - 1] + 1);
  if (!contiguous) return null;
  const leading = axes[0] === 0;
  const trailing = axes[axes.length - 1] === rank - 1;
  if (!leading && !trailing) return null;
  const size = (dims: readonly number[]) => dims.reduce((p, d) => p * d, 1);
  const outShape = shape.filter((_, i) => !axes.includes(i));
  const m = size(axes.map((a) => shape[a]));
  const rest = size(outShape);
  if (m === 0 || rest === 0) return null;
  const ones = runWasmKernel('Fill', backend, {}, { shape: leading ? [1, 1, m] : [1, m, 1], value: 1, dtype: 'float32' });
  const x3 = reshape(backend, x, leading ? [1, m, rest] : [1, rest, m]);
  const product = leading
    ? runWasmKernel('BatchMatMul', backend, { a: ones, b: x3 }, { transposeA: false, transposeB: false })
    : runWasmKernel('BatchMatMul', backend, { a: x3, b: ones }, { transposeA: false, transposeB: false });
  release(backend, ones, x3);
  const out = reshape(backend, product, outShape);
  release(backend, product);
  return out;
}

/** The shape with reduced axes kept as 1s (keepDims). */
export function keptShape(shape: readonly number[], axis: number | number[]): number[] {
  const axes = tf.util.parseAxisParam(axis, [...shape]);
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}
