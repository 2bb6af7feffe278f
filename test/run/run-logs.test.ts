import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { initBackend } from '../../src/backend/select';
import { executeRun } from '../../src/run/execute-run';
import { defaultRegistry } from '../../src/run/default-registry';
import { resolveRuns } from '../../src/config/spec';
import { parquetRunSink } from '../../src/logs/sinks';
import { createSyntheticSource } from '../../src/data/synthetic';
import { corruptInputs } from '../../src/data/input-corruption';
import { deriveSeed } from '../../src/core/rng';
import { duck, lit } from '../logs/duck';
import { SummaryWriter } from '../../src/logs/summary';
import { readEpochRecords, readEvalProtocol, renderSummaryTable } from '../../src/cli/summary-table';
import { renderReport } from '../../src/report/report';
import { loadReportRun } from '../../src/report/report-data';

/**
 * What the run folder records, on tiny real runs (synthetic 4×4 images, the MLP, cpu backend):
 * corrupted inputs, events, splits and the evaluation protocol.
 */
const base = {
  name: 'logs',
  seed: 2,
  epochs: 3,
  data: {
    source: 'synthetic',
    options: { imageShape: [4, 4, 1], numClasses: 3 },
    trainSize: 24,
    testSize: 12,
    batchSize: 8,
    testBatchSize: 12,
  },
  labelNoise: { kind: 'symmetric', rate: 0.5 },
  model: { name: 'mlp' },
  trainer: { name: 'pgd-at' },
  attack: { eps: 0.1, alpha: 0.05, steps: 2 },
  optimizer: { lr: 0.1, weightDecay: 0 },
  schedule: { name: 'constant' },
};

async function run(over: Record<string, unknown>): Promise<string> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-logs-'));
  const [r] = resolveRuns({ ...base, ...over });
  const outcome = await executeRun(r, {
    outDir: out,
    registry: defaultRegistry(),
    backend: 'cpu',
    sinks: () => [parquetRunSink(), new SummaryWriter()],
  });
  expect(outcome.status).toBe('completed');
  return outcome.runDir;
}
const examples = (dir: string) => `read_parquet(${lit(path.join(dir, 'examples', '*', '*.parquet'))}, hive_partitioning = false)`;
const table = (dir: string, t: string) => `read_parquet(${lit(path.join(dir, t + '.parquet'))})`;

