/**
 * Where a training step spends its time, per tfjs kernel (tf.profile), on the chosen backend:
 *   npx tsx bench/profile-train-step.ts [--model preact-resnet18] [--batch 16] [--backend wasm]
 * Prints kernels sorted by total ms, with call counts and output shapes of the costliest calls.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendName } from '../src/backend/select';
import { Rng } from '../src/core/rng';
import { createModel, defaultInputShape } from '../src/models';
import { crossEntropy } from '../src/algorithms/objectives/ce';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

(async () => {
  const MODEL = arg('model', 'preact-resnet18');
  const BATCH = Number(arg('batch', '16'));
  await initBackend(arg('backend', 'wasm') as BackendName);
  const shape = defaultInputShape(MODEL);
  const model = createModel(MODEL, { numClasses: 10, seed: 1 });
  const rng = new Rng(1);
  const x = tf.tensor4d(rng.fillUniform(new Float32Array(BATCH * shape[0] * shape[1] * shape[2]), 0, 1), [BATCH, ...shape]);
  const y = tf.tensor1d(
    Int32Array.from({ length: BATCH }, () => rng.int(10)),
    'int32',
  );
  const step = () => {
    const { value, grads } = tf.variableGrads(
      () => crossEntropy(model.apply(x, 'train'), y),
      model.parameters.map((p) => p.variable),
    );
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };
  step(); // warm-up
  const t0 = performance.now();
  const info = await tf.profile(step);
  const wall = performance.now() - t0;
  const byName = new Map<string, { ms: number; calls: number; worst: { ms: number; shape: string } }>();
  let total = 0;
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    total += ms;
    const e = byName.get(k.name) ?? { ms: 0, calls: 0, worst: { ms: -1, shape: '' } };
    e.ms += ms;
    e.calls++;
    if (ms > e.worst.ms)
      e.worst = { ms, shape: `${(k.inputShapes ?? []).map((s) => `[${s}]`).join(' ')} -> [${k.outputShapes?.[0] ?? ''}]` };
    byName.set(k.name, e);
  }
  console.log(
    `${MODEL} batch ${BATCH} on ${tf.getBackend()}: train step ${wall.toFixed(0)} ms wall (profiled), kernels ${total.toFixed(0)} ms, ${info.kernels.length} kernel calls`,
  );
  for (const [name, e] of [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25)) {
    console.log(
      `${name.padEnd(28)} ${e.ms.toFixed(1).padStart(9)} ms ${((100 * e.ms) / total).toFixed(1).padStart(5)}%  ${String(e.calls).padStart(4)} calls  worst ${e.worst.ms.toFixed(1)} ms ${e.worst.shape}`,
    );
  }
  x.dispose();
  y.dispose();
  model.dispose();
})();
