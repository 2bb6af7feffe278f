import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadRuns } from '../../src/config/spec';
import { executeRun } from '../../src/run/execute-run';
import { defaultRegistry } from '../../src/run/default-registry';
import { parquetRunSink } from '../../src/logs/sinks';
import { loadSweepSpec, expandSweep } from '../../src/sweep';
import { initBackend } from '../../src/backend/select';
import { MODEL_NAMES } from '../../src/models';
import { createTrainer } from '../../src/config/builtins';

/** The registered names, as the registry holds them (the built-ins). */
const SOURCE_NAMES = defaultRegistry().list('source');
const TRAINERS = Object.fromEntries(
  defaultRegistry()
    .list('trainer')
    .map((name) => [name, name]),
);

const CONFIG_DIR = path.join(__dirname, '..', '..', 'config');
const configs = fs.readdirSync(CONFIG_DIR).filter((f) => f.endsWith('.json'));
// the CPU-scale configs: the quickstart, *-cpu.json and the small-CNN *-cnn.json settings of docs/results.md
const cpuScale = configs.filter((f) => f === 'quickstart.json' || f.endsWith('-cpu.json') || f.endsWith('-cnn.json'));
const sweeps = fs.readdirSync(path.join(CONFIG_DIR, 'sweeps')).filter((f) => f.endsWith('.json'));

describe('shipped configs', () => {
  it('are all there: the quickstart and a CPU-scale variant of each paper experiment', () => {
    expect(configs).toEqual(
      expect.arrayContaining([
        'quickstart.json',
        'mnist-pgd-at.json',
        'mnist-pgd-at-cpu.json',
        'random-labels.json',
        'random-labels-cpu.json',
        'robust-overfitting-cifar10.json',
        'robust-overfitting-cifar100.json',
        'robust-overfitting-svhn.json',
        'robust-overfitting-cpu.json',
        'complexity-cpu.json',
        'gradient-probe-cpu.json',
      ]),
    );
  });

  it.each(configs)('%s validates and names only registered operators', (file) => {
    const runs = loadRuns(path.join(CONFIG_DIR, file));
    expect(runs.length).toBeGreaterThan(0);
    for (const { spec } of runs) {
      expect(SOURCE_NAMES).toContain(spec.data.source);
      expect([...MODEL_NAMES, 'wrn-28-10']).toContain(spec.model.name);
      expect(Object.keys(TRAINERS)).toContain(spec.trainer.name);
      if (spec.trainer.te) expect(spec.trainer.te.end).toBeLessThanOrEqual(spec.epochs);
    }
    expect(new Set(runs.map((r) => r.runId)).size).toBe(runs.length);
  });

  it('the paper-scale robust-overfitting configs follow docs/algorithms.md §6', () => {
    for (const ds of ['cifar10', 'cifar100', 'svhn']) {
      const runs = loadRuns(path.join(CONFIG_DIR, `robust-overfitting-${ds}.json`));
      expect(runs.map((r) => r.variant)).toEqual(['pgd-at', 'pgd-at-te', 'trades', 'trades-te']);
      for (const { spec } of runs) {
        expect(spec).toMatchObject({
          epochs: 200,
          model: { name: 'resnet18' },
          optimizer: { momentum: 0.9, weightDecay: 5e-4 },
          schedule: { name: 'multistep', milestones: [100, 150] },
        });
        expect(spec.attack).toMatchObject({ eps: 8 / 255, alpha: 2 / 255, steps: 10 });
        expect(spec.data.augment).toBe(ds === 'svhn' ? 'none' : 'crop-flip');
        if (spec.trainer.te) expect(spec.trainer.te).toEqual({ momentum: 0.9, start: 90, end: 150, weight: 300 });
      }
    }
    // the authors' baselines run through train_te.py / PGD_TE: PGD-AT with and without TE both start
    // unclamped (TE is then the only difference); TRADES keeps its 0.001·N(0, I) start
    for (const ds of ['cifar10', 'cifar100', 'svhn', 'cpu']) {
      for (const { spec } of loadRuns(path.join(CONFIG_DIR, `robust-overfitting-${ds}.json`))) {
        const trainer = createTrainer(spec.trainer.name, {
          attack: spec.attack,
          te: spec.trainer.te,
          ...(spec.trainer.beta !== undefined ? { beta: spec.trainer.beta } : {}),
        });
        expect([spec.trainer.name, trainer.attackSettings?.randomStart]).toEqual([
          spec.trainer.name,
          spec.trainer.name === 'pgd-at' ? 'uniform' : 'normal',
        ]);
      }
    }
    const [rl] = loadRuns(path.join(CONFIG_DIR, 'random-labels.json'));
    expect(rl.spec).toMatchObject({
      epochs: 300,
      model: { name: 'wrn-28-10' },
      optimizer: { weightDecay: 0 },
      labelNoise: { kind: 'symmetric', rate: 1 },
      data: { augment: 'none' },
    });
  });

  it.each(sweeps)('sweep %s expands into valid configs', (file) => {
    const points = expandSweep(loadSweepSpec(path.join(CONFIG_DIR, 'sweeps', file)));
    expect(points.length).toBeGreaterThan(1);
  });
});

describe('CPU-scale configs run (one epoch, tiny subset)', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });
  const tiny = [
    'epochs=1',
    'data.trainSize=24',
    'data.testSize=16',
    'data.batchSize=12',
    'data.testBatchSize=16',
    'attack.steps=1',
    'eval.attack.steps=1',
    'eval.trainSubset=12',
    'eval.final.examples=8',
    'eval.final.restarts=1',
  ];
  it.each(cpuScale)('%s', async (file) => {
    const runs = loadRuns(path.join(CONFIG_DIR, file), tiny);
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-cfg-'));
    const registry = defaultRegistry();
    for (const run of runs) {
      // TE configs: start TE in this one epoch so the TE path runs too
      const spec = run.spec.trainer.te
        ? { ...run.spec, trainer: { ...run.spec.trainer, te: { ...run.spec.trainer.te, start: 1, end: 1 } } }
        : run.spec;
      const outcome = await executeRun({ ...run, spec }, { outDir: out, registry, backend: 'wasm', sinks: () => [parquetRunSink()] });
      expect(outcome.status).toBe('completed');
      expect(outcome.epochs).toHaveLength(1);
      expect(outcome.epochs[0].test_robust_acc).toBeGreaterThanOrEqual(0);
      expect(fs.existsSync(path.join(outcome.runDir, '_SUCCESS'))).toBe(true);
    }
  });
});
