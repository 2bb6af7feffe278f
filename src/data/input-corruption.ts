import { AtflowError, unknownName } from '../core/errors';
import { deriveSeed, Rng } from '../core/rng';
import { MemorySource, type Source, type SplitStorage } from './source';

/**
 * Zhang et al.'s input corruptions, as the authors' `utils.corrupt_dataset` carries them (docs/algorithms.md §2.1):
 * a fraction `rate` of the training split — int(rate·N) examples, chosen without replacement by
 * (seed, 'corrupt-select') — is replaced, once, in a copy of the uint8 storage:
 * - `shuffled-pixels`: ONE permutation of the H·W pixel positions (seed, 'corrupt-permutation'),
 *   the same for every chosen image, channels kept together per pixel: new[p] = old[perm[p]];
 * - `random-pixels`: an independent permutation per image (seed, 'corrupt-random-pixels', index);
 * - `gaussian`: i.i.d. Gaussian pixels per channel (seed, 'corrupt-gaussian', index), clipped to
 *   [0, 1] and stored as round(255·v). Default mean/std: for 3 channels the authors' CIFAR values
 *   (0.4914, 0.4822, 0.4465) / (0.2023, 0.1994, 0.2010); otherwise each channel's mean/std measured on
 *   the (uncorrupted) training split. DEVIATION: the authors write values in [0, 1] into a uint8
 *   array, so their "Gaussian" images come out black (all 0, or 1/255); ours are the intended images.
 * Test and val splits are never corrupted.
 */
export type InputCorruptionKind = 'shuffled-pixels' | 'random-pixels' | 'gaussian';
export const INPUT_CORRUPTION_KINDS: readonly InputCorruptionKind[] = ['shuffled-pixels', 'random-pixels', 'gaussian'];

export const CIFAR_CHANNEL_MEAN = [0.4914, 0.4822, 0.4465] as const;
export const CIFAR_CHANNEL_STD = [0.2023, 0.1994, 0.201] as const;

export interface InputCorruptionOptions {
  readonly kind: InputCorruptionKind;
  /** Fraction of the training split to corrupt, in [0, 1]. */
  readonly rate: number;
  readonly seed: number;
  /** Per-channel mean / std of `gaussian` images (in [0, 1] units); defaults above. */
  readonly mean?: readonly number[];
  readonly std?: readonly number[];
}

export interface CorruptedSource {
  /** The source with its training split replaced by the corrupted copy. */
  readonly source: Source;
  /** Training-split indices that were corrupted, ascending. */
  readonly corrupted: Int32Array;
}

/** Per-channel mean and std (population) of a split, in [0, 1] units. */
export function channelStats(s: SplitStorage, channels: number): { mean: number[]; std: number[] } {
  const sum = new Float64Array(channels);
  const sq = new Float64Array(channels);
  for (let k = 0; k < s.images.length; k++) {
    const v = s.images[k] / 255;
    sum[k % channels] += v;
    sq[k % channels] += v * v;
  }
  const count = s.images.length / channels;
  const mean = Array.from(sum, (v) => v / count);
  const std = Array.from(sq, (v, c) => Math.sqrt(Math.max(0, v / count - mean[c] * mean[c])));
  return { mean, std };
}

function permuteImage(img: Uint8Array, perm: Int32Array, channels: number, tmp: Uint8Array): void {
  for (let p = 0; p < perm.length; p++) {
    const from = perm[p] * channels;
    for (let c = 0; c < channels; c++) tmp[p * channels + c] = img[from + c];
  }
  img.set(tmp);
}

export function corruptInputs(source: Source, options: InputCorruptionOptions): CorruptedSource {
  const { kind, rate, seed } = options;
  if (!INPUT_CORRUPTION_KINDS.includes(kind)) throw unknownName('input corruption', String(kind), INPUT_CORRUPTION_KINDS);
  if (!(rate >= 0 && rate <= 1))
    throw new AtflowError('CONFIG', `input corruption rate = ${rate}: expected a number in [0, 1]`, { field: 'rate' });
  const [h, w, channels] = source.info.imageShape;
  const pixels = h * w;
  const per = pixels * channels;
  const train = source.split('train');
  const n = train.size;

  let mean: readonly number[] = options.mean ?? [];
  let std: readonly number[] = options.std ?? [];
  if (kind === 'gaussian') {
    if (!options.mean || !options.std) {
      const measured = channels === 3 ? { mean: [...CIFAR_CHANNEL_MEAN], std: [...CIFAR_CHANNEL_STD] } : channelStats(train, channels);
      mean = options.mean ?? measured.mean;
      std = options.std ?? measured.std;
    }
    if (mean.length !== channels || std.length !== channels) {
      throw new AtflowError(
        'CONFIG',
        `gaussian corruption: mean and std need ${channels} values (one per channel); got ${mean.length} and ${std.length}`,
      );
    }
  }

  // Python's int(rate·N) truncates; so does Math.floor for non-negative doubles.
  const count = Math.floor(rate * n);
  const corrupted = new Rng(deriveSeed(seed, 'corrupt-select')).permutation(n).slice(0, count).sort();
  const images = train.images.slice();
  const tmp = new Uint8Array(per);
  const fixedPerm = kind === 'shuffled-pixels' ? new Rng(deriveSeed(seed, 'corrupt-permutation')).permutation(pixels) : undefined;
  for (const i of corrupted) {
    const img = images.subarray(i * per, (i + 1) * per);
    if (kind === 'shuffled-pixels') permuteImage(img, fixedPerm!, channels, tmp);
    else if (kind === 'random-pixels')
      permuteImage(img, new Rng(deriveSeed(seed, 'corrupt-random-pixels', i)).permutation(pixels), channels, tmp);
    else {
      const rng = new Rng(deriveSeed(seed, 'corrupt-gaussian', i));
      for (let k = 0; k < per; k++) {
        const c = k % channels;
        const v = mean[c] + std[c] * rng.normal();
        img[k] = Math.round(255 * Math.min(1, Math.max(0, v)));
      }
    }
  }

  const storage: Partial<Record<'train' | 'val' | 'test', SplitStorage>> = {};
  for (const split of source.splits) storage[split] = split === 'train' ? { ...train, images } : source.split(split);
  const { sizes: _sizes, ...info } = source.info;
  return {
    source: new MemorySource(
      { ...info, origin: `${info.origin}; ${kind} corruption of ${count} training images (rate ${rate}, seed ${seed})` },
      storage,
    ),
    corrupted,
  };
}
