import { lastValueFrom, pipe, type Observable, type OperatorFunction } from 'rxjs';
import { describeBackend, initBackend, type BackendInfo, type BackendName } from '../backend/select';
import type { EpochRecord } from '../core/records';
import type { RunEvent } from '../core/run-event';
import type { Registry } from '../config/registry';
import type { RunSink } from '../core/run-sink';
import { RunEventHub } from './event-hub';
import type { ResolvedRun, RunSpec } from '../config/spec';
import { CheckpointStore } from '../store/checkpoint-store';
import { removeRunFolder, RunFolder } from '../store/run-folder';
import {
  announceRun,
  checkpointEvery,
  checkpointTrainedOn,
  checkUnfinishedFolder,
  endEpoch,
  evaluateEvery,
  finalEvaluation,
  measureComplexity,
  openRun,
  recordEpoch,
  RunResources,
  runEpochs,
  runWallMs,
  saveCheckpoint,
  stopWhen,
  storedSpec,
  trackBest,
  trainEpoch,
  type EndedEpoch,
  type NewEpoch,
  type RunContext,
} from './epoch';

export interface ExecuteRunOptions {
  /** Parent folder; the run writes to <outDir>/<runId>/. */
  readonly outDir: string;
  readonly registry: Registry;
  readonly backend?: BackendName | 'auto';
  /** Continue an unfinished run folder from its last checkpoint (otherwise an unfinished folder is an error). */
  readonly resume?: boolean;
  /**
   * Train the run again from scratch even when its folder holds a finished (or unfinished) run: the
   * folder is removed first. Without it a finished run is skipped (status 'skipped', `trainedOn`).
   */
  readonly rerun?: boolean;
  /** Sinks the runner awaits (Parquet, summary, ...), built per run. */
  readonly sinks?: (runDir: string, spec: RunSpec) => RunSink[];
  /** Observers of the event stream (progress bars, user code). */
  readonly observe?: (events$: Observable<RunEvent>) => void;
  /** Checked between batches: when it returns true the run stops cleanly at the next batch boundary. */
  readonly shouldStop?: () => boolean;
  /**
   * What each epoch goes through, NewEpoch → EndedEpoch (default: standardEpoch): add an operator (an
   * early stop, an ε curriculum) or replace one.
   */
  readonly epoch?: (run: RunContext) => OperatorFunction<NewEpoch, EndedEpoch>;
}

export type RunStatus = 'completed' | 'skipped' | 'interrupted';

export interface RunOutcome {
  readonly runId: string;
  readonly runDir: string;
  readonly status: RunStatus;
  readonly epochs: readonly EpochRecord[];
  /** The backend this session ran on (null when skipped). */
  readonly backend: BackendInfo | null;
  /** Every backend the run trained on, in order (describeBackend); for a skipped run, what its folder says. */
  readonly trainedOn: readonly string[];
}

/** A config's epoch: train, evaluate every k, record, track the best, measure, end, checkpoint, stop on SIGINT. */
export function standardEpoch(run: RunContext): OperatorFunction<NewEpoch, EndedEpoch> {
  return pipe(
    trainEpoch(run),
    evaluateEvery(run),
    recordEpoch(run),
    trackBest(run),
    measureComplexity(run),
    endEpoch(run),
    checkpointEvery(run),
    stopWhen(() => run.shouldStop(), 'interrupted'),
  );
}

/**
 * The backends a finished run folder says it trained on: its last checkpoint's `trained_on`, or, for
 * folders from before that was kept, spec.json's `backend` (the last session's).
 */
export function readTrainedOn(runDir: string): string[] {
  const folder = new RunFolder(runDir);
  try {
    const fromCheckpoint = checkpointTrainedOn(new CheckpointStore(folder).latestState());
    if (fromCheckpoint.length) return fromCheckpoint;
  } catch {
    /* no readable checkpoint: fall back on spec.json */
  }
  try {
    const backend = folder.readSpec().backend as BackendInfo | undefined;
    return backend?.name ? [describeBackend(backend)] : [];
  } catch {
    return [];
  }
}

