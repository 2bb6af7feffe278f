import * as path from 'path';
import { AtflowError } from '../core/errors';
import { dataFileError, dataRoot, locateFiles, readDataFile } from './data-files';
import { MemorySource, type Source, type SplitStorage, iota } from './source';
import { deriveSplits, type SplitOptions } from './splits';
import type { NamedPart } from '../core/named-part';
import { z } from 'zod';
import { splitOptionsSchema } from './splits';

/**
 * MNIST-format IDX files (LeCun's format; Fashion-MNIST uses it too), gzipped or not.
 * Header: two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions, then each
 * dimension as a big-endian uint32; then the data, row-major. Images are N×H×W, labels N.
 */
export interface IdxArray {
  readonly dims: number[];
  readonly data: Uint8Array;
}

const IDX_UBYTE = 0x08;

export function parseIdx(bytes: Uint8Array, file: string, expectedDims: number): IdxArray {
  const what = expectedDims === 1 ? 'an IDX label file (magic 0x00000801)' : `an IDX image file (magic 0x0000080${expectedDims})`;
  if (bytes.length < 4) throw dataFileError(file, `only ${bytes.length} bytes; expected ${what}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const magic = view.getUint32(0, false);
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== IDX_UBYTE || bytes[3] !== expectedDims) {
    throw dataFileError(file, `magic number 0x${magic.toString(16).padStart(8, '0')}; expected ${what}`, { magic });
  }
  const headerBytes = 4 + 4 * expectedDims;
  if (bytes.length < headerBytes) throw dataFileError(file, `truncated header (${bytes.length} bytes); expected ${headerBytes}`);
  const dims: number[] = [];
  for (let d = 0; d < expectedDims; d++) dims.push(view.getUint32(4 + 4 * d, false));
  const expected = headerBytes + dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== expected) {
    throw dataFileError(
      file,
      `size ${bytes.length} bytes does not match its header (dimensions ${dims.join('x')}: ${expected} bytes)` +
        (bytes.length < expected ? '; the file is truncated' : ''),
      { size: bytes.length, expected, dims },
    );
  }
  return { dims, data: bytes.subarray(headerBytes) };
}

/** One split from an images file and a labels file; counts must agree, labels must be < numClasses. */
export function readIdxPair(
  imagesFile: string,
  labelsFile: string,
  numClasses: number,
): { split: SplitStorage; height: number; width: number } {
  const images = parseIdx(readDataFile(imagesFile), imagesFile, 3);
  const labels = parseIdx(readDataFile(labelsFile), labelsFile, 1);
  const [n, height, width] = images.dims;
  if (labels.dims[0] !== n) {
    throw new AtflowError(
      'DATA_FILE',
      `${path.basename(labelsFile)} has ${labels.dims[0]} labels but ${path.basename(imagesFile)} ` +
        `has ${n} images; expected the same count (${labelsFile})`,
      { imagesFile, labelsFile },
    );
  }
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = labels.data[i];
    if (y[i] >= numClasses) {
      throw dataFileError(labelsFile, `label ${y[i]} at index ${i}; expected 0..${numClasses - 1} (set numClasses)`, { index: i });
    }
  }
  // Own copy: the file buffer may be much larger than the pixels (gunzip output, header).
  return { split: { size: n, images: images.data.slice(), labels: y, sourceIndex: iota(n) }, height, width };
}

export interface IdxSourceOptions extends SplitOptions {
  /** Folder with the four files. Default: $ATFLOW_DATA/mnist (./data/mnist). */
  readonly dir?: string;
  /** Dataset name in logs. Default 'idx'. */
  readonly name?: string;
  /** Default 10. */
  readonly numClasses?: number;
  readonly classNames?: readonly string[];
  /** File names (each also tried with/without '.gz'); defaults are LeCun's names. */
  readonly trainImages?: string;
  readonly trainLabels?: string;
  readonly testImages?: string;
  readonly testLabels?: string;
}

const DEFAULT_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

function alternatives(name: string): string[] {
  return name.endsWith('.gz') ? [name, name.slice(0, -3)] : [`${name}.gz`, name];
}

export function createIdxSource(options: IdxSourceOptions = {}): Source {
  const name = options.name ?? 'idx';
  const numClasses = options.numClasses ?? 10;
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    throw new AtflowError('CONFIG', `${name}: numClasses = ${numClasses}: expected an integer >= 2`, { field: 'numClasses' });
  }
  const dir = options.dir ?? path.join(dataRoot(), 'mnist');
  const names = { ...DEFAULT_FILES, ...pickDefined(options) };
  const { paths } = locateFiles(name, [dir], [names.trainImages, names.trainLabels, names.testImages, names.testLabels].map(alternatives));
  const train = readIdxPair(paths[0], paths[1], numClasses);
  const test = readIdxPair(paths[2], paths[3], numClasses);
  if (train.height !== test.height || train.width !== test.width) {
    throw new AtflowError(
      'DATA_FILE',
      `${name}: train images are ${train.height}x${train.width} but test ` +
        `images are ${test.height}x${test.width} (${paths[0]}, ${paths[2]})`,
    );
  }
  const per = train.height * train.width;
  return new MemorySource(
    {
      name,
      numClasses,
      imageShape: [train.height, train.width, 1],
      defaultAugment: false,
      classNames: options.classNames,
      origin: paths.join(', '),
    },
    deriveSplits(name, { train: train.split, test: test.split }, per, options),
  );
}

function pickDefined(o: IdxSourceOptions): Partial<typeof DEFAULT_FILES> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(DEFAULT_FILES) as (keyof typeof DEFAULT_FILES)[]) if (o[k] !== undefined) out[k] = o[k] as string;
  return out;
}

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

/** Where Debian's `dataset-fashion-mnist` package installs the files. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Fashion-MNIST (IDX files; default folder: Debian's package, `apt-get install dataset-fashion-mnist`). */
export function createFashionMnistSource(options: Omit<IdxSourceOptions, 'name' | 'numClasses' | 'classNames'> = {}): Source {
  const dir = options.dir ?? DEBIAN_FASHION_MNIST_DIR;
  try {
    return createIdxSource({ ...options, dir, name: 'fashion-mnist', numClasses: 10, classNames: FASHION_MNIST_CLASSES });
  } catch (e) {
    if (e instanceof AtflowError && e.code === 'DATA_FILE' && Array.isArray(e.details.dirs) && options.dir === undefined) {
      throw new AtflowError('DATA_FILE', `${e.message}; on Debian/Ubuntu: apt-get install -y dataset-fashion-mnist, or set dir`, e.details);
    }
    throw e;
  }
}

const idxFilesSchema = splitOptionsSchema.extend({
  dir: z.string().optional(),
  trainImages: z.string().optional(),
  trainLabels: z.string().optional(),
  testImages: z.string().optional(),
  testLabels: z.string().optional(),
});

/** The registry's 'idx' source: any dataset in LeCun's IDX files. */
export const idxSourceEntry: NamedPart<Source, IdxSourceOptions> = {
  name: 'idx',
  options: idxFilesSchema
    .extend({ name: z.string().optional(), numClasses: z.number().optional(), classNames: z.array(z.string()).optional() })
    .strict(),
  create: (o) => createIdxSource(o),
};

/** The registry's 'fashion-mnist' source. */
export const fashionMnistSourceEntry: NamedPart<Source, Omit<IdxSourceOptions, 'name' | 'numClasses' | 'classNames'>> = {
  name: 'fashion-mnist',
  options: idxFilesSchema.strict(),
  create: (o) => createFashionMnistSource(o),
};
