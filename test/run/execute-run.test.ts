import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/select';
import { executeRun } from '../../src/run/execute-run';
import { defaultRegistry } from '../../src/run/default-registry';
import { resolveRuns } from '../../src/config/spec';
import { parquetRunSink } from '../../src/logs/sinks';
import { readSafetensorsFile } from '../../src/models/safetensors';
import { duck, lit } from '../logs/duck';

/** A real (tiny) run on embedded MNIST digits: 48 training examples, 3 epochs, random labels. */
const spec = {
  name: 'it',
  seed: 3,
  epochs: 3,
  data: { source: 'mnist', trainSize: 48, testSize: 32, batchSize: 16, testBatchSize: 32 },
  labelNoise: { kind: 'symmetric', rate: 0.5 },
  model: { name: 'cnn-small' },
  trainer: { name: 'trades', te: { start: 2, end: 3, weight: 30, momentum: 0.9 } },
  attack: { eps: 0.1, alpha: 0.05, steps: 2 },
  optimizer: { lr: 0.05, weightDecay: 5e-4 },
  schedule: { name: 'multistep', milestones: [2] },
  logging: { complexityEvery: 2 },
};
/** The first test also runs the strong final evaluation (slow: hundreds of attack steps). */
const withStrongEval = { ...spec, eval: { final: { strong: true, examples: 8, restarts: 1 } } };

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-run-'));

async function tableRows(runDir: string, table: string, order: string): Promise<Record<string, unknown>[]> {
  const src =
    table === 'examples'
      ? `read_parquet(${lit(path.join(runDir, 'examples', '*', '*.parquet'))}, hive_partitioning = false)`
      : `read_parquet(${lit(path.join(runDir, table + '.parquet'))})`;
  const rows = await duck(`SELECT * EXCLUDE (run_id) FROM ${src} ORDER BY ${order}`);
  // wall-clock columns differ between two runs by nature
  return rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !['time', 'ms', 'wall_ms', 'eval_ms'].includes(k))));
}

