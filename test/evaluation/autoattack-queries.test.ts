import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import * as tf from '@tensorflow/tfjs';
import { initBackend, tensorflowAvailable } from '../../src/backend/select';
import { buildProgram } from '../../src/cli/main';
import { defaultRegistry } from '../../src/run/default-registry';
import { executeRun } from '../../src/run/execute-run';
import { resolveRuns } from '../../src/config/spec';
import { parquetRunSink } from '../../src/logs/sinks';
import { duck, lit } from '../logs/duck';
import { docQueries } from '../logs/doc-queries';

/**
 * `atflow eval` on a real (tiny) run: embedded MNIST, 20 % symmetric label noise, PGD-AT, 4 epochs.
 * The AutoAttack budget is cut down (the attacks themselves are checked against the reference in
 * test/evaluation/autoattack-reference.test.ts); what is checked here is the command, the table, resume
 * after SIGKILL, the bare-weights path, the errors, and the docs/queries.md joins.
 */
const backend = tensorflowAvailable() ? 'tensorflow' : 'wasm';
const spec = {
  name: 'aa',
  seed: 5,
  epochs: 4,
  data: { source: 'mnist', trainSize: 60, testSize: 20, batchSize: 20, testBatchSize: 20 },
  labelNoise: { kind: 'symmetric', rate: 0.2 },
  model: { name: 'cnn-small' },
  trainer: { name: 'pgd-at' },
  attack: { eps: 0.1, alpha: 0.05, steps: 2 },
  optimizer: { lr: 0.05 },
  logging: { complexityEvery: 0 },
};
const BUDGET = ['--apgd-steps', '4', '--targets', '2', '--fab-steps', '3', '--square-queries', '10', '--batch-size', '25', '--quiet'];

let root: string;
let runDir: string;

async function cli(...args: string[]): Promise<string> {
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => {
    out += s;
    return true;
  }) as typeof process.stdout.write;
  try {
    await buildProgram()
      .exitOverride()
      .parseAsync(['node', 'atflow', ...args]);
  } finally {
    process.stdout.write = write;
  }
  return out;
}

const table = (dir: string, order = 'example') =>
  duck(`SELECT * FROM read_parquet(${lit(path.join(dir, 'robustness.parquet'))}) ORDER BY ${order}`);

jest.setTimeout(600_000);

