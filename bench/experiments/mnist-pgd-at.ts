/**
 * PGD-AT on the embedded MNIST with cnn-small: robust test accuracy after a few epochs.
 * MNIST convention ε = 0.3; training PGD-10 with α = 0.04 (40 steps of 0.01 is the convention, 10 are
 * used for speed), evaluation PGD-20 with α = 0.03 and an unclamped uniform start.
 *   npx tsx bench/experiments/mnist-pgd-at.ts [epochs=5] [trainSize=8000] [backend=wasm] [lr=0.05]
 */
import { initBackend, describeBackend } from '../../src/backend/select';
import { createModel } from '../../src/models';
import { makeLrSchedule } from '../../src/algorithms/schedules/lr-schedule';
import { createTrainer } from '../../src/config/builtins';
import { createMnistSource } from '../../src/data/mnist';
import { threatModel } from '../../src/evaluation/threat-model';
import { formatRow, runLoop } from './train-loop';

async function main(): Promise<void> {
  const epochs = Number(process.argv[2] ?? 5);
  const trainSize = Number(process.argv[3] ?? 8000);
  const backend = (process.argv[4] ?? 'wasm') as 'wasm' | 'cpu' | 'tensorflow';
  const info = await initBackend(backend);
  const seed = 1;
  const source = createMnistSource({ trainSize, testSize: 1000, seed });
  const model = createModel('cnn-small', { numClasses: 10, inputShape: [28, 28, 1], seed });
  const lr = Number(process.argv[5] ?? 0.05);
  const trainer = createTrainer('pgd-at', { attack: { eps: 0.3, alpha: 0.04, steps: 10 } });
  console.log(`# PGD-AT, mnist train ${trainSize} / test 1000, cnn-small, ${describeBackend(info)}`);
  console.log(
    `# train attack ${JSON.stringify(trainer.attackSettings)}; eval PGD-20 ε=0.3 α=0.03; SGD lr ${lr} momentum 0.9 wd 0, batch 128`,
  );
  await runLoop(
    {
      source,
      model,
      trainer,
      labels: null,
      epochs,
      batchSize: 128,
      lr: makeLrSchedule({ type: 'constant', lr }),
      momentum: 0.9,
      weightDecay: 0,
      seed,
      evalAttack: threatModel({ eps: 0.3, alpha: 0.03, steps: 20 }),
      evalTrain: false,
      evalTest: true,
    },
    (row) => console.log(formatRow(row)),
  );
  model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
