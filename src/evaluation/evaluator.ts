import type { Observable } from 'rxjs';
import type { LabeledBatch } from '../core/batch';
import type { Model } from '../core/model';
import type { ExampleColumns } from '../core/records';
import { evaluatePass, type EvalAttackSettings, type EvalSummary } from './evaluate';

/** The per-epoch evaluation: one pass over a split's batches, with per-example rows. */
export interface Evaluator {
  /** Evaluates `batches` (labels as trained on) after `epoch`; `onBatch` sees each batch's rows. */
  pass(batches: Observable<LabeledBatch>, epoch: number, onBatch: (columns: ExampleColumns) => void): Promise<EvalSummary>;
}

/** What the registry's 'evaluator' factories receive. */
export interface EvaluatorOptions {
  readonly model: Model;
  /** The run's per-epoch evaluation attack (evalAttackOf). */
  readonly attack: Partial<EvalAttackSettings>;
  readonly seed: number;
}

/** The name `eval.evaluator` defaults to. */
export const DEFAULT_EVALUATOR = 'pgd';

/** The built-in evaluator ('pgd'): clean and PGD accuracy and loss, eval mode (evaluatePass). */
export function pgdEvaluator(o: EvaluatorOptions): Evaluator {
  return {
    pass: (batches, epoch, onBatch) => evaluatePass(batches, { model: o.model, attack: o.attack, seed: o.seed, epoch }, (b) => onBatch(b.columns)),
  };
}
