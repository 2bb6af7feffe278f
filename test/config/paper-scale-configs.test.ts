import * as fs from 'fs';
import * as path from 'path';
import { loadRuns } from '../../src/config/spec';
import { executeRun } from '../../src/run/execute-run';
import { defaultRegistry } from '../../src/run/default-registry';
import { parquetRunSink } from '../../src/logs/sinks';
import { initBackend } from '../../src/backend/select';
import { cifarFile, matFile, svhnVars, tempDir } from '../data/helpers/official-files';

/**
 * The paper-scale robust-overfitting configs stay one command from running on a GPU box: each runs one
 * epoch, unchanged but for its size, on a few records in the official file formats (the real files are not
 * on this machine). ResNet-18 itself, the crop-flip augmentation, the TE path and the readers all run.
 * One variant per config keeps it to seconds: the TE variant of PGD-AT (CIFAR-10, SVHN) and of TRADES (CIFAR-100).
 */
const CONFIG_DIR = path.join(__dirname, '..', '..', 'config');

function writeDatasets(root: string): void {
  const c10 = path.join(root, 'cifar-10-batches-bin');
  fs.mkdirSync(c10);
  for (let b = 1; b <= 5; b++) fs.writeFileSync(path.join(c10, `data_batch_${b}.bin`), cifarFile([[b % 10], [(b + 3) % 10]], 2 * b));
  fs.writeFileSync(path.join(c10, 'test_batch.bin'), cifarFile([[1], [2], [3], [4]], 100));
  const c100 = path.join(root, 'cifar-100-binary');
  fs.mkdirSync(c100);
  fs.writeFileSync(
    path.join(c100, 'train.bin'),
    cifarFile(
      [
        [0, 11],
        [1, 52],
        [2, 99],
        [3, 7],
      ],
      0,
    ),
  );
  fs.writeFileSync(
    path.join(c100, 'test.bin'),
    cifarFile(
      [
        [4, 3],
        [5, 64],
        [6, 1],
        [7, 98],
      ],
      50,
    ),
  );
  const svhn = path.join(root, 'svhn');
  fs.mkdirSync(svhn);
  fs.writeFileSync(path.join(svhn, 'train_32x32.mat'), matFile(svhnVars([1, 10, 3, 7], 'double'), { compress: true }));
  fs.writeFileSync(path.join(svhn, 'test_32x32.mat'), matFile(svhnVars([2, 5, 10, 9], 'double'), { compress: true }));
}

describe('paper-scale robust-overfitting configs run one epoch on files in the official formats', () => {
  let root: string;
  beforeAll(async () => {
    await initBackend('wasm');
    root = tempDir('atflow-paper-');
    writeDatasets(root);
  });

  const tiny = [
    'epochs=1',
    'data.trainSize=4',
    'data.testSize=4',
    'data.batchSize=4',
    'data.testBatchSize=4',
    'attack.steps=1',
    'eval.attack.steps=1',
    'eval.trainSubset=4',
    'eval.final.strong=false',
  ];
  it.each([
    ['robust-overfitting-cifar10.json', 'pgd-at-te', 'cifar10'],
    ['robust-overfitting-cifar100.json', 'trades-te', 'cifar100'],
    ['robust-overfitting-svhn.json', 'pgd-at-te', 'svhn'],
  ])(
    '%s (%s)',
    async (file, variant, source) => {
      const run = loadRuns(path.join(CONFIG_DIR, file), [
        ...tiny,
        `data.options.dir=${source === 'svhn' ? path.join(root, 'svhn') : root}`,
      ]).find((r) => r.variant === variant);
      if (!run) throw new Error(`${file} has no variant ${variant}`);
      expect(run.spec).toMatchObject({ model: { name: 'resnet18' }, data: { source } });
      // TE from this one epoch on, so the TE path runs too
      const spec = { ...run.spec, trainer: { ...run.spec.trainer, te: { ...run.spec.trainer.te!, start: 1, end: 1 } } };
      const outcome = await executeRun(
        { ...run, spec },
        { outDir: path.join(root, 'runs'), registry: defaultRegistry(), backend: 'wasm', sinks: () => [parquetRunSink()] },
      );
      expect(outcome.status).toBe('completed');
      expect(outcome.epochs).toHaveLength(1);
      expect(outcome.epochs[0].train_loss).toBeGreaterThan(0);
      expect(outcome.epochs[0].test_robust_acc).toBeGreaterThanOrEqual(0);
      expect(outcome.epochs[0].te_weight).toBe(300);
      expect(fs.existsSync(path.join(outcome.runDir, '_SUCCESS'))).toBe(true);
    },
    300_000,
  );
});