/**
 * Runs one resolved spec to completion as one stream of public epoch operators (src/run/epoch/):
 * the epochs from the folder's state (fresh, or its last checkpoint's) to the last, each through
 * `options.epoch` (standardEpoch), every step an event the sinks await; then the checkpoint of the
 * last epoch if none holds it (whatever ended the stream: the last epoch, an early stop, an interrupt
 * between epochs), and the final evaluation. What the run acquires is released in one place.
 */
export async function executeRun(run: ResolvedRun, options: ExecuteRunOptions): Promise<RunOutcome> {
  const spec = run.spec;
  // read-only checks first: a finished run is skipped without writing anything (a read-only disk too),
  // and a folder another process writes, of another config or damaged is refused before the run is built
  const folder = RunFolder.of(options.outDir, run.runId);
  const runDir = folder.dir;
  let state = folder.state();
  if (state === 'finished' && !options.rerun)
    return { runId: run.runId, runDir, status: 'skipped', epochs: [], backend: null, trainedOn: readTrainedOn(runDir) };
  if (state !== 'absent' && options.rerun) {
    removeRunFolder(runDir);
    state = 'absent';
  }
  const stored = storedSpec(run, options.registry.plugins);
  if (state === 'unfinished') checkUnfinishedFolder(folder, stored, options.resume === true);
  const backend = await initBackend(options.backend);
  const resources = new RunResources();
  let status: RunStatus = 'interrupted';
  let failed = false;
  let ctx: RunContext | null = null;
  let epochs: readonly EpochRecord[] = [];
  let trainedOn: readonly string[] = [];
  try {
    // openRun takes the folder's lock (RunResources gives it back, last of all)
    const { context, start } = await openRun(run, runDir, options.registry, backend, resources, { resume: options.resume === true });
    epochs = start.history;
    trainedOn = context.trainedOn;
    const hub = resources.adoptHub(new RunEventHub(options.sinks ? options.sinks(runDir, spec) : []));
    ctx = { ...context, emit: (ev) => hub.emit(ev), shouldStop: options.shouldStop ?? (() => false) };
    // a throwing observer (here, or in its handlers later) fails the run cleanly: run-end, sinks closed
    if (options.observe) hub.observe(options.observe);
    await announceRun(ctx, start, stored, backend);
    const tookOver = resources.folder?.heldLock?.tookOver;
    if (tookOver) await hub.emit({ type: 'warning', epoch: 0, message: `took over the run folder's lock: ${tookOver}` });
    const last = await lastValueFrom(
      runEpochs(
        { from: start.firstEpoch, to: spec.epochs, history: start.history, best: start.best },
        (options.epoch ?? standardEpoch)(ctx),
      ),
      { defaultValue: null },
    );
    if (last) epochs = last.history;
    // the stream ended after `last` (not inside the next epoch, whose training has moved the weights on):
    // its weights are written whatever ended it, so LATEST, "final" and the records agree
    const endedAfterLast = last !== null && (last.stop !== undefined || last.epoch >= spec.epochs);
    if (last && endedAfterLast && !last.checkpoint) await saveCheckpoint(ctx, last);
    // completed: the last epoch done (also when a resumed run had none left), or an early stop
    if (last?.stop === 'early' || (last?.epoch ?? start.firstEpoch - 1) === spec.epochs) status = 'completed';
    if (status === 'completed' && epochs.length > 0) await finalEvaluation(ctx, epochs);
    await hub.emit({ type: 'run-end', status, wallMs: runWallMs(ctx) });
  } catch (e) {
    failed = true;
    if (ctx)
      await resources.hub
        ?.deliver({ type: 'run-end', status: 'failed', wallMs: runWallMs(ctx), error: (e as Error).message })
        .catch(() => undefined);
    throw e;
  } finally {
    // the lock last of all, after the marker that the run folder is complete (sweeps and --resume skip it)
    await resources.release(failed, (f) => {
      if (status === 'completed') f.markSuccess();
    });
  }
  return { runId: run.runId, runDir, status, epochs, backend, trainedOn };
}