describe('run logs (synthetic, mlp, cpu)', () => {
  jest.setTimeout(120_000);
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('input corruption is logged: input_corrupted in labels.parquet and on every training row', async () => {
    const dir = await run({ epochs: 1, inputCorruption: { kind: 'random-pixels', rate: 0.25 } });
    // the reference: the same corruption drawn directly from the source
    const src = createSyntheticSource({ imageShape: [4, 4, 1], numClasses: 3, trainSize: 24, testSize: 12, seed: deriveSeed(2, 'split') });
    const expected = Array.from(
      corruptInputs(src, { kind: 'random-pixels', rate: 0.25, seed: deriveSeed(2, 'input-corruption') }).corrupted,
    );
    expect(expected.length).toBe(6);
    const labels = await duck(`SELECT example FROM ${table(dir, 'labels')} WHERE input_corrupted ORDER BY example`);
    expect(labels.map((r) => r.example)).toEqual(expected);
    const rows = await duck(
      `SELECT phase, split, count(*) AS n, count(*) FILTER (WHERE input_corrupted) AS c FROM ${examples(dir)} WHERE epoch = 1 GROUP BY ALL ORDER BY ALL`,
    );
    expect(rows).toEqual([
      { phase: 'eval', split: 'test', n: 12, c: 0 },
      { phase: 'eval', split: 'train', n: 24, c: 6 },
      { phase: 'train', split: 'train', n: 24, c: 6 },
    ]);
    const mismatch = await duck(
      `SELECT count(*) AS n FROM ${examples(dir)} e JOIN ${table(dir, 'labels')} l USING (example) WHERE e.split = 'train' AND e.input_corrupted <> l.input_corrupted`,
    );
    expect(mismatch[0].n).toBe(0);
  });

  it('states the evaluation protocol (PGD-10, α = ε/4 by default, not the training FGSM) in spec.json, summary.json, the table and the report', async () => {
    const dir = await run({
      epochs: 2,
      attack: { eps: 0.1, alpha: 0.1, steps: 1, randomStart: 'none' },
      eval: { every: 2, trainSubset: 16 },
    });
    const protocol = {
      attack: 'pgd',
      inherited: false,
      norm: 'linf',
      eps: 0.1,
      alpha: 0.025,
      steps: 10,
      restarts: 1,
      random_start: 'uniform',
      every: 2,
      n_test: 12,
      n_val: 0,
      n_train: 16,
    };
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'spec.json'), 'utf8')).evaluation).toEqual(protocol);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')).eval_protocol).toEqual(protocol);
    const line = 'robust = PGD-10 ℓ∞ ε=0.1 α=0.025, 1 restart, uniform start, every 2 epochs; test n=12, train n=16';
    expect(renderSummaryTable([{ name: 'r', epochs: readEpochRecords(dir), evaluation: readEvalProtocol(dir) }]).split('\n')).toContain(
      line,
    );
    expect(await renderReport([loadReportRun(dir)])).toContain('PGD-10 ℓ∞ ε=0.1 α=0.025');
  });

  it('events from the training rows every epoch (phase train), and from the eval pass at evaluated epochs (phase eval); eval.train false still has the first', async () => {
    // the reference: transitions between consecutive rows of one phase, counted in SQL from the examples table
    const transitions = (dir: string, phase: string) => `
      WITH seq AS (
        SELECT epoch, example, correct_clean AS c, correct_adv AS a,
               lag(correct_clean) OVER (PARTITION BY example ORDER BY epoch) AS pc,
               lag(correct_adv) OVER (PARTITION BY example ORDER BY epoch) AS pa
        FROM ${examples(dir)} WHERE phase = '${phase}' AND split = 'train')
      SELECT epoch, example, 'learned' AS event FROM seq WHERE NOT pc AND c
      UNION ALL SELECT epoch, example, 'forgotten' FROM seq WHERE pc AND NOT c
      UNION ALL SELECT epoch, example, 'robust_learned' FROM seq WHERE NOT pa AND a
      UNION ALL SELECT epoch, example, 'robust_forgotten' FROM seq WHERE pa AND NOT a
      ORDER BY ALL`;
    const logged = (dir: string, phase: string) =>
      duck(`SELECT epoch, example, event FROM ${table(dir, 'events')} WHERE phase = '${phase}' ORDER BY ALL`);

    const noEval = await run({ epochs: 3, eval: { train: false } });
    const trainOnly = await logged(noEval, 'train');
    expect(trainOnly.length).toBeGreaterThan(5);
    expect(trainOnly).toEqual(await duck(transitions(noEval, 'train')));
    expect(await logged(noEval, 'eval')).toEqual([]);

    const both = await run({ epochs: 4, eval: { every: 2 } });
    expect(await logged(both, 'train')).toEqual(await duck(transitions(both, 'train')));
    const evalEvents = await logged(both, 'eval');
    expect(evalEvents).toEqual(await duck(transitions(both, 'eval')));
    expect(new Set(evalEvents.map((r) => r.epoch))).toEqual(new Set([4]));
    expect(new Set((await logged(both, 'train')).map((r) => r.epoch))).toEqual(new Set([2, 3, 4]));
  });

  it("logs test and val rows (split column) at evaluated epochs; their means are the epochs table's accuracies", async () => {
    const dir = await run({ epochs: 3, data: { ...base.data, valSize: 9 }, eval: { every: 2, selectOn: 'val' } });
    const counts = await duck(
      `SELECT epoch, split, count(*) AS n, count(DISTINCT example) AS d, max(example) AS hi FROM ${examples(dir)} WHERE phase = 'eval' GROUP BY ALL ORDER BY ALL`,
    );
    expect(counts).toEqual(
      [2, 3].flatMap((epoch) => [
        { epoch, split: 'test', n: 12, d: 12, hi: 11 },
        { epoch, split: 'train', n: 24, d: 24, hi: 23 },
        { epoch, split: 'val', n: 9, d: 9, hi: 8 },
      ]),
    );
    // test rows against their true labels, never noisy; their accuracies are the epoch record's
    const test = await duck(
      `SELECT e.epoch, avg(correct_clean::INT) AS clean, avg(correct_adv::INT) AS robust, bool_or(is_noisy) AS noisy, bool_or(label_used <> label_true) AS relabelled,
              any_value(p.test_clean_acc) AS rec_clean, any_value(p.test_robust_acc) AS rec_robust
       FROM ${examples(dir)} e JOIN ${table(dir, 'epochs')} p USING (epoch) WHERE e.split = 'test' GROUP BY ALL ORDER BY ALL`,
    );
    expect(test.length).toBe(2);
    for (const r of test) {
      expect([r.noisy, r.relabelled]).toEqual([false, false]);
      expect(r.clean).toBeCloseTo(r.rec_clean, 12);
      expect(r.robust).toBeCloseTo(r.rec_robust, 12);
    }
    // the val rows: the robust accuracy the best epoch was selected on (best_rule says validation)
    const rule = await duck(`SELECT best_rule FROM ${table(dir, 'epochs')} ORDER BY epoch DESC LIMIT 1`);
    expect(rule[0].best_rule).toMatch(/validation/);
    // the training-set events never see test or val rows
    const ev = await duck(`SELECT max(example) AS hi FROM ${table(dir, 'events')}`);
    expect(ev[0].hi).toBeLessThan(24);
  });
});
