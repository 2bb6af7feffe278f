import type { BackendInfo } from '../../core/backend-info';
import { AtflowError } from '../../core/errors';
import { describeBackend } from '../../backend/select';
import { startRunTraining } from '../data-parallel/run-training';
import { buildRun } from '../../config/build-run';
import { CheckpointStore } from '../../store/checkpoint-store';
import type { Registry } from '../../config/registry';
import type { ResolvedRun } from '../../config/spec';
import { DEFAULT_EVALUATOR, type Evaluator, type EvaluatorOptions } from '../../evaluation/evaluator';
import { corruptionMarker } from './mark-corrupted';
import type { RunResources } from './release-run';
import { openRunFolder, storedSpec } from '../../store/run-folder';
import { restoreRunState } from './restore-run-state';
import type { RunContext, RunState } from './run-context';

/** A run's context before its event hub exists, and the state its stream starts from (openRun). */
export interface OpenedRun {
  readonly context: Omit<RunContext, 'emit' | 'shouldStop'>;
  readonly start: RunState;
}

/**
 * Everything a run's stream starts from: the parts built by name (the whole config checked before
 * anything is written), the evaluator, the run folder, the initial state (restored from the folder's
 * last checkpoint, or fresh) and the training chain. What it acquires it hands to `resources` at once,
 * so that the caller's one release frees it whatever fails after.
 */
export async function openRun(
  run: ResolvedRun,
  runDir: string,
  registry: Registry,
  backend: BackendInfo,
  resources: RunResources,
  options: { resume?: boolean } = {},
): Promise<OpenedRun> {
  const spec = run.spec;
  const parts = buildRun(spec, registry);
  resources.adoptParts(parts);
  const { model, optimizer } = parts;
  const evaluatorOptions: EvaluatorOptions = { model, attack: parts.threat, seed: spec.seed };
  const evaluator = registry.create<Evaluator, EvaluatorOptions>(
    'evaluator',
    spec.eval.evaluator ?? DEFAULT_EVALUATOR,
    evaluatorOptions,
    'eval.evaluator',
  );
  // the folder is created only now, once the whole config is known to be good; its lock makes this
  // process its only writer (a second `atflow run` / sweep task is refused, naming this one), and the
  // one release (RunResources) gives it back last of all
  const folder = resources.adoptFolder(openRunFolder(runDir, storedSpec(run, registry.plugins), options.resume === true));
  const store = new CheckpointStore(folder);
  const startWall = Date.now();
  const start = restoreRunState(store, parts);
  // attack → train in this thread, or data-parallel over worker threads (ATFLOW_WORKERS, wasm)
  const training = await startRunTraining({
    backend: backend.name,
    model,
    trainer: parts.trainer,
    trainerOptions: parts.trainerOptions,
    replica: parts.replica,
    te: parts.te,
    optimizer,
    lr: parts.lr,
    seed: spec.seed,
    ...(start.checkpointWorkers !== undefined ? { resumedWith: start.checkpointWorkers } : {}),
  });
  resources.adoptTraining(training);
  // BatchNorm's per-share statistics and the merged gradient's float order depend on the worker count:
  // a resume must use the same one to continue the run identically (the automatic count keeps it;
  // only an explicit, different ATFLOW_WORKERS gets here)
  const ckptWorkers = start.checkpointWorkers ?? training.workers;
  if (ckptWorkers !== training.workers) {
    throw new AtflowError(
      'RESUME',
      `${runDir}: the run was trained with ${ckptWorkers} data-parallel ` +
        `worker(s) and would resume with ${training.workers} (ATFLOW_WORKERS); ` +
        `set ATFLOW_WORKERS=${ckptWorkers} to resume it identically`,
      { runDir },
    );
  }
  const here = describeBackend(backend);
  const trainedOn = start.trainedOn[start.trainedOn.length - 1] === here ? start.trainedOn : [...start.trainedOn, here];
  const context = {
    runId: run.runId,
    runDir,
    spec,
    parts,
    training,
    store,
    evaluator,
    detectors: start.detectors,
    markCorrupted: corruptionMarker(parts),
    trainedOn,
    priorWallMs: start.priorWallMs,
    startWall,
  };
  return { context, start };
}
