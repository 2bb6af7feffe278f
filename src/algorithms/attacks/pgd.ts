import type * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../../core/errors';
import type { Model } from '../../core/model';
import { pgdL2 } from './pgd-l2';
import { pgdLinf } from './pgd-linf';
import type { NamedPart } from '../../core/named-part';
import { attackSettingsSchema, type AttackSettings } from './settings';
import type { Attack, AttackOptions } from './types';

/**
 * PGD by norm: 'linf' (default; uniform start unless options.randomStart says otherwise) or 'l2'
 * (0.001·N(0, I) start by default). The registry's 'pgd'.
 */
export function pgd(model: Model, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, options: AttackOptions): tf.Tensor4D {
  const norm = options.norm ?? 'linf';
  if (norm === 'linf') return pgdLinf(model, x, y, seed, options);
  if (norm === 'l2') return pgdL2(model, x, y, seed, options);
  throw new AtflowError('ARGUMENT', `pgd: options.norm must be 'linf' or 'l2', got '${String(norm)}'`, { value: norm });
}

/** The registry's 'pgd': its options are the AttackSettings, which the trainer passes with every call. */
export const pgdEntry: NamedPart<Attack<AttackOptions>, AttackSettings> = { name: 'pgd', options: attackSettingsSchema, create: () => pgd };
