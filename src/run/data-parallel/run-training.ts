import { pipe, type OperatorFunction } from 'rxjs';
import type { AugmentedBatch, LabeledBatch, TrainedBatch } from '../../core/batch';
import type { Model } from '../../core/model';
import { attack } from '../../operators/attack';
import type { Sgd } from '../../algorithms/optim/sgd';
import type { LrSchedule } from '../../algorithms/schedules/lr-schedule';
import { train } from '../../operators/train';
import type { TemporalEnsemble } from '../../algorithms/trainers/te';
import type { Trainer, TrainerOptions } from '../../algorithms/trainers/types';
import type { BackendName } from '../../backend/select';
import { dataParallelWorkers } from './choose-workers';
import { attackAndTrainParallel } from './operator';
import { DataParallelPool } from './pool';
import type { ReplicaRecipe } from '../../config/replica';
import { AtflowError } from '../../core/errors';

export interface RunTrainingOptions {
  /** The backend the run initialised. */
  readonly backend: BackendName;
  readonly model: Model;
  readonly trainer: Trainer;
  /** The options `trainer` was built with (workers rebuild it by `trainer.name` with these). */
  readonly trainerOptions: TrainerOptions;
  readonly te: TemporalEnsemble | null;
  readonly optimizer: Sgd;
  readonly lr: LrSchedule;
  readonly seed: number;
  /** Where ATFLOW_WORKERS is read; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** The worker count of the checkpoint a run resumes from: the automatic choice keeps it. */
  readonly resumedWith?: number;
  /**
   * How workers rebuild the model and trainer (buildRun's `parts.replica`: the run's registry and plugins); default the built-in tables.
   */
  readonly replica?: ReplicaRecipe;
}

/** The training half of a run's batch chain, single-thread or data-parallel. */
export interface RunTraining {
  /** `attack` → `train`, or the data-parallel operator; reusable across epochs. */
  readonly operator: OperatorFunction<LabeledBatch | AugmentedBatch, TrainedBatch>;
  readonly workers: number;
  readonly reason: string;
  /** The worker choice's warning (more workers than cores), for the run's warning events. */
  readonly warning?: string;
  /** Ends the workers (no-op for the single-thread chain). Call it in the run's `finally`. */
  close(): Promise<void>;
}

/**
 * The runner's hook: ATFLOW_WORKERS (see dataParallelWorkers) decides between the single-thread
 * `attack` → `train` operators and a DataParallelPool. Both produce the same TrainedBatch records.
 */
export async function startRunTraining(o: RunTrainingOptions): Promise<RunTraining> {
  const choice = dataParallelWorkers(o.backend, o.env ?? process.env, undefined, o.resumedWith);
  if (choice.workers <= 1) {
    return {
      operator: pipe(
        attack({ model: o.model, trainer: o.trainer, te: o.te, seed: o.seed }),
        train({ model: o.model, trainer: o.trainer, optimizer: o.optimizer, lr: o.lr }),
      ),
      workers: 1,
      reason: choice.reason,
      ...(choice.warning ? { warning: choice.warning } : {}),
      close: async () => undefined,
    };
  }
  if (o.replica?.unportable) {
    throw new AtflowError(
      'CONFIG',
      `${choice.reason}: ${o.replica.unportable}; data-parallel workers ` +
        `rebuild the run from modules: register it with ` +
        `registry.use(modulePath, exportName) (or a config's "plugins" / ` +
        `--plugin), or set ATFLOW_WORKERS=1`,
      {
        field: 'ATFLOW_WORKERS',
        workers: choice.workers,
      },
    );
  }
  const pool = await DataParallelPool.create({
    workers: choice.workers,
    model: o.model,
    trainer: o.trainer.name,
    trainerOptions: o.trainerOptions,
    backend: o.backend === 'cpu' ? 'cpu' : 'wasm',
    ...(o.replica ? { replica: o.replica } : {}),
  });
  return {
    operator: attackAndTrainParallel({ pool, model: o.model, optimizer: o.optimizer, lr: o.lr, te: o.te, seed: o.seed }),
    workers: choice.workers,
    reason: choice.reason,
    ...(choice.warning ? { warning: choice.warning } : {}),
    close: async () => {
      await pool.close();
    },
  };
}
