import { z } from 'zod';
import { AtflowError } from '../../core/errors';
import type { NamedPart } from '../../core/named-part';
import { teWeight, validateTeRamp, type TeRampSpec } from '../schedules/te-weight';

export interface TeOptions {
  /** EMA momentum η (`--te-alpha`, 0.9). */
  readonly momentum?: number;
  /** First epoch of EMA updates and of the penalty (`--start-es`, 90). */
  readonly start?: number;
  /** Epoch the weight reaches its maximum (`--end-es`, 150). */
  readonly end?: number;
  /** Maximum weight (`--reg-weight`, 300). */
  readonly weight?: number;
  /**
   * Which outputs the TRADES+TE *training* penalty uses: 'natural' f(x) (the authors' loss.py, default)
   * or 'adversarial' f(x′) (the alternative [REPRO] prefers). PGD-AT+TE always uses f(x′).
   */
  readonly penaltyOn?: 'natural' | 'adversarial';
}

/**
 * TE's own settings (config `trainer.te`, beside `name` and the trainers' `penaltyOn`), with the authors'
 * defaults (docs/algorithms.md §5.3). η < 1: with η = 1 the ensemble never moves off its zero start.
 */
export const teOptionsSchema = z
  .object({
    momentum: z
      .number()
      .min(0)
      .lt(1, 'must be in [0, 1): with momentum 1 the ensemble never moves off its zero start, so TE would never see a prediction')
      .default(0.9),
    start: z.number().int().min(1).default(90),
    end: z.number().int().min(1).default(150),
    weight: z.number().min(0).default(300),
  })
  .strict();

/** The authors' defaults (docs/algorithms.md §5.3): teOptionsSchema's. */
export const TE_DEFAULTS: Required<Omit<TeOptions, 'penaltyOn'>> = teOptionsSchema.parse({});

/** TE's soft targets for one batch, as the attack and the training loss both see them. */
export interface TeBatchTarget {
  /** w(t) for this epoch. */
  readonly weight: number;
  /** Row-normalised p̂ for the batch, [B·K] row-major. */
  readonly target: Float32Array;
}

export interface TeState {
  readonly numExamples: number;
  readonly numClasses: number;
  readonly momentum: number;
  /** The raw EMA buffer p, [N·K] row-major. */
  readonly buffer: Float32Array;
}

/**
 * Temporal ensembling for AT (docs/algorithms.md §5.3), one piece that composes onto any trainer.
 * Holds the per-example EMA buffer p (N×K float32, zero-initialised). From the start epoch on, each
 * visited row is updated once per visit, before the attack, from the eval-mode softmax q of the
 * augmented clean batch:  p ← η·p + (1 − η)·q,  p̂ = p / Σ_k p  (row normalisation = bias correction:
 * the first update gives p̂ = q). Plain JS arrays: the buffer never lives on the device.
 */
export class TemporalEnsemble {
  readonly momentum: number;
  readonly ramp: TeRampSpec;
  readonly penaltyOn: 'natural' | 'adversarial';
  readonly buffer: Float32Array;

  constructor(
    readonly numExamples: number,
    readonly numClasses: number,
    options: TeOptions = {},
  ) {
    this.momentum = options.momentum ?? TE_DEFAULTS.momentum;
    this.penaltyOn = options.penaltyOn ?? 'natural';
    this.ramp = {
      weight: options.weight ?? TE_DEFAULTS.weight,
      start: options.start ?? TE_DEFAULTS.start,
      end: options.end ?? TE_DEFAULTS.end,
    };
    if (!(this.momentum >= 0 && this.momentum < 1)) throw new AtflowError('CONFIG', `te.momentum must be in [0, 1), got ${this.momentum}`);
    validateTeRamp(this.ramp);
    if (!Number.isInteger(numExamples) || numExamples < 1)
      throw new AtflowError('ARGUMENT', `te: numExamples must be an integer ≥ 1, got ${numExamples}`);
    if (!Number.isInteger(numClasses) || numClasses < 2)
      throw new AtflowError('ARGUMENT', `te: numClasses must be an integer ≥ 2, got ${numClasses}`);
    this.buffer = new Float32Array(numExamples * numClasses);
  }

