import * as tf from '@tensorflow/tfjs';
import { crossEntropy } from '../objectives/ce';
import { addTePenalty } from '../objectives/te-penalty';
import type { OperatorLookup, Trainer, TrainerOptions } from './types';
import type { NamedPart } from '../../core/named-part';
import { trainerOptionsSchema } from './options';

/**
 * Clean (standard) training: no attack (x′ = x), one train-mode forward, L = CE_mean(f(x), y)
 * [+ w·mean_{B×K}(softmax(f(x)) − p̂)² with TE]. The adversarial record columns equal the clean ones.
 */
export function standardTrainer(_options: TrainerOptions = {}): Trainer {
  return {
    name: 'standard',
    attackSettings: null,
    attack: ({ x }) => tf.clone(x),
    loss: ({ model, x, y, te }) => {
      const logits = model.apply(x, 'train');
      const { loss, perExample } = addTePenalty(crossEntropy(logits, y), logits, te);
      return { loss, logitsNat: logits, logitsAdv: logits, tePenalty: perExample };
    },
  };
}

/**
 * Clean training as the registry's 'standard' (config/builtins.ts registers it; its inner attack and objective resolve through the lookup).
 */
export const standardEntry: NamedPart<Trainer, TrainerOptions, OperatorLookup> = {
  name: 'standard',
  options: trainerOptionsSchema,
  create: standardTrainer,
};
