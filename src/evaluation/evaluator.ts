import type { Observable } from 'rxjs';
import type { LabeledBatch } from '../core/batch';
import type { Model } from '../core/model';
import type { ExampleColumns } from '../core/records';
import { evaluatePass, type EvalSummary } from './evaluate';
import type { ThreatModel } from './threat-model';

/** The per-epoch evaluation: one pass over a split's batches, with per-example rows. */
export interface Evaluator {
  /** Evaluates `batches` (labels as trained on) after `epoch`; `onBatch` sees each batch's rows. */
  pass(batches: Observable<LabeledBatch>, epoch: number, onBatch: (columns: ExampleColumns) => void): Promise<EvalSummary>;
}

/** What the registry's 'evaluator' factories receive. */
export interface EvaluatorOptions {
  readonly model: Model;
  /** The run's threat model (RunParts.threat): the ball and the PGD attack of the per-epoch evaluation. */
  readonly attack: ThreatModel;
  readonly seed: number;
}

/** The name `eval.evaluator` defaults to. */
export const DEFAULT_EVALUATOR = 'pgd';

/** The built-in evaluator ('pgd'): clean and PGD accuracy and loss, eval mode (evaluatePass). */
export function pgdEvaluator(o: EvaluatorOptions): Evaluator {
  return {
    pass: (batches, epoch, onBatch) =>
      evaluatePass(batches, { model: o.model, attack: o.attack, seed: o.seed, epoch }, (b) => onBatch(b.columns)),
  };
}
