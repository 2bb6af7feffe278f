/**
 * `atflow bench --suite eval` (also part of `--suite all`): evaluation speed beside PyTorch CPU, both
 * measured in this one invocation, one after the other (never concurrently):
 *
 *  1. AutoAttack, standard version, per stage, on fixed weights and inputs, beside the reference
 *     AutoAttack (fra31/auto-attack's own run_standard_evaluation, each stage's perturb timed, run by
 *     bench/peers/autoattack_reference.py --mode bench on the same weights and the same inputs):
 *       mnist-cnn        cnn-small after 3 epochs of PGD-AT (ε = 0.3, α = 0.04, PGD-10, lr 0.05) on the 8,000
 *                        embedded training digits (trained here once, cached in .cache/bench-eval/), the first
 *                        200 test digits, ℓ∞ ε = 0.3;
 *       preact-resnet18  PreAct-ResNet-18 at its seeded initialisation on 32×32×3 inputs drawn uniformly (seeded),
 *                        labelled with the model's own clean predictions (every point starts robust), ℓ∞ ε = 1/255.
 *  2. The per-epoch evaluation of a run (clean + PGD-10 on the test set and on a training subset, in
 *     batches of 200, evaluatePass as the 'pgd' evaluator runs it) and one PGD-AT epoch, beside the same two
 *     in PyTorch (bench/peers/torch_engine.py --epoch), and the evaluation's share of epoch time.
 *
 * Rows: {model, n, stage, backend, ms, peer_ms, ratio, attacked, peer_attacked, robust_acc,
 * peer_robust_acc} for AutoAttack (stage: apgd-ce, apgd-t, fab-t, square, total; `attacked` = points the
 * stage attacked), {model, n, stage: 'epoch-eval' | 'epoch-train', backend, ms, peer_ms, ratio, share,
 * peer_share} for the epoch part. ratio = peer_ms / ms (> 1: atflow is faster).
 *
 *   atflow bench --suite eval [--json] [--quick] [--autoattack DIR]      (or: npx tsx bench/eval.ts, options below)
 *   npx tsx bench/eval.ts [--models mnist,resnet] [--parts autoattack,epoch] [--n-mnist 200] [--n-resnet 8]
 *                         [--backend tensorflow] [--no-peer] [--aa DIR] [--quick] [--mnist-weights FILE]
 * JSON lines on stdout (one per row, as they are known), the table on stderr.
 *
 * The reference AutoAttack is a checkout of fra31/auto-attack (the folder holding autoattack/), named by
 * --aa or ATFLOW_AUTOATTACK; atflow never copies its code. Without it (or without PyTorch) peer_ms is null
 * and a note on stderr says what to do.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { lastValueFrom, reduce } from 'rxjs';
import { describeBackend, initBackend, type BackendName } from '../src/backend/select';
import type { Model } from '../src/core/model';
import { deriveSeed, Rng } from '../src/core/rng';
import { createModel, loadWeights, saveWeights } from '../src/models';
import { writeSafetensorsFile, type SafetensorsTensor } from '../src/models/safetensors';
import { attack } from '../src/operators/attack';
import { STANDARD_STAGES } from '../src/evaluation/autoattack';
import { evaluatePass } from '../src/evaluation/evaluate';
import { loadBatches } from '../src/operators/load-batches';
import { Sgd } from '../src/algorithms/optim/sgd';
import { randomizeLabels } from '../src/operators/randomize-labels';
import { makeLrSchedule } from '../src/algorithms/schedules/lr-schedule';
import { train } from '../src/operators/train';
import { createTrainer } from '../src/config/builtins';
import { threatModel } from '../src/evaluation/threat-model';
import { evaluateAutoAttack } from '../src/run/evaluate-autoattack';
import { formatEvalProgress } from '../src/logs/progress';
import { BatchPlanner } from '../src/data/batch-plans';
import { createMnistSource } from '../src/data/mnist';
import type { Source } from '../src/data/source';
import { median, peerPython } from './engine';

const ROOT = path.join(__dirname, '..');
const CACHE = path.join(ROOT, '.cache', 'bench-eval');
const SEED = 20240;

/** The MNIST model: mnist-pgd-at-cpu's settings for 3 epochs (the weights of issue 26's measurement). */
const MNIST_TRAINING = {
  trainSize: 8000,
  epochs: 3,
  batch: 128,
  eps: 0.3,
  alpha: 0.04,
  steps: 10,
  lr: 0.05,
  momentum: 0.9,
  weightDecay: 5e-4,
  seed: 1,
};
const MNIST_EPS = 0.3;
const RESNET_EPS = 1 / 255;
/** The epoch part: mnist-pgd-at-cpu's evaluation (PGD-10, α = 0.04, batches of 200, a 500-digit training subset). */
const EPOCH = {
  trainSize: 2000,
  testSize: 1000,
  subset: 500,
  evalBatch: 200,
  trainBatch: 128,
  eps: 0.3,
  alpha: 0.04,
  evalAlpha: 0.04,
  steps: 10,
};

