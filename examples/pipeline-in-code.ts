/**
 * The same run as `atflow run config/quickstart.json --only trades`, written in code: the run declared
 * as an object, each epoch composed by hand from atflow's public epoch operators. It gets what a config
 * run gets, from the same operators: Parquet logs, checkpoints, resume, the final evaluation and the
 * report. Run it with:
 *
 *   npx tsx examples/pipeline-in-code.ts [outDir]
 *
 * Stop it (Ctrl-C, or `stopAfter`) and run it again: it resumes from its last checkpoint.
 * test/examples/examples.test.ts runs this and the config-driven run (examples/pipeline-from-config.ts)
 * and asserts they write identical logs.
 */
import * as path from 'path';
import { pipe, tap } from 'rxjs';
import {
  resolveRuns,
  executeRun,
  defaultRegistry,
  parquetRunSink,
  SummaryWriter,
  writeReport,
  trainEpoch,
  evaluateEvery,
  recordEpoch,
  trackBest,
  measureComplexity,
  endEpoch,
  checkpointEvery,
  stopWhen,
} from '../src';

export interface InCodeOptions {
  readonly outDir: string;
  readonly runId: string;
  readonly epochs: number;
  readonly trainSize: number;
  readonly testSize: number;
  readonly steps: number;
  readonly seed?: number;
  /** End this session after this epoch (as Ctrl-C would); the next call resumes the run. */
  readonly stopAfter?: number;
}

export async function runInCode(o: InCodeOptions): Promise<string> {
  // 1. the run: 300 MNIST digits with completely random labels (r = 1), TRADES (β = 6) with ℓ∞ PGD
  //    (ε = 0.1, α = 0.02), the small MLP, SGD; evaluated (clean + PGD-10 on test and on the training
  //    set against its random labels) after every epoch
  const [declared] = resolveRuns({
    name: 'quickstart-in-code',
    seed: o.seed ?? 1,
    epochs: o.epochs,
    data: { source: 'mnist', trainSize: o.trainSize, testSize: o.testSize, batchSize: 64, testBatchSize: 500, augment: 'none' },
    labelNoise: { kind: 'symmetric', rate: 1.0 },
    model: { name: 'mlp' },
    trainer: { name: 'trades', beta: 6 },
    attack: { norm: 'linf', eps: 0.1, alpha: 0.02, steps: o.steps },
    optimizer: { lr: 0.05, momentum: 0.9, weightDecay: 0 },
    schedule: { name: 'multistep', milestones: [60], gamma: 0.1 },
    eval: { every: 1 },
    checkpoint: { every: 1 },
  });
  const run = { ...declared, runId: o.runId };

  // 2. one epoch, operator by operator: trainEpoch runs the batch chain (load → randomizeLabels →
  //    augment → attack → train) and logs its steps, rows and events; the rest is the epoch's end
  const outcome = await executeRun(run, {
    outDir: o.outDir,
    registry: defaultRegistry(),
    resume: true, // an unfinished folder continues from its last checkpoint
    sinks: () => [parquetRunSink(), new SummaryWriter()],
    epoch: (r) =>
      pipe(
        trainEpoch(r),
        evaluateEvery(r),
        recordEpoch(r),
        trackBest(r),
        measureComplexity(r),
        endEpoch(r),
        checkpointEvery(r),
        tap((s) =>
          console.log(
            `epoch ${s.epoch}: adversarial training accuracy on the random labels ${(100 * (s.record?.train_robust_acc ?? NaN)).toFixed(1)}%`,
          ),
        ),
        stopWhen((s) => r.shouldStop() || s.epoch === o.stopAfter, 'interrupted'),
      ),
  });
  // 3. the report (report.html: accuracy curves, events, data maps) once the run is complete
  if (outcome.status === 'completed') await writeReport([outcome.runDir]);
  return outcome.runDir;
}

if (require.main === module) {
  runInCode({ outDir: process.argv[2] ?? 'runs', runId: 'quickstart-in-code', epochs: 80, trainSize: 300, testSize: 500, steps: 10 }).then(
    (dir) => console.log(`logs in ${path.resolve(dir)}`),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
