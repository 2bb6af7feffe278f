/**
 * The paper's first finding in miniature (PAPER.md §7): with completely random labels (r = 1) on a few
 * hundred real MNIST digits, TRADES (β = 6) memorizes them under attack, PGD-AT does not converge.
 * Both runs: cnn-small, no augmentation, wd 0, SGD momentum 0.9, constant lr; ℓ∞ ε = 0.1, α = 0.02,
 * 10 steps for the training attack and for the eval-mode PGD on the training set (against the random labels).
 *   npx tsx bench/experiments/random-labels-miniature.ts [trainers=trades,pgd-at] [epochs=60] [n=500] [lr=0.05] [backend=wasm]
 */
import { describeBackend, initBackend } from '../../src/backend/select';
import { createModel } from '../../src/models';
import { makeLrSchedule } from '../../src/operators/schedules/lr-schedule';
import { createTrainer } from '../../src/operators/trainers';
import { assignLabels } from '../../src/sources/label-noise';
import { createMnistSource } from '../../src/sources/mnist';
import { formatRow, runLoop } from './train-loop';

async function main(): Promise<void> {
  const trainers = (process.argv[2] ?? 'trades,pgd-at').split(',');
  const epochs = Number(process.argv[3] ?? 60);
  const n = Number(process.argv[4] ?? 500);
  const lr = Number(process.argv[5] ?? 0.05);
  const backend = (process.argv[6] ?? 'wasm') as 'wasm' | 'cpu' | 'tensorflow';
  const batchSize = Number(process.env.BATCH ?? 64);
  const modelName = process.env.MODEL ?? 'cnn-small';
  const steps = Number(process.env.STEPS ?? 10);
  const evalEvery = Number(process.env.EVAL_EVERY ?? 1);
  const info = await initBackend(backend);
  const seed = 1;
  const source = createMnistSource({ trainSize: n, testSize: 500, seed });
  const labels = assignLabels('symmetric', 1, seed, source.split('train').labels, 10);
  let changed = 0;
  labels.labelsUsed.forEach((l, i) => (changed += l !== labels.labelsTrue[i] ? 1 : 0));
  const attack = { eps: 0.1, alpha: Number(process.env.ALPHA ?? 0.02), steps };
  for (const name of trainers) {
    const model = createModel(modelName, { numClasses: 10, inputShape: [28, 28, 1], seed });
    const trainer = createTrainer(name, { attack, beta: name === 'trades' ? 6 : undefined });
    console.log(`\n# ${name} on ${n} MNIST digits with random labels (r = 1, ${((100 * changed) / n).toFixed(1)}% changed), ${modelName}, ${describeBackend(info)}`);
    console.log(`# train attack ${JSON.stringify(trainer.attackSettings)}; eval PGD-10 ε=0.1 α=0.02 on the training set vs the random labels; SGD lr ${lr} momentum 0.9 wd 0, batch ${batchSize}, no augmentation`);
    const t0 = performance.now();
    await runLoop(
      {
        source,
        model,
        trainer,
        labels,
        epochs,
        batchSize,
        lr: makeLrSchedule({ type: 'constant', lr }),
        momentum: 0.9,
        weightDecay: 0,
        seed,
        evalAttack: { eps: 0.1, alpha: 0.02, steps: 10 },
        evalTrain: true,
        evalEvery,
        evalTest: process.env.EVAL_TEST === '1',
        stopAtTrainRobustAcc: process.env.NO_STOP === '1' ? undefined : 0.99,
      },
      (row) => console.log(formatRow(row)),
    );
    console.log(`# ${name}: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    model.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
