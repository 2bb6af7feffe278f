import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { concatMap, from, lastValueFrom, takeWhile, type Observable } from 'rxjs';
import { initBackend, type BackendInfo, type BackendName } from '../backend/select';
import type { BatchPlan } from '../core/batch';
import { AtflowError } from '../core/errors';
import { faultPoint } from '../core/fault-injection';
import type { EpochRecord, ExampleColumns } from '../core/records';
import { deriveSeed, Rng } from '../core/rng';
import type { RunEvent } from '../core/run-event';
import { loadBatches, onePlanAtATime } from '../operators/load-batches';
import { randomizeLabels } from '../operators/randomize-labels';
import { augment } from '../operators/augment';
import { startRunTraining, type RunTraining } from '../operators/data-parallel/run-training';
import { evaluatePass, type EvalSummary } from '../operators/evaluate';
import { EventDetector, type EventDetectorState } from '../operators/detect-events';
import { BEST_EPOCH_RULE, selectBestEpoch, type EpochScore } from '../analysis/best-epoch';
import type { SafetensorsTensor } from '../models/safetensors';
import type { Model } from '../core/model';
import { complexityMeasures } from '../analysis/complexity';
import { pgd } from '../operators/attacks/pgd';
import { crossEntropy } from '../operators/objectives/ce';
import { gradientMaskingChecks, type SanityReport } from '../operators/sanity-checks';
import { defaultStrongAttacks, evaluateStrong } from '../operators/evaluate-strong';
import { loadWeights } from '../models/checkpoint';
import { writeFileAtomic } from '../sinks/parquet-writer';
import { finalAutoAttack } from './final-autoattack';
import { buildRun, type RunParts } from './build-run';
import { checkpointEpochs, CheckpointStore } from './checkpoint-store';
import type { Registry } from './registry';
import { RunEventHub, type RunSink } from './run-sinks';
import { canonicalJson, specWarnings, type ResolvedRun, type RunSpec } from './spec';

export interface ExecuteRunOptions {
  /** Parent folder; the run writes to <outDir>/<runId>/. */
  readonly outDir: string;
  readonly registry: Registry;
  readonly backend?: BackendName | 'auto';
  /** Continue an unfinished run folder from its last checkpoint (otherwise an unfinished folder is an error). */
  readonly resume?: boolean;
  /** Sinks the runner awaits (Parquet, summary, ...), built per run. */
  readonly sinks?: (runDir: string, spec: RunSpec) => RunSink[];
  /** Observers of the event stream (progress bars, user code). */
  readonly observe?: (events$: Observable<RunEvent>) => void;
  /** Checked between batches: when it returns true the run stops cleanly at the next batch boundary. */
  readonly shouldStop?: () => boolean;
}

export type RunStatus = 'completed' | 'skipped' | 'interrupted';

export interface RunOutcome {
  readonly runId: string;
  readonly runDir: string;
  readonly status: RunStatus;
  readonly epochs: readonly EpochRecord[];
  readonly backend: BackendInfo | null;
}

/** The spec as stored in the run folder, with the metadata the summary and report read. */
function storedSpec(run: ResolvedRun): Record<string, unknown> {
  const s = run.spec;
  return {
    ...s,
    variant: run.variant,
    meta: {
      trainer: s.trainer.te ? `${s.trainer.name}+te` : s.trainer.name,
      label_noise: { kind: s.labelNoise.kind, rate: s.labelNoise.rate },
      attack: { norm: s.attack.norm, eps: s.attack.eps, alpha: s.attack.alpha, steps: s.attack.steps },
    },
  };
}

/** Eval-mode pass over the training set (in index order, or a fixed seeded subset): the 'eval' phase. */
function trainEvalPlans(spec: RunSpec, parts: RunParts, epoch: number): Iterable<BatchPlan> {
  const n = parts.planner.size('train');
  const bs = spec.data.testBatchSize;
  if (spec.eval.trainSubset === undefined || spec.eval.trainSubset >= n) return parts.planner.iterate('train', epoch, { shuffle: false, batchSize: bs });
  const indices = new Rng(deriveSeed(spec.seed, 'train-eval-subset')).permutation(n).slice(0, spec.eval.trainSubset).sort();
  const plans: BatchPlan[] = [];
  for (let step = 0; step * bs < indices.length; step++) plans.push({ split: 'train', epoch, step, indices: indices.slice(step * bs, (step + 1) * bs) });
  return plans;
}

