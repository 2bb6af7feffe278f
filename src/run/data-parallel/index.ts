export { DataParallelPool, defaultWorkerCount, type DataParallelPoolOptions, type PoolStepInput, type PoolStepOutput } from './pool';
export { trainStepParallel, type ParallelStepResult } from './train-step-parallel';
export { attackAndTrainParallel, type AttackAndTrainParallelOptions } from './operator';
export { splitShares, type Share } from './shares';
export { coresPerProcess, dataParallelWorkers, type DataParallelChoice } from './choose-workers';
export type { ShareResult } from './protocol';
export type { ModuleExport, ReplicaRecipe, ReplicaSpec } from '../../config/replica';
export { startRunTraining, type RunTraining, type RunTrainingOptions } from './run-training';
