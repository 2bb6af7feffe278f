import { map, type OperatorFunction } from 'rxjs';
import type { LabeledBatch, LoadedBatch } from '../core/batch';
import { AtflowError } from '../core/errors';
import type { LabelAssignment } from '../data/label-noise';

/**
 * Sets each training batch's labelsUsed from a fixed assignment (assignLabels), looked up by example
 * index, so the noisy label of an example never depends on the epoch or the batch it lands in.
 * Batches of other splits (test, val) keep their true labels. `null`: no noise (labels used = true).
 * The x tensor passes through untouched (same owner rules).
 */
export function randomizeLabels(assignment: LabelAssignment | null): OperatorFunction<LoadedBatch, LabeledBatch> {
  return map((batch) => labelBatch(batch, assignment));
}

export function labelBatch(batch: LoadedBatch, assignment: LabelAssignment | null): LabeledBatch {
  if (batch.split !== 'train' || assignment === null) return { ...batch, stage: 'labeled', labelsUsed: batch.labelsTrue.slice() };
  const n = batch.indices.length;
  const labelsUsed = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const idx = batch.indices[i];
    if (!(idx >= 0 && idx < assignment.labelsUsed.length) || assignment.labelsTrue[idx] !== batch.labelsTrue[i]) {
      throw new AtflowError(
        'ARGUMENT',
        `randomizeLabels: example ${idx} (epoch ${batch.epoch}, step ${batch.step}) does not match the label assignment ` +
          `(${assignment.labelsUsed.length} examples): was the assignment made for another training split?`,
        { example: idx },
      );
    }
    labelsUsed[i] = assignment.labelsUsed[idx];
  }
  return { ...batch, stage: 'labeled', labelsUsed };
}
