/**
 * Data-parallel wasm training throughput: one PGD-10 adversarial-training step (attack + update) of a
 * model, single-thread (the `attack` → `train` operators on the main thread) vs a DataParallelPool of N
 * workers vs N independent single-thread processes running at the same time (aggregate throughput).
 *
 *   npx tsx bench/data-parallel.ts [--model cnn-small] [--batch 128] [--workers 2] [--reps 5] [--modes single,pool,processes]
 *
 * Prints one JSON object per measurement and the load average at the time (the machine may be shared).
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs';
import { lastValueFrom, of } from 'rxjs';
import { initBackend } from '../src/backend/select';
import { DataParallelPool, trainStepParallel } from '../src/run/data-parallel';
import type { AugmentedBatch } from '../src/core/batch';
import { Rng } from '../src/core/rng';
import { createModel, defaultInputShape } from '../src/models';
import { attack } from '../src/operators/attack';
import { Sgd } from '../src/algorithms/optim/sgd';
import { train } from '../src/operators/train';
import { createTrainer } from '../src/config/builtins';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}
const MODEL = arg('model', 'cnn-small');
const BATCH = Number(arg('batch', '128'));
const WORKERS = Number(arg('workers', '2'));
const REPS = Number(arg('reps', '5'));
const MODES = arg('modes', 'single,pool,processes').split(',');
const TRAINER = 'pgd-at';
const SHAPE = defaultInputShape(MODEL);

const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];

function hostBatch(step: number): { x: Float32Array; labels: Int32Array } {
  const rng = new Rng(1000 + step);
  const x = rng.fillUniform(new Float32Array(BATCH * SHAPE[0] * SHAPE[1] * SHAPE[2]), 0, 1);
  return { x, labels: Int32Array.from({ length: BATCH }, () => rng.int(10)) };
}

/** CPU milliseconds of this whole process (every thread) since `from`. */
function cpuMs(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
}

interface Timing {
  readonly wall: number[];
  /** CPU time of all threads per step: the work, independent of how busy the machine is. */
  readonly cpu: number[];
  readonly extra?: Record<string, unknown>;
}

function report(mode: string, t: Timing): void {
  const ms = median(t.wall);
  const cpu = median(t.cpu);
  console.log(
    JSON.stringify({
      model: MODEL,
      batch: BATCH,
      measure: 'pgd10_at_step',
      mode,
      ms: Math.round(ms),
      examples_per_s: +((BATCH / ms) * 1000).toFixed(1),
      cpu_ms: Math.round(cpu),
      examples_per_cpu_s: +((BATCH / cpu) * 1000).toFixed(1),
      reps: t.wall.length,
      all_ms: t.wall.map(Math.round),
      loadavg: loadavg(),
      ...(t.extra ?? {}),
    }),
  );
}

async function single(): Promise<Timing> {
  const model = createModel(MODEL, { numClasses: 10, seed: 1 });
  const trainer = createTrainer(TRAINER, {});
  const optimizer = new Sgd(model.parameters, { momentum: 0.9, weightDecay: 5e-4 });
  const times: number[] = [];
  const cpu: number[] = [];
  for (let s = 0; s <= REPS; s++) {
    const { x, labels } = hostBatch(s);
    const c0 = process.cpuUsage();
    const b: AugmentedBatch = {
      stage: 'augmented',
      split: 'train',
      epoch: 1,
      step: s,
      indices: Int32Array.from({ length: BATCH }, (_, i) => i),
      x: tf.tensor4d(x, [BATCH, ...SHAPE]),
      labelsTrue: labels,
      labelsUsed: labels,
    };
    const t0 = performance.now();
    await lastValueFrom(of(b).pipe(attack({ model, trainer, seed: 1 }), train({ model, trainer, optimizer, lr: () => 0.01 })));
    // the first step warms kernels up
    if (s > 0) {
      times.push(performance.now() - t0);
      cpu.push(cpuMs(c0));
    }
  }
  model.dispose();
  optimizer.dispose();
  return { wall: times, cpu };
}

async function pool(): Promise<Timing> {
  const model = createModel(MODEL, { numClasses: 10, seed: 1 });
  const optimizer = new Sgd(model.parameters, { momentum: 0.9, weightDecay: 5e-4 });
  const p = await DataParallelPool.create({ workers: WORKERS, model, trainer: TRAINER, trainerOptions: {} });
  const times: number[] = [];
  const cpu: number[] = [];
  const busy: number[] = [];
  try {
    for (let s = 0; s <= REPS; s++) {
      const { x, labels } = hostBatch(s);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const r = await trainStepParallel(p, model, optimizer, 0.01, { x, shape: [BATCH, ...SHAPE], labels, seed: s, te: null });
      if (s > 0) {
        times.push(performance.now() - t0);
        cpu.push(cpuMs(c0));
        busy.push(r.attackMs + r.gradMs);
      }
    }
  } finally {
    await p.close();
    model.dispose();
    optimizer.dispose();
  }
  // wall − the slowest worker's attack + gradient time: broadcast, transfers, averaging and the SGD update
  return { wall: times, cpu, extra: { workers: WORKERS, overhead_ms: Math.round(median(times.map((t, i) => t - busy[i]))) } };
}

/** N copies of `--modes single` at once; aggregate throughput = Σ examples/s. */
async function processes(): Promise<void> {
  const runs = await Promise.all(
    Array.from(
      { length: WORKERS },
      () =>
        new Promise<{ examples_per_s: number; ms: number }>((resolve, reject) => {
          const child = spawn(
            process.execPath,
            [...process.execArgv, __filename, '--model', MODEL, '--batch', String(BATCH), '--reps', String(REPS), '--modes', 'single'],
            { stdio: ['ignore', 'pipe', 'inherit'] },
          );
          let out = '';
          child.stdout.on('data', (d) => (out += d));
          child.on('exit', (code) =>
            code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`child exited ${code}`)),
          );
        }),
    ),
  );
  console.log(
    JSON.stringify({
      model: MODEL,
      batch: BATCH,
      measure: 'pgd10_at_step',
      mode: `${WORKERS} processes`,
      examples_per_s: +runs.reduce((s, r) => s + r.examples_per_s, 0).toFixed(1),
      per_process_ms: runs.map((r) => r.ms),
      loadavg: loadavg(),
    }),
  );
}

(async () => {
  await initBackend('wasm');
  if (MODES.includes('single')) report('single-thread', await single());
  if (MODES.includes('pool')) report(`data-parallel ${WORKERS} workers`, await pool());
  if (MODES.includes('processes')) await processes();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
