/**
 * The same run as `atflow run config/quickstart.json --only trades`, written directly in code by
 * piping atflow's operators (no config, no registry). Run it with:
 *
 *   npx tsx examples/pipeline-in-code.ts [outDir]
 *
 * test/examples/examples.test.ts runs this and the config-driven run (examples/pipeline-from-config.ts)
 * and asserts they write identical logs. The seeds are derived exactly as the config runner derives
 * them (src/pipelines/build-run.ts), which is what makes the two byte-for-byte comparable.
 */
import * as path from 'path';
import { from, lastValueFrom, concatMap } from 'rxjs';
import {
  initBackend,
  deriveSeed,
  createSource,
  assignLabels,
  BatchPlanner,
  createModel,
  createTrainer,
  Sgd,
  makeLrSchedule,
  loadBatches,
  onePlanAtATime,
  randomizeLabels,
  augment,
  attack,
  train,
  evaluatePass,
  EventDetector,
  type RunEvent,
} from '../src';
import { ParquetRunWriter } from '../src/sinks/parquet-sink';

export interface InCodeOptions {
  readonly outDir: string;
  readonly runId: string;
  readonly epochs: number;
  readonly trainSize: number;
  readonly testSize: number;
  readonly steps: number;
  readonly seed?: number;
}

export async function runInCode(o: InCodeOptions): Promise<string> {
  const seed = o.seed ?? 1;
  const backend = await initBackend('wasm');
  const runDir = path.join(o.outDir, o.runId);

  // 1. data: embedded MNIST digits with completely random labels (r = 1)
  const source = createSource('mnist', { trainSize: o.trainSize, testSize: o.testSize, seed: deriveSeed(seed, 'split') });
  // each image's noisy label is keyed by its index in the source file (sourceIndex), as a run does
  const trainSplit = source.split('train');
  const labels = assignLabels('symmetric', 1.0, deriveSeed(seed, 'label-noise'), trainSplit.labels, source.info.numClasses, trainSplit.sourceIndex);
  const planner = new BatchPlanner(source.info.sizes, { batchSize: 64, evalBatchSize: 500, seed });

  // 2. model, trainer (TRADES, β = 6, its inner max: ℓ∞ PGD ε = 0.1, α = 0.02), optimiser, schedule
  const model = createModel('mlp', { numClasses: 10, inputShape: [28, 28, 1], seed: deriveSeed(seed, 'model-init') });
  const trainer = createTrainer('trades', { beta: 6, attack: { eps: 0.1, alpha: 0.02, steps: o.steps, norm: 'linf', restarts: 1 }, te: null });
  const optimizer = new Sgd(model.parameters, { momentum: 0.9, weightDecay: 0 });
  const lr = makeLrSchedule({ type: 'multistep', lr: 0.05, milestones: [60], gamma: 0.1 });
  // the per-epoch evaluation: PGD-10 at the training ε with α = ε/4 (a run's default, whatever the training attack)
  const evalAttack = { eps: 0.1, alpha: 0.1 / 4, steps: 10, norm: 'linf' as const, restarts: 1, randomStart: 'uniform' as const };

  // 3. logs: the Parquet run-folder writer, fed the same events the runner emits
  const writer = new ParquetRunWriter();
  const emit = (ev: RunEvent) => writer.handle(ev);
  // events between consecutive presentations (train rows) and between consecutive evaluations (eval rows)
  const detectors = { train: new EventDetector({ phase: 'train' }), eval: new EventDetector({ phase: 'eval' }) };
  const emitEvents = async (c: import('../src').ExampleColumns) => {
    const ev = detectors[c.phase].observe(c);
    if (ev.example.length) await emit({ type: 'events', columns: ev });
  };
  await emit({ type: 'run-start', runId: o.runId, runDir, spec: { example: 'pipeline-in-code' }, seed, backend, startedAt: new Date().toISOString(), epochs: o.epochs, numClasses: 10, trainSize: o.trainSize, firstEpoch: 1, priorEpochs: [] });

  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    // 4. one epoch: plans → tensors → random labels → (no augmentation for MNIST) → attack → train
    await lastValueFrom(
      from(planner.iterate('train', epoch)).pipe(
        onePlanAtATime((plan$) =>
          plan$.pipe(
            loadBatches(source),
            randomizeLabels(labels),
            augment({ crop: 0, flip: false, seed: deriveSeed(seed, 'augment') }),
            attack({ model, trainer, te: null, seed }),
            train({ model, trainer, optimizer, lr }),
            concatMap(async (b) => {
              await emit({ type: 'step', record: b.record });
              await emit({ type: 'examples', columns: b.columns });
              await emitEvents(b.columns);
            }),
          ),
        ),
      ),
      { defaultValue: undefined },
    );
    // 5. evaluation, the 'eval' phase: clean + PGD on the test split, and on the training set against its (random) labels
    const testRows: import('../src').ExampleColumns[] = [];
    const testPlans = [...planner.iterate('test', epoch)];
    await evaluatePass(from(testPlans).pipe(loadBatches(source), randomizeLabels(labels)), { model, attack: evalAttack, seed, epoch }, (b) => testRows.push({ ...b.columns, split: 'test' }));
    for (const c of testRows) await emit({ type: 'examples', columns: c });
    const rows: import('../src').ExampleColumns[] = [];
    const plans = [...planner.iterate('train', epoch, { shuffle: false, batchSize: 500 })];
    const s = await evaluatePass(from(plans).pipe(loadBatches(source), randomizeLabels(labels)), { model, attack: evalAttack, seed, epoch }, (b) => rows.push(b.columns));
    for (const c of rows) {
      await emit({ type: 'examples', columns: c });
      await emitEvents(c);
    }
    console.log(`epoch ${epoch}: adversarial training accuracy on the random labels ${(100 * s.robustAcc).toFixed(1)}%`);
  }
  await emit({ type: 'run-end', status: 'completed', wallMs: 0 });
  model.dispose();
  optimizer.dispose();
  return runDir;
}

if (require.main === module) {
  runInCode({ outDir: process.argv[2] ?? 'runs', runId: 'quickstart-in-code', epochs: 80, trainSize: 300, testSize: 500, steps: 10 }).then(
    (dir) => console.log(`logs in ${dir}`),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
