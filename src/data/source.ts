import * as tf from '@tensorflow/tfjs';
import type { BatchPlan, DatasetInfo, LoadedBatch, Split } from '../core/batch';
import { AtflowError } from '../core/errors';

/**
 * One split of a dataset, kept compact: uint8 pixels in HWC order, example after example. Floats exist
 * only per batch (`Source.load`), so CIFAR's 50,000 images cost 150 MB, not 600 MB.
 */
export interface SplitStorage {
  readonly size: number;
  /** size·H·W·C bytes; example i is bytes [i·H·W·C, (i+1)·H·W·C), pixel (y, x, c) at (y·W + x)·C + c. */
  readonly images: Uint8Array;
  /** Class of each example, 0..K−1. */
  readonly labels: Int32Array;
  /**
   * Where each example sits in the official file's split (for `val`: in the official train split).
   * The example's atflow index is its position in this split, 0..size−1 (what batches and logs use).
   */
  readonly sourceIndex: Int32Array;
}

/** DatasetInfo plus what an experiment needs to know about the dataset to pick its defaults. */
export interface SourceInfo extends DatasetInfo {
  /** Whether the authors' runs augment this dataset (crop 4 + flip): CIFAR yes, SVHN and MNIST no (docs/algorithms.md §2). */
  readonly defaultAugment: boolean;
  /** Human-readable class names, when the dataset has them. */
  readonly classNames?: readonly string[];
  /** Where the data came from (files read, or 'embedded' / 'generated'), for spec.json. */
  readonly origin: string;
}

/** A dataset: its info, its splits' storage, and the one place where float tensors are born. */
export interface Source {
  readonly info: SourceInfo;
  /** The splits this source has (always 'train' and 'test'; 'val' when carved). */
  readonly splits: readonly Split[];
  /** Storage of one split; an AtflowError if the source has no such split. */
  split(name: Split): SplitStorage;
  /** A batch's x tensor (NHWC float32, pixels/255) on the current tfjs backend. The batch owns x. */
  load(plan: BatchPlan): LoadedBatch;
}

/** uint8 → float32 exactly as PyTorch's `ToTensor` (`float(v) / 255` in float32; checked equal for all 256 values). */
const BYTE_TO_UNIT: Float32Array = (() => {
  const t = new Float32Array(256);
  for (let v = 0; v < 256; v++) t[v] = v / 255;
  return t;
})();

export function checkSplitStorage(name: string, split: Split, s: SplitStorage, info: Pick<DatasetInfo, 'imageShape' | 'numClasses'>): void {
  const [h, w, c] = info.imageShape;
  const per = h * w * c;
  if (s.images.length !== s.size * per || s.labels.length !== s.size || s.sourceIndex.length !== s.size) {
    throw new AtflowError(
      'SHAPE',
      `${name} ${split} split: expected ${s.size} examples of ${h}x${w}x${c} (${s.size * per} bytes, ${s.size} labels), ` +
        `got ${s.images.length} bytes and ${s.labels.length} labels`,
    );
  }
  for (let i = 0; i < s.size; i++) {
    const y = s.labels[i];
    if (!(y >= 0 && y < info.numClasses)) {
      throw new AtflowError('DATA_VALUE', `${name} ${split} split: example ${i} has label ${y}, expected 0..${info.numClasses - 1}`, {
        split,
        example: i,
        label: y,
      });
    }
  }
}

/** A source whose splits are all in memory (every built-in source is one). */
export class MemorySource implements Source {
  readonly info: SourceInfo;
  readonly splits: readonly Split[];
  private readonly storage: ReadonlyMap<Split, SplitStorage>;

  constructor(info: Omit<SourceInfo, 'sizes'>, storage: Partial<Record<Split, SplitStorage>>) {
    const map = new Map<Split, SplitStorage>();
    const sizes: Partial<Record<Split, number>> = {};
    for (const split of ['train', 'val', 'test'] as const) {
      const s = storage[split];
      if (!s) continue;
      checkSplitStorage(info.name, split, s, info);
      map.set(split, s);
      sizes[split] = s.size;
    }
    this.info = { ...info, sizes };
    this.splits = [...map.keys()];
    this.storage = map;
  }

  split(name: Split): SplitStorage {
    const s = this.storage.get(name);
    if (!s) {
      throw new AtflowError(
        'ARGUMENT',
        `dataset '${this.info.name}' has no '${name}' split; it has ${this.splits.join(', ')}` +
          (name === 'val' ? ' (carve one from train with the valSize option)' : ''),
        { split: name },
      );
    }
    return s;
  }

  load(plan: BatchPlan): LoadedBatch {
    const s = this.split(plan.split);
    const [h, w, c] = this.info.imageShape;
    const per = h * w * c;
    const n = plan.indices.length;
    const data = new Float32Array(n * per);
    const labelsTrue = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const idx = plan.indices[i];
      if (!(Number.isInteger(idx) && idx >= 0 && idx < s.size)) {
        throw new AtflowError(
          'ARGUMENT',
          `batch plan (${plan.split}, epoch ${plan.epoch}, step ${plan.step}): index ${idx} is outside 0..${s.size - 1}`,
        );
      }
      const src = s.images.subarray(idx * per, idx * per + per);
      const off = i * per;
      for (let k = 0; k < per; k++) data[off + k] = BYTE_TO_UNIT[src[k]];
      labelsTrue[i] = s.labels[idx];
    }
    const x = tf.tensor4d(data, [n, h, w, c], 'float32');
    return {
      stage: 'loaded',
      split: plan.split,
      epoch: plan.epoch,
      step: plan.step,
      indices: plan.indices,
      x,
      labelsTrue,
      labelsUsed: labelsTrue.slice(),
    };
  }
}

/** The bytes of example `index` of a split (a view, not a copy). */
export function exampleBytes(source: Source, split: Split, index: number): Uint8Array {
  const [h, w, c] = source.info.imageShape;
  const per = h * w * c;
  return source.split(split).images.subarray(index * per, (index + 1) * per);
}

/** 0, 1, …, n−1 */
export function iota(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}
