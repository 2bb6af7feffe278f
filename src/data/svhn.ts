import * as path from 'path';
import { dataFileError, dataRoot, locateFiles, readDataFile } from './data-files';
import { readMatV5 } from './mat-v5';
import { MemorySource, type Source, type SplitStorage, iota } from './source';
import { deriveSplits, type SplitOptions } from './splits';
import type { NamedPart } from '../core/named-part';
import { z } from 'zod';
import { splitOptionsSchema } from './splits';

/**
 * SVHN "format 2" (cropped digits, http://ufldl.stanford.edu/housenumbers/): train_32x32.mat (73,257)
 * and test_32x32.mat (26,032), MATLAB 5.0 files holding X (uint8, 32×32×3×N, MATLAB column-major:
 * element (row, col, channel, n) at row + 32·col + 1024·channel + 3072·n) and y (N×1; 1..10, where 10
 * is the digit 0, mapped to 0 as torchvision does). The `extra` set is not used (nor by the authors).
 */
const SIDE = 32;
const PER = SIDE * SIDE * 3;
export const SVHN_FILES = ['train_32x32.mat', 'test_32x32.mat'] as const;

export function readSvhnMat(file: string): SplitStorage {
  const vars = readMatV5(readDataFile(file), file);
  const X = vars.get('X');
  const y = vars.get('y');
  if (!X || !y) {
    throw dataFileError(file, `expected variables 'X' and 'y' (SVHN format 2); found ${[...vars.keys()].join(', ') || 'none'}`);
  }
  const [h, w, c, n = 1] = X.dims;
  if (h !== SIDE || w !== SIDE || c !== 3 || X.dims.length > 4) {
    throw dataFileError(file, `X has dimensions ${X.dims.join('x')}; expected 32x32x3xN`);
  }
  if (y.data.length !== n) throw dataFileError(file, `y has ${y.data.length} labels but X has ${n} images`);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = y.data[i];
    if (!(Number.isInteger(v) && v >= 0 && v <= 10)) throw dataFileError(file, `y(${i + 1}) = ${v}; expected an integer label 1..10`);
    labels[i] = v === 10 ? 0 : v;
  }
  let images: Uint8Array;
  if (X.data instanceof Uint8Array) {
    images = X.data;
  } else {
    images = new Uint8Array(X.data.length);
    for (let i = 0; i < X.data.length; i++) {
      const v = X.data[i];
      if (!(Number.isInteger(v) && v >= 0 && v <= 255)) throw dataFileError(file, `X holds ${v}; expected pixel bytes 0..255`);
      images[i] = v;
    }
  }
  // Each image is the same 3072-byte block in both layouts, so convert image by image, in place
  // (the decompressed buffer is ours): column-major (row, col, ch) → HWC.
  const tmp = new Uint8Array(PER);
  for (let k = 0; k < n; k++) {
    const img = images.subarray(k * PER, (k + 1) * PER);
    for (let ch = 0; ch < 3; ch++)
      for (let col = 0; col < SIDE; col++)
        for (let row = 0; row < SIDE; row++) tmp[(row * SIDE + col) * 3 + ch] = img[row + SIDE * col + SIDE * SIDE * ch];
    img.set(tmp);
  }
  return { size: n, images, labels, sourceIndex: iota(n) };
}

export interface SvhnSourceOptions extends SplitOptions {
  /** Folder with train_32x32.mat and test_32x32.mat. Default: $ATFLOW_DATA/svhn (./data/svhn), then $ATFLOW_DATA. */
  readonly dir?: string;
}

export function createSvhnSource(options: SvhnSourceOptions = {}): Source {
  const dirs = options.dir ? [options.dir] : [path.join(dataRoot(), 'svhn'), dataRoot()];
  const { dir, paths } = locateFiles(
    'svhn',
    dirs,
    SVHN_FILES.map((f) => [f]),
  );
  const train = readSvhnMat(paths[0]);
  const test = readSvhnMat(paths[1]);
  return new MemorySource(
    { name: 'svhn', numClasses: 10, imageShape: [SIDE, SIDE, 3], defaultAugment: false, origin: dir },
    deriveSplits('svhn', { train, test }, PER, options),
  );
}

/** The registry's 'svhn' source. */
export const svhnSourceEntry: NamedPart<Source, SvhnSourceOptions> = {
  name: 'svhn',
  options: splitOptionsSchema.extend({ dir: z.string().optional() }).strict(),
  create: (o) => createSvhnSource(o),
};
