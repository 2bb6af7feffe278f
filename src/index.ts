/** atflow's public API. */
export * from './core/rng';
export * from './core/errors';
export * from './core/model';
export * from './core/batch';
export * from './core/records';
export * from './backend/select';
export * from './core/run-event';
export * from './core/eval-protocol';
export * from './config/spec';
export * from './config/registry';
export * from './config/builtins';
/** Checking a config's choices against the entries they name (each entry's options schema). */
export { configureRun, configureOptions, type ConfiguredRun, type OptionsPlace } from './config/kinds';
export type { NamedPart } from './core/named-part';
/** zod, for a plugin's options schema (`registry.register(kind, name, factory, { options: z.object({...}) })`). */
export { z } from 'zod';
export * from './run/default-registry';
export * from './run/execute-run';
/** The epoch-level operators a run is composed of: runEpochs(…, pipe(trainEpoch(run), evaluateEvery(run), …)). */
export * from './run/epoch';
/** Sweeps: `sweep.runSweep(file, {...})`, executors, manifests. */
export * as sweep from './sweep';
export * from './data';
export * from './models';
export * from './operators/load-batches';
export * from './operators/randomize-labels';
export * from './operators/augment';
export * from './operators/attack';
export * from './operators/train';
export {
  attackHalf,
  gradientHalf,
  applyUpdate,
  stepRecords,
  teUpdate,
  type AttackHalf,
  type AttackHalfInput,
  type GradientHalf,
  type UpdateInput,
  type StepRecordsInput,
} from './algorithms/train-step';
export * from './evaluation/evaluate';
/** The threat model every evaluation attacks in: threatModel({ norm, eps, … }) builds and checks it once. */
export * from './evaluation/threat-model';
export * from './operators/detect-events';
export * as attacks from './algorithms/attacks';
export * as objectives from './algorithms/objectives';
export * from './algorithms/trainers';
export * from './algorithms/optim/sgd';
export * from './algorithms/schedules';
export * from './analysis/best-epoch';
/**
 * The run folder's Parquet logs: `executeRun(run, { …, sinks: () => [parquetRunSink()] })`; ParquetRunWriter / parquetSink in a pipeline
 * built by hand.
 */
export { parquetRunSink, runSinkNames, sinksByName, checkSinkNames, BUILTIN_SINKS, type SinkOptions } from './logs/sinks';
/**
 * A sink as an RxJS operator: `events$.pipe(sinkOperator(() => mySink))` (how parquetSink, arrowSink, summarySink, progressSink are made).
 */
export { sinkOperator, type RunSink, type RunSinkWithResult } from './core/run-sink';
/** summary.json as a sink, and report.html from finished run folders (what `atflow run` adds to a run). */
export { SummaryWriter } from './logs/summary';
export { writeReport } from './report/report';
export { ParquetRunWriter, parquetSink, type ParquetSinkOptions, type ParquetSinkResult } from './logs/parquet-sink';
