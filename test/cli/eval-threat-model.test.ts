import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, tensorflowAvailable } from '../../src/backend/select';
import { buildRun } from '../../src/config/build-run';
import { resolveRuns, type RunSpecInput } from '../../src/config/spec';
import { deriveSeed } from '../../src/core/rng';
import { autoAttackBatch } from '../../src/evaluation/autoattack';
import { threatModel } from '../../src/evaluation/threat-model';
import { loadWeights } from '../../src/models/checkpoint';
import { parquetRunSink } from '../../src/logs/sinks';
import { defaultRegistry } from '../../src/run/default-registry';
import { EVAL_FOLDER_PATTERN } from '../../src/run/eval-folder';
import { executeRun } from '../../src/run/execute-run';
import { duck, lit } from '../logs/duck';

/**
 * One threat model from the config (or `atflow eval`'s flags) to every evaluation (issue 22 items 1-2 and
 * "Misleading outputs"): two small real runs (256 embedded MNIST digits, MLP, two epochs of PGD-AT, ℓ∞ 8/255), one
 * evaluated in ℓ2 at ε = 0.5 with AutoAttack at the end of training; `atflow eval` as users run it, the
 * bin behind a symlink named atflow.
 */
const ROOT = path.join(__dirname, '..', '..');
const backend = tensorflowAvailable() ? 'tensorflow' : 'wasm';
const BUDGET = ['--apgd-steps', '4', '--targets', '2', '--fab-steps', '3', '--square-queries', '10', '--batch-size', '25', '--quiet'];
const N = 16;
const base: RunSpecInput = {
  seed: 3,
  epochs: 2,
  data: { source: 'mnist', trainSize: 256, testSize: N, batchSize: 32, testBatchSize: N },
  model: { name: 'mlp' },
  trainer: { name: 'pgd-at' },
  attack: { norm: 'linf', eps: 8 / 255, alpha: 2 / 255, steps: 2 },
  optimizer: { lr: 0.05 },
  logging: { examples: false },
};
/** Exactly issue 22 item 1's config: ℓ∞ training, ℓ2 evaluation at ε = 0.5, AutoAttack after training. */
const l2Eval: RunSpecInput = {
  ...base,
  name: 'l2-eval',
  eval: { attack: { norm: 'l2', eps: 0.5 }, final: { strong: 'autoattack', examples: N } },
};
const linfRun: RunSpecInput = { ...base, name: 'linf' };

let dir: string;
let atflow: string;
let l2Dir: string;
let linfDir: string;

function cli(...args: string[]) {
  return spawnSync(atflow, args, { cwd: dir, encoding: 'utf8', timeout: 300_000 });
}
const lastLine = (s: string) => s.trim().split('\n').pop()!;
const json = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));

jest.setTimeout(900_000);

