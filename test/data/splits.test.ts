import { AtflowError } from '../../src/core/errors';
import { createSyntheticSource } from '../../src/data/synthetic';
import { deriveSplits } from '../../src/data/splits';
import type { SplitStorage } from '../../src/data/source';

/** A split whose example i has label i % 10 and bytes [i, i] (so rows are recognisable). */
function fake(n: number): SplitStorage {
  const images = new Uint8Array(2 * n);
  for (let i = 0; i < n; i++) images[2 * i] = images[2 * i + 1] = i;
  return {
    size: n,
    images,
    labels: Int32Array.from({ length: n }, (_, i) => i % 10),
    sourceIndex: Int32Array.from({ length: n }, (_, i) => i),
  };
}

describe('deriveSplits: validation carve and subsets', () => {
  const official = { train: fake(100), test: fake(40) };

  it('carves a seeded validation split disjoint from train, covering the official train split', () => {
    const s = deriveSplits('t', official, 2, { valSize: 10, seed: 3 });
    expect(s.val!.size).toBe(10);
    expect(s.train!.size).toBe(90);
    const all = [...s.val!.sourceIndex, ...s.train!.sourceIndex].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 100 }, (_, i) => i));
    // rows are copied whole: bytes and labels follow the source index
    for (const sp of [s.val!, s.train!])
      for (let i = 0; i < sp.size; i++) {
        expect(sp.images[2 * i]).toBe(sp.sourceIndex[i]);
        expect(sp.labels[i]).toBe(sp.sourceIndex[i] % 10);
      }
    expect(Array.from(deriveSplits('t', official, 2, { valSize: 10, seed: 3 }).val!.sourceIndex)).toEqual(Array.from(s.val!.sourceIndex));
    expect(Array.from(deriveSplits('t', official, 2, { valSize: 10, seed: 4 }).val!.sourceIndex)).not.toEqual(
      Array.from(s.val!.sourceIndex),
    );
    // the validation set does not depend on the training subset
    expect(Array.from(deriveSplits('t', official, 2, { valSize: 10, seed: 3, trainSize: 5 }).val!.sourceIndex)).toEqual(
      Array.from(s.val!.sourceIndex),
    );
  });

  it('subsets first-n or seeded-n, in file order; shares storage when nothing is dropped', () => {
    const first = deriveSplits('t', official, 2, { trainSize: 7, testSize: 3 });
    expect(Array.from(first.train!.sourceIndex)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(Array.from(first.test!.sourceIndex)).toEqual([0, 1, 2]);
    const seeded = deriveSplits('t', official, 2, { trainSize: 7, subset: 'seeded', seed: 1 });
    const idx = Array.from(seeded.train!.sourceIndex);
    expect(idx).toEqual([...idx].sort((a, b) => a - b));
    expect(new Set(idx).size).toBe(7);
    expect(idx).not.toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(deriveSplits('t', official, 2, {}).train).toBe(official.train);
  });

  it('rejects impossible sizes with the field name and the available count', () => {
    expect(() => deriveSplits('cifar10', official, 2, { trainSize: 101 })).toThrow(
      /cifar10: trainSize = 101 is not possible: expected an integer in 1..100/,
    );
    expect(() => deriveSplits('cifar10', official, 2, { testSize: 0 })).toThrow(AtflowError);
    expect(() => deriveSplits('cifar10', official, 2, { valSize: 2.5 })).toThrow(/valSize = 2.5/);
    expect(() => deriveSplits('cifar10', official, 2, { valSize: 10, trainSize: 95 })).toThrow(/trainSize = 95 .* 1..90/);
    expect(() => deriveSplits('cifar10', official, 2, { subset: 'random' as never })).toThrow(/subset = 'random'/);
  });

  it('gives a source a val split that loads, and a clear error for a split it lacks', () => {
    const src = createSyntheticSource({ trainSize: 20, valSize: 5, testSize: 4, imageShape: [2, 2, 1] });
    expect(src.info.sizes).toEqual({ train: 20, val: 5, test: 4 });
    expect(src.splits).toEqual(['train', 'val', 'test']);
    const noVal = createSyntheticSource({ trainSize: 20, testSize: 4, imageShape: [2, 2, 1] });
    expect(() => noVal.split('val')).toThrow(/no 'val' split; it has train, test \(carve one from train with the valSize option\)/);
  });
});
