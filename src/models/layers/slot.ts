import type * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../../core/errors';

/**
 * One entry of a model's state_dict, described before any memory is allocated: describeModel lists
 * slots to count parameters of WRN-34-10 without building it; createModel then fills each slot's variable.
 */
export type SlotRole = 'parameter' | 'buffer';

/**
 * How the tensor is stored in tfjs relative to PyTorch:
 * 'conv'  PyTorch OIHW [out, in, kh, kw]  ↔ tfjs HWIO [kh, kw, in, out]
 * 'dense' PyTorch [out, in]               ↔ tfjs [in, out]
 * 'plain' same layout in both (vectors, scalars).
 */
export type SlotLayout = 'conv' | 'dense' | 'plain';

/** How a slot is initialised; every rule is expressed in PyTorch's terms (docs/algorithms.md §3). */
export type InitRule =
  | { readonly kind: 'uniform'; readonly bound: number } // U(-bound, bound)
  | { readonly kind: 'normal'; readonly std: number } // N(0, std²)
  | { readonly kind: 'constant'; readonly value: number };

export interface TensorSlot {
  /** PyTorch state_dict name, e.g. 'layer1.0.bn1.running_var'. */
  readonly name: string;
  readonly role: SlotRole;
  /** 'int32' only for num_batches_tracked (int64 in PyTorch and in files). */
  readonly dtype: 'float32' | 'int32';
  /** Shape in PyTorch's layout (what files store). */
  readonly shape: readonly number[];
  readonly layout: SlotLayout;
  readonly init: InitRule;
  /** Set by createModel; null in a description. */
  variable: tf.Variable | null;
}

export function makeSlot(
  name: string,
  role: SlotRole,
  shape: readonly number[],
  layout: SlotLayout,
  init: InitRule,
  dtype: 'float32' | 'int32' = 'float32',
): TensorSlot {
  return { name, role, dtype, shape: [...shape], layout, init, variable: null };
}

export function slotSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The tfjs shape of a slot given its PyTorch shape. */
export function tfShape(slot: Pick<TensorSlot, 'shape' | 'layout'>): number[] {
  const s = slot.shape;
  if (slot.layout === 'conv') return [s[2], s[3], s[1], s[0]];
  if (slot.layout === 'dense') return [s[1], s[0]];
  return [...s];
}

/**
 * PyTorch-layout values → tfjs layout, permuted in JS: plain loops over typed arrays stay fast on every
 * backend (a cpu-backend transpose of a 512×512×3×3 kernel takes seconds under jest).
 */
export function torchToTfValues<T extends Float32Array | Int32Array>(values: T, torchShape: readonly number[], layout: SlotLayout): T {
  if (layout === 'plain') return values.slice() as T;
  const out = new (values.constructor as new (n: number) => T)(values.length);
  if (layout === 'dense') {
    const [rows, cols] = torchShape; // [out, in] → [in, out]
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c];
    return out;
  }
  const [o, i, kh, kw] = torchShape; // OIHW → HWIO
  let src = 0;
  for (let a = 0; a < o; a++)
    for (let b = 0; b < i; b++)
      for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) out[((y * kw + x) * i + b) * o + a] = values[src++];
  return out;
}

/** tfjs-layout values → PyTorch layout (the inverse of torchToTfValues). */
export function tfToTorchValues<T extends Float32Array | Int32Array>(values: T, torchShape: readonly number[], layout: SlotLayout): T {
  if (layout === 'plain') return values.slice() as T;
  const out = new (values.constructor as new (n: number) => T)(values.length);
  if (layout === 'dense') {
    const [rows, cols] = torchShape;
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = values[c * rows + r];
    return out;
  }
  const [o, i, kh, kw] = torchShape;
  let dst = 0;
  for (let a = 0; a < o; a++)
    for (let b = 0; b < i; b++)
      for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) out[dst++] = values[((y * kw + x) * i + b) * o + a];
  return out;
}

/** The slot's variable; an error if the model was only described, or already disposed. */
export function variableOf(slot: TensorSlot): tf.Variable {
  if (slot.variable === null || slot.variable.isDisposed) {
    throw new AtflowError('ARGUMENT', `tensor '${slot.name}' has no weights: the model was only described, or it was disposed`, {
      name: slot.name,
    });
  }
  return slot.variable;
}
