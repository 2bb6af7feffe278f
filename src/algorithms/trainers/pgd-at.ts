import { crossEntropy } from '../objectives/ce';
import { addTePenalty, withTePenalty } from '../objectives/te-penalty';
import { innerMax, innerMaxOf } from './inner-max';
import type { OperatorLookup, Trainer, TrainerOptions } from './types';
import type { NamedPart } from '../../core/named-part';
import { ceObjectiveEntry } from '../objectives/by-name';
import { trainerOptionsSchema } from './options';

/**
 * PGD-AT (Madry et al.; docs/algorithms.md §5.1, with TE §5.3):
 *  attack (eval mode): maximise CE_mean(f(x′), y) [+ w·mean_{B×K}(softmax(f(x′)) − p̂)²];
 *  loss: one train-mode forward on x′ only, L = CE_mean(f(x′), y) [+ the same TE term on f(x′)].
 * Random start: 'uniform-clamped' as train.py (the random-label runs); with TE 'uniform' (unclamped) as
 * loss.py PGD_TE. `attack.randomStart` overrides either. `attack.name` swaps the inner attack (by
 * registry name: 'apgd-ce', 'fgsm' for FGSM-RS, ...) and `attack.objective` what it maximises.
 */
export function pgdAtTrainer(options: TrainerOptions = {}, lookup?: OperatorLookup): Trainer {
  const inner = innerMaxOf('pgd-at', options, options.te ? 'uniform' : 'uniform-clamped', ceObjectiveEntry, lookup);
  return {
    name: 'pgd-at',
    attackSettings: inner.settings,
    attack: (input) => {
      const objective = inner.objective({ logitsNat: input.logitsNatEval });
      return innerMax(inner, input, input.te ? withTePenalty(objective, { weight: input.te.weight, targets: input.te.target }) : objective);
    },
    loss: ({ model, xAdv, y, te }) => {
      const logitsAdv = model.apply(xAdv, 'train');
      const { loss, perExample } = addTePenalty(crossEntropy(logitsAdv, y), logitsAdv, te);
      return { loss, logitsNat: null, logitsAdv, tePenalty: perExample };
    },
  };
}

/** PGD-AT as the registry's 'pgd-at' (config/builtins.ts registers it; its inner attack and objective resolve through the lookup). */
export const pgdAtEntry: NamedPart<Trainer, TrainerOptions, OperatorLookup> = {
  name: 'pgd-at',
  options: trainerOptionsSchema,
  create: pgdAtTrainer,
};
