import { AtflowError, unknownName } from '../core/errors';
import { deriveSeed, Rng } from '../core/rng';
import type { RunEventOf } from '../core/run-event';

/**
 * Label noise for the training split (docs/algorithms.md §2.1). With probability `rate`, example i's label is
 * replaced by:
 * - `symmetric`: a class drawn uniformly from all K classes, the true one included, exactly as the
 *   authors' `label_symmetric` (transition matrix (r/K)·11ᵀ + (1−r)·I; expected changed fraction
 *   r·(K−1)/K; r = 1 is Zhang et al.'s completely random labels);
 * - `symmetric-exclusive`: a class drawn uniformly from the K−1 other classes (changed fraction r);
 * - `pair`: class (k+1) mod K (changed fraction r).
 * Unlike the authors' unseeded RandomState, example i's draw comes from its own generator
 * Rng(deriveSeed(seed, 'labels', key)), keyed by the example's identity in the source (its `sourceIndex`:
 * the position in the official file's train split), not by its position in atflow's train split. So
 * the assignment of an image is the same in every epoch, across resumes, whatever the batch order,
 * and whatever `valSize`, `trainSize` or a seeded subset left in the split.
 */
export type LabelNoiseKind = 'none' | 'symmetric' | 'symmetric-exclusive' | 'pair';
export const LABEL_NOISE_KINDS: readonly LabelNoiseKind[] = ['none', 'symmetric', 'symmetric-exclusive', 'pair'];

export interface LabelAssignment {
  readonly kind: LabelNoiseKind;
  readonly rate: number;
  readonly seed: number;
  readonly numClasses: number;
  /** The dataset's labels, by training-split index. */
  readonly labelsTrue: Int32Array;
  /** The labels trained on, by training-split index. */
  readonly labelsUsed: Int32Array;
  /** Realised fraction of examples whose used label differs from the true one (the authors' "actual noise rate"). */
  readonly noiseRate: number;
}

/** The noisy label of one example: a pure function of (kind, rate, seed, key, true label, K); key = the example's sourceIndex. */
export function noisyLabel(kind: LabelNoiseKind, rate: number, seed: number, index: number, label: number, numClasses: number): number {
  if (kind === 'none' || rate === 0) return label;
  const rng = new Rng(deriveSeed(seed, 'labels', index));
  if (!(rng.uniform() < rate)) return label;
  switch (kind) {
    case 'symmetric':
      return rng.int(numClasses);
    case 'symmetric-exclusive':
      return (label + 1 + rng.int(numClasses - 1)) % numClasses;
    case 'pair':
      return (label + 1) % numClasses;
  }
}

/**
 * Assigns the used label of every training example. Labels are indexed like the training split;
 * `keys[i]` is example i's identity in the source (SplitStorage.sourceIndex), which seeds its draw.
 * Without `keys` the position i is the key (for a split that is the whole source file).
 */
export function assignLabels(
  kind: LabelNoiseKind,
  rate: number,
  seed: number,
  labelsTrue: Int32Array,
  numClasses: number,
  keys?: Int32Array,
): LabelAssignment {
  if (!LABEL_NOISE_KINDS.includes(kind)) throw unknownName('label noise kind', String(kind), LABEL_NOISE_KINDS);
  if (!(rate >= 0 && rate <= 1))
    throw new AtflowError('CONFIG', `label noise rate = ${rate}: expected a number in [0, 1]`, { field: 'rate', value: rate });
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    throw new AtflowError('ARGUMENT', `label noise: numClasses = ${numClasses}: expected an integer >= 2`);
  }
  if (!Number.isInteger(seed)) throw new AtflowError('CONFIG', `label noise seed = ${seed}: expected an integer`, { field: 'seed' });
  const n = labelsTrue.length;
  if (keys && keys.length !== n) throw new AtflowError('ARGUMENT', `label noise: ${keys.length} keys for ${n} labels`);
  const labelsUsed = new Int32Array(n);
  let changed = 0;
  for (let i = 0; i < n; i++) {
    const y = labelsTrue[i];
    if (!(y >= 0 && y < numClasses)) {
      throw new AtflowError('DATA_VALUE', `label noise: true label ${y} of example ${i} is outside 0..${numClasses - 1}`, {
        example: i,
        label: y,
      });
    }
    labelsUsed[i] = noisyLabel(kind, rate, seed, keys ? keys[i] : i, y, numClasses);
    if (labelsUsed[i] !== y) changed++;
  }
  return { kind, rate, seed, numClasses, labelsTrue: labelsTrue.slice(), labelsUsed, noiseRate: n === 0 ? 0 : changed / n };
}

/** Expected fraction of changed labels: r·(K−1)/K for symmetric, r for the others. */
export function expectedNoiseRate(kind: LabelNoiseKind, rate: number, numClasses: number): number {
  if (kind === 'none') return 0;
  return kind === 'symmetric' ? (rate * (numClasses - 1)) / numClasses : rate;
}

/** The columns of labels.parquet: {example, label_true, label_used} (example = training-split index). */
export function labelColumns(a: LabelAssignment): { example: Int32Array; label_true: Int32Array; label_used: Int32Array } {
  const example = new Int32Array(a.labelsTrue.length);
  for (let i = 0; i < example.length; i++) example[i] = i;
  return { example, label_true: a.labelsTrue, label_used: a.labelsUsed };
}

/** Empirical transition matrix, row-normalised (row = true class, column = used class), K·K row-major (the authors print it). */
export function empiricalTransition(a: Pick<LabelAssignment, 'labelsTrue' | 'labelsUsed' | 'numClasses'>): Float64Array {
  const k = a.numClasses;
  const m = new Float64Array(k * k);
  for (let i = 0; i < a.labelsTrue.length; i++) m[a.labelsTrue[i] * k + a.labelsUsed[i]]++;
  for (let r = 0; r < k; r++) {
    let s = 0;
    for (let c = 0; c < k; c++) s += m[r * k + c];
    if (s > 0) for (let c = 0; c < k; c++) m[r * k + c] /= s;
  }
  return m;
}

/** The run's 'labels' event (the sink writes it to labels.parquet). */
export function labelsEvent(a: LabelAssignment): RunEventOf<'labels'> {
  const c = labelColumns(a);
  return { type: 'labels', ...c, noiseRate: a.noiseRate };
}
