import * as tf from '@tensorflow/tfjs';
import type { Model } from '../src/core/model';

/**
 * FLOPs of a model, counted from the shapes its kernels actually see: one eval-mode forward on a
 * single example is traced with tf.profile, and every convolution and matrix product contributes
 * 2·MACs (the convention of papers and of PyTorch's flop counters). Element-wise work (BN, ReLU,
 * pooling, adds) is left out, as usual, so GFLOP/s figures are comparable across frameworks.
 */
export interface ModelFlops {
  /** 2·MACs of one forward pass of one example. */
  readonly forwardPerExample: number;
  /** Per kernel name: its share of forwardPerExample (for reports and tests). */
  readonly byKernel: Readonly<Record<string, number>>;
}

const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** 2·MACs of one traced kernel call, or 0 for kernels that are not convolutions or matrix products. */
export function kernelFlops(
  name: string,
  inputShapes: readonly (readonly number[])[],
  outputShapes: readonly (readonly number[])[],
): number {
  const out = outputShapes[0];
  if (!out) return 0;
  switch (name) {
    case 'Conv2D':
    case 'FusedConv2D': {
      // filter HWIO: every output element is kh·kw·cin multiply-adds
      const [kh, kw, cin] = inputShapes[1];
      return 2 * product(out) * kh * kw * cin;
    }
    case 'DepthwiseConv2dNative':
    case 'FusedDepthwiseConv2D': {
      const [kh, kw] = inputShapes[1];
      return 2 * product(out) * kh * kw;
    }
    case 'BatchMatMul':
    case '_FusedMatMul':
    case 'MatMul': {
      // a holds batch·M·K elements whichever way it is transposed, and out holds batch·M·N
      const n = out[out.length - 1];
      const k = product(inputShapes[0]) / (product(out) / n);
      return 2 * product(out) * k;
    }
    default:
      return 0;
  }
}

/** Traces one eval-mode forward of a single zero example through `model` on the current backend. */
export async function countModelFlops(model: Model): Promise<ModelFlops> {
  const [h, w, c] = model.inputShape;
  const x = tf.zeros([1, h, w, c]) as tf.Tensor4D;
  try {
    const info = await tf.profile(() => model.apply(x, 'eval'));
    tf.dispose(info.result as tf.Tensor);
    const byKernel: Record<string, number> = {};
    let total = 0;
    for (const k of info.kernels) {
      const f = kernelFlops(k.name, k.inputShapes, k.outputShapes);
      if (f === 0) continue;
      byKernel[k.name] = (byKernel[k.name] ?? 0) + f;
      total += f;
    }
    return { forwardPerExample: total, byKernel };
  } finally {
    x.dispose();
  }
}

/**
 * Work of each benchmark measure in forward-pass units (F = one forward of the batch). A backward
 * pass costs F per gradient it produces: w.r.t. activations (to reach the input) and w.r.t. weights.
 *   forward: F;  grad_x: F + F (input gradient only);  train_step: F + 2F;
 *   pgd10_at_step: 10 × grad_x + train_step = 23F (docs/algorithms.md §6: 11 forward + 11 backward passes).
 */
export const FORWARD_UNITS = { forward: 1, grad_x: 2, train_step: 3, pgd10_at_step: 23 } as const;
export type Measure = keyof typeof FORWARD_UNITS;
export const MEASURES: readonly Measure[] = ['forward', 'grad_x', 'train_step', 'pgd10_at_step'];
