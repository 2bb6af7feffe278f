/** atflow's public API. */
export * from './core/rng';
export * from './core/errors';
export * from './core/model';
export * from './core/batch';
export * from './core/records';
export * from './backend/select';
export * from './core/run-event';
export * from './core/eval-protocol';
export * from './pipelines/spec';
export * from './pipelines/registry';
export * from './pipelines/default-registry';
export * from './pipelines/execute-run';
/** The epoch-level operators a run is composed of: runEpochs(…, pipe(trainEpoch(run), evaluateEvery(run), …)). */
export * from './pipelines/epoch';
export * from './pipelines/run-config';
/** Sweeps: `sweep.runSweep(file, {...})`, executors, manifests. */
export * as sweep from './pipelines/sweep';
export * from './sources';
export * from './models';
export * from './operators/load-batches';
export * from './operators/randomize-labels';
export * from './operators/augment';
export * from './operators/attack';
export * from './operators/train';
export { attackHalf, gradientHalf, applyUpdate, stepRecords, teUpdate, type AttackHalf, type AttackHalfInput, type GradientHalf, type UpdateInput, type StepRecordsInput } from './operators/train-step';
export * from './operators/evaluate';
export * from './operators/detect-events';
export * as attacks from './operators/attacks';
export * as objectives from './operators/objectives';
export * from './operators/trainers';
export * from './operators/optim/sgd';
export * from './operators/schedules';
export * from './analysis/best-epoch';
/** The run folder's Parquet logs: `executeRun(run, { …, sinks: () => [parquetRunSink()] })`; ParquetRunWriter / parquetSink in a pipeline built by hand. */
export { parquetRunSink, runSinkNames, BUILTIN_SINKS, type SinkOptions } from './pipelines/sinks';
export type { RunSink } from './pipelines/run-sinks';
/** summary.json as a sink, and report.html from finished run folders (what `atflow run` adds to a run). */
export { SummaryWriter } from './sinks/summary';
export { writeReport } from './sinks/report';
export { ParquetRunWriter, parquetSink, type ParquetSinkOptions, type ParquetSinkResult } from './sinks/parquet-sink';
