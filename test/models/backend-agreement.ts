import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/select';
import { createModel } from '../../src/models';
import { maxAbsDiff, unitValues } from './helpers';

interface Outputs {
  evalLogits: Float32Array;
  trainLogits: Float32Array;
  /** eval after the train step, i.e. with updated running statistics */
  evalAfter: Float32Array;
  buffers: Float32Array[];
}

async function forwardOn(
  backend: 'cpu' | 'wasm',
  name: string,
  shape: [number, number, number],
  batch: number,
  evalAfter: boolean,
): Promise<Outputs> {
  await initBackend(backend);
  const model = createModel(name, { numClasses: 10, inputShape: shape, seed: 5 });
  const x = tf.tensor4d(unitValues(batch * shape[0] * shape[1] * shape[2], 99), [batch, ...shape]);
  const evalLogits = tf.tidy(() => model.apply(x, 'eval').dataSync() as Float32Array);
  const trainLogits = tf.tidy(() => model.apply(x, 'train').dataSync() as Float32Array);
  const evalAgain = evalAfter ? tf.tidy(() => model.apply(x, 'eval').dataSync() as Float32Array) : new Float32Array(0);
  const buffers = model.buffers.filter((b) => b.variable.dtype === 'float32').map((b) => b.variable.dataSync() as Float32Array);
  x.dispose();
  model.dispose();
  return { evalLogits, trainLogits, evalAfter: evalAgain, buffers };
}

/**
 * Runs the model on cpu (the numerical reference) and on wasm from the same seed, and returns the worst
 * differences. `evalAfter` adds a third forward (eval with the updated statistics); the big models skip it
 * because the cpu backend needs seconds per forward, and the buffers comparison already covers the update.
 */
export async function cpuVsWasm(name: string, shape: [number, number, number], batch: number, evalAfter = true) {
  const cpu = await forwardOn('cpu', name, shape, batch, evalAfter);
  const wasm = await forwardOn('wasm', name, shape, batch, evalAfter);
  return {
    eval: maxAbsDiff(cpu.evalLogits, wasm.evalLogits),
    train: maxAbsDiff(cpu.trainLogits, wasm.trainLogits),
    evalAfter: maxAbsDiff(cpu.evalAfter, wasm.evalAfter),
    buffers: Math.max(0, ...cpu.buffers.map((b, i) => maxAbsDiff(b, wasm.buffers[i]))),
    // eval and train differ whenever the model has BatchNorm: a check that the modes really differ
    modesDiffer: maxAbsDiff(cpu.evalLogits, cpu.trainLogits) > 1e-3,
    finite: [...cpu.evalLogits, ...cpu.trainLogits].every(Number.isFinite),
  };
}
