import type * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../core/errors';
import type { Mode } from '../core/model';
import type { TensorSlot } from './layers/slot';

/** What an architecture needs to lay out its tensors; no seed: describing allocates nothing. */
export interface ArchitectureOptions {
  readonly numClasses: number;
  /** [H, W, C] of one input image. */
  readonly inputShape: readonly [number, number, number];
}

/**
 * A model's structure: its state_dict slots (names, PyTorch shapes, init rules) and its forward pass.
 * `describeModel` reads the slots only; `createModel` fills them with variables (see network.ts).
 */
export interface Architecture {
  readonly name: string;
  readonly numClasses: number;
  readonly inputShape: readonly [number, number, number];
  /** Every state_dict entry, in PyTorch's state_dict order. */
  readonly slots: readonly TensorSlot[];
  forward(x: tf.Tensor4D, mode: Mode): tf.Tensor2D;
}

export function checkArchitectureOptions(model: string, opts: ArchitectureOptions): void {
  const k = opts.numClasses;
  if (!Number.isInteger(k) || k < 2) {
    throw new AtflowError('ARGUMENT', `${model}: numClasses must be an integer ≥ 2, got ${k}`, { field: 'numClasses', value: k });
  }
  const s = opts.inputShape;
  if (!Array.isArray(s) || s.length !== 3 || !s.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new AtflowError('ARGUMENT', `${model}: inputShape must be [H, W, C] with positive integers, got ${JSON.stringify(s)}`, {
      field: 'inputShape',
      value: s,
    });
  }
}

/** An input too small (or too large) for the reference head: say which sizes fit, rather than fail inside tfjs. */
export function unsupportedInput(model: string, inputShape: readonly number[], why: string, hint: string): AtflowError {
  return new AtflowError('SHAPE', `${model}: input ${inputShape.join('×')} is not supported: ${why}; ${hint}`, {
    model,
    inputShape: [...inputShape],
  });
}

/**
 * The reference heads flatten after a fixed avg_pool2d(k) into a Linear sized for one pooled pixel
 * (e.g. ResNet-18: avg_pool2d(4) → 512 features). Inputs whose final map pools to anything but 1×1
 * fail in PyTorch too; we say so before building anything.
 */
export function requireOnePooledPixel(
  model: string,
  inputShape: readonly number[],
  finalH: number,
  finalW: number,
  pool: number,
  hint: string,
): void {
  const ok = (n: number) => n >= pool && n < 2 * pool;
  if (!ok(finalH) || !ok(finalW)) {
    throw unsupportedInput(
      model,
      inputShape,
      `the last feature map is ${finalH}×${finalW} and the reference head's ` +
        `avg_pool2d(${pool}) needs ${pool}..${2 * pool - 1} pixels per side to ` +
        `give the 1×1 map its classifier expects`,
      hint,
    );
  }
}