function f32(name: string, values: Float32Array, shape: number[]): SafetensorsTensor {
  return { name, dtype: 'F32', shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

function readF32(t: SafetensorsTensor | undefined, name: string): Float32Array {
  if (!t) throw new AtflowError('RESUME', `checkpoint has no '${name}' array`);
  return new Float32Array(t.data.slice().buffer);
}

/** Reads an existing run folder's state: finished, unfinished (resumable) or absent. */
export function runFolderState(runDir: string): 'absent' | 'finished' | 'unfinished' {
  if (!fs.existsSync(runDir)) return 'absent';
  if (fs.existsSync(path.join(runDir, '_SUCCESS'))) return 'finished';
  return 'unfinished';
}

/**
 * Runs one resolved spec to completion: source → plans → load → randomizeLabels → augment → attack →
 * train per batch, then per epoch: evaluate (test, val, and the training set against its used labels),
 * events, the epoch record, best-epoch tracking, checkpoint. Every step is an event on one stream.
 */
export async function executeRun(run: ResolvedRun, options: ExecuteRunOptions): Promise<RunOutcome> {
  const spec = run.spec;
  const runDir = path.join(options.outDir, run.runId);
  const state = runFolderState(runDir);
  if (state === 'finished') return { runId: run.runId, runDir, status: 'skipped', epochs: [], backend: null };
  const stored = storedSpec(run);
  if (state === 'unfinished') {
    const specFile = path.join(runDir, 'spec.json');
    if (fs.existsSync(specFile)) {
      let previous: { spec?: unknown };
      try {
        previous = JSON.parse(fs.readFileSync(specFile, 'utf8'));
      } catch (e) {
        throw new AtflowError('RESUME', `${specFile}: unreadable (${(e as Error).message}); the run folder is damaged: use another --out or remove the folder`, { file: specFile });
      }
      // what the run computes must match; its description (not in the run id either) may change
      const withoutDescription = (v: unknown) => {
        if (!v || typeof v !== 'object') return v;
        const { description: _d, ...rest } = v as Record<string, unknown>;
        return rest;
      };
      const now = withoutDescription(JSON.parse(JSON.stringify(stored)));
      const before = withoutDescription(previous?.spec);
      if (canonicalJson(before) !== canonicalJson(now)) {
        const diff = specDifferences(before, now);
        throw new AtflowError(
          'RESUME',
          `${runDir}: the folder holds a run of a different config (spec.json differs at ${diff.slice(0, 5).join(', ')}${diff.length > 5 ? ', ...' : ''}); use another --out or remove the folder`,
          { runDir, differences: diff },
        );
      }
    }
    if (!options.resume && fs.readdirSync(runDir).length > 0) {
      throw new AtflowError('RESUME', `${runDir}: an unfinished run is already there; continue it with --resume, or remove the folder`, { runDir });
    }
  }
  const backend = await initBackend(options.backend);
  // the config is fully checked (names, data files) before anything is written
  const parts = buildRun(spec, options.registry);
  const { source, model, trainer, te, optimizer, labels, planner } = parts;
  try {
    fs.mkdirSync(runDir, { recursive: true });
  } catch (e) {
    model.dispose();
    optimizer.dispose?.();
    throw new AtflowError('IO', `cannot create the run folder ${runDir}: ${whyNotWritable(runDir) ?? (e as Error).message}`, { path: runDir });
  }
  const store = new CheckpointStore(runDir);
  store.cleanTemp();
  const detector0: { train?: EventDetectorState; eval?: EventDetectorState } = {};
  let firstEpoch = 1;
  let epochs: EpochRecord[] = [];
  const startWall = Date.now();
  let priorWallMs = 0;

  // until the run's try below owns them, a failure here (a damaged checkpoint, a worker-count mismatch)
  // must still free the model, the optimizer and the workers
  let ckpt: ReturnType<CheckpointStore['load']> = null;
  // Two detectors, told apart by the events table's `phase`: 'train' over the rows of the updates
  // themselves (every epoch: forgetting between presentations, as Toneva et al.), 'eval' over the
  // eval-mode pass over the training set (evaluated epochs only; none with eval.train false).
  let detectors!: { train: EventDetector; eval: EventDetector };
  let training!: RunTraining;
  try {
    ckpt = state === 'unfinished' ? store.load(model) : null;
    if (ckpt) {
      firstEpoch = ckpt.epoch + 1;
      discardEpochsAfter(runDir, ckpt.epoch);
      epochs = checkpointEpochs(ckpt.json);
      priorWallMs = Number(ckpt.json.wallMs ?? 0);
      const arrays = new Map(ckpt.arrays.map((a) => [a.name, a]));
      const sgd = ckpt.json.sgd as { steps: number; names: string[]; shapes: number[][] } | undefined;
      if (!sgd || !Array.isArray(sgd.names) || !Array.isArray(sgd.shapes)) {
        const file = path.join(store.dir, `epoch-${String(ckpt.epoch).padStart(4, '0')}`, 'state.json');
        throw new AtflowError('RESUME', `${file}: no optimizer state ('sgd'); the checkpoint is damaged`, { file });
      }
      optimizer.importState({
        steps: sgd.steps,
        momentumBuffers: sgd.names.map((name, i) => ({ name, shape: sgd.shapes[i], values: readF32(arrays.get(`sgd/${name}`), `sgd/${name}`) })),
      });
      if (te) te.importState({ ...(ckpt.json.te as object), buffer: readF32(arrays.get('te/buffer'), 'te/buffer') } as never);
      const saved = (ckpt.json.detectors ?? {}) as { train?: EventDetectorState; eval?: EventDetectorState };
      detector0.train = saved.train;
      detector0.eval = saved.eval;
      // checkpoints before the two detectors held one, of either phase
      const legacy = ckpt.json.detector as EventDetectorState | undefined;
      if (legacy) detector0[legacy.phase] = legacy;
    }
    detectors = {
      train: new EventDetector({ phase: 'train', ...(detector0.train ? { state: detector0.train } : {}) }),
      eval: new EventDetector({ phase: 'eval', ...(detector0.eval ? { state: detector0.eval } : {}) }),
    };

    // attack → train in this thread, or data-parallel over worker threads (ATFLOW_WORKERS, wasm)
    training = await startRunTraining({ backend: backend.name, model, trainer, trainerOptions: parts.trainerOptions, replica: parts.replica, te, optimizer, lr: parts.lr, seed: spec.seed, ...(ckpt ? { resumedWith: Number(ckpt.json.workers ?? 1) } : {}) });
    // BatchNorm's per-share statistics and the merged gradient's float order depend on the worker count:
    // a resume must use the same one to continue the run identically (the automatic count keeps it;
    // only an explicit, different ATFLOW_WORKERS gets here)
    const ckptWorkers = ckpt ? Number(ckpt.json.workers ?? 1) : training.workers;
    if (ckptWorkers !== training.workers) {
      throw new AtflowError('RESUME', `${runDir}: the run was trained with ${ckptWorkers} data-parallel worker(s) and would resume with ${training.workers} (ATFLOW_WORKERS); set ATFLOW_WORKERS=${ckptWorkers} to resume it identically`, { runDir });
    }
  } catch (e) {
    await training?.close().catch(() => undefined);
    model.dispose();
    optimizer.dispose?.();
    throw e;
  }
  let hub: RunEventHub;
  try {
    hub = new RunEventHub(options.sinks ? options.sinks(runDir, spec) : []);
  } catch (e) {
    await releaseRun(training, null, model, optimizer, true);
    throw e;
  }
  const stop = options.shouldStop ?? (() => false);
  let status: RunStatus = 'completed';
  let failed = false;
  try {
    // a throwing observer (here, or in its handlers later) fails the run cleanly: run-end, sinks closed
    options.observe?.(hub.events$);
    await hub.emit({
      type: 'run-start',
      runId: run.runId,
      runDir,
      spec: stored,
      seed: spec.seed,
      backend,
      startedAt: new Date().toISOString(),
      epochs: spec.epochs,
      numClasses: source.info.numClasses,
      trainSize: planner.size('train'),
      firstEpoch,
      // the restored history travels on run-start so every sink and observer starts from the same epochs
      // (the summary's epochs/best/final) instead of each re-reading epochs.parquet, which a run without the
      // Parquet sink lacks and which that sink is still consolidating at run-start; a copy: `epochs` grows
      priorEpochs: [...epochs],
      evaluation: parts.evalProtocol,
    });
    // which training inputs inputCorruption replaced: in labels.parquet and on every train-split row
    const corruptedMask = new Uint8Array(labels.labelsUsed.length);
    for (const i of parts.corrupted) corruptedMask[i] = 1;
    const markCorrupted = (c: ExampleColumns): ExampleColumns =>
      parts.corrupted.length && (c.split ?? 'train') === 'train' ? { ...c, input_corrupted: Uint8Array.from(c.example, (i) => corruptedMask[i]) } : c;
    await hub.emit({ type: 'labels', example: iota(labels.labelsUsed.length), label_true: labels.labelsTrue, label_used: labels.labelsUsed, input_corrupted: corruptedMask, noiseRate: labels.noiseRate });
    for (const message of specWarnings(spec)) await hub.emit({ type: 'warning', epoch: 0, message });

    for (let epoch = firstEpoch; epoch <= spec.epochs; epoch++) {
      const t0 = Date.now();
      const lr = parts.lr(epoch);
      const teWeight = te ? te.weight(epoch) : 0;
      await hub.emit({ type: 'epoch-start', epoch, lr, teWeight, steps: planner.steps('train') });
      let lossSum = 0;
      let gradSum = 0;
      let steps = 0;
      let seen = 0;
      // One batch of tensors alive at a time: plan k+1 is loaded only after batch k's rows were written.
      await lastValueFrom(
        from(planner.iterate('train', epoch)).pipe(
          onePlanAtATime((plan$) =>
            plan$.pipe(
              // checked when the plan's turn comes (not when `from` emits it): stops at a batch boundary
              takeWhile(() => !stop()),
              loadBatches(source),
              randomizeLabels(labels),
              augment(parts.augment),
              training.operator,
              concatMap(async (tb) => {
                lossSum += tb.record.loss;
                gradSum += tb.record.grad_norm_sq;
                steps++;
                seen += tb.indices.length;
                await hub.emit({ type: 'step', record: tb.record });
                if (spec.logging.examples) await hub.emit({ type: 'examples', columns: markCorrupted(tb.columns) });
                const trainEvents = detectors.train.observe(tb.columns);
                if (trainEvents.example.length) await hub.emit({ type: 'events', columns: trainEvents });
                // a macrotask turn between batches, so SIGINT is seen at the next batch boundary
                await new Promise((r) => setImmediate(r));
              }),
            ),
          ),
        ),
        { defaultValue: undefined },
      );
      if (seen < planner.size('train')) {
        status = 'interrupted';
        break;
      }

      const evaluateNow = epoch % spec.eval.every === 0 || epoch === spec.epochs;
      let test: EvalSummary | null = null;
      let val: EvalSummary | null = null;
      let trainEval: EvalSummary | null = null;
      let lastTrainEvalCols: ExampleColumns[] = [];
      const evalStart = Date.now();
      if (evaluateNow) {
        // every evaluated split's rows are logged (eval phase, with their split); the training set's
        // also drive the eval-phase events and the margins of the complexity measures
        const pass = async (plans: Iterable<BatchPlan>, split: 'train' | 'val' | 'test'): Promise<EvalSummary> => {
          const cols: ExampleColumns[] = [];
          const summary = await evaluatePass(
            from(plans).pipe(loadBatches(source), randomizeLabels(labels)),
            { model, attack: parts.evalAttack, seed: spec.seed, epoch },
            (b) => {
              if (split === 'train' || spec.logging.examples) cols.push({ ...b.columns, split });
            },
          );
          if (split === 'train') lastTrainEvalCols = cols;
          for (const c0 of cols) {
            const c = markCorrupted(c0);
            if (spec.logging.examples) await hub.emit({ type: 'examples', columns: c });
            if (split !== 'train') continue;
            const evalEvents = detectors.eval.observe(c);
            if (evalEvents.example.length) await hub.emit({ type: 'events', columns: evalEvents });
          }
          return summary;
        };
        lastTrainEvalCols = [];
        test = await pass(planner.iterate('test', epoch), 'test');
        if (source.splits.includes('val')) val = await pass(planner.iterate('val', epoch), 'val');
        if (spec.eval.train) trainEval = await pass(trainEvalPlans(spec, parts, epoch), 'train');
      }
      const evalMs = Date.now() - evalStart;

      const scores: EpochScore[] = epochs
        .filter((e) => Number.isFinite(e.test_robust_acc))
        .map((e) => ({ epoch: e.epoch, robustAcc: selectOn(e, spec), cleanAcc: selectOnClean(e, spec) }));
      const record: EpochRecord & { val_clean_acc: number; val_robust_acc: number } = {
        epoch,
        lr,
        te_weight: teWeight,
        train_loss: lossSum / Math.max(steps, 1),
        train_clean_acc: trainEval?.cleanAcc ?? NaN,
        train_clean_loss: trainEval?.cleanLoss ?? NaN,
        train_robust_acc: trainEval?.robustAcc ?? NaN,
        train_robust_loss: trainEval?.robustLoss ?? NaN,
        test_clean_acc: test?.cleanAcc ?? NaN,
        test_clean_loss: test?.cleanLoss ?? NaN,
        test_robust_acc: test?.robustAcc ?? NaN,
        test_robust_loss: test?.robustLoss ?? NaN,
        val_clean_acc: val?.cleanAcc ?? NaN,
        val_robust_acc: val?.robustAcc ?? NaN,
        grad_norm_sq_mean: gradSum / Math.max(steps, 1),
        wall_ms: Date.now() - t0,
        eval_ms: evalMs,
        best_epoch: 0,
        best_rule: BEST_EPOCH_RULE + (spec.eval.selectOn === 'val' && val ? ' (validation split)' : ' (test split)'),
      };
      if (test) scores.push({ epoch, robustAcc: selectOn(record, spec), cleanAcc: selectOnClean(record, spec) });
      const best = scores.length ? selectBestEpoch(scores).best.epoch : 0;
      const finalRecord = { ...record, best_epoch: best };
      epochs.push(finalRecord);
      if (best === epoch) store.saveWeightsAs(model, 'best', epoch);
      if (spec.logging.complexityEvery > 0 && (epoch % spec.logging.complexityEvery === 0 || epoch === spec.epochs)) {
        const margins = concatMargins(lastTrainEvalCols);
        const measures = await complexityMeasures(model, {
          seed: spec.seed,
          epoch,
          epochRecord: finalRecord,
          ...(margins.length ? { margins } : {}),
          sharpness: { loss: (m) => robustLossOnFixedBatch(m, spec, parts) },
        });
        await hub.emit({ type: 'complexity', epoch, measures });
      }
      // epoch-end makes every row of this epoch durable (the sinks close its files) before the checkpoint
      await hub.emit({ type: 'epoch-end', record: finalRecord });

      if (epoch % spec.checkpoint.every === 0 || epoch === spec.epochs) {
        const sgdState = optimizer.exportState();
        const teState = te?.exportState();
        const arrays: SafetensorsTensor[] = sgdState.momentumBuffers.map((b) => f32(`sgd/${b.name}`, b.values, b.shape));
        if (te && teState) arrays.push(f32('te/buffer', teState.buffer, [te.numExamples, te.numClasses]));
        const { buffer: _b, ...teJson } = teState ?? ({} as Record<string, unknown>);
        const dir = store.save(model, {
          epoch,
          steps: optimizer.steps,
          json: {
            runId: run.runId,
            workers: training.workers,
            epochs,
            wallMs: priorWallMs + (Date.now() - startWall),
            sgd: { steps: sgdState.steps, names: sgdState.momentumBuffers.map((b) => b.name), shapes: sgdState.momentumBuffers.map((b) => b.shape) },
            te: teState ? teJson : null,
            detectors: { train: detectors.train.exportState(), eval: detectors.eval.exportState() },
          },
          arrays,
        }, spec.checkpoint.keep === 'all');
        await hub.emit({ type: 'checkpoint', epoch, path: dir });
        faultPoint('epoch-boundary');
      }
      if (stop()) {
        status = epoch === spec.epochs ? 'completed' : 'interrupted';
        break;
      }
    }
    if (status === 'completed' && epochs.length > 0) await finalEvaluation(spec, parts, store, runDir, epochs, hub);
    await hub.emit({ type: 'run-end', status, wallMs: priorWallMs + (Date.now() - startWall) });
  } catch (e) {
    failed = true;
    await hub.deliver({ type: 'run-end', status: 'failed', wallMs: priorWallMs + (Date.now() - startWall), error: (e as Error).message }).catch(() => undefined);
    throw e;
  } finally {
    await releaseRun(training, hub, model, optimizer, failed);
  }
  // last of all: the marker that the run folder is complete (sweeps and --resume skip it)
  if (status === 'completed') writeFileAtomic(path.join(runDir, '_SUCCESS'), '');
  return { runId: run.runId, runDir, status, epochs, backend };
}

/**
 * Closes the workers and the sinks and frees the model and the optimizer, each step whatever the
 * others did. When the run already failed its error is the one that propagates (a sink that also fails
 * to close must not hide it); otherwise the first cleanup error is thrown, after everything is freed.
 */
async function releaseRun(training: RunTraining, hub: RunEventHub | null, model: Model, optimizer: RunParts['optimizer'], runFailed: boolean): Promise<void> {
  const errors: unknown[] = [];
  for (const step of [() => training.close(), () => hub?.close()]) {
    try {
      await step();
    } catch (e) {
      errors.push(e);
    }
  }
  model.dispose();
  optimizer.dispose?.();
  if (!runFailed && errors.length > 0) throw errors[0];
}

function selectOn(e: EpochRecord & { val_robust_acc?: number }, spec: RunSpec): number {
  return spec.eval.selectOn === 'val' && Number.isFinite(e.val_robust_acc) ? e.val_robust_acc! : e.test_robust_acc;
}
function selectOnClean(e: EpochRecord & { val_clean_acc?: number }, spec: RunSpec): number {
  return spec.eval.selectOn === 'val' && Number.isFinite(e.val_clean_acc) ? e.val_clean_acc! : e.test_clean_acc;
}

/** The first `n` test examples as host arrays (floats in [0, 1]) with their labels. */
function testExamples(parts: RunParts, n: number): { x: Float32Array; labels: Int32Array } {
  const size = Math.min(n, parts.planner.size('test'));
  const indices = Int32Array.from({ length: size }, (_, i) => i);
  const b = parts.source.load({ split: 'test', epoch: 0, step: 0, indices });
  const x = b.x.dataSync() as Float32Array;
  b.x.dispose();
  return { x, labels: b.labelsTrue };
}

/**
 * After the last epoch: gradient-masking sanity checks on one test batch (warnings, never errors) and,
 * when asked, the strong evaluation of the best and final checkpoints. Written to final_eval.json.
 */
async function finalEvaluation(spec: RunSpec, parts: RunParts, store: CheckpointStore, runDir: string, epochs: readonly EpochRecord[], hub: RunEventHub): Promise<void> {
  const { model } = parts;
  const last = epochs[epochs.length - 1];
  const data = testExamples(parts, spec.eval.final.examples);
  // the run's threat model: an ℓ2 run is checked and attacked in the ℓ2 ball
  const { eps, norm } = parts.evalAttack;
  const bs = Math.min(data.labels.length, spec.data.testBatchSize);
  const [H, W, C] = model.inputShape;
  const x = tf.tensor4d(data.x.subarray(0, bs * H * W * C), [bs, H, W, C]);
  const y = tf.tensor1d(data.labels.subarray(0, bs), 'int32');
  let sanity: SanityReport;
  try {
    sanity = gradientMaskingChecks(model, x, y, { eps, norm, alpha: parts.evalAttack.alpha, steps: parts.evalAttack.steps, seed: deriveSeed(spec.seed, 'sanity') });
  } finally {
    x.dispose();
    y.dispose();
  }
  for (const message of sanity.warnings) await hub.emit({ type: 'warning', epoch: last.epoch, message });
  const result: Record<string, unknown> = { epoch: last.epoch, norm, eps, sanity };
  if (spec.eval.final.strong === 'autoattack') {
    const aa = await finalAutoAttack(model, data, { runDir, checkpointsDir: store.dir, eps, norm: spec.attack.norm, seed: spec.seed, batchSize: spec.data.testBatchSize, lastEpoch: last.epoch, bestEpoch: last.best_epoch });
    result.autoattack = aa;
    for (const s of [aa.final, aa.best]) for (const message of s.warnings) await hub.emit({ type: 'warning', epoch: last.epoch, message: `AutoAttack (${s.checkpoint}): ${message}` });
  } else if (spec.eval.final.strong) {
    const attacks = defaultStrongAttacks(eps, model.numClasses, spec.eval.final.restarts, norm);
    result.attacks = attacks.map((a) => ({ name: a.name, ...a.settings }));
    const strong = (label: string) => {
      const e = evaluateStrong(model, data, { eps, seed: deriveSeed(spec.seed, 'final-eval'), batchSize: spec.data.testBatchSize, attacks });
      return { checkpoint: label, n: e.n, clean_acc: e.cleanAcc, per_attack: e.perAttack, worst_case_acc: e.worstCaseAcc };
    };
    const finalEval = strong(`final (epoch ${last.epoch})`);
    const bestEpoch = last.best_epoch;
    const bestFile = path.join(store.dir, 'best.safetensors');
    let bestEval: ReturnType<typeof strong> | null = null;
    if (bestEpoch > 0 && bestEpoch !== last.epoch && fs.existsSync(bestFile)) {
      loadWeights(model, bestFile);
      bestEval = strong(`best (epoch ${bestEpoch})`);
    }
    result.strong = { final: finalEval, best: bestEval ?? { ...finalEval, checkpoint: `best (epoch ${bestEpoch})` } };
  }
  writeFileAtomic(path.join(runDir, 'final_eval.json'), JSON.stringify(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
}

function concatMargins(cols: readonly ExampleColumns[]): Float32Array {
  const out = new Float32Array(cols.reduce((n, c) => n + c.margin_clean.length, 0));
  let o = 0;
  for (const c of cols) {
    out.set(c.margin_clean, o);
    o += c.margin_clean.length;
  }
  return out;
}

/**
 * The robust loss sharpness perturbs: mean CE after the evaluation attack (recomputed for the
 * weights at hand, fixed attack seed) on a fixed seeded batch of training examples with their used labels.
 */
async function robustLossOnFixedBatch(model: Model, spec: RunSpec, parts: RunParts): Promise<number> {
  const n = parts.planner.size('train');
  const take = Math.min(n, spec.data.testBatchSize);
  const indices = new Rng(deriveSeed(spec.seed, 'sharpness-batch')).permutation(n).slice(0, take).sort();
  const loaded = parts.source.load({ split: 'train', epoch: 0, step: 0, indices });
  const y = tf.tensor1d(Int32Array.from(indices, (i) => parts.labels.labelsUsed[i]), 'int32');
  try {
    const xAdv = pgd(model, loaded.x, y, deriveSeed(spec.seed, 'sharpness-attack'), parts.evalAttack);
    const loss = tf.tidy(() => crossEntropy(model.apply(xAdv, 'eval'), y).dataSync()[0]);
    xAdv.dispose();
    return loss;
  } finally {
    y.dispose();
    loaded.x.dispose();
  }
}

/** Why a folder cannot be created, in words (mkdir's own errors say ENOENT for a read-only parent). */
function whyNotWritable(dir: string): string | null {
  let p = path.dirname(path.resolve(dir));
  while (!fs.existsSync(p) && path.dirname(p) !== p) p = path.dirname(p);
  if (!fs.statSync(p).isDirectory()) return `${p} is a file, not a folder (ENOTDIR)`;
  try {
    fs.accessSync(p, fs.constants.W_OK);
  } catch (e) {
    return `${p} is not writable (${(e as NodeJS.ErrnoException).code})`;
  }
  return null;
}

/** Dotted paths where two specs differ (for the resume-mismatch message). */
function specDifferences(a: unknown, b: unknown, at = ''): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => specDifferences(a[k], b[k], at ? `${at}.${k}` : k));
  }
  return canonicalJson(a) === canonicalJson(b) ? [] : [`${at || '(top level)'} (folder: ${JSON.stringify(a) ?? 'absent'}, now: ${JSON.stringify(b) ?? 'absent'})`];
}

/** Example partitions of epochs after the resumed checkpoint are re-written by the resumed run. */
function discardEpochsAfter(runDir: string, epoch: number): void {
  const dir = path.join(runDir, 'examples');
  if (!fs.existsSync(dir)) return;
  for (const f of fs.readdirSync(dir)) {
    const m = /^epoch=(\d+)$/.exec(f);
    if (m && Number(m[1]) > epoch) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  }
}

function iota(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}
