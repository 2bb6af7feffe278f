import type * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../../core/errors';
import type { Model } from '../../core/model';
import { RANDOM_STARTS, type RandomStart } from './types';

/** Argument checks shared by the attacks: bad options fail with the attack's name, the field and the value. */
export function checkAttackInputs(attack: string, model: Model, x: tf.Tensor, y: tf.Tensor): void {
  if (x.rank !== 4) {
    throw new AtflowError('SHAPE', `${attack}: x must be NHWC [B, H, W, C], got shape [${x.shape.join(', ')}]`, { attack, shape: x.shape });
  }
  const [, h, w, c] = x.shape;
  const [mh, mw, mc] = model.inputShape;
  if (h !== mh || w !== mw || c !== mc) {
    throw new AtflowError('SHAPE', `${attack}: x images are [${h}, ${w}, ${c}] but model '${model.name}' expects [${mh}, ${mw}, ${mc}]`, {
      attack,
    });
  }
  if (y.rank !== 1 || y.shape[0] !== x.shape[0]) {
    throw new AtflowError('SHAPE', `${attack}: y must be [B] = [${x.shape[0]}] labels, got shape [${y.shape.join(', ')}]`, {
      attack,
      shape: y.shape,
    });
  }
  if (y.dtype !== 'int32') {
    throw new AtflowError('ARGUMENT', `${attack}: y must be an int32 tensor of class indices, got dtype '${y.dtype}'`, {
      attack,
      dtype: y.dtype,
    });
  }
}

export function checkNonNegative(attack: string, field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new AtflowError('ARGUMENT', `${attack}: options.${field} must be a finite number ≥ 0, got ${String(value)}`, {
      attack,
      field,
      value,
    });
  }
  return value;
}

export function checkInteger(attack: string, field: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new AtflowError('ARGUMENT', `${attack}: options.${field} must be an integer ≥ ${min}, got ${String(value)}`, {
      attack,
      field,
      value,
    });
  }
  return value;
}

export function checkRandomStart(attack: string, value: unknown): RandomStart {
  if (!RANDOM_STARTS.includes(value as RandomStart)) {
    throw new AtflowError('ARGUMENT', `${attack}: options.randomStart must be one of ${RANDOM_STARTS.join(', ')}, got '${String(value)}'`, {
      attack,
      value,
    });
  }
  return value as RandomStart;
}
