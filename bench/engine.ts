import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { type BackendInfo, type BackendName, initBackend } from '../src/backend/select';
import { AtflowError } from '../src/core/errors';
import type { Model } from '../src/core/model';
import { deriveSeed, Rng } from '../src/core/rng';
import { DataParallelPool, dataParallelWorkers, trainStepParallel } from '../src/run/data-parallel';
import { createModel } from '../src/models';
import { inputGradient } from '../src/algorithms/attacks/input-gradient';
import { pgdLinf } from '../src/algorithms/attacks/pgd-linf';
import { ceObjective, crossEntropy } from '../src/algorithms/objectives/ce';
import { Sgd } from '../src/algorithms/optim/sgd';
import { countModelFlops, FORWARD_UNITS, type Measure, MEASURES } from './flops';

/**
 * The engine benchmark: for each backend and model, the median time of the four units of work an
 * adversarial-training run is made of (forward, input gradient, train step, PGD-10 AT step), the
 * same measures of the same architectures in PyTorch CPU run in the same process tree, and the ratio.
 * Everything runs through atflow's own engine code (models, pgdLinf, Sgd), as a training run does.
 */

export type BenchModelKey = 'mnist' | 'resnet';

export interface BenchModelSpec {
  /** The `model` field of the rows. */
  readonly label: string;
  /** atflow's model registry name. */
  readonly modelName: string;
  readonly inputShape: readonly [number, number, number];
  readonly defaultBatch: number;
}

export const BENCH_MODELS: Readonly<Record<BenchModelKey, BenchModelSpec>> = {
  mnist: { label: 'mnist-cnn', modelName: 'cnn-small', inputShape: [28, 28, 1], defaultBatch: 128 },
  resnet: { label: 'preact-resnet18', modelName: 'preact-resnet18', inputShape: [32, 32, 3], defaultBatch: 64 },
};

/** One line of `atflow bench --json`. */
export interface BenchRow {
  readonly model: string;
  readonly batch: number;
  readonly measure: Measure | 'peak_matmul';
  readonly backend: BackendName | 'pytorch';
  readonly threads: number;
  readonly ms: number;
  readonly examples_per_s: number;
  readonly gflops: number;
  /** PyTorch CPU's median for the same model, batch and measure (its faster oneDNN setting); null without PyTorch. */
  readonly peer_ms: number | null;
  /** peer_ms / ms: > 1 means atflow is faster. */
  readonly ratio: number | null;
  /** This backend's GFLOP/s on a large matrix product (the peak probe): what its cores can do at best. */
  readonly peak_gflops: number | null;
  /** gflops / peak_gflops: how close this measure runs to that limit. */
  readonly share_of_peak: number | null;
  /** PyTorch's figure as a share of PyTorch's own matmul peak (same machine, same threads). */
  readonly peer_share_of_peak: number | null;
}

export interface EngineBenchOptions {
  readonly backends: readonly BackendName[];
  readonly models: readonly BenchModelKey[];
  readonly measures?: readonly Measure[];
  /** Per-model batch; defaults to each model's defaultBatch. */
  readonly batch?: Partial<Record<BenchModelKey, number>>;
  readonly reps: number;
  readonly warmup: number;
  /** Run the PyTorch peer (default true). */
  readonly peer?: boolean;
  /** PreAct-ResNet-18 on `cpu` takes minutes per measure: only when asked. */
  readonly resnetOnCpu?: boolean;
  /** Progress and notes (skips, missing PyTorch); the caller decides where they go. */
  readonly note?: (message: string) => void;
  /** Called with each row as soon as it is known (peer columns filled after the peer ran). */
  readonly onRow?: (row: BenchRow) => void;
  /** Run the peak probe (a large matmul per backend and in PyTorch); default true. */
  readonly peak?: boolean;
}

/** Side of the square matmul of the peak probe: large enough to saturate the cores, small enough for seconds. */
const PEAK_SIZE: Record<BackendName | 'pytorch', number> = { tensorflow: 2048, pytorch: 2048, wasm: 1024, cpu: 384 };

/**
 * The peak probe: median GFLOP/s of an n×n by n×n float32 matmul (2n³ flops) on the current backend.
 * Matrix products are the best case of every backend (XNNPACK / Eigen / oneDNN GEMM), so this is the
 * practical limit a model's convolutions and matmuls can approach.
 */
