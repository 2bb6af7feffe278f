import { AtflowError } from '../core/errors';

/** What the best-epoch rule looks at, per evaluated epoch. */
export interface EpochScore {
  readonly epoch: number;
  /** Robust (PGD) accuracy on the selection split (test, or validation when given). */
  readonly robustAcc: number;
  readonly cleanAcc: number;
}

export const BEST_EPOCH_RULE =
  'highest robust accuracy on the selection split, ties broken by higher clean accuracy; the first such epoch wins';

/**
 * The authors' (and Rice et al.'s) best-checkpoint rule, docs/algorithms.md §6 / §12.7: after each epoch, a higher
 * robust accuracy is a new best; an equal robust accuracy with a higher clean accuracy is a new best.
 */
export class BestEpochTracker {
  private bestScore: EpochScore | null = null;
  private lastScore: EpochScore | null = null;

  /** Records an epoch's score; returns true when it is the new best (save the best checkpoint then). */
  update(score: EpochScore): boolean {
    for (const k of ['robustAcc', 'cleanAcc'] as const) {
      if (!Number.isFinite(score[k])) throw new AtflowError('NON_FINITE', `best epoch: ${k} of epoch ${score.epoch} is ${score[k]}`);
    }
    this.lastScore = score;
    const b = this.bestScore;
    if (!b || score.robustAcc > b.robustAcc || (score.robustAcc === b.robustAcc && score.cleanAcc > b.cleanAcc)) {
      this.bestScore = score;
      return true;
    }
    return false;
  }

  get best(): EpochScore | null {
    return this.bestScore;
  }

  get final(): EpochScore | null {
    return this.lastScore;
  }

  /** Best − final (robust and clean accuracy): the size of robust overfitting. */
  get gap(): { readonly robustAcc: number; readonly cleanAcc: number } | null {
    if (!this.bestScore || !this.lastScore) return null;
    return { robustAcc: this.bestScore.robustAcc - this.lastScore.robustAcc, cleanAcc: this.bestScore.cleanAcc - this.lastScore.cleanAcc };
  }
}

export interface BestFinal {
  readonly best: EpochScore;
  readonly final: EpochScore;
  /** best − final */
  readonly gap: { readonly robustAcc: number; readonly cleanAcc: number };
  readonly rule: string;
}

/** Applies the rule to a whole run's scores, in epoch order. */
export function selectBestEpoch(scores: readonly EpochScore[]): BestFinal {
  if (scores.length === 0) throw new AtflowError('ARGUMENT', 'selectBestEpoch: no evaluated epochs');
  const t = new BestEpochTracker();
  for (const s of [...scores].sort((a, b) => a.epoch - b.epoch)) t.update(s);
  return { best: t.best!, final: t.final!, gap: t.gap!, rule: BEST_EPOCH_RULE };
}

/** Which split the best epoch is picked on (`eval.selectOn`). */
export type SelectOn = 'test' | 'val';

/** The accuracies of an epoch record the rule reads (EpochRecord, plus the validation split's when evaluated). */
export interface ScoredEpoch {
  readonly epoch: number;
  readonly test_robust_acc: number;
  readonly test_clean_acc: number;
  readonly val_robust_acc?: number;
  readonly val_clean_acc?: number;
}

/** An epoch's score on the selection split: validation when asked for and evaluated, else test. */
export function epochScore(e: ScoredEpoch, selectOn: SelectOn): EpochScore {
  const useVal = selectOn === 'val';
  return {
    epoch: e.epoch,
    robustAcc: useVal && Number.isFinite(e.val_robust_acc) ? e.val_robust_acc! : e.test_robust_acc,
    cleanAcc: useVal && Number.isFinite(e.val_clean_acc) ? e.val_clean_acc! : e.test_clean_acc,
  };
}

/**
 * The one best-epoch rule over a run's records (trackBest decides with it, summary.json and the summary
 * table fall back on it): the evaluated epochs (finite test robust accuracy) scored on `selectOn`, then
 * selectBestEpoch. 0 when no epoch was evaluated.
 */
export function bestEpochOf(records: readonly ScoredEpoch[], selectOn: SelectOn = 'test'): number {
  const scores = records.filter((e) => Number.isFinite(e.test_robust_acc)).map((e) => epochScore(e, selectOn));
  return scores.length ? selectBestEpoch(scores).best.epoch : 0;
}
