import * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../../core/errors';
import type { NamedVariable } from '../../core/model';

/** One state_dict entry inside the shared state buffer (offsets in 4-byte elements). */
export interface StateEntry {
  readonly name: string;
  readonly role: 'parameter' | 'buffer';
  readonly dtype: 'float32' | 'int32';
  readonly shape: readonly number[];
  readonly offset: number;
  readonly size: number;
}

/** Where every parameter and buffer lives in the SharedArrayBuffer the main thread broadcasts weights through. */
export interface StateLayout {
  readonly entries: readonly StateEntry[];
  /** Total 4-byte elements. */
  readonly length: number;
}

/** Parameters first, then buffers, each in the model's (state_dict) order. */
export function stateLayout(parameters: readonly NamedVariable[], buffers: readonly NamedVariable[]): StateLayout {
  const entries: StateEntry[] = [];
  let offset = 0;
  const add = (nv: NamedVariable, role: StateEntry['role']) => {
    const dtype = nv.variable.dtype;
    if (dtype !== 'float32' && dtype !== 'int32') {
      throw new AtflowError('ARGUMENT', `data-parallel: '${nv.name}' has dtype ${dtype}; only float32 and int32 state can be shared`, {
        name: nv.name,
      });
    }
    entries.push({ name: nv.name, role, dtype, shape: nv.variable.shape.slice(), offset, size: nv.variable.size });
    offset += nv.variable.size;
  };
  for (const p of parameters) add(p, 'parameter');
  for (const b of buffers) add(b, 'buffer');
  return { entries, length: offset };
}

function view(sab: SharedArrayBuffer, e: StateEntry): Float32Array | Int32Array {
  return e.dtype === 'int32' ? new Int32Array(sab, e.offset * 4, e.size) : new Float32Array(sab, e.offset * 4, e.size);
}

/** Main thread: copies the model's current values into the shared buffer (workers are idle while this runs). */
export function writeState(sab: SharedArrayBuffer, layout: StateLayout, variables: ReadonlyMap<string, tf.Variable>): void {
  for (const e of layout.entries) {
    const v = variables.get(e.name);
    if (!v) throw new AtflowError('ARGUMENT', `data-parallel: the model has no '${e.name}'`, { name: e.name });
    view(sab, e).set(v.dataSync() as Float32Array | Int32Array);
  }
}

/** Worker: assigns the shared buffer's values to its replica (a copy: tensors never alias shared memory). */
export function readState(sab: SharedArrayBuffer, layout: StateLayout, variables: ReadonlyMap<string, tf.Variable>): void {
  for (const e of layout.entries) {
    const v = variables.get(e.name);
    if (!v) throw new AtflowError('ARGUMENT', `data-parallel: the replica has no '${e.name}'`, { name: e.name });
    const values = view(sab, e).slice();
    const t = tf.tensor(values, [...e.shape], e.dtype);
    v.assign(t);
    t.dispose();
  }
}

export function variablesByName(parameters: readonly NamedVariable[], buffers: readonly NamedVariable[]): Map<string, tf.Variable> {
  return new Map([...parameters, ...buffers].map((nv) => [nv.name, nv.variable]));
}
