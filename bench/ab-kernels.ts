/**
 * Same-process A/B of atflow's replacement kernels against the stock ones, alternated rep by rep so that
 * a loaded machine slows both alike (medians reported):
 *   npx tsx bench/ab-kernels.ts [--backend tensorflow] [--model cnn-small] [--batch 128] [--reps 5] [--measure pgd10_at_step]
 * Variants: stock (EXPLICIT pads, tfjs' ReLU gradient and BatchNorm), +conv fast paths, +ReluGrad, +fused train-mode BN.
 * --profile adds each variant's tf.profile kernel total and top kernels (less sensitive to load).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendName } from '../src/backend/select';
import { useFusedBatchNorm } from '../src/backend/batch-norm-train';
import { useReluGradKernel } from '../src/backend/relu-grad';
import { useTensorflowFastConvPaths } from '../src/backend/tensorflow-kernels';
import { deriveSeed, Rng } from '../src/core/rng';
import { createModel, defaultInputShape } from '../src/models';
import { inputGradient } from '../src/algorithms/attacks/input-gradient';
import { pgdLinf } from '../src/algorithms/attacks/pgd-linf';
import { ceObjective, crossEntropy } from '../src/algorithms/objectives/ce';
import { median } from './engine';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

const VARIANTS: Array<{ name: string; conv: boolean; relu: boolean; bn: boolean }> = [
  { name: 'stock', conv: false, relu: false, bn: false },
  { name: '+conv paths', conv: true, relu: false, bn: false },
  { name: '+ReluGrad', conv: true, relu: true, bn: false },
  { name: '+fused BN', conv: true, relu: true, bn: true },
];
function use(v: (typeof VARIANTS)[number]): void {
  useTensorflowFastConvPaths(v.conv);
  useReluGradKernel(v.relu);
  useFusedBatchNorm(v.bn);
}

(async () => {
  const MODEL = arg('model', 'cnn-small');
  const BATCH = Number(arg('batch', '128'));
  const REPS = Number(arg('reps', '5'));
  const MEASURE = arg('measure', 'pgd10_at_step');
  await initBackend(arg('backend', 'tensorflow') as BackendName);
  const shape = defaultInputShape(MODEL);
  const model = createModel(MODEL, { numClasses: 10, seed: 1 });
  const rng = new Rng(1);
  const x = tf.tensor4d(rng.fillUniform(new Float32Array(BATCH * shape[0] * shape[1] * shape[2]), 0, 1), [BATCH, ...shape]);
  const y = tf.tensor1d(
    Int32Array.from({ length: BATCH }, () => rng.int(10)),
    'int32',
  );
  const vars = model.parameters.map((p) => p.variable);
  const trainGrads = (input: tf.Tensor4D) => {
    const { value, grads } = tf.variableGrads(() => crossEntropy(model.apply(input, 'train'), y), vars);
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };
  const work: Record<string, (rep: number) => void> = {
    grad_x: () => tf.tidy(() => inputGradient(model, x, y, ceObjective()).dataSync()),
    train_step: () => trainGrads(x),
    pgd10_at_step: (rep) => {
      const xAdv = pgdLinf(model, x, y, deriveSeed(1, 'ab', rep), {
        eps: 8 / 255,
        alpha: 2 / 255,
        steps: 10,
        randomStart: 'uniform-clamped',
      });
      trainGrads(xAdv);
      xAdv.dispose();
    },
  };
  const f = work[MEASURE];
  const times = VARIANTS.map(() => [] as number[]);
  for (let rep = -1; rep < REPS; rep++) {
    VARIANTS.forEach((v, i) => {
      use(v);
      const t = performance.now();
      f(rep);
      if (rep >= 0) times[i].push(performance.now() - t);
    });
  }
  console.log(`${MODEL} b${BATCH} ${MEASURE} on ${tf.getBackend()} (median of ${REPS}, alternated):`);
  VARIANTS.forEach((v, i) =>
    console.log(`  ${v.name.padEnd(12)} ${median(times[i]).toFixed(1).padStart(9)} ms   [${times[i].map((t) => t.toFixed(0)).join(' ')}]`),
  );
  if (process.argv.includes('--profile')) {
    // kernel time per variant (tf.profile): less sensitive to load than wall time
    for (const v of VARIANTS) {
      use(v);
      const w0 = performance.now();
      const info = await tf.profile(() => f(0));
      const wallMs = performance.now() - w0;
      const by = new Map<string, number>();
      let total = 0;
      for (const k of info.kernels) {
        const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
        total += ms;
        by.set(k.name, (by.get(k.name) ?? 0) + ms);
      }
      const top = [...by]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8)
        .map(([n, ms]) => `${n} ${ms.toFixed(0)}`)
        .join(', ');
      console.log(
        `  profile ${v.name.padEnd(12)} wall ${wallMs.toFixed(0)} ms (profiled), kernels ${total.toFixed(0)} ms in ${info.kernels.length} calls: ${top}`,
      );
    }
  }
  use(VARIANTS[VARIANTS.length - 1]);
  tf.dispose([x, y]);
  model.dispose();
})();
