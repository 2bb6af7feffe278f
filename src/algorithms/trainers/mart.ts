import { martLoss } from '../objectives/mart';
import { addTePenalty, withTePenalty } from '../objectives/te-penalty';
import { checkBeta, innerMax, innerMaxOf } from './inner-max';
import type { OperatorLookup, Trainer, TrainerOptions } from './types';
import type { NamedPart } from '../../core/named-part';
import { ceObjectiveEntry } from '../objectives/by-name';
import { betaTrainerOptionsSchema } from './options';

/** MART's β in the reference code (YisenWang/MART train_wideresnet.py). */
export const MART_DEFAULT_BETA = 6;

/**
 * MART (Wang et al. 2020; not in the authors' code, docs/algorithms.md §5.4):
 *  attack (eval mode, start x + 0.001·N(0, I) as mart.py): maximise CE_mean(f(x′), y) [+ TE on f(x′)];
 *  loss: train-mode forwards on x then x′, L = mean_i [BCE_i + β·KL_i·(1 − p_y(x_i))] [+ TE on f(x′):
 *  MART's main term is adversarial, so TE penalises f(x′) as in PGD-AT+TE; `te.penaltyOn: 'natural'` moves it].
 */
export function martTrainer(options: TrainerOptions = {}, lookup?: OperatorLookup): Trainer {
  const beta = checkBeta('mart', options.beta ?? MART_DEFAULT_BETA);
  const penaltyOn = options.te?.penaltyOn ?? 'adversarial';
  const inner = innerMaxOf('mart', options, 'normal', ceObjectiveEntry, lookup);
  return {
    name: 'mart',
    attackSettings: inner.settings,
    attack: (input) => {
      const objective = inner.objective({ logitsNat: input.logitsNatEval });
      return innerMax(inner, input, input.te ? withTePenalty(objective, { weight: input.te.weight, targets: input.te.target }) : objective);
    },
    loss: ({ model, x, xAdv, y, te }) => {
      const logitsNat = model.apply(x, 'train');
      const logitsAdv = model.apply(xAdv, 'train');
      const loss = martLoss(logitsNat, logitsAdv, y, beta);
      const { loss: total, perExample } = addTePenalty(loss, penaltyOn === 'natural' ? logitsNat : logitsAdv, te);
      return { loss: total, logitsNat, logitsAdv, tePenalty: perExample };
    },
  };
}

/** MART as the registry's 'mart' (config/builtins.ts registers it; its inner attack and objective resolve through the lookup). */
export const martEntry: NamedPart<Trainer, TrainerOptions, OperatorLookup> = {
  name: 'mart',
  options: betaTrainerOptionsSchema,
  create: martTrainer,
};