export interface EvalBenchRow {
  readonly model: string;
  readonly n: number;
  readonly stage: string;
  readonly backend: BackendName;
  readonly ms: number;
  readonly peer_ms: number | null;
  readonly ratio: number | null;
  readonly [extra: string]: unknown;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const flag = (name: string) => process.argv.includes(`--${name}`);
const note = (m: string) => process.stderr.write(`bench eval: ${m}\n`);

/** Runs a peer script with the bench's python; its JSON lines, or null with a note saying what to do. */
function runPeer(script: string, args: string[]): Array<Record<string, unknown>> | null {
  const python = peerPython(ROOT);
  const r = spawnSync(python, [path.join(__dirname, 'peers', script), ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error) {
    note(`PyTorch peer not run: ${python} is not available (${r.error.message}); run \`npm run setup:python\`; peer_ms is null`);
    return null;
  }
  const lines = r.stdout
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const err = lines.find((l) => l.error);
  if (err || r.status !== 0) {
    note(
      `PyTorch peer ${script} failed with ${python}: ${String(err?.error ?? r.stderr.trim().split('\n').slice(-3).join(' | '))}; peer_ms is null`,
    );
    return null;
  }
  return lines;
}

function threads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** The bench's MNIST model, trained once with atflow (PGD-AT) and cached (or the weights --mnist-weights names). */
async function mnistModel(): Promise<Model> {
  const t = MNIST_TRAINING;
  const file =
    arg('mnist-weights') ?? path.join(CACHE, `mnist-cnn-small-pgd-at-eps${t.eps}-e${t.epochs}-n${t.trainSize}-seed${t.seed}.safetensors`);
  const model = createModel('cnn-small', { numClasses: 10, inputShape: [28, 28, 1], seed: t.seed });
  if (fs.existsSync(file)) {
    loadWeights(model, file);
    return model;
  }
  note(
    `training the MNIST model once (PGD-AT, ${t.epochs} epochs on ${t.trainSize} digits; a few minutes), cached as ${path.relative(ROOT, file)}`,
  );
  const source = createMnistSource({ trainSize: t.trainSize, seed: t.seed });
  const trainer = createTrainer('pgd-at', { attack: { eps: t.eps, alpha: t.alpha, steps: t.steps } });
  const planner = new BatchPlanner(source.info.sizes, { batchSize: t.batch, evalBatchSize: 200, seed: t.seed });
  const optimizer = new Sgd(model.parameters, { momentum: t.momentum, weightDecay: t.weightDecay });
  try {
    for (let epoch = 1; epoch <= t.epochs; epoch++) {
      await lastValueFrom(
        planner.plans$('train', epoch).pipe(
          loadBatches(source),
          randomizeLabels(null),
          attack({ model, trainer, te: null, seed: t.seed }),
          train({ model, trainer, optimizer, lr: makeLrSchedule({ type: 'constant', lr: t.lr }) }),
          reduce((n) => n + 1, 0),
        ),
      );
    }
  } finally {
    optimizer.dispose();
  }
  saveWeights(model, file);
  return model;
}

interface Inputs {
  readonly x: Float32Array;
  readonly labels: Int32Array;
  readonly shape: [number, number, number, number];
}

function mnistInputs(n: number): Inputs {
  const source = createMnistSource({});
  const b = source.load({ split: 'test', epoch: 0, step: 0, indices: Int32Array.from({ length: n }, (_, i) => i) });
  const x = Float32Array.from(b.x.dataSync());
  b.x.dispose();
  return { x, labels: Int32Array.from(b.labelsTrue), shape: [n, 28, 28, 1] };
}

/** Uniform inputs labelled with the model's own predictions: every point starts robust. */
function resnetInputs(model: Model, n: number): Inputs {
  const shape: [number, number, number, number] = [n, 32, 32, 3];
  const x = new Rng(deriveSeed(SEED, 'bench-eval-inputs', n)).fillUniform(new Float32Array(n * 32 * 32 * 3), 0, 1);
  const labels = tf.tidy(() => Int32Array.from(tf.argMax(model.apply(tf.tensor4d(x, shape), 'eval'), 1).dataSync()));
  return { x, labels, shape };
}

function writeInputs(file: string, inputs: Inputs): void {
  const tensors: SafetensorsTensor[] = [
    { name: 'x', dtype: 'F32', shape: inputs.shape, data: new Uint8Array(inputs.x.buffer, inputs.x.byteOffset, inputs.x.byteLength) },
    {
      name: 'y',
      dtype: 'I32',
      shape: [inputs.labels.length],
      data: new Uint8Array(inputs.labels.buffer, inputs.labels.byteOffset, inputs.labels.byteLength),
    },
  ];
  writeSafetensorsFile(file, tensors);
}

interface StageTimes {
  readonly seconds: Record<string, number>;
  readonly attacked: Record<string, number>;
  readonly robust: Record<string, number>;
  readonly total: number;
}

/** atflow's AutoAttack through evaluateAutoAttack (what `atflow eval` runs), its summary's per-stage seconds. */
async function atflowAutoAttack(model: Model, inputs: Inputs, eps: number, dir: string): Promise<StageTimes> {
  const n = inputs.labels.length;
  // warm-up: TensorFlow builds its kernels on first use
  tf.tidy(() =>
    tf
      .grad((xx: tf.Tensor) => tf.sum(model.apply(xx as tf.Tensor4D, 'eval')))(tf.tensor4d(inputs.x, inputs.shape))
      .dataSync(),
  );
  const s = await evaluateAutoAttack(
    model,
    { x: inputs.x, labels: inputs.labels, index: Int32Array.from({ length: n }, (_, i) => i) },
    dir,
    {
      threat: threatModel({ eps, norm: 'linf' }),
      attacks: 'standard',
      batchSize: n,
      seed: 0,
      checkpoint: 'bench',
      split: 'test',
      resume: false,
      // one line per stage end on stderr (a ResNet stage takes minutes)
      onProgress: (p) => {
        if (p.phase === 'end') note(`  ${formatEvalProgress(p)}`);
      },
    },
  );
  const seconds: Record<string, number> = {};
  const attacked: Record<string, number> = {};
  for (const [stage, t] of Object.entries(s.stage_time)) {
    seconds[stage] = t.seconds;
    attacked[stage] = t.attacked;
  }
  // the total as the reference's: the stages (its clean pass and checks are outside its stages' perturb too)
  return {
    seconds,
    attacked,
    robust: { ...s.robust_acc_after, clean: s.clean_acc },
    total: Object.values(seconds).reduce((a, b) => a + b, 0),
  };
}

function referenceAutoAttack(
  aa: string | null,
  arch: 'mnist' | 'resnet',
  weights: string,
  inputsFile: string,
  eps: number,
): StageTimes | null {
  if (!aa) return null;
  const lines = runPeer('autoattack_reference.py', [
    '--aa',
    aa,
    '--mode',
    'bench',
    '--arch',
    arch,
    '--weights',
    weights,
    '--inputs',
    inputsFile,
    '--eps',
    String(eps),
    '--threads',
    String(threads()),
  ]);
  const r = lines?.[0] as
    { stages: Record<string, { seconds: number; attacked: number; robust_after: number }>; seconds: number; clean: number } | undefined;
  if (!r) return null;
  const seconds: Record<string, number> = {};
  const attacked: Record<string, number> = {};
  const robust: Record<string, number> = { clean: r.clean };
  for (const [stage, t] of Object.entries(r.stages)) {
    seconds[stage] = t.seconds;
    attacked[stage] = t.attacked;
    robust[stage] = t.robust_after;
  }
  return { seconds, attacked, robust, total: Object.values(seconds).reduce((a, b) => a + b, 0) };
}

function autoAttackRows(label: string, n: number, backend: BackendName, ours: StageTimes, peer: StageTimes | null): EvalBenchRow[] {
  const rows: EvalBenchRow[] = [];
  for (const stage of [...STANDARD_STAGES, 'total']) {
    const ms = 1000 * (stage === 'total' ? ours.total : (ours.seconds[stage] ?? 0));
    const peerMs = peer === null ? null : 1000 * (stage === 'total' ? peer.total : (peer.seconds[stage] ?? 0));
    rows.push({
      model: label,
      n,
      stage,
      backend,
      ms,
      peer_ms: peerMs,
      ratio: peerMs === null || ms === 0 ? null : peerMs / ms,
      attacked: stage === 'total' ? n : (ours.attacked[stage] ?? 0),
      peer_attacked: peer === null ? null : stage === 'total' ? n : (peer.attacked[stage] ?? 0),
      robust_acc: stage === 'total' ? (ours.robust.square ?? null) : (ours.robust[stage] ?? null),
      peer_robust_acc: peer === null ? null : ((stage === 'total' ? peer.robust.square : peer.robust[stage]) ?? null),
    });
  }
  return rows;
}

/** One model's AutoAttack part: weights and inputs into a temporary folder, atflow, then the reference. */
async function autoAttackPart(
  key: 'mnist' | 'resnet',
  n: number,
  backend: BackendName,
  aa: string | null,
  peer: boolean,
): Promise<EvalBenchRow[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `atflow-bench-eval-${key}-`));
  try {
    const model =
      key === 'mnist' ? await mnistModel() : createModel('preact-resnet18', { numClasses: 10, inputShape: [32, 32, 3], seed: SEED });
    const inputs = key === 'mnist' ? mnistInputs(n) : resnetInputs(model, n);
    const eps = key === 'mnist' ? MNIST_EPS : RESNET_EPS;
    const label = key === 'mnist' ? 'mnist-cnn' : 'preact-resnet18';
    const weights = path.join(dir, 'model.safetensors');
    const inputsFile = path.join(dir, 'inputs.safetensors');
    saveWeights(model, weights);
    writeInputs(inputsFile, inputs);
    note(`AutoAttack standard, ${label}, n = ${n}, ℓ∞ ε = ${eps.toPrecision(3)}, atflow on ${backend} ...`);
    const ours = await atflowAutoAttack(model, inputs, eps, path.join(dir, 'eval'));
    model.dispose();
    let theirs: StageTimes | null = null;
    if (peer) {
      note(`AutoAttack standard, ${label}, n = ${n}: the reference (fra31/auto-attack) in PyTorch ...`);
      theirs = referenceAutoAttack(aa, key, weights, inputsFile, eps);
    }
    return autoAttackRows(label, n, backend, ours, theirs);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function epochSource(): Source {
  return createMnistSource({ trainSize: EPOCH.trainSize, testSize: EPOCH.testSize, seed: 1 });
}

/** atflow's per-epoch evaluation (test set + training subset) and one PGD-AT epoch, median ms. */
async function atflowEpoch(model: Model, source: Source, reps: number): Promise<{ evalMs: number; trainMs: number }> {
  const planner = new BatchPlanner(source.info.sizes, { batchSize: EPOCH.trainBatch, evalBatchSize: EPOCH.evalBatch, seed: 1 });
  const evalAttack = threatModel({ norm: 'linf', eps: EPOCH.eps, alpha: EPOCH.evalAlpha, steps: EPOCH.steps });
  const subset = Int32Array.from({ length: EPOCH.subset }, (_, i) => i);
  const subsetPlans = () => {
    const plans = [];
    for (let step = 0; step * EPOCH.evalBatch < subset.length; step++)
      plans.push({ split: 'train' as const, epoch: 1, step, indices: subset.slice(step * EPOCH.evalBatch, (step + 1) * EPOCH.evalBatch) });
    return plans;
  };
  const { from } = await import('rxjs');
  const evalOnce = async () => {
    const t = performance.now();
    await evaluatePass(planner.plans$('test', 1).pipe(loadBatches(source)), { model, attack: evalAttack, seed: 1, epoch: 1 });
    await evaluatePass(from(subsetPlans()).pipe(loadBatches(source), randomizeLabels(null)), {
      model,
      attack: evalAttack,
      seed: 1,
      epoch: 1,
    });
    return performance.now() - t;
  };
  await evalOnce(); // warm-up
  const evalMs = median(await sequence(reps, evalOnce));
  const trainer = createTrainer('pgd-at', { attack: { eps: EPOCH.eps, alpha: EPOCH.alpha, steps: EPOCH.steps } });
  const optimizer = new Sgd(model.parameters, { momentum: 0.9, weightDecay: 5e-4 });
  try {
    const t = performance.now();
    await lastValueFrom(
      planner.plans$('train', 1).pipe(
        loadBatches(source),
        randomizeLabels(null),
        attack({ model, trainer, te: null, seed: 1 }),
        train({ model, trainer, optimizer, lr: makeLrSchedule({ type: 'constant', lr: 0.01 }) }),
        reduce((k) => k + 1, 0),
      ),
    );
    return { evalMs, trainMs: performance.now() - t };
  } finally {
    optimizer.dispose();
  }
}

async function sequence(reps: number, f: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < reps; i++) out.push(await f());
  return out;
}

function splitInputs(source: Source, split: 'train' | 'test', n: number): Inputs {
  const b = source.load({ split, epoch: 0, step: 0, indices: Int32Array.from({ length: n }, (_, i) => i) });
  const x = Float32Array.from(b.x.dataSync());
  b.x.dispose();
  return { x, labels: Int32Array.from(b.labelsTrue), shape: [n, 28, 28, 1] };
}

async function epochPart(backend: BackendName, peer: boolean, reps: number): Promise<EvalBenchRow[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-bench-eval-epoch-'));
  try {
    const source = epochSource();
    const model = await mnistModel();
    const weights = path.join(dir, 'model.safetensors');
    saveWeights(model, weights);
    const data = path.join(dir, 'data.safetensors');
    const train = splitInputs(source, 'train', EPOCH.trainSize);
    const test = splitInputs(source, 'test', EPOCH.testSize);
    const bytes = (a: Float32Array | Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    writeSafetensorsFile(data, [
      { name: 'x_train', dtype: 'F32', shape: train.shape, data: bytes(train.x) },
      { name: 'y_train', dtype: 'I32', shape: [train.labels.length], data: bytes(train.labels) },
      { name: 'x_test', dtype: 'F32', shape: test.shape, data: bytes(test.x) },
      { name: 'y_test', dtype: 'I32', shape: [test.labels.length], data: bytes(test.labels) },
    ]);
    note(
      `per-epoch evaluation (clean + PGD-${EPOCH.steps} on ${EPOCH.testSize} test + ${EPOCH.subset} training digits) and a PGD-AT epoch (${EPOCH.trainSize} digits), atflow on ${backend} ...`,
    );
    const ours = await atflowEpoch(model, source, reps);
    model.dispose();
    let theirs: { evalMs: number; trainMs: number } | null = null;
    if (peer) {
      note('the same in PyTorch ...');
      const lines = runPeer('torch_engine.py', [
        '--epoch',
        data,
        '--weights',
        weights,
        '--reps',
        String(reps),
        '--threads',
        String(threads()),
        '--subset',
        String(EPOCH.subset),
        '--eval-batch',
        String(EPOCH.evalBatch),
        '--batch',
        String(EPOCH.trainBatch),
        '--eps',
        String(EPOCH.eps),
        '--alpha',
        String(EPOCH.alpha),
        '--eval-alpha',
        String(EPOCH.evalAlpha),
        '--steps',
        String(EPOCH.steps),
      ]);
      const r = lines?.[0] as { eval_ms: number; train_ms: number } | undefined;
      if (r) theirs = { evalMs: r.eval_ms, trainMs: r.train_ms };
    }
    const share = ours.evalMs / (ours.evalMs + ours.trainMs);
    const peerShare = theirs ? theirs.evalMs / (theirs.evalMs + theirs.trainMs) : null;
    const row = (stage: string, n: number, ms: number, peerMs: number | null): EvalBenchRow => ({
      model: 'mnist-cnn',
      n,
      stage,
      backend,
      ms,
      peer_ms: peerMs,
      ratio: peerMs === null ? null : peerMs / ms,
      share,
      peer_share: peerShare,
    });
    return [
      row('epoch-eval', EPOCH.testSize + EPOCH.subset, ours.evalMs, theirs?.evalMs ?? null),
      row('epoch-train', EPOCH.trainSize, ours.trainMs, theirs?.trainMs ?? null),
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function formatEvalTable(rows: readonly EvalBenchRow[]): string {
  const head = ['model', 'n', 'stage', 'backend', 'attacked', 'ms', 'torch ms', 'ratio', 'robust', 'torch robust'];
  const f = (v: unknown, d = 1) => (typeof v === 'number' ? v.toFixed(d) : v === null || v === undefined ? '-' : String(v));
  const pct = (v: unknown) => (typeof v === 'number' ? `${(100 * v).toFixed(1)}%` : '-');
  const body = rows.map((r) => [
    r.model,
    String(r.n),
    r.stage,
    r.backend,
    r.attacked === undefined ? '-' : `${f(r.attacked, 0)}/${f(r.peer_attacked, 0)}`,
    f(r.ms, 0),
    f(r.peer_ms, 0),
    f(r.ratio, 2),
    r.share !== undefined ? `share ${pct(r.share)}` : pct(r.robust_acc),
    r.peer_share !== undefined ? `share ${pct(r.peer_share)}` : pct(r.peer_robust_acc),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 4 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [
    line(head),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...body.map(line),
    'ratio = PyTorch ms / atflow ms (> 1: atflow is faster); attacked = points the stage attacked, atflow/reference.',
  ].join('\n');
}

async function main(): Promise<void> {
  const quick = flag('quick');
  const models = (arg('models') ?? (quick ? 'mnist' : 'mnist,resnet')).split(',').map((s) => s.trim()) as ('mnist' | 'resnet')[];
  const parts = (arg('parts') ?? 'autoattack,epoch').split(',').map((s) => s.trim());
  const peer = !flag('no-peer');
  const aa = arg('aa') ?? process.env.ATFLOW_AUTOATTACK ?? null;
  if (peer && parts.includes('autoattack') && !aa) {
    note(
      'the reference AutoAttack is not run: pass --aa DIR or set ATFLOW_AUTOATTACK to a checkout of fra31/auto-attack (the folder holding autoattack/); peer_ms is null',
    );
  }
  const info = await initBackend((arg('backend') as BackendName | undefined) ?? 'auto');
  note(`atflow on ${describeBackend(info)}`);
  // JSON lines on stdout as each row is known (what `atflow bench --json` relays), the table on stderr at the end
  const rows: EvalBenchRow[] = [];
  const emit = (r: EvalBenchRow) => {
    rows.push(r);
    process.stdout.write(JSON.stringify(r) + '\n');
  };
  if (parts.includes('autoattack')) {
    for (const key of models) {
      const n = Number(arg(`n-${key}`) ?? (key === 'mnist' ? (quick ? 100 : 200) : 8));
      for (const r of await autoAttackPart(key, n, info.name, aa, peer)) emit(r);
    }
  }
  if (parts.includes('epoch')) for (const r of await epochPart(info.name, peer, quick ? 1 : 3)) emit(r);
  process.stderr.write(formatEvalTable(rows) + '\n');
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`${(e as Error)?.stack ?? e}\n`);
    process.exit(1);
  });
}
