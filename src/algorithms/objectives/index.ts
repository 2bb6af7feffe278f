/** Losses and attack objectives (docs/algorithms.md §1, §4, §5). */
export { crossEntropy, crossEntropyPerExample, ceObjective } from './ce';
export {
  tradesKlPerExample,
  tradesKlSum,
  tradesKlBatchMean,
  tradesLoss,
  tradesKlObjective,
  type TradesKlObjectiveOptions,
} from './trades-kl';
export { tePenalty, tePenaltyPerExample, withTePenalty, type TePenaltyTerm } from './te-penalty';
export { martLoss, martLossPerExample } from './mart';
export { cwMargin, cwMarginPerExample, cwObjective } from './cw-margin';
export { dlrLoss, dlrLossPerExample, dlrObjective, checkDlrClasses } from './dlr';
export { dlrTargetedLossPerExample, checkTargetedDlrClasses } from './dlr-targeted';
export {
  ceObjectiveEntry,
  tradesKlObjectiveEntry,
  cwMarginObjectiveEntry,
  dlrObjectiveEntry,
  type ObjectiveFactory,
  type ObjectiveOptions,
} from './by-name';