export function peakMatmulGflops(n: number, reps: number): number {
  const before = tf.memory().numTensors;
  const rng = new Rng(deriveSeed(BENCH_SEED, 'peak', n));
  const a = tf.tensor2d(rng.fillUniform(new Float32Array(n * n), -1, 1), [n, n]);
  const b = tf.tensor2d(rng.fillUniform(new Float32Array(n * n), -1, 1), [n, n]);
  try {
    const once = () => {
      const t = performance.now();
      const c = tf.matMul(a, b);
      c.dataSync();
      c.dispose();
      return performance.now() - t;
    };
    once();
    const ms = median(Array.from({ length: Math.max(3, reps) }, once));
    return (2 * n ** 3) / (ms * 1e6);
  } finally {
    tf.dispose([a, b]);
    // eslint-disable-next-line no-unsafe-finally -- the leak check runs after the cleanup; a leak is the error to report
    if (tf.memory().numTensors !== before) throw new AtflowError('ARGUMENT', 'bench: the peak probe leaked tensors');
  }
}

/** docs/algorithms.md §4.1 / §6: the authors' training attack and optimiser. */
const PGD = { eps: 8 / 255, alpha: 2 / 255, steps: 10, randomStart: 'uniform-clamped' as const };
const SGD = { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 };
const BENCH_SEED = 20240;

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new AtflowError('ARGUMENT', 'median of no values');
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The four measures as closures over one model, batch and optimiser; each call does one unit of work and syncs. */
function workloads(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, sgd: Sgd): Record<Measure, (rep: number) => void> {
  const variables = model.parameters.map((p) => p.variable);
  const trainStep = (input: tf.Tensor4D) => {
    const { value, grads } = tf.variableGrads(() => crossEntropy(model.apply(input, 'train'), y), variables);
    sgd.step(grads, SGD.lr);
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };
  return {
    forward: () => tf.tidy(() => model.apply(x, 'eval').dataSync()),
    grad_x: () => tf.tidy(() => inputGradient(model, x, y, ceObjective()).dataSync()),
    train_step: () => trainStep(x),
    pgd10_at_step: (rep) => {
      const xAdv = pgdLinf(model, x, y, deriveSeed(BENCH_SEED, 'bench-attack', rep), PGD);
      try {
        trainStep(xAdv);
      } finally {
        xAdv.dispose();
      }
    },
  };
}

/** A seeded batch: x ~ U[0, 1), labels uniform over K. */
function seededBatch(spec: BenchModelSpec, batch: number, numClasses: number): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const [h, w, c] = spec.inputShape;
  const xs = new Rng(deriveSeed(BENCH_SEED, 'bench-input', batch)).fillUniform(new Float32Array(batch * h * w * c), 0, 1);
  const rng = new Rng(deriveSeed(BENCH_SEED, 'bench-labels', batch));
  const labels = Int32Array.from({ length: batch }, () => rng.nextUint32() % numClasses);
  return { x: tf.tensor4d(xs, [batch, h, w, c]), y: tf.tensor1d(labels, 'int32') };
}

/**
 * The PGD-10 AT step as a wasm run does it by default: the batch split over `workers` data-parallel
 * workers (one per core), each attacking and differentiating its share; median ms.
 */
async function timeDataParallelAtStep(spec: BenchModelSpec, batch: number, workers: number, reps: number, warmup: number): Promise<number> {
  const model = createModel(spec.modelName, { numClasses: 10, inputShape: spec.inputShape, seed: BENCH_SEED });
  const sgd = new Sgd(model.parameters, { momentum: SGD.momentum, weightDecay: SGD.weightDecay });
  const { x, y } = seededBatch(spec, batch, 10);
  const xs = x.dataSync() as Float32Array;
  const labels = y.dataSync() as Int32Array;
  tf.dispose([x, y]);
  const pool = await DataParallelPool.create({
    workers,
    model,
    trainer: 'pgd-at',
    trainerOptions: { attack: { eps: PGD.eps, alpha: PGD.alpha, steps: PGD.steps, randomStart: PGD.randomStart } },
    backend: 'wasm',
  });
  try {
    const step = (rep: number) =>
      trainStepParallel(pool, model, sgd, SGD.lr, {
        x: xs,
        shape: x.shape,
        labels,
        seed: deriveSeed(BENCH_SEED, 'bench-attack', rep),
        te: null,
      });
    for (let i = 0; i < warmup; i++) await step(-1 - i);
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t = performance.now();
      await step(i);
      times.push(performance.now() - t);
    }
    return median(times);
  } finally {
    await pool.close();
    sgd.dispose();
    model.dispose();
  }
}

