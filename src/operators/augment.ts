import * as tf from '@tensorflow/tfjs';
import { map, type OperatorFunction } from 'rxjs';
import type { AugmentedBatch, LabeledBatch } from '../core/batch';
import { z } from 'zod';
import { AtflowError } from '../core/errors';
import type { NamedPart } from '../core/named-part';
import { deriveSeed, Rng } from '../core/rng';
import type { SourceInfo } from '../data/source';

/**
 * The authors' CIFAR training augmentation, torchvision's RandomCrop(size, padding=p) then
 * RandomHorizontalFlip(0.5), per example: pad with p zeros on every side, cut the image-sized window
 * whose top-left corner is (top, left), top and left uniform in 0..2p, then mirror left-right with
 * probability 1/2. Draws come from Rng(deriveSeed(seed, 'augment', epoch, step)), per example in batch
 * order: top, left, flip — so a batch's augmentation is a pure function of (seed, epoch, step).
 */
export interface AugmentOptions {
  /** Zero padding p of the random crop; 0 = no crop. Default 4. */
  readonly crop?: number;
  /** Random horizontal flip. Default true. */
  readonly flip?: boolean;
  /** The run seed. */
  readonly seed: number;
}

export interface AugmentDraws {
  readonly top: Int32Array;
  readonly left: Int32Array;
  readonly flip: Uint8Array;
}

/** The random crop offsets (0..2p; p = no shift) and flips of one batch. */
export function augmentDraws(n: number, crop: number, flip: boolean, seed: number, epoch: number, step: number): AugmentDraws {
  const rng = new Rng(deriveSeed(seed, 'augment', epoch, step));
  const top = new Int32Array(n);
  const left = new Int32Array(n);
  const flips = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    top[i] = crop > 0 ? rng.int(2 * crop + 1) : 0;
    left[i] = crop > 0 ? rng.int(2 * crop + 1) : 0;
    flips[i] = flip && rng.uniform() < 0.5 ? 1 : 0;
  }
  return { top, left, flip: flips };
}

/**
 * Flat source index for every output element, into x flattened with one extra zero appended at the end
 * (index n·H·W·C), which every pixel of the padding points to.
 */
function gatherIndices(shape: readonly number[], crop: number, d: AugmentDraws): Int32Array {
  const [n, h, w, c] = shape;
  const zero = n * h * w * c;
  const out = new Int32Array(zero);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const dy = d.top[i] - crop;
    const dx = d.left[i] - crop;
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      for (let x = 0; x < w; x++) {
        // torchvision flips after cropping: output column x shows cropped column w−1−x
        const sx = (d.flip[i] ? w - 1 - x : x) + dx;
        const inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
        const base = ((i * h + sy) * w + sx) * c;
        for (let ch = 0; ch < c; ch++) out[k++] = inside ? base + ch : zero;
      }
    }
  }
  return out;
}

function checkOptions(o: AugmentOptions): { crop: number; flip: boolean; seed: number } {
  const crop = o.crop ?? 4;
  if (!Number.isInteger(crop) || crop < 0)
    throw new AtflowError('CONFIG', `augment crop = ${crop}: expected an integer padding >= 0`, { field: 'crop' });
  if (!Number.isInteger(o.seed)) throw new AtflowError('CONFIG', `augment seed = ${o.seed}: expected an integer`, { field: 'seed' });
  return { crop, flip: o.flip ?? true, seed: o.seed };
}

/** Augments one batch; disposes the input's x when it makes a new one. */
export function augmentBatch(batch: LabeledBatch, options: AugmentOptions): AugmentedBatch {
  const { crop, flip, seed } = checkOptions(options);
  if (crop === 0 && !flip) return { ...batch, stage: 'augmented' };
  const n = batch.x.shape[0];
  const draws = augmentDraws(n, crop, flip, seed, batch.epoch, batch.step);
  const idx = gatherIndices(batch.x.shape, crop, draws);
  const x = tf.tidy(() => {
    const flat = tf.concat([batch.x.reshape([-1]), tf.zeros([1], 'float32')]);
    return tf.gather(flat, tf.tensor1d(idx, 'int32')).reshape(batch.x.shape) as tf.Tensor4D;
  });
  batch.x.dispose();
  return { ...batch, stage: 'augmented', x };
}

/** An augmentation as the registry's 'augmentation' entries make it: one batch in, its augmented batch out (disposing what it replaces). */
export type Augmentation = (batch: LabeledBatch) => AugmentedBatch;

/**
 * RxJS operator of an augmentation: the crop/flip options (augmentBatch; crop 0 and flip false only
 * re-brand the batch), or an Augmentation made by the registry (a run's `parts.augment`).
 */
export function augment(how: AugmentOptions | Augmentation): OperatorFunction<LabeledBatch, AugmentedBatch> {
  if (typeof how === 'function') return map(how);
  checkOptions(how);
  return map((batch) => augmentBatch(batch, how));
}

/** The dataset's default: crop 4 + flip for CIFAR, nothing for SVHN and MNIST (docs/algorithms.md §2). */
export function defaultAugmentOptions(info: Pick<SourceInfo, 'defaultAugment'>, seed: number): Required<AugmentOptions> {
  return info.defaultAugment ? { crop: 4, flip: true, seed } : { crop: 0, flip: false, seed };
}

/** What the registry's 'augmentation' factories get beside their configured options. */
export interface AugmentationContext {
  /** The run's augmentation seed (deriveSeed(seed, 'augment')). */
  readonly seed: number;
  /** Whether the dataset's own default is crop + flip (SourceInfo.defaultAugment). */
  readonly datasetDefault: boolean;
}

const cropFlip = (crop: number, flip: boolean, seed: number): Augmentation => {
  const options = checkOptions({ crop, flip, seed });
  return (batch) => augmentBatch(batch, options);
};

/**
 * The built-in augmentations (kind 'augmentation', config `data.augment`: a name, or an object with
 * `name` and the entry's options; an object without a name is 'crop-flip''s options).
 */
export const cropFlipAugmentationEntry: NamedPart<Augmentation, { crop: number; flip: boolean } & AugmentationContext> = {
  name: 'crop-flip',
  options: z.object({ crop: z.number().int().min(0).default(4), flip: z.boolean().default(true) }).strict(),
  create: (o) => cropFlip(o.crop, o.flip, o.seed),
};
export const noAugmentationEntry: NamedPart<Augmentation, AugmentationContext> = {
  name: 'none',
  options: z.object({}).strict(),
  create: (o) => cropFlip(0, false, o.seed),
};
/** The dataset's own: crop 4 + flip for CIFAR, nothing for MNIST and SVHN (docs/algorithms.md §2). */
export const defaultAugmentationEntry: NamedPart<Augmentation, AugmentationContext> = {
  name: 'default',
  options: z.object({}).strict(),
  create: (o) => {
    const d = defaultAugmentOptions({ defaultAugment: o.datasetDefault }, o.seed);
    return cropFlip(d.crop, d.flip, o.seed);
  },
};
