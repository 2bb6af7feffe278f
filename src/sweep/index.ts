/** Sweeps: a base config × axes, materialised as configs + manifest, run locally or as an array job. */
export * from './sweep-spec';
export * from './expand';
export * from './manifest';
export * from './gpus';
export * from './runner';
export * from './local-executor';
export * from './array-executor';
export * from './worker';
export * from './run-sweep';
export * from './task-status';
export * from './runs-finished';
export * from './submit-slurm';
