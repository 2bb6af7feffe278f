import type * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../../core/errors';

/** Shape checks shared by the objectives: they run inside gradients, so fail early with names. */
export function checkLogits(where: string, name: string, logits: tf.Tensor): void {
  if (logits.rank !== 2) {
    throw new AtflowError('SHAPE', `${where}: ${name} must be [B, K] logits, got shape [${logits.shape.join(', ')}]`, {
      where,
      name,
      shape: logits.shape,
    });
  }
}

export function checkLabels(where: string, logits: tf.Tensor, labels: tf.Tensor): void {
  checkLogits(where, 'logits', logits);
  if (labels.rank !== 1 || labels.shape[0] !== logits.shape[0]) {
    throw new AtflowError('SHAPE', `${where}: labels must be [B] = [${logits.shape[0]}], got shape [${labels.shape.join(', ')}]`, {
      where,
      shape: labels.shape,
    });
  }
  if (labels.dtype !== 'int32') {
    throw new AtflowError('ARGUMENT', `${where}: labels must be an int32 tensor (class indices), got dtype '${labels.dtype}'`, {
      where,
      dtype: labels.dtype,
    });
  }
}

export function checkSameShape(where: string, aName: string, a: tf.Tensor, bName: string, b: tf.Tensor): void {
  if (a.rank !== b.rank || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new AtflowError(
      'SHAPE',
      `${where}: ${aName} [${a.shape.join(', ')}] and ${bName} [${b.shape.join(', ')}] must have the same shape`,
      { where },
    );
  }
}
