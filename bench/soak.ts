/**
 * Soak benchmark (issue 8, "Long runs"; not a CI test): the quickstart's TRADES run for many epochs
 * through the same path as `atflow run` (runConfig: Parquet, summary, progress and report sinks),
 * sampling after every epoch the live tfjs tensors, tfjs bytes, the process RSS and the JS heap. A line
 * fitted to each series gives its growth per epoch: a leak shows as a positive tensor slope or an RSS
 * that keeps climbing after the warm-up. Then it checks that every log table is complete (DuckDB reads
 * the files: examples rows = N × epochs for the train phase + N × evaluated epochs for the eval phase).
 *
 *   npx tsx --expose-gc bench/soak.ts [--epochs 50] [--steps 10] [--train 300] [--backend wasm] [--warmup 10] [--out DIR]
 *
 * --steps / --train shrink the attack / training set when 50 epochs would take too long. With
 * --expose-gc the heap is collected before each sample (steadier RSS). Prints one JSON object.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { DuckDBInstance } from '@duckdb/node-api';
import type { BackendName } from '../src/backend/select';
import { runConfig } from '../src/cli/run-config';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

interface Sample {
  readonly epoch: number;
  readonly tensors: number;
  readonly tfMB: number;
  readonly rssMB: number;
  readonly heapMB: number;
  readonly wallS: number;
}

/** Least-squares slope of y over x. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  return sxy / sxx;
}

function fit(samples: readonly Sample[], from: number): Record<string, number> {
  const s = samples.filter((x) => x.epoch >= from);
  const e = s.map((x) => x.epoch);
  const r = (v: number) => Number(v.toPrecision(4));
  return {
    from_epoch: from,
    tensors_per_epoch: r(
      slope(
        e,
        s.map((x) => x.tensors),
      ),
    ),
    tf_mb_per_epoch: r(
      slope(
        e,
        s.map((x) => x.tfMB),
      ),
    ),
    rss_mb_per_epoch: r(
      slope(
        e,
        s.map((x) => x.rssMB),
      ),
    ),
    heap_mb_per_epoch: r(
      slope(
        e,
        s.map((x) => x.heapMB),
      ),
    ),
  };
}

async function duck(sql: string): Promise<Record<string, number>[]> {
  const inst = await DuckDBInstance.create(':memory:');
  const con = await inst.connect();
  try {
    const rows = (await con.runAndReadAll(sql)).getRowObjectsJS();
    return rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Number(v)])));
  } finally {
    con.closeSync();
    inst.closeSync();
  }
}

const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

async function main(): Promise<void> {
  const epochs = Number(arg('epochs', '50'));
  const steps = Number(arg('steps', '10'));
  const trainSize = Number(arg('train', '300'));
  const warmup = Number(arg('warmup', '10'));
  const backend = arg('backend', 'wasm') as BackendName;
  const out = arg('out', fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-soak-')));
  const config = path.join(__dirname, '..', 'config', 'quickstart.json');
  const sets = [`epochs=${epochs}`, `attack.steps=${steps}`, `data.trainSize=${trainSize}`];
  const gc = (globalThis as { gc?: () => void }).gc;

  const samples: Sample[] = [];
  const t0 = performance.now();
  let runDir = '';
  let evalEvery = 1;
  const code = await runConfig(config, {
    sets,
    only: 'trades',
    outDir: out,
    backend,
    quiet: true,
    log: (l) => process.stderr.write(l + '\n'),
    observe: (events$, run) => {
      evalEvery = run.spec.eval.every;
      events$.subscribe((ev) => {
        if (ev.type === 'run-start') runDir = ev.runDir;
        if (ev.type !== 'epoch-end') return;
        gc?.();
        const m = process.memoryUsage();
        samples.push({
          epoch: ev.record.epoch,
          tensors: tf.memory().numTensors,
          tfMB: tf.memory().numBytes / 2 ** 20,
          rssMB: m.rss / 2 ** 20,
          heapMB: m.heapUsed / 2 ** 20,
          wallS: (performance.now() - t0) / 1000,
        });
        const s = samples[samples.length - 1];
        process.stderr.write(
          `epoch ${s.epoch}: ${s.tensors} tensors, rss ${s.rssMB.toFixed(1)} MB, heap ${s.heapMB.toFixed(1)} MB, ${s.wallS.toFixed(0)} s\n`,
        );
      });
    },
  });
  const wallS = (performance.now() - t0) / 1000;

  // completeness of the logs, read back by DuckDB
  const ex = path.join(runDir, 'examples', '*', '*.parquet');
  const evaluated = Array.from({ length: epochs }, (_, i) => i + 1).filter((e) => e % evalEvery === 0 || e === epochs).length;
  const [examples] = await duck(
    `SELECT count(*) FILTER (WHERE phase = 'train') AS train, count(*) FILTER (WHERE phase = 'eval') AS eval,
            count(DISTINCT (epoch, phase, example)) AS distinct_rows, count(DISTINCT epoch) AS epochs
     FROM read_parquet(${lit(ex)}, hive_partitioning = false) WHERE split = 'train'`,
  );
  const [steps_] = await duck(
    `SELECT count(*) AS n, count(DISTINCT (epoch, step)) AS d FROM read_parquet(${lit(path.join(runDir, 'steps.parquet'))})`,
  );
  const [epochRows] = await duck(
    `SELECT count(*) AS n, min(epoch) AS lo, max(epoch) AS hi FROM read_parquet(${lit(path.join(runDir, 'epochs.parquet'))})`,
  );
  const [labels] = await duck(`SELECT count(*) AS n FROM read_parquet(${lit(path.join(runDir, 'labels.parquet'))})`);
  const stepsPerEpoch = Math.ceil(trainSize / 64);
  const expected = { train: trainSize * epochs, eval: trainSize * evaluated, steps: stepsPerEpoch * epochs, epochs, labels: trainSize };
  const complete =
    examples.train === expected.train &&
    examples.eval === expected.eval &&
    examples.distinct_rows === expected.train + expected.eval &&
    steps_.n === expected.steps &&
    steps_.d === expected.steps &&
    epochRows.n === epochs &&
    epochRows.hi === epochs &&
    labels.n === trainSize &&
    fs.existsSync(path.join(runDir, '_SUCCESS'));

  const result = {
    benchmark: 'soak',
    config: 'config/quickstart.json (variant trades)',
    sets,
    backend: tf.getBackend(),
    node: process.version,
    cpus: os.cpus().length,
    loadavg: os.loadavg().map((x) => Number(x.toFixed(2))),
    gc_before_sample: !!gc,
    exit_code: code,
    wall_s: Number(wallS.toFixed(1)),
    s_per_epoch: Number((wallS / epochs).toFixed(2)),
    slopes_all: fit(samples, 1),
    slopes_after_warmup: fit(samples, warmup + 1),
    tensors: { first: samples[0]?.tensors, last: samples[samples.length - 1]?.tensors, max: Math.max(...samples.map((s) => s.tensors)) },
    rss_mb: {
      first: Number(samples[0]?.rssMB.toFixed(1)),
      last: Number(samples[samples.length - 1]?.rssMB.toFixed(1)),
      max: Number(Math.max(...samples.map((s) => s.rssMB)).toFixed(1)),
    },
    logs: { complete, examples, expected, steps: steps_, epochs: epochRows, labels: labels.n, run_dir: runDir },
    samples: samples.map((s) => [s.epoch, s.tensors, Number(s.rssMB.toFixed(1)), Number(s.heapMB.toFixed(1)), Number(s.wallS.toFixed(1))]),
    samples_columns: ['epoch', 'tensors', 'rss_mb', 'heap_mb', 'wall_s'],
  };
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exitCode = complete && code === 0 ? 0 : 1;
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (e) => {
    process.stderr.write(`${e?.stack ?? e}\n`);
    process.exit(1);
  },
);
