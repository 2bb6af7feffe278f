import * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../core/errors';
import type { Mode, Model, NamedVariable } from '../core/model';
import { Rng, deriveSeed } from '../core/rng';
import type { Architecture } from './architecture';
import { slotSize, type TensorSlot, tfShape, torchToTfValues } from './layers/slot';

/**
 * A Model built from an Architecture: every slot gets a variable, initialised from
 * deriveSeed(seed, 'init', i) where i is the slot's position in the state_dict. Values are drawn in
 * PyTorch's layout (OIHW, [out, in]) and converted, the same path a checkpoint load takes.
 */
export class Network implements Model {
  readonly name: string;
  readonly numClasses: number;
  readonly inputShape: readonly [number, number, number];
  readonly parameters: readonly NamedVariable[];
  readonly buffers: readonly NamedVariable[];
  /** parameters and buffers interleaved as PyTorch's state_dict() lists them. */
  readonly stateDict: readonly NamedVariable[];
  private disposed = false;

  constructor(
    private readonly architecture: Architecture,
    seed: number,
  ) {
    this.name = architecture.name;
    this.numClasses = architecture.numClasses;
    this.inputShape = architecture.inputShape;
    const all: NamedVariable[] = [];
    try {
      architecture.slots.forEach((slot, i) => {
        slot.variable = createVariable(slot, deriveSeed(seed, 'init', i));
        all.push({ name: slot.name, variable: slot.variable });
      });
    } catch (e) {
      for (const nv of all) nv.variable.dispose();
      throw e;
    }
    this.stateDict = all;
    const roles = new Map(architecture.slots.map((s) => [s.name, s.role]));
    this.parameters = all.filter((nv) => roles.get(nv.name) === 'parameter');
    this.buffers = all.filter((nv) => roles.get(nv.name) === 'buffer');
  }

  apply(x: tf.Tensor4D, mode: Mode): tf.Tensor2D {
    if (this.disposed) throw new AtflowError('ARGUMENT', `model '${this.name}' was disposed`);
    if (mode !== 'train' && mode !== 'eval') {
      throw new AtflowError('ARGUMENT', `model '${this.name}': mode must be 'train' or 'eval', got ${JSON.stringify(mode)}`);
    }
    const [, h, w, c] = x.shape;
    const [eh, ew, ec] = this.inputShape;
    if (x.rank !== 4 || h !== eh || w !== ew || c !== ec) {
      throw new AtflowError('SHAPE', `model '${this.name}' takes NHWC input [B, ${eh}, ${ew}, ${ec}], got [${x.shape.join(', ')}]`, {
        expected: [eh, ew, ec],
        got: x.shape,
      });
    }
    if (x.dtype !== 'float32') {
      throw new AtflowError('SHAPE', `model '${this.name}' takes float32 input, got ${x.dtype}`);
    }
    return tf.tidy(() => this.architecture.forward(x, mode));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const nv of this.stateDict) nv.variable.dispose();
    for (const slot of this.architecture.slots) slot.variable = null;
  }

  /** The slot behind a state_dict name (layout and PyTorch shape), for checkpoint I/O. */
  slot(name: string): TensorSlot | undefined {
    return this.architecture.slots.find((s) => s.name === name);
  }
}

function createVariable(slot: TensorSlot, seed: number): tf.Variable {
  const trainable = slot.role === 'parameter';
  if (slot.dtype === 'int32') {
    const v = slot.init.kind === 'constant' ? slot.init.value : 0;
    return tf.tidy(() => tf.variable(tf.fill(tfShape(slot), v, 'int32'), false));
  }
  const values = torchToTfValues(initialValues(slot, seed), slot.shape, slot.layout);
  return tf.tidy(() => tf.variable(tf.tensor(values, tfShape(slot), 'float32'), trainable));
}

/** The slot's initial values in PyTorch layout order. */
export function initialValues(slot: TensorSlot, seed: number): Float32Array {
  const out = new Float32Array(slotSize(slot.shape));
  const init = slot.init;
  if (init.kind === 'constant') return out.fill(init.value);
  const rng = new Rng(seed);
  if (init.kind === 'uniform') return rng.fillUniform(out, -init.bound, init.bound);
  return rng.fillNormal(out, 0, init.std);
}