beforeAll(async () => {
  await initBackend(backend);
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-aa-'));
  const [run] = resolveRuns(spec);
  const outcome = await executeRun(run, { outDir: root, registry: defaultRegistry(), backend, sinks: () => [parquetRunSink()] });
  runDir = outcome.runDir;
  await cli(
    'eval',
    runDir,
    '--checkpoint',
    'final',
    '--split',
    'train',
    '--n',
    '60',
    '--name',
    'final-train',
    '--backend',
    backend,
    ...BUDGET,
  );
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('atflow eval on a run folder', () => {
  it('writes one row per example, stage flags that only go down, and a summary that matches the table', async () => {
    const dir = path.join(runDir, 'eval', 'final-train');
    const rows = await table(dir);
    expect(rows.length).toBe(60);
    const labels = await duck(`SELECT example, label_used FROM read_parquet(${lit(path.join(runDir, 'labels.parquet'))}) ORDER BY example`);
    const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'));
    expect(summary.attacks).toEqual(['apgd-ce', 'apgd-t', 'fab-t', 'square']);
    let robust = 0;
    rows.forEach((r, i) => {
      expect(r.example).toBe(i);
      expect(r.label).toBe(labels[i].label_used); // --split train: the labels it was trained on
      expect(r.clean_correct).toBe(r.clean_pred === r.label);
      let prev = r.clean_correct;
      for (const s of ['apgd_ce', 'apgd_t', 'fab_t', 'square']) {
        expect(!r[`${s}_robust`] || prev).toBe(true);
        // a stage ran exactly on the examples still robust before it
        expect(r[`${s}_pred`] >= 0).toBe(prev);
        if (prev) expect(r[`${s}_robust`]).toBe(r[`${s}_pred`] === r.label);
        prev = r[`${s}_robust`];
      }
      expect(r.robust).toBe(prev);
      expect(r.eps).toBeCloseTo(0.1, 12);
      expect(r.checkpoint).toBe('final (epoch 4)');
      robust += r.robust ? 1 : 0;
    });
    expect(summary.robust_acc).toBeCloseTo(robust / 60, 12);
    expect(summary.robust_acc_after.square).toBeCloseTo(summary.robust_acc, 12);
  });

  it('summary.json gives each stage its seconds and the points it attacked; stages and the rest add up to the total', async () => {
    const dir = path.join(runDir, 'eval', 'final-train');
    const rows = await table(dir);
    const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'));
    expect(Object.keys(summary.stage_time)).toEqual(summary.attacks);
    // a stage attacks exactly the examples every earlier stage left robust (the table's flags)
    let before = rows.map((r) => r.clean_correct as boolean);
    for (const stage of summary.attacks as string[]) {
      const t = summary.stage_time[stage];
      expect({ stage, attacked: t.attacked }).toEqual({ stage, attacked: before.filter(Boolean).length });
      expect(t.seconds).toBeGreaterThan(0);
      before = rows.map((r) => r[`${stage.replace(/-/g, '_')}_robust`] as boolean);
    }
    const { clean, checks, bookkeeping } = summary.other_time;
    for (const v of [clean, checks, bookkeeping]) expect(v).toBeGreaterThanOrEqual(0);
    const parts =
      Object.values(summary.stage_time as Record<string, { seconds: number }>).reduce((a, t) => a + t.seconds, 0) +
      clean +
      checks +
      bookkeeping;
    expect(parts).toBeCloseTo(summary.seconds, 9);
  });

  it('docs/queries.md AutoAttack joins = the same statistics computed in TypeScript', async () => {
    const q = docQueries('aa-query');
    expect(Object.keys(q).sort()).toEqual(['aa_by_first_learned', 'aa_late_forgotten', 'aa_memorized_noisy']);
    const sql = (name: string) => duck(q[name].replaceAll('runs/<run_id>', runDir));
    const rows = await table(path.join(runDir, 'eval', 'final-train'));
    const ex = await duck(
      `SELECT example, epoch, is_noisy, correct_clean FROM read_parquet(${lit(path.join(runDir, 'examples', '*', '*.parquet'))}, hive_partitioning = false) WHERE phase = 'eval' AND split = 'train' ORDER BY example, epoch`,
    );
    const ev = await duck(
      `SELECT example, epoch, event FROM read_parquet(${lit(path.join(runDir, 'events.parquet'))}) WHERE phase = 'eval'`,
    );
    const robust = new Map(rows.map((r) => [r.example as number, r.robust ? 1 : 0]));
    const group = (key: (e: number) => string | number | null) => {
      const m = new Map<string | number | null, number[]>();
      for (const [e, r] of robust) m.set(key(e), [...(m.get(key(e)) ?? []), r]);
      return m;
    };
    const check = (got: Record<string, any>[], col: string, want: Map<string | number | null, number[]>) => {
      expect(got.length).toBe(want.size);
      for (const g of got) {
        const w = want.get(g[col] ?? null)!;
        expect(g.examples).toBe(w.length);
        expect(g.aa_robust_acc).toBeCloseTo(w.reduce((a, b) => a + b, 0) / w.length, 12);
      }
    };
    const lastEpoch = Math.max(...ex.map((r) => r.epoch));
    const atLast = new Map(ex.filter((r) => r.epoch === lastEpoch).map((r) => [r.example, r]));
    const memo = group((e) =>
      atLast.get(e)!.is_noisy ? (atLast.get(e)!.correct_clean ? 'noisy, memorized' : 'noisy, not memorized') : 'clean label',
    );
    expect([...memo.keys()]).toContain('clean label');
    check(await sql('aa_memorized_noisy'), 'label_group', memo);

    const forgotten = ev.filter((r) => r.event === 'forgotten' || r.event === 'robust_forgotten');
    const late = new Set(forgotten.filter((r) => r.epoch > (lastEpoch * 2) / 3).map((r) => r.example));
    const ever = new Set(forgotten.map((r) => r.example));
    check(
      await sql('aa_late_forgotten'),
      'forgetting',
      group((e) => (late.has(e) ? 'forgotten late' : ever.has(e) ? 'forgotten earlier only' : 'never forgotten')),
    );

    const first = new Map<number, number | null>();
    for (const r of ex)
      if (!first.has(r.example) || (first.get(r.example) === null && r.correct_clean))
        first.set(r.example, r.correct_clean ? r.epoch : null);
    check(
      await sql('aa_by_first_learned'),
      'first_learned',
      group((e) => first.get(e) ?? null),
    );
  });

  it('resumed after SIGKILL, it writes the same robustness.parquet as the uninterrupted evaluation', async () => {
    const args = [
      'eval',
      runDir,
      '--checkpoint',
      'final',
      '--split',
      'train',
      '--n',
      '60',
      '--backend',
      backend,
      ...BUDGET,
      '--batch-size',
      '10',
    ];
    await cli(...args, '--name', 'whole');
    const killedDir = path.join(runDir, 'eval', 'killed');
    const child = spawn(process.execPath, [path.join(__dirname, '..', '..', 'bin', 'atflow.js'), ...args, '--name', 'killed'], {
      stdio: 'ignore',
    });
    // kill once at least one batch (and not all six) is on disk
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        const state = path.join(killedDir, 'state.jsonl');
        const lines = fs.existsSync(state) ? fs.readFileSync(state, 'utf8').split('\n').filter(Boolean).length : 0;
        if (lines >= 2) {
          clearInterval(timer);
          child.kill('SIGKILL');
          resolve();
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(timer);
        reject(new Error('the evaluation finished before it could be killed'));
      });
    });
    await new Promise((r) => child.on('exit', r));
    expect(fs.existsSync(path.join(killedDir, 'robustness.parquet'))).toBe(false);
    await cli(...args, '--name', 'killed', '--resume');
    const strip = (rows: Record<string, unknown>[]) => rows.map((r) => JSON.stringify(r));
    expect(strip(await table(killedDir))).toEqual(strip(await table(path.join(runDir, 'eval', 'whole'))));
  });

  it('runs on a bare safetensors file and agrees with the run-folder evaluation of the same weights', async () => {
    const latest = fs.readFileSync(path.join(runDir, 'checkpoints', 'LATEST'), 'utf8').trim();
    const file = path.join(root, 'final.safetensors');
    fs.copyFileSync(path.join(runDir, 'checkpoints', latest, 'model.safetensors'), file);
    await cli('eval', file, '--dataset', 'mnist', '--eps', '0.1', '--n', '20', '--backend', backend, ...BUDGET);
    const bare = await table(path.join(root, 'eval', 'final-standard-linf-eps0.1-test-n20'));
    await cli('eval', runDir, '--checkpoint', 'final', '--n', '20', '--backend', backend, ...BUDGET);
    const fromRun = await table(path.join(runDir, 'eval', 'final-standard-linf-eps0.1-test-n20'));
    expect(bare.length).toBe(20);
    // the run's test split is the dataset's (first 20); same weights, same seeds: the same table up to the checkpoint label
    expect(bare.map(({ checkpoint: _c, ...r }) => JSON.stringify(r))).toEqual(fromRun.map(({ checkpoint: _c, ...r }) => JSON.stringify(r)));
    expect(tf.memory().numTensors).toBeLessThan(1000);
  });

  it('clear errors: ε given as 8, an unknown attack (closest name suggested), another class count, DLR-T on 3 classes', async () => {
    await expect(cli('eval', runDir, '--eps', '8', '--backend', backend)).rejects.toThrow(/larger than 1.*8\/255/);
    await expect(cli('eval', runDir, '--attacks', 'apgd-tt', '--backend', backend)).rejects.toThrow(
      /unknown AutoAttack attack 'apgd-tt' \(did you mean 'apgd-t'\?\)/,
    );
    const file = path.join(root, 'final.safetensors');
    await expect(cli('eval', file, '--dataset', 'mnist', '--eps', '0.1', '--classes', '5', '--backend', backend)).rejects.toThrow(
      /5-class model but dataset 'mnist' has 10 classes/,
    );
    await expect(cli('eval', file, '--dataset', 'mnist', '--eps', '0.1', '--model', 'mlp', '--backend', backend)).rejects.toThrow(
      /missing tensor\(s\).*mlp/,
    );
    // eval.final.strong takes true/false or "autoattack" (the hook that runs the standard suite after training)
    const { validateSpec } = await import('../../src/config/spec');
    expect(validateSpec({ ...spec, eval: { final: { strong: 'autoattack' } } }).eval.final.strong).toBe('autoattack');
    expect(() => validateSpec({ ...spec, eval: { final: { strong: 'autoatack' } } })).toThrow(/strong/);
    const { resolveAutoAttack } = await import('../../src/evaluation/autoattack');
    const { threatModel } = await import('../../src/evaluation/threat-model');
    expect(() => resolveAutoAttack({ threat: threatModel({ eps: 0.1, norm: 'linf' }) }, 3)).toThrow(/'apgd-t' needs at least 4 classes/);
    // FAB-T needs a target class besides the label: 2 classes, as checked (the message said 3)
    expect(() => resolveAutoAttack({ threat: threatModel({ eps: 0.1, norm: 'linf' }), attacks: ['fab-t'] }, 1)).toThrow(
      /'fab-t' needs at least 2 classes \(a target class other than the label\), but the model has 1/,
    );
    expect(resolveAutoAttack({ threat: threatModel({ eps: 0.1, norm: 'linf' }), attacks: ['fab-t'] }, 2).stages).toEqual(['fab-t']);
  });
});
