import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { initBackend } from '../../src/backend/select';
import { executeRun } from '../../src/run/execute-run';
import { defaultRegistry } from '../../src/run/default-registry';
import { resolveRuns } from '../../src/config/spec';
import { parquetRunSink } from '../../src/logs/sinks';
import { evaluatePass } from '../../src/evaluation/evaluate';
import type { Evaluator, EvaluatorOptions } from '../../src/evaluation/evaluator';
import { duck, lit } from '../logs/duck';

/** The per-epoch evaluation is looked up by name (eval.evaluator) in the registry's 'evaluator' kind. */
const spec = (over: Record<string, unknown> = {}) => ({
  name: 'evaluator',
  seed: 2,
  epochs: 2,
  data: {
    source: 'synthetic',
    options: { imageShape: [4, 4, 1], numClasses: 3 },
    trainSize: 24,
    testSize: 12,
    batchSize: 8,
    testBatchSize: 12,
  },
  model: { name: 'mlp' },
  trainer: { name: 'pgd-at' },
  attack: { eps: 0.3, alpha: 0.1, steps: 2 },
  optimizer: { lr: 0.1, weightDecay: 0 },
  schedule: { name: 'constant' },
  ...over,
});

describe("the registry's 'evaluator' kind", () => {
  jest.setTimeout(120_000);
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('a user-registered evaluator named in eval.evaluator runs every evaluation pass', async () => {
    const registry = defaultRegistry();
    const passes: string[] = [];
    // clean only: evaluatePass without an attack writes the clean numbers into the robust columns
    registry.register('evaluator', 'clean-only', (o: EvaluatorOptions): Evaluator => ({
      pass: (batches, epoch, onBatch) => {
        passes.push(`epoch ${epoch}`);
        return evaluatePass(batches, { model: o.model, attack: null, seed: o.seed, epoch }, (b) => onBatch(b.columns));
      },
    }));
    const [run] = resolveRuns(spec({ eval: { evaluator: 'clean-only' } }));
    const outcome = await executeRun(run, {
      outDir: fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-evaluator-')),
      registry,
      backend: 'cpu',
      sinks: () => [parquetRunSink()],
    });
    expect(outcome.status).toBe('completed');
    // test and train, after each of the two epochs
    expect(passes).toEqual(['epoch 1', 'epoch 1', 'epoch 2', 'epoch 2']);
    const rows = await duck(
      `SELECT test_clean_acc, test_robust_acc, train_clean_acc, train_robust_acc FROM read_parquet(${lit(path.join(outcome.runDir, 'epochs.parquet'))}) ORDER BY epoch`,
    );
    expect(rows).toHaveLength(2);
    for (const r of rows) {
      expect(r.test_robust_acc).toBe(r.test_clean_acc);
      expect(r.train_robust_acc).toBe(r.train_clean_acc);
    }
  });

  it('an unknown eval.evaluator is a config error naming the field and the registered ones, before anything is written', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-evaluator-'));
    const [run] = resolveRuns(spec({ eval: { evaluator: 'pgdd' } }));
    await expect(executeRun(run, { outDir: out, registry: defaultRegistry(), backend: 'cpu' })).rejects.toThrow(
      /eval\.evaluator: unknown evaluator 'pgdd' \(did you mean 'pgd'\?\); registered evaluators: pgd/,
    );
    expect(fs.readdirSync(out)).toEqual([]);
  });
});
