import { spawnSync } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { BackendInfo, BackendName, initBackend } from '../src/backend/select';
import { AtflowError } from '../src/core/errors';
import type { Model } from '../src/core/model';
import { deriveSeed, Rng } from '../src/core/rng';
import { createModel } from '../src/models';
import { inputGradient } from '../src/operators/attacks/input-gradient';
import { pgdLinf } from '../src/operators/attacks/pgd-linf';
import { ceObjective, crossEntropy } from '../src/operators/objectives/ce';
import { Sgd } from '../src/operators/optim/sgd';
import { countModelFlops, FORWARD_UNITS, Measure, MEASURES } from './flops';

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
  readonly measure: Measure;
  readonly backend: BackendName | 'pytorch';
  readonly threads: number;
  readonly ms: number;
  readonly examples_per_s: number;
  readonly gflops: number;
  /** PyTorch CPU's median for the same model, batch and measure (its faster oneDNN setting); null without PyTorch. */
  readonly peer_ms: number | null;
  /** peer_ms / ms: > 1 means atflow is faster. */
  readonly ratio: number | null;
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

/** Median ms per measure of atflow on the current backend. Frees everything it made. */
async function timeAtflow(spec: BenchModelSpec, batch: number, measures: readonly Measure[], reps: number, warmup: number): Promise<{ ms: Record<string, number>; flops: number }> {
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

/**
 * Runs bench/peers/torch_engine.py for one model; null (with a note) when python3 or PyTorch is
 * missing. Threads = cores, as TensorFlow uses.
 */
export function runTorchPeer(key: BenchModelKey, batch: number, measures: readonly Measure[], reps: number, warmup: number, note: (m: string) => void): PeerResult | null {
  const script = path.join(__dirname, 'peers', 'torch_engine.py');
  const threads = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const args = [script, '--model', key, '--batch', String(batch), '--reps', String(reps), '--warmup', String(warmup), '--threads', String(threads), '--measures', measures.join(',')];
  const r = spawnSync(process.env.ATFLOW_PYTHON ?? 'python3', args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.error) {
    note(`PyTorch peer not run: python3 is not available (${r.error.message}); peer_ms is null`);
    return null;
  }
  const lines = r.stdout.split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l));
  const err = lines.find((l) => l.error);
  if (err || r.status !== 0) {
    note(`PyTorch peer not run: ${err?.error ?? `torch_engine.py exited ${r.status}: ${r.stderr.trim().split('\n').slice(-1)[0]}`}; peer_ms is null`);
    return null;
  }
  const detail = lines.map((l) => ({ measure: l.measure as Measure, onednn: Boolean(l.onednn), ms: Number(l.ms) }));
  const ms: Partial<Record<Measure, number>> = {};
  for (const d of detail) ms[d.measure] = Math.min(ms[d.measure] ?? Infinity, d.ms);
  return { ms, detail, threads: Number(lines[0]?.threads ?? threads), torch: String(lines[0]?.torch ?? '?') };
}

function row(spec: BenchModelSpec, batch: number, measure: Measure, backend: BackendName | 'pytorch', threads: number, ms: number, flopsPerExample: number, peerMs: number | null): BenchRow {
  const work = flopsPerExample * batch * FORWARD_UNITS[measure];
  return {
    model: spec.label,
    batch,
    measure,
    backend,
    threads,
    ms,
    examples_per_s: (batch * 1000) / ms,
    gflops: work / (ms * 1e6),
    peer_ms: peerMs,
    ratio: peerMs === null ? null : peerMs / ms,
  };
}

/**
 * Runs the benchmark. Backends are initialised one after the other in this process; the PyTorch peer
 * runs after atflow's measures of each model (never concurrently, so neither slows the other).
 */
export async function runEngineBench(options: EngineBenchOptions): Promise<{ rows: BenchRow[]; peers: Partial<Record<BenchModelKey, PeerResult | null>>; backends: BackendInfo[] }> {
  const note = options.note ?? (() => undefined);
  const measures = options.measures ?? MEASURES;
  const rows: BenchRow[] = [];
  const peers: Partial<Record<BenchModelKey, PeerResult | null>> = {};
  const infos = new Map<BackendName, BackendInfo>();
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
    }
    let peer: PeerResult | null = null;
    if (options.peer !== false && pending.length > 0) {
      note(`${spec.label} batch ${batch} on PyTorch CPU (oneDNN on and off) ...`);
      peer = runTorchPeer(key, batch, measures, options.reps, options.warmup, note);
    }
    peers[key] = peer;
    for (const p of pending) {
      const r = row(spec, batch, p.measure, p.backend, p.threads, p.ms, p.flops, peer?.ms[p.measure] ?? null);
      rows.push(r);
      options.onRow?.(r);
    }
  }
  return { rows, peers, backends: [...infos.values()] };
}

/** A fixed-width table of the rows, with PyTorch's two settings beside them. */
export function formatTable(rows: readonly BenchRow[], peers: Partial<Record<BenchModelKey, PeerResult | null>>): string {
  const head = ['model', 'batch', 'measure', 'backend', 'thr', 'ms', 'ex/s', 'GFLOP/s', 'torch ms', 'ratio'];
  const body = rows.map((r) => [
    r.model,
    String(r.batch),
    r.measure,
    r.backend,
    String(r.threads),
    r.ms.toFixed(1),
    r.examples_per_s.toFixed(0),
    r.gflops.toFixed(2),
    r.peer_ms === null ? '-' : r.peer_ms.toFixed(1),
    r.ratio === null ? '-' : r.ratio.toFixed(2),
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
  return out.join('\n');
}