describe('executeRun (embedded MNIST, cnn-small, TRADES+TE, wasm)', () => {
  jest.setTimeout(300_000);
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('writes every table with N × epochs × phases example rows and frees every tensor', async () => {
    const out = tmp();
    const [run] = resolveRuns(withStrongEval);
    const before = tf.memory().numTensors;
    const outcome = await executeRun(run, { outDir: out, registry: defaultRegistry(), backend: 'wasm', sinks: () => [parquetRunSink()] });
    expect(tf.memory().numTensors).toBe(before);
    expect(outcome.status).toBe('completed');
    const dir = outcome.runDir;
    for (const f of ['_SUCCESS', 'spec.json', 'labels.parquet', 'epochs.parquet', 'steps.parquet', 'events.parquet'])
      expect(fs.existsSync(path.join(dir, f))).toBe(true);

    const ex = await duck(
      `SELECT epoch, phase, split, count(*) AS n, count(DISTINCT example) AS d FROM read_parquet(${lit(path.join(dir, 'examples', '*', '*.parquet'))}, hive_partitioning = false) GROUP BY ALL ORDER BY ALL`,
    );
    // the training set in both phases, the test split (32 examples) in the eval phase, at every evaluated epoch
    expect(ex).toEqual(
      [1, 2, 3].flatMap((epoch) => [
        { epoch, phase: 'eval', split: 'test', n: 32, d: 32 },
        { epoch, phase: 'eval', split: 'train', n: 48, d: 48 },
        { epoch, phase: 'train', split: 'train', n: 48, d: 48 },
      ]),
    );
    // TE starts at epoch 2: its columns are null before and set after, in the train phase only
    const te = await duck(
      `SELECT epoch, count(te_penalty) AS p FROM read_parquet(${lit(path.join(dir, 'examples', '*', '*.parquet'))}, hive_partitioning = false) WHERE phase = 'train' GROUP BY ALL ORDER BY ALL`,
    );
    expect(te).toEqual([
      { epoch: 1, p: 0 },
      { epoch: 2, p: 48 },
      { epoch: 3, p: 48 },
    ]);
    // labels in the examples table are the assigned ones; the realised noise matches labels.parquet
    const noisy = await duck(
      `SELECT (SELECT avg(is_noisy::INT) FROM read_parquet(${lit(path.join(dir, 'labels.parquet'))})) AS a, (SELECT avg(is_noisy::INT) FROM read_parquet(${lit(path.join(dir, 'examples', '*', '*.parquet'))}, hive_partitioning = false) WHERE epoch = 1 AND phase = 'eval' AND split = 'train') AS b`,
    );
    expect(noisy[0].a).toBeCloseTo(noisy[0].b, 10);
    expect(noisy[0].a).toBeGreaterThan(0.2);
    // the epochs table: lr drops at the milestone; train accuracies equal the eval-phase rows' means
    const ep = await duck(
      `SELECT epoch, lr, te_weight, train_robust_acc FROM read_parquet(${lit(path.join(dir, 'epochs.parquet'))}) ORDER BY epoch`,
    );
    expect(ep.map((r) => r.lr)).toEqual([0.05, 0.05, expect.closeTo(0.005, 12)]);
    expect(ep[0].te_weight).toBe(0);
    expect(ep[1].te_weight).toBeCloseTo(30 * Math.exp(-5), 6);
    expect(ep[2].te_weight).toBe(30);
    const acc = await duck(
      `SELECT epoch, avg(correct_adv::INT) AS a FROM read_parquet(${lit(path.join(dir, 'examples', '*', '*.parquet'))}, hive_partitioning = false) WHERE phase = 'eval' AND split = 'train' GROUP BY ALL ORDER BY ALL`,
    );
    expect(ep.map((r) => r.train_robust_acc)).toEqual(acc.map((r) => expect.closeTo(r.a, 6)));
    const steps = await duck(`SELECT count(*) AS n FROM read_parquet(${lit(path.join(dir, 'steps.parquet'))})`);
    expect(steps[0].n).toBe(3 * 3);
    // complexity at epochs 2 and 3 (the last); the robust gap there is train − test robust accuracy of the epoch
    const cx = await duck(
      `SELECT c.epoch, c.value, e.train_robust_acc - e.test_robust_acc AS gap FROM read_parquet(${lit(path.join(dir, 'complexity.parquet'))}) c JOIN read_parquet(${lit(path.join(dir, 'epochs.parquet'))}) e USING (epoch) WHERE c.measure = 'robust_generalization_gap' ORDER BY c.epoch`,
    );
    expect(cx.map((r) => r.epoch)).toEqual([2, 3]);
    for (const r of cx) expect(r.value).toBeCloseTo(r.gap, 6);
    const measures = await duck(`SELECT DISTINCT measure FROM read_parquet(${lit(path.join(dir, 'complexity.parquet'))}) ORDER BY 1`);
    // the final evaluation: sanity checks and the strong attacks on the best and final checkpoints
    const fe = JSON.parse(fs.readFileSync(path.join(dir, 'final_eval.json'), 'utf8'));
    expect(fe.sanity.eps0Acc).toBe(fe.sanity.cleanAcc);
    for (const which of ['best', 'final']) {
      const e = fe.strong[which];
      expect(Object.keys(e.per_attack)).toEqual(['pgd-20', 'pgd-50x1', 'cw-30', 'apgd-ce', 'apgd-dlr']);
      expect(e.worst_case_acc).toBeLessThanOrEqual(Math.min(...(Object.values(e.per_attack) as number[])));
      for (const v of Object.values(e.per_attack) as number[]) expect(v).toBeLessThanOrEqual(e.clean_acc);
    }
    expect(measures.map((r) => r.measure)).toEqual(
      expect.arrayContaining(['frobenius_prod', 'spectral_prod', 'path_norm', 'sharpness_max', 'spectral_complexity_over_margin']),
    );
  });

  it('an interrupted run resumed from its checkpoint gives the same tables and weights as an uninterrupted one', async () => {
    const [run] = resolveRuns(spec);
    const registry = defaultRegistry();
    const a = await executeRun(run, { outDir: tmp(), registry, backend: 'wasm', sinks: () => [parquetRunSink()] });
    const outB = tmp();
    let epochEnds = 0;
    const first = await executeRun(run, {
      outDir: outB,
      registry,
      backend: 'wasm',
      sinks: () => [parquetRunSink()],
      observe: (ev$) => ev$.subscribe((ev) => ev.type === 'epoch-end' && epochEnds++),
      shouldStop: () => epochEnds >= 1,
    });
    expect(first.status).toBe('interrupted');
    expect(fs.existsSync(path.join(first.runDir, '_SUCCESS'))).toBe(false);
    await expect(executeRun(run, { outDir: outB, registry, backend: 'wasm', sinks: () => [parquetRunSink()] })).rejects.toThrow(/--resume/);
    const b = await executeRun(run, { outDir: outB, registry, backend: 'wasm', resume: true, sinks: () => [parquetRunSink()] });
    expect(b.status).toBe('completed');
    for (const [table, order] of [
      ['examples', 'epoch, phase, split, example'],
      ['events', 'epoch, phase, example, event'],
      ['epochs', 'epoch'],
      ['steps', 'epoch, step'],
      ['labels', 'example'],
      ['complexity', 'epoch, measure'],
    ]) {
      expect(await tableRows(b.runDir, table, order)).toEqual(await tableRows(a.runDir, table, order));
    }
    const wa = readSafetensorsFile(path.join(a.runDir, 'checkpoints', 'epoch-0003', 'model.safetensors'));
    const wb = readSafetensorsFile(path.join(b.runDir, 'checkpoints', 'epoch-0003', 'model.safetensors'));
    expect([...wb.tensors.keys()]).toEqual([...wa.tensors.keys()]);
    for (const [k, t] of wa.tensors) expect(Buffer.from(wb.tensors.get(k)!.data).equals(Buffer.from(t.data))).toBe(true);
    // a finished run is skipped
    expect((await executeRun(run, { outDir: outB, registry, backend: 'wasm', resume: true })).status).toBe('skipped');
  });
});

describe('checkpoint.keep', () => {
  it("'all' keeps every epoch's checkpoint, 'last' only the newest", async () => {
    await initBackend('wasm');
    const tiny = { ...spec, epochs: 2, data: { ...spec.data, trainSize: 16, testSize: 8 }, logging: { complexityEvery: 0 } };
    for (const keep of ['all', 'last'] as const) {
      const [run] = resolveRuns({ ...tiny, checkpoint: { every: 1, keep } });
      const out = await executeRun(run, { outDir: tmp(), registry: defaultRegistry(), backend: 'wasm' });
      const dirs = fs
        .readdirSync(path.join(out.runDir, 'checkpoints'))
        .filter((f) => f.startsWith('epoch-'))
        .sort();
      expect(dirs).toEqual(keep === 'all' ? ['epoch-0001', 'epoch-0002'] : ['epoch-0002']);
    }
  });
});
