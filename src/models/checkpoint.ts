import * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../core/errors';
import type { Model, NamedVariable } from '../core/model';
import { SlotLayout, tfToTorchValues, torchToTfValues } from './layers/slot';
import { readSafetensorsFile, SafetensorsTensor, writeSafetensorsFile } from './safetensors';

/**
 * Model weights ↔ safetensors with PyTorch's state_dict names and layouts, so a checkpoint written here
 * loads with `model.load_state_dict(safetensors.torch.load_file(path))` and vice versa.
 * Layouts follow the Model convention (core/model.ts): a rank-4 variable is a conv kernel (tfjs HWIO ↔
 * PyTorch OIHW), a rank-2 variable a linear weight ([in, out] ↔ [out, in]), anything else is copied.
 * int32 variables (num_batches_tracked) are stored as I64, PyTorch's dtype.
 */

/** One tensor in PyTorch layout, as values. */
export interface StateDictEntry {
  readonly name: string;
  readonly dtype: 'F32' | 'I64';
  readonly shape: readonly number[];
  readonly values: Float32Array | Int32Array;
}

function layoutOf(v: tf.Variable): SlotLayout {
  return v.rank === 4 ? 'conv' : v.rank === 2 ? 'dense' : 'plain';
}

function torchShape(v: tf.Variable): number[] {
  const s = v.shape as number[];
  if (v.rank === 4) return [s[3], s[2], s[0], s[1]];
  if (v.rank === 2) return [s[1], s[0]];
  return [...s];
}

function fileDtype(v: tf.Variable): 'F32' | 'I64' {
  if (v.dtype === 'float32') return 'F32';
  if (v.dtype === 'int32') return 'I64';
  throw new AtflowError('ARGUMENT', `variable dtype ${v.dtype} cannot be checkpointed`);
}

/** state_dict order when the model knows it (Network), else parameters then buffers. */
function entriesOf(model: Model): readonly NamedVariable[] {
  const withOrder = model as Model & { stateDict?: readonly NamedVariable[] };
  return withOrder.stateDict ?? [...model.parameters, ...model.buffers];
}

/** The model's state_dict in PyTorch layout (a copy of every value). */
export function stateDictOf(model: Model): StateDictEntry[] {
  return entriesOf(model).map(({ name, variable }) => {
    const shape = torchShape(variable);
    // Permuted in JS from a copy of the variable's values: no tensor is created, so none can leak.
    const values = tfToTorchValues(variable.dataSync() as Float32Array | Int32Array, shape, layoutOf(variable));
    return { name, dtype: fileDtype(variable), shape, values };
  });
}

function toBytes(e: StateDictEntry): Uint8Array {
  if (e.dtype === 'F32') {
    const f = e.values instanceof Float32Array ? e.values : Float32Array.from(e.values);
    return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  }
  const wide = new BigInt64Array(e.values.length);
  for (let i = 0; i < e.values.length; i++) wide[i] = BigInt(Math.trunc(e.values[i]));
  return new Uint8Array(wide.buffer);
}

/**
 * The model's weights as safetensors tensors plus the metadata saveWeights writes: format "pt" (as
 * safetensors.torch does) and the model's name, classes and input shape; `extra` adds string pairs.
 * A host copy: the model may change afterwards (the checkpoint store holds the best epoch's so).
 */
export function weightsTensors(model: Model, extra: Readonly<Record<string, string>> = {}): { tensors: SafetensorsTensor[]; metadata: Record<string, string> } {
  const tensors: SafetensorsTensor[] = stateDictOf(model).map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, data: toBytes(e) }));
  return {
    tensors,
    metadata: {
      format: 'pt',
      'atflow.model': model.name,
      'atflow.num_classes': String(model.numClasses),
      'atflow.input_shape': model.inputShape.join(','),
      ...extra,
    },
  };
}

/** Saves every parameter and buffer to one safetensors file, durably and atomically (weightsTensors). */
export function saveWeights(model: Model, file: string, extra: Readonly<Record<string, string>> = {}): void {
  const { tensors, metadata } = weightsTensors(model, extra);
  writeSafetensorsFile(file, tensors, metadata);
}

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, 5).map((n) => `'${n}'`).join(', ');
  return names.length > 5 ? `${shown} and ${names.length - 5} more` : shown;
}

/**
 * Loads tensors (PyTorch names and layouts) into the model. Every name, dtype and shape is checked
 * before any variable changes, so a mismatching file leaves the model as it was.
 */
export function loadStateDict(model: Model, tensors: ReadonlyMap<string, SafetensorsTensor>, source: string): void {
  const entries = entriesOf(model);
  const expectedNames = new Set(entries.map((e) => e.name));
  const missing = entries.map((e) => e.name).filter((n) => !tensors.has(n));
  if (missing.length > 0) {
    throw new AtflowError('DATA_FILE', `${source}: missing tensor(s) ${listNames(missing)} that model '${model.name}' needs (${entries.length} tensors)`, {
      file: source,
      missing,
    });
  }
  const unexpected = [...tensors.keys()].filter((n) => !expectedNames.has(n));
  if (unexpected.length > 0) {
    throw new AtflowError('DATA_FILE', `${source}: tensor(s) ${listNames(unexpected)} do not belong to model '${model.name}'`, {
      file: source,
      unexpected,
    });
  }
  const decoded: { variable: tf.Variable; values: Float32Array | Int32Array; shape: number[] }[] = [];
  for (const { name, variable } of entries) {
    const t = tensors.get(name)!;
    const dtype = fileDtype(variable);
    const shape = torchShape(variable);
    if (t.dtype !== dtype) {
      throw new AtflowError('DATA_FILE', `${source}: tensor '${name}' is ${t.dtype}, model '${model.name}' expects ${dtype}`, { file: source, tensor: name });
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new AtflowError(
        'DATA_FILE',
        `${source}: tensor '${name}' has shape [${t.shape.join(', ')}], model '${model.name}' expects [${shape.join(', ')}] (PyTorch layout)`,
        { file: source, tensor: name, got: t.shape, expected: shape },
      );
    }
    decoded.push({ variable, shape, values: dtype === 'F32' ? new Float32Array(new Uint8Array(t.data).buffer) : narrowInt64(t, source) });
  }
  tf.tidy(() => {
    for (const d of decoded) {
      const values = torchToTfValues(d.values, d.shape, layoutOf(d.variable));
      d.variable.assign(tf.tensor(values, d.variable.shape, d.variable.dtype));
    }
  });
}

function narrowInt64(t: SafetensorsTensor, source: string): Int32Array {
  const wide = new BigInt64Array(new Uint8Array(t.data).buffer);
  const out = new Int32Array(wide.length);
  for (let i = 0; i < wide.length; i++) {
    if (wide[i] > 2147483647n || wide[i] < -2147483648n) {
      throw new AtflowError('DATA_FILE', `${source}: tensor '${t.name}' holds ${wide[i]}, beyond the int32 range atflow keeps counters in`, { file: source, tensor: t.name });
    }
    out[i] = Number(wide[i]);
  }
  return out;
}

/** Loads a safetensors file written by saveWeights or by PyTorch (`save_file(model.state_dict(), path)`). */
export function loadWeights(model: Model, file: string): void {
  const { tensors } = readSafetensorsFile(file);
  loadStateDict(model, tensors, `checkpoint ${file}`);
}
