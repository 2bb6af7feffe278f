/**
 * Overhead of full per-example logging on PGD-AT epochs (issue target: ≤ 3 % of epoch time).
 * The same run (embedded MNIST, PGD-AT, PGD-10, eval pass on the training set) is timed with
 * `logging.examples` on and off, alternating, several times; the medians are compared. Both write the
 * other tables, so the difference is the examples rows (train + eval phase) and their Parquet files.
 *   npx tsx bench/logging-overhead.ts [--reps 3] [--train 2000] [--epochs 2] [--model mlp]
 * Prints one JSON object.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { initBackend } from '../src/backend/select';
import { executeRun } from '../src/run/execute-run';
import { defaultRegistry } from '../src/run/default-registry';
import { resolveRuns } from '../src/config/spec';
import { parquetRunSink } from '../src/logs/sinks';
import type { RunSink } from '../src/core/run-sink';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const reps = Number(arg('reps', '3'));
  const trainSize = Number(arg('train', '2000'));
  const epochs = Number(arg('epochs', '2'));
  const model = arg('model', 'mlp');
  const backend = await initBackend(arg('backend', 'wasm') as 'wasm');
  const registry = defaultRegistry();
  const times: Record<'on' | 'off', number[]> = { on: [], off: [] };
  /** Share of the run's wall time spent in the sink on example rows (logging on). */
  const sinkShare: number[] = [];
  // rep 0 warms up (wasm compilation, JIT) and is not counted
  for (let r = 0; r <= reps; r++) {
    for (const mode of (r % 2 ? ['off', 'on'] : ['on', 'off']) as ('on' | 'off')[]) {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-logbench-'));
      const [run] = resolveRuns({
        name: `logbench-${mode}`,
        epochs,
        data: { source: 'mnist', trainSize, testSize: 200, batchSize: 128, testBatchSize: 500 },
        model: { name: model },
        trainer: { name: 'pgd-at' },
        attack: { eps: 0.1, alpha: 0.02, steps: 10 },
        schedule: { name: 'constant' },
        logging: { examples: mode === 'on' },
      });
      const inner = parquetRunSink();
      let sinkMs = 0;
      // time spent writing example rows: their events, and closing their part files at epoch-end
      const timed: RunSink = {
        name: 'timed-parquet',
        async handle(ev) {
          const t = performance.now();
          await inner.handle(ev);
          if (ev.type === 'examples' || ev.type === 'epoch-end') sinkMs += performance.now() - t;
        },
        close: () => inner.close?.(),
      };
      const t0 = performance.now();
      await executeRun(run, { outDir: out, registry, backend: backend.name, sinks: () => [timed] });
      if (r > 0) {
        times[mode].push(performance.now() - t0);
        if (mode === 'on') sinkShare.push(sinkMs / (performance.now() - t0));
      }
      fs.rmSync(out, { recursive: true, force: true });
    }
  }
  const on = median(times.on);
  const off = median(times.off);
  const rowsPerRun = trainSize * epochs * 2;
  process.stdout.write(
    JSON.stringify({
      measure: 'examples_logging_overhead',
      backend: backend.name,
      model,
      train_examples: trainSize,
      epochs,
      rows_logged: rowsPerRun,
      ms_with_logging: on,
      ms_without_logging: off,
      overhead: (on - off) / off,
      /** Direct measure, robust to machine load: time inside the sink for example rows / run time. */
      sink_share_of_run: median(sinkShare),
      target: 0.03,
      runs: times,
      load_average: os.loadavg(),
    }) + '\n',
  );
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${e?.stack ?? e}\n`);
    process.exit(1);
  },
);