  /** EMA updates and the penalty run from the start epoch on (1-based). */
  isActive(epoch: number): boolean {
    return epoch >= this.ramp.start;
  }

  /** w(t) for the 1-based epoch. */
  weight(epoch: number): number {
    return teWeight(epoch, this.ramp);
  }

  /**
   * Updates the rows of `indices` with the eval-mode softmax `probs` ([B·K] row-major) and returns p̂ for
   * those rows. Repeated indices within one batch are updated in order (each visit counts).
   */
  update(indices: Int32Array, probs: Float32Array): Float32Array {
    const K = this.numClasses;
    if (probs.length !== indices.length * K) {
      throw new AtflowError('SHAPE', `te.update: probs has ${probs.length} values, expected batch ${indices.length} × ${K} classes`);
    }
    const eta = this.momentum;
    for (let i = 0; i < indices.length; i++) {
      const row = this.rowOffset(indices[i]);
      for (let k = 0; k < K; k++) this.buffer[row + k] = eta * this.buffer[row + k] + (1 - eta) * probs[i * K + k];
    }
    return this.target(indices);
  }

  /** p̂ for the rows of `indices` ([B·K]); a row never updated is all zeros (0/0 avoided). */
  target(indices: Int32Array): Float32Array {
    const K = this.numClasses;
    const out = new Float32Array(indices.length * K);
    for (let i = 0; i < indices.length; i++) {
      const row = this.rowOffset(indices[i]);
      let s = 0;
      for (let k = 0; k < K; k++) s += this.buffer[row + k];
      if (s > 0) for (let k = 0; k < K; k++) out[i * K + k] = this.buffer[row + k] / s;
    }
    return out;
  }

  /** What goes in a checkpoint: TE state must survive a resume (the authors' code loses it). */
  exportState(): TeState {
    return { numExamples: this.numExamples, numClasses: this.numClasses, momentum: this.momentum, buffer: this.buffer.slice() };
  }

  importState(state: TeState): void {
    if (state.numExamples !== this.numExamples || state.numClasses !== this.numClasses || state.buffer.length !== this.buffer.length) {
      throw new AtflowError(
        'RESUME',
        `te state is ${state.numExamples}×${state.numClasses}, this run needs ${this.numExamples}×${this.numClasses}`,
      );
    }
    this.buffer.set(state.buffer);
  }

  private rowOffset(index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= this.numExamples) {
      throw new AtflowError('DATA_VALUE', `te: example index ${index} is outside [0, ${this.numExamples})`, { index });
    }
    return index * this.numClasses;
  }
}

/** Entropy −Σ p̂ log p̂ of each row of a [B·K] target (0·log 0 = 0). */
export function rowEntropy(target: Float32Array, numClasses: number): Float32Array {
  const B = target.length / numClasses;
  const out = new Float32Array(B);
  for (let i = 0; i < B; i++) {
    let h = 0;
    for (let k = 0; k < numClasses; k++) {
      const p = target[i * numClasses + k];
      if (p > 0) h -= p * Math.log(p);
    }
    out[i] = h;
  }
  return out;
}

/** What the registry's 'ensemble' factories get: TE's settings and the run's training-set shape. */
export interface EnsembleOptions extends TeOptions {
  readonly numExamples: number;
  readonly numClasses: number;
}

/** TemporalEnsemble as the registry's 'temporal-ensemble' (kind 'ensemble'), built when `trainer.te` is set. */
export const temporalEnsembleEntry: NamedPart<TemporalEnsemble, EnsembleOptions> = {
  name: 'temporal-ensemble',
  options: teOptionsSchema,
  create: ({ numExamples, numClasses, ...te }) => new TemporalEnsemble(numExamples, numClasses, te),
};
