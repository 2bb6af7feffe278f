import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { probeGradient } from '../../src/cli/commands/probe';
import { saveWeights } from '../../src/models/checkpoint';
import { buildRun } from '../../src/config/build-run';
import { defaultRegistry } from '../../src/run/default-registry';
import { validateSpec } from '../../src/config/spec';
import { initBackend } from '../../src/backend/select';
import { duck, lit } from '../logs/duck';

/**
 * A run folder as the pipeline leaves it (spec.json with the stored spec, a checkpoint), built
 * directly so the test does not depend on training time: synthetic data, a small MLP.
 */
let dir: string;
const rawSpec = {
  name: 'probe-test',
  seed: 3,
  epochs: 2,
  data: {
    source: 'synthetic',
    options: { imageShape: [4, 4, 1], numClasses: 4 },
    trainSize: 40,
    testSize: 8,
    batchSize: 8,
    testBatchSize: 8,
    augment: 'none',
  },
  model: { name: 'mlp' },
  trainer: { name: 'pgd-at' },
  attack: { norm: 'linf', eps: 0.1, alpha: 0.05, steps: 2 },
};

beforeAll(async () => {
  await initBackend('cpu');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-probe-cli-'));
  const spec = validateSpec(rawSpec);
  const parts = buildRun(spec, defaultRegistry());
  fs.mkdirSync(path.join(dir, 'checkpoints', 'epoch-0002'), { recursive: true });
  saveWeights(parts.model, path.join(dir, 'checkpoints', 'epoch-0002', 'model.safetensors'));
  parts.model.dispose();
  // the pipeline stores the spec with its `variant` and `meta` annotations
  fs.writeFileSync(
    path.join(dir, 'spec.json'),
    JSON.stringify({ run_id: 'probe-test', seed: 3, spec: { ...spec, variant: null, meta: { trainer: 'pgd-at' } } }),
  );
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('probeGradient on a run folder: deterministic Δ(α), Parquet + SVG in the folder', async () => {
  const a = await probeGradient(dir, { epoch: 2, batchSize: 16, alphas: [1e-5, 1e-2], backend: 'cpu' });
  expect(a.rows.map((r) => r.alpha)).toEqual([1e-5, 1e-2]);
  expect(a.rows[0].delta).toBeLessThan(a.rows[1].delta);
  const rows = await duck(`select epoch, trainer, alpha, delta, batch_size from read_parquet(${lit(a.parquet)}) order by alpha`);
  expect(rows).toEqual(a.rows.map((r) => ({ epoch: 2, trainer: 'pgd-at', alpha: r.alpha, delta: r.delta, batch_size: 16 })));
  const b = await probeGradient(dir, { epoch: 2, batchSize: 16, alphas: [1e-5, 1e-2], backend: 'cpu' });
  expect(b.rows).toEqual(a.rows);
  expect(fs.readFileSync(a.svg, 'utf8')).toMatch(/class="mark-line role-mark/);
});

test('epoch 0 is the initialisation rebuilt from the run seed; fixed and recomputed probes of one epoch are kept side by side', async () => {
  // the fixture's epoch-2 checkpoint holds exactly the weights buildRun draws from the seed
  const init = await probeGradient(dir, { epoch: 0, batchSize: 16, alphas: [1e-3, 1e-1], backend: 'cpu' });
  const ckpt = await probeGradient(dir, { epoch: 2, batchSize: 16, alphas: [1e-3, 1e-1], backend: 'cpu' });
  expect(init.rows).toEqual(ckpt.rows);
  const fixed = await probeGradient(dir, { epoch: 2, batchSize: 16, alphas: [1e-3, 1e-1], backend: 'cpu', adversarial: 'fixed' });
  expect(fixed.rows[0].grad_norm_base).toBe(ckpt.rows[0].grad_norm_base);
  const rows = await duck(
    `select epoch, adversarial, alpha, delta from read_parquet(${lit(fixed.parquet)}) order by epoch, adversarial, alpha`,
  );
  expect(rows).toEqual([
    ...init.rows.map((r) => ({ epoch: 0, adversarial: 'recomputed', alpha: r.alpha, delta: r.delta })),
    ...fixed.rows.map((r) => ({ epoch: 2, adversarial: 'fixed', alpha: r.alpha, delta: r.delta })),
    ...ckpt.rows.map((r) => ({ epoch: 2, adversarial: 'recomputed', alpha: r.alpha, delta: r.delta })),
  ]);
});

test('atflow probe gradient: a missing checkpoint epoch is a named error listing the kept ones and how to keep every epoch', () => {
  const bin = path.join(__dirname, '..', '..', 'bin', 'atflow.js');
  let err = '';
  try {
    execFileSync('node', [bin, 'probe', 'gradient', dir, '--epoch', '1', '--backend', 'cpu'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    err = String((e as { stderr: string }).stderr);
  }
  expect(err).toContain('no checkpoint for epoch 1');
  expect(err).toContain('checkpoints kept: 2');
  // and why only those: the run kept its newest (issue 25), as `atflow eval --checkpoint epoch-N` says
  expect(err).toContain('checkpoint.keep: "all"');
});