beforeAll(async () => {
  await initBackend(backend);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-threat-'));
  atflow = path.join(dir, 'atflow');
  fs.symlinkSync(path.join(ROOT, 'bin', 'atflow.js'), atflow);
  for (const spec of [l2Eval, linfRun]) {
    const [run] = resolveRuns(spec as Record<string, unknown>);
    const outcome = await executeRun(run, {
      outDir: path.join(dir, 'runs'),
      registry: defaultRegistry(),
      backend,
      sinks: () => [parquetRunSink()],
    });
    if (outcome.status !== 'completed') throw new Error(`${spec.name}: ${outcome.status}`);
    if (spec === l2Eval) l2Dir = outcome.runDir;
    else linfDir = outcome.runDir;
  }
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("the end-of-training AutoAttack attacks in the run's threat model (ℓ∞ training, ℓ2 evaluation at ε = 0.5)", () => {
  it('final_eval.json reports ℓ2 AutoAttack at ε = 0.5, under a folder named for that ball, and the table holds it', async () => {
    const fe = json(path.join(l2Dir, 'final_eval.json'));
    expect([fe.norm, fe.eps]).toEqual(['l2', 0.5]);
    const aa = fe.autoattack.final;
    expect([aa.norm, aa.eps, aa.n]).toEqual(['l2', 0.5, N]);
    expect(aa.folder).toBe(path.join('eval', `final-standard-l2-eps0.5-test-n${N}`));
    const rows = await duck(
      `SELECT norm, eps, count(*) AS n, avg(robust::INTEGER) AS acc FROM read_parquet(${lit(path.join(l2Dir, aa.folder, 'robustness.parquet'))}) GROUP BY ALL`,
    );
    expect(rows).toEqual([{ norm: 'l2', eps: 0.5, n: N, acc: aa.robust_acc }]);
  });

  it('its robust flags are those of AutoAttack in the ℓ2 ball of radius 0.5 on the final weights, not the ℓ∞ ball of 0.5', async () => {
    const [run] = resolveRuns(l2Eval as Record<string, unknown>);
    const parts = buildRun(run.spec, defaultRegistry());
    const latest = fs.readFileSync(path.join(l2Dir, 'checkpoints', 'LATEST'), 'utf8').trim();
    loadWeights(parts.model, path.join(l2Dir, 'checkpoints', latest, 'model.safetensors'));
    const b = parts.source.load({ split: 'test', epoch: 0, step: 0, indices: Int32Array.from({ length: N }, (_, i) => i) });
    const y = tf.tensor1d(b.labelsTrue, 'int32');
    // the end-of-training evaluation's seeds: one batch (testBatchSize = N) starting at example 0
    const seed = deriveSeed(deriveSeed(run.spec.seed, 'final-autoattack'), 'autoattack', 0);
    const robust = (norm: 'l2' | 'linf') =>
      Array.from(autoAttackBatch(parts.model, b.x, y, seed, { threat: threatModel({ norm, eps: 0.5 }) }).robust);
    const l2 = robust('l2');
    const linf = robust('linf');
    tf.dispose([b.x, y]);
    parts.model.dispose();
    const table = await duck(
      `SELECT robust FROM read_parquet(${lit(path.join(l2Dir, 'eval', `final-standard-l2-eps0.5-test-n${N}`, 'robustness.parquet'))}) ORDER BY example`,
    );
    expect(table.map((r) => (r.robust ? 1 : 0))).toEqual(l2);
    // what the old wiring reported: ℓ∞ at 0.5 leaves nothing robust, while the ℓ2 ball of 0.5 does
    expect(linf.every((v) => v === 0)).toBe(true);
    expect(l2.some((v) => v === 1)).toBe(true);
  });

  it('a later `atflow eval --checkpoint final` with other settings gets its own folder: final_eval.json and its folder still agree', () => {
    const fe = json(path.join(l2Dir, 'final_eval.json'));
    const aaDir = path.join(l2Dir, fe.autoattack.final.folder);
    const before = ['summary.json', 'robustness.parquet'].map((f) => fs.readFileSync(path.join(aaDir, f)));
    const r = cli('eval', l2Dir, '--checkpoint', 'final', '--n', String(N), '--backend', backend, ...BUDGET);
    if (r.status !== 0) throw new Error(r.stderr);
    const folder = lastLine(r.stdout);
    expect(path.basename(folder)).toMatch(new RegExp(`^final-standard-l2-eps0\\.5-test-n${N}-[0-9a-f]{8}$`));
    expect(['summary.json', 'robustness.parquet'].map((f) => fs.readFileSync(path.join(aaDir, f)))).toEqual(before);
    const { folder: _f, ...summary } = fe.autoattack.final;
    expect(json(path.join(aaDir, 'summary.json'))).toEqual(summary);
    expect(json(path.join(folder, 'summary.json')).budget.apgdSteps).toBe(4);
    // the same settings again find the same folder
    expect(lastLine(cli('eval', l2Dir, '--checkpoint', 'final', '--n', String(N), '--backend', backend, ...BUDGET).stdout)).toBe(folder);
  });
});

describe('atflow eval on an ℓ∞ 8/255 run', () => {
  it('--norm l2 without --eps is an error naming both (not an ℓ2 ball of radius 0.031)', () => {
    const r = cli('eval', linfDir, '--norm', 'l2', '--n', '8', '--backend', backend, ...BUDGET);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /--norm: l2 changes the norm of the run's evaluation \(linf\), but --eps is not given: ε would be the run's eps 0\.03137, a radius in ℓ∞; pass --eps with the ℓ2 radius/,
    );
    expect(fs.existsSync(path.join(linfDir, 'eval'))).toBe(false);
  });

  it('--norm l2 --eps 0.5 attacks that ball, in a folder named by checkpoint, attacks, norm, ε, split and n (as --help says)', () => {
    const r = cli('eval', linfDir, '--norm', 'l2', '--eps', '0.5', '--n', '8', '--backend', backend, ...BUDGET);
    if (r.status !== 0) throw new Error(r.stderr);
    const folder = lastLine(r.stdout);
    expect(folder).toBe(path.join(linfDir, 'eval', 'best-standard-l2-eps0.5-test-n8'));
    const summary = json(path.join(folder, 'summary.json'));
    expect([summary.norm, summary.eps, summary.n]).toEqual(['l2', 0.5, 8]);
    const help = cli('eval', '--help').stdout.replace(/\s+/g, ' ');
    expect(help).toContain(`default: ${EVAL_FOLDER_PATTERN}`);
    expect(EVAL_FOLDER_PATTERN).toBe('<checkpoint>-<attacks>-<norm>-eps<ε>-<split>-n<n>');
  });

  it('clear errors: --seed abc, a --name that leaves eval/, a --name whose folder holds other settings', () => {
    const seed = cli('eval', linfDir, '--seed', 'abc', '--backend', backend);
    expect(seed.status).toBe(2);
    expect(seed.stderr).toContain("--seed must be an integer ≥ 0, got 'abc'");
    const escape = cli('eval', linfDir, '--name', '../../x', '--n', '8', '--backend', backend, ...BUDGET);
    expect(escape.status).toBe(2);
    expect(escape.stderr).toContain("--name '../../x': expected a folder name under eval/");
    expect(fs.existsSync(path.join(path.dirname(linfDir), 'x'))).toBe(false);
    const mine = cli('eval', linfDir, '--name', 'mine', '--n', '8', '--backend', backend, ...BUDGET);
    if (mine.status !== 0) throw new Error(mine.stderr);
    const kept = fs.readFileSync(path.join(linfDir, 'eval', 'mine', 'summary.json'));
    const other = cli('eval', linfDir, '--name', 'mine', '--n', '8', '--seed', '1', '--backend', backend, ...BUDGET);
    expect(other.status).toBe(2);
    expect(other.stderr).toMatch(/eval\/mine holds an evaluation with other settings .*"seed":0.*would overwrite it: pick another --name/);
    expect(fs.readFileSync(path.join(linfDir, 'eval', 'mine', 'summary.json'))).toEqual(kept);
  });
});
