import { ceObjective, crossEntropy } from '../objectives/ce';
import { addTePenalty, withTePenalty } from '../objectives/te-penalty';
import { attackSettings, innerMax } from './inner-max';
import type { Trainer, TrainerOptions } from './types';

/**
 * PGD-AT (Madry et al.; docs/algorithms.md §5.1, with TE §5.3):
 *  attack (eval mode): maximise CE_mean(f(x′), y) [+ w·mean_{B×K}(softmax(f(x′)) − p̂)²];
 *  loss: one train-mode forward on x′ only, L = CE_mean(f(x′), y) [+ the same TE term on f(x′)].
 * Random start: 'uniform-clamped' as train.py (the random-label runs); with TE 'uniform' (unclamped) as
 * loss.py PGD_TE. `attack.randomStart` overrides either.
 */
export function pgdAtTrainer(options: TrainerOptions = {}): Trainer {
  const settings = attackSettings('pgd-at', options, options.te ? 'uniform' : 'uniform-clamped');
  return {
    name: 'pgd-at',
    attackSettings: settings,
    attack: (input) => {
      const ce = ceObjective();
      return innerMax(settings, input, input.te ? withTePenalty(ce, { weight: input.te.weight, targets: input.te.target }) : ce);
    },
    loss: ({ model, xAdv, y, te }) => {
      const logitsAdv = model.apply(xAdv, 'train');
      const { loss, perExample } = addTePenalty(crossEntropy(logitsAdv, y), logitsAdv, te);
      return { loss, logitsNat: null, logitsAdv, tePenalty: perExample };
    },
  };
}
