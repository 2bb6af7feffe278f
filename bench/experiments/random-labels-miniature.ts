/**
 * The paper's first finding in miniature (docs/algorithms.md §7): with completely random labels (r = 1) on a few
 * hundred real MNIST digits, TRADES (β = 6) memorizes them under attack while PGD-AT does not converge.
 *
 * Defaults (tuned to finish in about a minute per trainer on one wasm thread):
 *   300 digits of the embedded MNIST, labels drawn uniformly over the 10 classes (r = 1), model `mlp`,
 *   no augmentation, SGD lr 0.05 (× 0.1 after epoch 60), momentum 0.9, wd 0, batch 64, 80 epochs;
 *   training attack ℓ∞ ε = 0.1, α = 0.02, 10 steps (each trainer's own start and objective);
 *   every 5 epochs an eval-mode PGD-10 (ε = 0.1, α = 0.02, CE) on the training set against the random labels.
 *
 *   npx tsx bench/experiments/random-labels-miniature.ts [trainers=trades,pgd-at] [epochs=80] [n=300] [lr=0.05] [backend=wasm]
 * Environment overrides: MODEL (mlp | cnn-small), BATCH, STEPS, ALPHA, EVAL_EVERY, MILESTONES (e.g. 60 or
 * "" for a constant lr), EVAL_TEST=1 (also the test set), STOP_AT (stop once the train robust accuracy ≥ it).
 */
import { describeBackend, initBackend } from '../../src/backend/select';
import { createModel } from '../../src/models';
import { makeLrSchedule } from '../../src/algorithms/schedules/lr-schedule';
import { createTrainer } from '../../src/config/builtins';
import { assignLabels } from '../../src/data/label-noise';
import { createMnistSource } from '../../src/data/mnist';
import { threatModel } from '../../src/evaluation/threat-model';
import { formatRow, runLoop } from './train-loop';

async function main(): Promise<void> {
  const trainers = (process.argv[2] ?? 'trades,pgd-at').split(',');
  const epochs = Number(process.argv[3] ?? 80);
  const n = Number(process.argv[4] ?? 300);
  const lr = Number(process.argv[5] ?? 0.05);
  const backend = (process.argv[6] ?? 'wasm') as 'wasm' | 'cpu' | 'tensorflow';
  const env = process.env;
  const batchSize = Number(env.BATCH ?? 64);
  const modelName = env.MODEL ?? 'mlp';
  const steps = Number(env.STEPS ?? 10);
  const evalEvery = Number(env.EVAL_EVERY ?? 5);
  const milestones = (env.MILESTONES ?? '60').split(',').filter(Boolean).map(Number);
  const info = await initBackend(backend);
  const seed = 1;
  const source = createMnistSource({ trainSize: n, testSize: 500, seed });
  const labels = assignLabels('symmetric', 1, seed, source.split('train').labels, 10);
  let changed = 0;
  labels.labelsUsed.forEach((l, i) => (changed += l !== labels.labelsTrue[i] ? 1 : 0));
  const attack = { eps: 0.1, alpha: Number(env.ALPHA ?? 0.02), steps };
  for (const name of trainers) {
    const model = createModel(modelName, { numClasses: 10, inputShape: [28, 28, 1], seed });
    const trainer = createTrainer(name, { attack, beta: name === 'trades' ? 6 : undefined });
    const schedule = milestones.length ? `lr ${lr} ×0.1 after epoch ${milestones.join(', ')}` : `constant lr ${lr}`;
    console.log(
      `\n# ${name} on ${n} MNIST digits with random labels (r = 1, ${((100 * changed) / n).toFixed(1)}% changed), ${modelName}, ${describeBackend(info)}`,
    );
    console.log(
      `# train attack ${JSON.stringify(trainer.attackSettings)}; SGD ${schedule}, momentum 0.9, wd 0, batch ${batchSize}, no augmentation`,
    );
    console.log(`# every ${evalEvery} epochs: eval-mode clean and PGD-10 (ε=0.1, α=0.02) on the training set against the random labels`);
    const t0 = performance.now();
    const rows = await runLoop(
      {
        source,
        model,
        trainer,
        labels,
        epochs,
        batchSize,
        lr: milestones.length ? makeLrSchedule({ type: 'multistep', lr, milestones }) : makeLrSchedule({ type: 'constant', lr }),
        momentum: 0.9,
        weightDecay: 0,
        seed,
        evalAttack: threatModel({ eps: 0.1, alpha: 0.02, steps: 10 }),
        evalTrain: true,
        evalEvery,
        evalTest: env.EVAL_TEST === '1',
        stopAtTrainRobustAcc: env.STOP_AT ? Number(env.STOP_AT) : undefined,
      },
      (row) => console.log(formatRow(row)),
    );
    const last = [...rows].reverse().find((r) => r.train);
    console.log(
      `# ${name}: ${((performance.now() - t0) / 1000).toFixed(0)} s; final train clean ${(100 * (last?.train?.cleanAcc ?? NaN)).toFixed(1)}%, ` +
        `train robust ${(100 * (last?.train?.robustAcc ?? NaN)).toFixed(1)}% (against the random labels)`,
    );
    model.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
