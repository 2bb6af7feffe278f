import * as path from 'path';
import { AtflowError } from '../core/errors';
import { dataFileError, dataRoot, locateFiles, readDataFile } from './data-files';
import { MemorySource, type Source, type SplitStorage, iota } from './source';
import { deriveSplits, type SplitOptions } from './splits';
import type { NamedPart } from '../core/named-part';
import { z } from 'zod';
import { splitOptionsSchema } from './splits';

/**
 * CIFAR-10 / CIFAR-100 "binary version" (https://www.cs.toronto.edu/~kriz/cifar.html).
 * A file is a sequence of records: label byte(s), then 3072 pixel bytes, channel-major (1024 red,
 * 1024 green, 1024 blue, each a row-major 32×32 plane). CIFAR-10: 1 label byte (3073-byte records);
 * CIFAR-100: coarse label byte, fine label byte (3074-byte records).
 */
const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXEL_BYTES = 3 * PLANE;

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'] as const;
export const CIFAR10_TRAIN_FILES = [
  'data_batch_1.bin',
  'data_batch_2.bin',
  'data_batch_3.bin',
  'data_batch_4.bin',
  'data_batch_5.bin',
] as const;
export const CIFAR10_TEST_FILE = 'test_batch.bin';
export const CIFAR100_FILES = ['train.bin', 'test.bin'] as const;

interface RecordLayout {
  /** e.g. 'CIFAR-10' */
  readonly format: string;
  /** Number of classes of each label byte, in file order (CIFAR-100: coarse 20, fine 100); all are checked. */
  readonly labelLimits: readonly number[];
  /** which label byte to use */
  readonly labelOffset: number;
  readonly labelNames: readonly string[];
}

/** Records of one file → HWC storage. Every check happens before anything is kept. */
export function parseCifarRecords(bytes: Uint8Array, file: string, layout: RecordLayout): SplitStorage {
  const labelBytes = layout.labelLimits.length;
  const recordBytes = labelBytes + PIXEL_BYTES;
  if (bytes.length === 0 || bytes.length % recordBytes !== 0) {
    throw dataFileError(
      file,
      `size ${bytes.length} bytes is not a ` +
        `${bytes.length === 0 ? 'positive ' : ''}multiple of the ` +
        `${recordBytes}-byte ${layout.format} record` +
        ` (${labelBytes} label byte${labelBytes > 1 ? 's' : ''} + 3072 pixel bytes)`,
      { size: bytes.length, recordBytes },
    );
  }
  const n = bytes.length / recordBytes;
  const labels = new Int32Array(n);
  const images = new Uint8Array(n * PIXEL_BYTES);
  for (let i = 0; i < n; i++) {
    const rec = i * recordBytes;
    for (let b = 0; b < labelBytes; b++) {
      const label = bytes[rec + b];
      if (label >= layout.labelLimits[b]) {
        throw dataFileError(
          file,
          `record ${i} has ${layout.labelNames[b]} ${label}; expected 0..${layout.labelLimits[b] - 1} ` +
            `for ${layout.format}: is this a ${layout.format} file?`,
          { record: i, label },
        );
      }
    }
    labels[i] = bytes[rec + layout.labelOffset];
    const px = rec + labelBytes;
    const out = i * PIXEL_BYTES;
    // CHW → HWC
    for (let p = 0; p < PLANE; p++) {
      images[out + 3 * p] = bytes[px + p];
      images[out + 3 * p + 1] = bytes[px + PLANE + p];
      images[out + 3 * p + 2] = bytes[px + 2 * PLANE + p];
    }
  }
  return { size: n, images, labels, sourceIndex: iota(n) };
}

function concatSplits(parts: SplitStorage[]): SplitStorage {
  const size = parts.reduce((a, p) => a + p.size, 0);
  const images = new Uint8Array(size * PIXEL_BYTES);
  const labels = new Int32Array(size);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * PIXEL_BYTES);
    labels.set(p.labels, at);
    at += p.size;
  }
  return { size, images, labels, sourceIndex: iota(size) };
}