/** Median ms per measure of atflow on the current backend. Frees everything it made. */
async function timeAtflow(
  spec: BenchModelSpec,
  batch: number,
  measures: readonly Measure[],
  reps: number,
  warmup: number,
): Promise<{ ms: Record<string, number>; flops: number }> {
  const before = tf.memory().numTensors;
  const model = createModel(spec.modelName, { numClasses: 10, inputShape: spec.inputShape, seed: BENCH_SEED });
  const sgd = new Sgd(model.parameters, { momentum: SGD.momentum, weightDecay: SGD.weightDecay });
  const { x, y } = seededBatch(spec, batch, 10);
  try {
    const flops = (await countModelFlops(model)).forwardPerExample;
    const work = workloads(model, x, y, sgd);
    const ms: Record<string, number> = {};
    for (const m of measures) {
      for (let i = 0; i < warmup; i++) work[m](-1 - i);
      const times: number[] = [];
      for (let i = 0; i < reps; i++) {
        const t = performance.now();
        work[m](i);
        times.push(performance.now() - t);
      }
      ms[m] = median(times);
    }
    return { ms, flops };
  } finally {
    tf.dispose([x, y]);
    sgd.dispose();
    model.dispose();
    const leaked = tf.memory().numTensors - before;
    // eslint-disable-next-line no-unsafe-finally -- the leak check runs after the cleanup; a leak is the error to report
    if (leaked !== 0) throw new AtflowError('ARGUMENT', `bench: ${leaked} tensors leaked on ${tf.getBackend()} (${spec.label})`);
  }
}

export interface PeerResult {
  /** Per measure: the faster of oneDNN on / off. */
  readonly ms: Partial<Record<Measure, number>>;
  /** Per measure and setting, for the table. */
  readonly detail: ReadonlyArray<{ measure: Measure; onednn: boolean; ms: number }>;
  readonly threads: number;
  readonly torch: string;
}

/** Where `npm run setup:python` puts the venv with the PyTorch peer (relative to the package root). */
export const PEER_VENV = path.join('.cache', 'python-venv');
const PEER_SETUP_HINT = `run \`npm run setup:python\` (a venv with torch at ${PEER_VENV}), or set ATFLOW_PYTHON to a python that has torch`;

/** The python that runs the peer: ATFLOW_PYTHON, else the setup:python venv when it exists, else python3 on PATH. */
export function peerPython(root: string = path.join(__dirname, '..')): string {
  if (process.env.ATFLOW_PYTHON) return process.env.ATFLOW_PYTHON;
  const venv = path.join(root, PEER_VENV, process.platform === 'win32' ? path.join('Scripts', 'python.exe') : path.join('bin', 'python'));
  return fs.existsSync(venv) ? venv : 'python3';
}

