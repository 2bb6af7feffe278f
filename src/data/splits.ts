import { z } from 'zod';
import type { Split } from '../core/batch';
import { AtflowError } from '../core/errors';
import { deriveSeed, Rng } from '../core/rng';
import type { SplitStorage } from './source';

/** Options every source takes: how its official train/test splits become atflow's train/val/test. */
export interface SplitOptions {
  /**
   * Examples moved from the official train split into a 'val' split, chosen by `seed` (like
   * robust_overfitting's `--val`), so early stopping need not look at the test set. Carved before
   * `trainSize`, so the validation set does not depend on the training subset. Default 0 (no val split).
   */
  readonly valSize?: number;
  /** Keep only this many training examples (after carving val). Default: all. */
  readonly trainSize?: number;
  /** Keep only this many test examples. Default: all. */
  readonly testSize?: number;
  /** How `trainSize` / `testSize` pick: 'first' n (file order), or 'seeded' n (kept in file order). Default 'first'. */
  readonly subset?: 'first' | 'seeded';
  /** Seed of the val carve and of seeded subsets (normally the run seed). Default 0. */
  readonly seed?: number;
}

/**
 * The schema of SplitOptions, which every file source's options schema extends (the values' ranges are
 * checked where the splits are carved, deriveSplits). Also the keys a source reads: anything else (a typo
 * such as "dri") is refused, never silently ignored.
 */
export const splitOptionsSchema = z
  .object({
    valSize: z.number().optional(),
    trainSize: z.number().optional(),
    testSize: z.number().optional(),
    subset: z.enum(['first', 'seeded']).optional(),
    seed: z.number().optional(),
  })
  .strict();

/** The rows `rows` of a split, copied (in the given order). */
export function selectRows(s: SplitStorage, rows: Int32Array, bytesPerExample: number): SplitStorage {
  const images = new Uint8Array(rows.length * bytesPerExample);
  const labels = new Int32Array(rows.length);
  const sourceIndex = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    images.set(s.images.subarray(r * bytesPerExample, (r + 1) * bytesPerExample), i * bytesPerExample);
    labels[i] = s.labels[r];
    sourceIndex[i] = s.sourceIndex[r];
  }
  return { size: rows.length, images, labels, sourceIndex };
}

function checkCount(dataset: string, field: string, value: number | undefined, available: number, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < min || value > available) {
    throw new AtflowError(
      'CONFIG',
      `${dataset}: ${field} = ${value} is not possible: expected an integer in ${min}..${available} (examples available)`,
      { field, value, available },
    );
  }
  return value;
}

function sortedAscending(a: Int32Array): Int32Array {
  return a.slice().sort();
}

/** `n` of `size` rows: the first n, or n drawn without replacement by `seed`, in ascending order. */
function pickRows(size: number, n: number, how: 'first' | 'seeded', seed: number): Int32Array {
  if (how === 'first') {
    const rows = new Int32Array(n);
    for (let i = 0; i < n; i++) rows[i] = i;
    return rows;
  }
  return sortedAscending(new Rng(seed).permutation(size).subarray(0, n));
}

/**
 * Official train/test → atflow train/val/test. Storage is shared, not copied, where nothing is dropped.
 * Seeds: the val carve uses deriveSeed(seed, 'val-split'); seeded subsets deriveSeed(seed, 'subset', 0 | 1).
 */
export function deriveSplits(
  dataset: string,
  official: { train: SplitStorage; test: SplitStorage },
  bytesPerExample: number,
  options: SplitOptions = {},
): Partial<Record<Split, SplitStorage>> {
  const seed = options.seed ?? 0;
  const how = options.subset ?? 'first';
  if (how !== 'first' && how !== 'seeded') {
    throw new AtflowError('CONFIG', `${dataset}: subset = '${String(how)}': expected 'first' or 'seeded'`, { field: 'subset' });
  }
  if (!Number.isInteger(seed)) throw new AtflowError('CONFIG', `${dataset}: seed = ${seed}: expected an integer`, { field: 'seed' });

  let train = official.train;
  let val: SplitStorage | undefined;
  const valSize = checkCount(dataset, 'valSize', options.valSize, official.train.size - 1, 0) ?? 0;
  if (valSize > 0) {
    const perm = new Rng(deriveSeed(seed, 'val-split')).permutation(train.size);
    val = selectRows(train, sortedAscending(perm.subarray(0, valSize)), bytesPerExample);
    train = selectRows(train, sortedAscending(perm.subarray(valSize)), bytesPerExample);
  }
  const trainSize = checkCount(dataset, 'trainSize', options.trainSize, train.size, 1);
  if (trainSize !== undefined && trainSize < train.size) {
    train = selectRows(train, pickRows(train.size, trainSize, how, deriveSeed(seed, 'subset', 0)), bytesPerExample);
  }
  let test = official.test;
  const testSize = checkCount(dataset, 'testSize', options.testSize, test.size, 1);
  if (testSize !== undefined && testSize < test.size) {
    test = selectRows(test, pickRows(test.size, testSize, how, deriveSeed(seed, 'subset', 1)), bytesPerExample);
  }
  return val ? { train, val, test } : { train, test };
}
