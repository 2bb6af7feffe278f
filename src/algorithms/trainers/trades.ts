import { addTePenalty, withTePenalty } from '../objectives/te-penalty';
import { tradesLoss } from '../objectives/trades-kl';
import { checkBeta, innerMax, innerMaxOf } from './inner-max';
import type { OperatorLookup, Trainer, TrainerOptions } from './types';
import type { NamedPart } from '../../core/named-part';
import { tradesKlObjectiveEntry } from '../objectives/by-name';
import { betaTrainerOptionsSchema } from './options';

/** The authors' β (train.py and train_te.py default, docs/algorithms.md §5.2). */
export const TRADES_DEFAULT_BETA = 6;

/**
 * TRADES (Zhang et al. 2019; docs/algorithms.md §4.3, §5.2, with TE §5.3):
 *  attack (eval mode, start x + 0.001·N(0, I) unclamped): maximise KL_sum(p(x) ‖ p(x′)) with p(x) from
 *    the eval-mode logits computed before the attack; with TE (β/B)·KL_sum + w·mean_{B×K}(p(x′) − p̂)²;
 *  loss: two separate train-mode forwards, natural then adversarial (BN statistics per pass), target not
 *    detached: L = CE_mean(f(x), y) + β·KL_sum/B [+ w·mean_{B×K}(softmax(f(x)) − p̂)²: on the NATURAL
 *    outputs as loss.py; te.penaltyOn 'adversarial' puts it on f(x′)].
 */
export function tradesTrainer(options: TrainerOptions = {}, lookup?: OperatorLookup): Trainer {
  const beta = checkBeta('trades', options.beta ?? TRADES_DEFAULT_BETA);
  const penaltyOn = options.te?.penaltyOn ?? 'natural';
  const inner = innerMaxOf('trades', options, 'normal', tradesKlObjectiveEntry, lookup);
  return {
    name: 'trades',
    attackSettings: inner.settings,
    attack: (input) => {
      const B = input.x.shape[0];
      const objective = input.te
        ? withTePenalty(inner.objective({ logitsNat: input.logitsNatEval, scale: beta / B }), {
            weight: input.te.weight,
            targets: input.te.target,
          })
        : inner.objective({ logitsNat: input.logitsNatEval });
      return innerMax(inner, input, objective);
    },
    loss: ({ model, x, xAdv, y, te }) => {
      const logitsNat = model.apply(x, 'train');
      const logitsAdv = model.apply(xAdv, 'train');
      const loss = tradesLoss(logitsNat, logitsAdv, y, beta);
      const { loss: total, perExample } = addTePenalty(loss, penaltyOn === 'natural' ? logitsNat : logitsAdv, te);
      return { loss: total, logitsNat, logitsAdv, tePenalty: perExample };
    },
  };
}

/** TRADES as the registry's 'trades' (config/builtins.ts registers it; its inner attack and objective resolve through the lookup). */
export const tradesEntry: NamedPart<Trainer, TrainerOptions, OperatorLookup> = {
  name: 'trades',
  options: betaTrainerOptionsSchema,
  create: tradesTrainer,
};