/** Runs torch_engine.py with `args`; its JSON lines, or null with a note saying exactly what to do. */
function runPeerScript(args: string[], note: (m: string) => void): Array<Record<string, unknown>> | null {
  const script = path.join(__dirname, 'peers', 'torch_engine.py');
  const python = peerPython();
  const r = spawnSync(python, [script, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.error) {
    note(`PyTorch peer not run: ${python} is not available (${r.error.message}); ${PEER_SETUP_HINT}; peer_ms is null`);
    return null;
  }
  const lines = r.stdout
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const err = lines.find((l) => l.error);
  if (err || r.status !== 0) {
    const why = err?.error ?? `torch_engine.py exited ${r.status}: ${r.stderr.trim().split('\n').slice(-1)[0]}`;
    note(`PyTorch peer not run with ${python}: ${why}; ${PEER_SETUP_HINT}; peer_ms is null`);
    return null;
  }
  return lines;
}

function peerThreads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** PyTorch's GFLOP/s on the peak probe's matmul (same threads as its measures); null without PyTorch. */
export function runTorchPeak(n: number, reps: number, note: (m: string) => void): number | null {
  const lines = runPeerScript(['--peak', String(n), '--reps', String(Math.max(3, reps)), '--threads', String(peerThreads())], note);
  const g = lines?.find((l) => l.measure === 'peak_matmul')?.gflops;
  return typeof g === 'number' ? g : null;
}

/**
 * Runs bench/peers/torch_engine.py for one model; null (with a note saying what to run) when python or
 * PyTorch is missing. Threads = cores, as TensorFlow uses.
 */
export function runTorchPeer(
  key: BenchModelKey,
  batch: number,
  measures: readonly Measure[],
  reps: number,
  warmup: number,
  note: (m: string) => void,
): PeerResult | null {
  const threads = peerThreads();
  const args = [
    '--model',
    key,
    '--batch',
    String(batch),
    '--reps',
    String(reps),
    '--warmup',
    String(warmup),
    '--threads',
    String(threads),
    '--measures',
    measures.join(','),
  ];
  const lines = runPeerScript(args, note);
  if (!lines) return null;
  const detail = lines.map((l) => ({ measure: l.measure as Measure, onednn: Boolean(l.onednn), ms: Number(l.ms) }));
  const ms: Partial<Record<Measure, number>> = {};
  for (const d of detail) ms[d.measure] = Math.min(ms[d.measure] ?? Infinity, d.ms);
  return { ms, detail, threads: Number(lines[0]?.threads ?? threads), torch: String(lines[0]?.torch ?? '?') };
}

interface Peaks {
  readonly atflow: Partial<Record<BackendName, number>>;
  readonly pytorch: number | null;
}

function row(
  spec: BenchModelSpec,
  batch: number,
  measure: Measure,
  backend: BackendName | 'pytorch',
  threads: number,
  ms: number,
  flopsPerExample: number,
  peerMs: number | null,
  peaks: Peaks,
): BenchRow {
  const work = flopsPerExample * batch * FORWARD_UNITS[measure];
  const gflops = work / (ms * 1e6);
  // N data-parallel wasm workers: N times one instance's peak
  const one = backend === 'pytorch' ? peaks.pytorch : (peaks.atflow[backend] ?? null);
  const peak = one === null ? null : backend === 'wasm' ? one * threads : one;
  return {
    model: spec.label,
    batch,
    measure,
    backend,
    threads,
    ms,
    examples_per_s: (batch * 1000) / ms,
    gflops,
    peer_ms: peerMs,
    ratio: peerMs === null ? null : peerMs / ms,
    peak_gflops: peak,
    share_of_peak: peak === null ? null : gflops / peak,
    peer_share_of_peak: peerMs === null || peaks.pytorch === null ? null : work / (peerMs * 1e6) / peaks.pytorch,
  };
}

/** The probe's own line: measure 'peak_matmul', gflops = the peak. */
function peakRow(backend: BackendName | 'pytorch', threads: number, n: number, gflops: number): BenchRow {
  const ms = (2 * n ** 3) / (gflops * 1e6);
  return {
    model: `matmul-${n}`,
    batch: n,
    measure: 'peak_matmul',
    backend,
    threads,
    ms,
    examples_per_s: 0,
    gflops,
    peer_ms: null,
    ratio: null,
    peak_gflops: gflops,
    share_of_peak: 1,
    peer_share_of_peak: null,
  };
}

/**
 * Runs the benchmark. Backends are initialised one after the other in this process; the PyTorch peer
 * runs after atflow's measures of each model (never concurrently, so neither slows the other).
 */
export async function runEngineBench(
  options: EngineBenchOptions,
): Promise<{ rows: BenchRow[]; peers: Partial<Record<BenchModelKey, PeerResult | null>>; backends: BackendInfo[] }> {
  const note = options.note ?? (() => undefined);
  const measures = options.measures ?? MEASURES;
  const rows: BenchRow[] = [];
  const peers: Partial<Record<BenchModelKey, PeerResult | null>> = {};
  const infos = new Map<BackendName, BackendInfo>();
  const peaks: { atflow: Partial<Record<BackendName, number>>; pytorch: number | null } = { atflow: {}, pytorch: null };
  if (options.peak !== false) {
    for (const backend of options.backends) {
      const info = await initBackend(backend);
      infos.set(backend, info);
      note(`peak probe: ${PEAK_SIZE[backend]}² matmul on ${backend} ...`);
      const g = peakMatmulGflops(PEAK_SIZE[backend], options.reps);
      peaks.atflow[backend] = g;
      const r = peakRow(backend, info.threads, PEAK_SIZE[backend], g);
      rows.push(r);
      options.onRow?.(r);
    }
    if (options.peer !== false) {
      note(`peak probe: ${PEAK_SIZE.pytorch}² matmul on PyTorch CPU ...`);
      peaks.pytorch = runTorchPeak(PEAK_SIZE.pytorch, options.reps, note);
      if (peaks.pytorch !== null) {
        const r = peakRow('pytorch', peerThreads(), PEAK_SIZE.pytorch, peaks.pytorch);
        rows.push(r);
        options.onRow?.(r);
      }
    }
  }
  for (const key of options.models) {
    const spec = BENCH_MODELS[key];
    const batch = options.batch?.[key] ?? spec.defaultBatch;
    const pending: Array<{ measure: Measure; backend: BackendName; threads: number; ms: number; flops: number }> = [];
    for (const backend of options.backends) {
      if (key === 'resnet' && backend === 'cpu' && !options.resnetOnCpu) {
        note(`skipping ${spec.label} on cpu: the pure-JS reference backend takes minutes per measure (--resnet-on-cpu runs it)`);
        continue;
      }
      const info = await initBackend(backend);
      infos.set(backend, info);
      note(`${spec.label} batch ${batch} on ${backend} (${info.threads} thread${info.threads === 1 ? '' : 's'}) ...`);
      const { ms, flops } = await timeAtflow(spec, batch, measures, options.reps, options.warmup);
      for (const m of measures) pending.push({ measure: m, backend, threads: info.threads, ms: ms[m], flops });
      // wasm's default: one data-parallel worker per core (ATFLOW_WORKERS), for the training step
      const workers = backend === 'wasm' ? dataParallelWorkers('wasm').workers : 1;
      if (workers > 1 && measures.includes('pgd10_at_step')) {
        note(`${spec.label} batch ${batch} on wasm, ${workers} data-parallel workers (the default) ...`);
        const parallelMs = await timeDataParallelAtStep(spec, batch, workers, options.reps, options.warmup);
        pending.push({ measure: 'pgd10_at_step', backend, threads: workers, ms: parallelMs, flops });
      }
    }
    let peer: PeerResult | null = null;
    if (options.peer !== false && pending.length > 0) {
      note(`${spec.label} batch ${batch} on PyTorch CPU (oneDNN on and off) ...`);
      peer = runTorchPeer(key, batch, measures, options.reps, options.warmup, note);
    }
    peers[key] = peer;
    for (const p of pending) {
      const r = row(spec, batch, p.measure, p.backend, p.threads, p.ms, p.flops, peer?.ms[p.measure] ?? null, peaks);
      rows.push(r);
      options.onRow?.(r);
    }
  }
  return { rows, peers, backends: [...infos.values()] };
}

/** A fixed-width table of the rows, with PyTorch's two settings beside them. */
export function formatTable(rows: readonly BenchRow[], peers: Partial<Record<BenchModelKey, PeerResult | null>>): string {
  const head = ['model', 'batch', 'measure', 'backend', 'thr', 'ms', 'ex/s', 'GFLOP/s', '%peak', 'torch ms', 'ratio', 'torch %peak'];
  const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(0)}%`);
  const body = rows.map((r) => [
    r.model,
    String(r.batch),
    r.measure,
    r.backend,
    String(r.threads),
    r.ms.toFixed(1),
    r.examples_per_s.toFixed(0),
    r.gflops.toFixed(2),
    pct(r.share_of_peak),
    r.peer_ms === null ? '-' : r.peer_ms.toFixed(1),
    r.ratio === null ? '-' : r.ratio.toFixed(2),
    pct(r.peer_share_of_peak),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 4 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
  for (const [key, peer] of Object.entries(peers)) {
    if (!peer) continue;
    const label = BENCH_MODELS[key as BenchModelKey].label;
    const cells = peer.detail.map((d) => `${d.measure} ${d.onednn ? 'oneDNN' : 'no-oneDNN'} ${d.ms.toFixed(1)}`);
    out.push(`PyTorch ${peer.torch} (${peer.threads} threads) ${label}: ${cells.join('; ')}`);
  }
  out.push('ratio = PyTorch ms / atflow ms (> 1: atflow is faster); PyTorch figure = its faster oneDNN setting.');
  out.push(
    "%peak = GFLOP/s (bench/flops.ts: 2·MACs of convs and matmuls, backward = 2× forward) / that backend's peak_matmul GFLOP/s; torch %peak likewise against PyTorch's matmul.",
  );
  return out.join('\n');
}