export interface CifarSourceOptions extends SplitOptions {
  /**
   * Folder with the .bin files, or its parent holding the official folder (`cifar-10-batches-bin`,
   * `cifar-100-binary`). Default: $ATFLOW_DATA (./data), i.e. ./data/cifar-10-batches-bin.
   */
  readonly dir?: string;
}

export interface Cifar100SourceOptions extends CifarSourceOptions {
  /** 'fine' (100 classes, default) or 'coarse' (20 superclasses). */
  readonly labels?: 'fine' | 'coarse';
}

function candidateDirs(dir: string | undefined, officialFolder: string): string[] {
  const base = dir ?? dataRoot();
  return [base, path.join(base, officialFolder)];
}

export function createCifar10Source(options: CifarSourceOptions = {}): Source {
  const files = [...CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE];
  const { dir, paths } = locateFiles(
    'cifar10',
    candidateDirs(options.dir, 'cifar-10-batches-bin'),
    files.map((f) => [f]),
  );
  const layout: RecordLayout = { format: 'CIFAR-10', labelLimits: [10], labelOffset: 0, labelNames: ['label'] };
  const parts = paths.map((p) => parseCifarRecords(readDataFile(p), p, layout));
  // The official batches hold 10,000 records each; a batch cut at a record boundary still stands out.
  const trainParts = parts.slice(0, 5);
  const n0 = trainParts[0].size;
  trainParts.forEach((p, i) => {
    if (p.size !== n0) {
      throw dataFileError(
        paths[i],
        `${p.size} records but ${CIFAR10_TRAIN_FILES[0]} has ${n0}; the ` +
          `training batches must all be the same size (officially 10,000): is ` +
          `this file truncated?`,
      );
    }
  });
  return new MemorySource(
    { name: 'cifar10', numClasses: 10, imageShape: [SIDE, SIDE, 3], defaultAugment: true, classNames: CIFAR10_CLASSES, origin: dir },
    deriveSplits('cifar10', { train: concatSplits(trainParts), test: parts[5] }, PIXEL_BYTES, options),
  );
}

export function createCifar100Source(options: Cifar100SourceOptions = {}): Source {
  const which = options.labels ?? 'fine';
  if (which !== 'fine' && which !== 'coarse') {
    throw new AtflowError('CONFIG', `cifar100: labels = '${String(which)}': expected 'fine' or 'coarse'`, { field: 'labels' });
  }
  const { dir, paths } = locateFiles(
    'cifar100',
    candidateDirs(options.dir, 'cifar-100-binary'),
    CIFAR100_FILES.map((f) => [f]),
  );
  const layout: RecordLayout = {
    format: 'CIFAR-100',
    labelLimits: [20, 100],
    labelOffset: which === 'coarse' ? 0 : 1,
    labelNames: ['coarse label', 'fine label'],
  };
  const numClasses = which === 'coarse' ? 20 : 100;
  const [train, test] = paths.map((p) => parseCifarRecords(readDataFile(p), p, layout));
  return new MemorySource(
    {
      name: which === 'coarse' ? 'cifar100-coarse' : 'cifar100',
      numClasses,
      imageShape: [SIDE, SIDE, 3],
      defaultAugment: true,
      origin: dir,
    },
    deriveSplits('cifar100', { train, test }, PIXEL_BYTES, options),
  );
}

/** The registry's 'cifar10' and 'cifar100' sources. */
export const cifar10SourceEntry: NamedPart<Source, CifarSourceOptions> = {
  name: 'cifar10',
  options: splitOptionsSchema.extend({ dir: z.string().optional() }).strict(),
  create: (o) => createCifar10Source(o),
};
export const cifar100SourceEntry: NamedPart<Source, Cifar100SourceOptions> = {
  name: 'cifar100',
  // the value of `labels` is checked by createCifar100Source, which says what it takes
  options: splitOptionsSchema.extend({ dir: z.string().optional(), labels: z.string().optional() }).strict(),
  create: (o) => createCifar100Source(o),
};
