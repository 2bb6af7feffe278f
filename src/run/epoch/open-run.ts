import type { BackendInfo } from '../../core/backend-info';
import { AtflowError, unknownName } from '../../core/errors';
import { startRunTraining, type RunTraining } from '../data-parallel/run-training';
import { buildRun } from '../../config/build-run';
import { CheckpointStore } from '../../store/checkpoint-store';
import type { Registry } from '../../config/registry';
import type { ResolvedRun } from '../../config/spec';
import { DEFAULT_EVALUATOR, type Evaluator, type EvaluatorOptions } from '../../evaluation/evaluator';
import { corruptionMarker } from './mark-corrupted';
import { releaseRun } from './release-run';
import { openRunFolder, storedSpec, type RunFolder } from '../../store/run-folder';
import { restoreRunState } from './restore-run-state';
import type { RunContext } from './run-context';

/** A run's context before its event hub exists (openRun). */
export type OpenedRun = Omit<RunContext, 'emit' | 'shouldStop'>;

/**
 * Everything a run's stream starts from: the parts built by name (the whole config checked before
 * anything is written), the evaluator, the run folder, the initial state (restored from the folder's
 * last checkpoint, or fresh) and the training chain. A failure here frees the model, the optimizer and
 * the workers before it propagates.
 */
export async function openRun(run: ResolvedRun, runDir: string, registry: Registry, backend: BackendInfo, options: { resume?: boolean } = {}): Promise<OpenedRun> {
  const spec = run.spec;
  const parts = buildRun(spec, registry);
  const { model, optimizer } = parts;
  let training: RunTraining | undefined;
  let folder: RunFolder | undefined;
  try {
    const evaluatorName = spec.eval.evaluator ?? DEFAULT_EVALUATOR;
    if (!registry.has('evaluator', evaluatorName)) {
      const e = unknownName('evaluator', evaluatorName, registry.list('evaluator'));
      throw new AtflowError(e.code, `eval.evaluator: ${e.message}`, { ...e.details, field: 'eval.evaluator' });
    }
    const evaluatorOptions: EvaluatorOptions = { model, attack: parts.evalAttack, seed: spec.seed };
    const evaluator = registry.create<Evaluator, EvaluatorOptions>('evaluator', evaluatorName, evaluatorOptions);
    // the folder is created only now, once the whole config is known to be good; its lock makes this
    // process its only writer (a second `atflow run` / sweep task is refused, naming this one)
    folder = openRunFolder(runDir, storedSpec(run), options.resume === true);
    const store = new CheckpointStore(folder);
    const startWall = Date.now();
    const state = restoreRunState(store, parts);
    // attack → train in this thread, or data-parallel over worker threads (ATFLOW_WORKERS, wasm)
    training = await startRunTraining({ backend: backend.name, model, trainer: parts.trainer, trainerOptions: parts.trainerOptions, replica: parts.replica, te: parts.te, optimizer, lr: parts.lr, seed: spec.seed, ...(state.checkpointWorkers !== undefined ? { resumedWith: state.checkpointWorkers } : {}) });
    // BatchNorm's per-share statistics and the merged gradient's float order depend on the worker count:
    // a resume must use the same one to continue the run identically (the automatic count keeps it;
    // only an explicit, different ATFLOW_WORKERS gets here)
    const ckptWorkers = state.checkpointWorkers ?? training.workers;
    if (ckptWorkers !== training.workers) {
      throw new AtflowError('RESUME', `${runDir}: the run was trained with ${ckptWorkers} data-parallel worker(s) and would resume with ${training.workers} (ATFLOW_WORKERS); set ATFLOW_WORKERS=${ckptWorkers} to resume it identically`, { runDir });
    }
    return { ...state, runId: run.runId, runDir, spec, parts, training, store, evaluator, markCorrupted: corruptionMarker(parts), startWall };
  } catch (e) {
    await releaseRun(training, null, model, optimizer, true);
    folder?.unlock();
    throw e;
  }
}
