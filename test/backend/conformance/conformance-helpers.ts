import * as tf from '@tensorflow/tfjs';
import { availableBackends, type BackendName, initBackend } from '../../../src/backend/select';
import { deriveSeed, Rng } from '../../../src/core/rng';

/**
 * Shared plumbing of the per-backend conformance suites: every backend present other than `cpu` is
 * compared with `cpu` (the pure-JS reference) on the same inputs. Inputs are plain JS arrays from a
 * seeded Rng, so both backends see identical bits; results cross back with dataSync.
 */
export const BACKENDS_UNDER_TEST: BackendName[] = availableBackends().filter((b) => b !== 'cpu');

/** Max |a-b| relative to max |ref|: the suite's tolerance is 1e-4 of the values' scale. */
export const TOLERANCE = 1e-4;

export async function initAllBackends(): Promise<void> {
  for (const b of BACKENDS_UNDER_TEST) await initBackend(b);
  await initBackend('cpu');
}

export function randomValues(shape: readonly number[], seed: number, purpose: string): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  return new Rng(deriveSeed(seed, purpose)).fillUniform(new Float32Array(n), -1, 1);
}

export interface Computed {
  shape: number[];
  values: Float32Array[];
}

/** Runs `f` on backend `name` (inputs built inside from JS arrays), returns its outputs' values; disposes everything. */
export async function computeOn(name: BackendName, f: () => tf.Tensor | tf.Tensor[]): Promise<Computed> {
  await tf.setBackend(name);
  const before = tf.memory().numTensors;
  const outs = tf.tidy(f);
  const list = Array.isArray(outs) ? outs : [outs];
  const values = list.map((t) => Float32Array.from(t.dataSync()));
  const shape = list[0].shape;
  tf.dispose(list);
  if (tf.memory().numTensors !== before) throw new Error(`${name}: ${tf.memory().numTensors - before} tensors leaked`);
  return { shape, values };
}

/** Relative max abs error of `got` against `ref` (scale = max |ref|, at least 1e-12). */
export function relativeError(ref: Float32Array, got: Float32Array): number {
  if (ref.length !== got.length) return Infinity;
  let err = 0;
  let scale = 1e-12;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ref[i] - got[i]);
    err = Number.isNaN(d) ? Infinity : Math.max(err, d);
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return err / scale;
}

const cpuResults = new Map<string, Computed>();

/**
 * Computes `f` on cpu and on `backend`; returns the worst relative error over all outputs. `key` names
 * the case so that the (slow) cpu reference is computed once for all backends.
 */
export async function compareWithCpu(
  backend: BackendName,
  key: string,
  f: () => tf.Tensor | tf.Tensor[],
): Promise<{ error: number; shape: number[] }> {
  let ref = cpuResults.get(key);
  if (!ref) {
    ref = await computeOn('cpu', f);
    cpuResults.set(key, ref);
  }
  const got = await computeOn(backend, f);
  if (ref.values.length !== got.values.length) throw new Error('output count differs');
  const error = Math.max(...ref.values.map((r, i) => relativeError(r, got.values[i])));
  return { error, shape: got.shape };
}

/** Every value of every axis, each case cycling the axes at co-prime rates (a deterministic covering subset). */
export function coveringCases<T extends Record<string, readonly unknown[]>>(
  axes: T,
  count: number,
): Array<{ [K in keyof T]: T[K][number] }> {
  const keys = Object.keys(axes) as Array<keyof T>;
  const longest = Math.max(...keys.map((k) => axes[k].length));
  if (count < longest) throw new Error(`coveringCases: ${count} cases cannot cover an axis of ${longest} values`);
  const cases: Array<{ [K in keyof T]: T[K][number] }> = [];
  for (let i = 0; i < count; i++) {
    const c = {} as { [K in keyof T]: T[K][number] };
    keys.forEach((k, axis) => {
      const values = axes[k];
      // axis 0 runs fastest; later axes advance with a different step so pairs vary
      c[k] = values[(i + Math.floor(i / values.length) * axis) % values.length];
    });
    cases.push(c);
  }
  return cases;
}
