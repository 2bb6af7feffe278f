import { lastValueFrom, pipe, type Observable, type OperatorFunction } from 'rxjs';
import { initBackend, type BackendInfo, type BackendName } from '../backend/select';
import type { EpochRecord } from '../core/records';
import type { RunEvent } from '../core/run-event';
import { RunFolder } from '../store/run-folder';
import type { Registry } from '../config/registry';
import type { RunSink } from '../core/run-sink';
import { RunEventHub } from './event-hub';
import type { ResolvedRun, RunSpec } from '../config/spec';
import { announceRun, checkpointEvery, checkUnfinishedFolder, endEpoch, evaluateEvery, finalEvaluation, measureComplexity, openRun, recordEpoch, releaseRun, runEpochs, runWallMs, stopWhen, storedSpec, trackBest, trainEpoch, type EpochState, type RunContext } from './epoch';

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
  /** What each epoch goes through (default: standardEpoch): add an operator (an early stop, an ε curriculum) or replace one. */
  readonly epoch?: (run: RunContext) => OperatorFunction<EpochState, EpochState>;
}

export type RunStatus = 'completed' | 'skipped' | 'interrupted';

export interface RunOutcome {
  readonly runId: string;
  readonly runDir: string;
  readonly status: RunStatus;
  readonly epochs: readonly EpochRecord[];
  readonly backend: BackendInfo | null;
}

/** A config's epoch: train, evaluate every k, record, track the best, measure, end, checkpoint, stop on SIGINT. */
export function standardEpoch(run: RunContext): OperatorFunction<EpochState, EpochState> {
  return pipe(trainEpoch(run), evaluateEvery(run), recordEpoch(run), trackBest(run), measureComplexity(run), endEpoch(run), checkpointEvery(run), stopWhen(() => run.shouldStop(), 'interrupted'));
}

/**
 * Runs one resolved spec to completion as one stream of public epoch operators (src/run/epoch/):
 * the epochs from the folder's state (fresh, or its last checkpoint's) to the last, each through
 * `options.epoch` (standardEpoch), every step an event the sinks await; then the final evaluation.
 */
export async function executeRun(run: ResolvedRun, options: ExecuteRunOptions): Promise<RunOutcome> {
  const spec = run.spec;
  // read-only checks first: a finished run is skipped without writing anything (a read-only disk too),
  // and a folder another process writes, of another config or damaged is refused before the run is built
  const folder = RunFolder.of(options.outDir, run.runId);
  const runDir = folder.dir;
  const state = folder.state();
  if (state === 'finished') return { runId: run.runId, runDir, status: 'skipped', epochs: [], backend: null };
  const stored = storedSpec(run);
  if (state === 'unfinished') checkUnfinishedFolder(folder, stored, options.resume === true);
  const backend = await initBackend(options.backend);
  // openRun takes the folder's lock; it is released last of all, after _SUCCESS
  const opened = await openRun(run, runDir, options.registry, backend, { resume: options.resume === true });
  const { training, parts } = opened;
  const unlock = () => opened.store.folder.unlock();
  let hub: RunEventHub;
  try {
    hub = new RunEventHub(options.sinks ? options.sinks(runDir, spec) : []);
  } catch (e) {
    await releaseRun(training, null, parts.model, parts.optimizer, true);
    unlock();
    throw e;
  }
  const ctx: RunContext = { ...opened, emit: (ev) => hub.emit(ev), shouldStop: options.shouldStop ?? (() => false) };
  let status: RunStatus = 'interrupted';
  let failed = false;
  try {
    // a throwing observer (here, or in its handlers later) fails the run cleanly: run-end, sinks closed
    options.observe?.(hub.events$);
    await announceRun(ctx, stored, backend);
    const tookOver = opened.store.folder.heldLock?.tookOver;
    if (tookOver) await hub.emit({ type: 'warning', epoch: 0, message: `took over the run folder's lock: ${tookOver}` });
    const last = await lastValueFrom(runEpochs({ from: ctx.firstEpoch, to: spec.epochs }, (options.epoch ?? standardEpoch)(ctx)), { defaultValue: null });
    // completed: the last epoch done (also when a resumed run had none left), or an early stop
    if (last?.stop === 'early' || (last?.epoch ?? ctx.firstEpoch - 1) === spec.epochs) status = 'completed';
    if (status === 'completed' && ctx.epochs.length > 0) await finalEvaluation(ctx);
    await hub.emit({ type: 'run-end', status, wallMs: runWallMs(ctx) });
  } catch (e) {
    failed = true;
    await hub.deliver({ type: 'run-end', status: 'failed', wallMs: runWallMs(ctx), error: (e as Error).message }).catch(() => undefined);
    throw e;
  } finally {
    try {
      await releaseRun(training, hub, parts.model, parts.optimizer, failed);
      // last of all: the marker that the run folder is complete (sweeps and --resume skip it)
      if (status === 'completed' && !failed) opened.store.folder.markSuccess();
    } finally {
      unlock();
    }
  }
  return { runId: run.runId, runDir, status, epochs: ctx.epochs, backend };
}
