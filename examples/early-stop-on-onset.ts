/**
 * An early stop that only code can express: end the run when test robust accuracy has fallen more than
 * `points` percentage points below its best so far (the onset of robust overfitting, Rice et al. 2020).
 * One epoch operator added after a config's epoch; the run then ends completed (final evaluation,
 * report, _SUCCESS) at that epoch. Run it with:
 *
 *   npx tsx examples/early-stop-on-onset.ts [outDir]
 */
import * as path from 'path';
import { pipe, type MonoTypeOperatorFunction } from 'rxjs';
import {
  resolveRuns,
  executeRun,
  defaultRegistry,
  parquetRunSink,
  SummaryWriter,
  standardEpoch,
  stopWhen,
  type BackendName,
  type EndedEpoch,
  type RunOutcome,
} from '../src';

/**
 * Stops after the first evaluated epoch whose test robust accuracy is more than `points` points below
 * the best of the epochs evaluated so far. Reads the run's records as the stream carries them
 * (`history`, restored ones included), so a resumed run stops where an uninterrupted one would. Works on
 * ended epochs (after endEpoch, which adds the epoch's record to the history).
 */
export function stopAtRobustOverfitting(points: number): MonoTypeOperatorFunction<EndedEpoch> {
  return stopWhen((s) => {
    const evaluated = s.history.filter((e) => Number.isFinite(e.test_robust_acc));
    const last = evaluated[evaluated.length - 1];
    if (!last || last.epoch !== s.epoch) return false;
    const best = Math.max(...evaluated.map((e) => e.test_robust_acc));
    return 100 * (best - last.test_robust_acc) > points;
  });
}

export interface EarlyStopOptions {
  readonly outDir: string;
  /** How far below its best test robust accuracy may fall, in percentage points. */
  readonly points: number;
  readonly epochs: number;
  readonly trainSize: number;
  readonly testSize: number;
  /** Default: the automatic choice (ATFLOW_BACKEND, else tensorflow where it is built, else wasm). */
  readonly backend?: BackendName | 'auto';
}

/** PGD-AT on MNIST digits with 40% label noise (which it memorizes, and so overfits), stopped at the onset. */
export async function runWithEarlyStop(o: EarlyStopOptions): Promise<RunOutcome> {
  const [run] = resolveRuns({
    name: 'early-stop-on-onset',
    seed: 3,
    epochs: o.epochs,
    data: { source: 'mnist', trainSize: o.trainSize, testSize: o.testSize, batchSize: 32, testBatchSize: 500, augment: 'none' },
    labelNoise: { kind: 'symmetric', rate: 0.4 },
    model: { name: 'mlp' },
    trainer: { name: 'pgd-at' },
    attack: { eps: 0.1, alpha: 0.025, steps: 2 },
    optimizer: { lr: 0.1, weightDecay: 0 },
    schedule: { name: 'constant' },
    eval: { every: 1, train: false, attack: { steps: 5 } },
    checkpoint: { every: 5 },
  });
  return executeRun(run, {
    outDir: o.outDir,
    registry: defaultRegistry(),
    ...(o.backend ? { backend: o.backend } : {}),
    sinks: () => [parquetRunSink(), new SummaryWriter()],
    epoch: (r) => pipe(standardEpoch(r), stopAtRobustOverfitting(o.points)),
  });
}

if (require.main === module) {
  runWithEarlyStop({ outDir: process.argv[2] ?? 'runs', points: 3, epochs: 60, trainSize: 300, testSize: 500 }).then(
    (r) => console.log(`${r.status} after epoch ${r.epochs[r.epochs.length - 1]?.epoch}; logs in ${path.resolve(r.runDir)}`),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
