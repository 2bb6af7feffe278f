import { corruptInputs } from '../../src/data/input-corruption';
import { MemorySource, type SplitStorage } from '../../src/data/source';
import { createSyntheticSource } from '../../src/data/synthetic';

const H = 4;
const W = 4;
const PIX = H * W;

/** Image i: pixel p holds (p, i % 256, 200 + p): the permutation applied is readable from channel 0. */
function storage(n: number): SplitStorage {
  const images = new Uint8Array(n * PIX * 3);
  for (let i = 0; i < n; i++) for (let p = 0; p < PIX; p++) images.set([p, i % 256, 200 + p], (i * PIX + p) * 3);
  return {
    size: n,
    images,
    labels: Int32Array.from({ length: n }, (_, i) => i % 10),
    sourceIndex: Int32Array.from({ length: n }, (_, i) => i),
  };
}

function source(n = 50) {
  return new MemorySource(
    { name: 't', numClasses: 10, imageShape: [H, W, 3], defaultAugment: false, origin: 'test' },
    { train: storage(n), test: storage(5) },
  );
}

function permutationOf(img: Uint8Array, i: number): number[] {
  const perm: number[] = [];
  for (let p = 0; p < PIX; p++) {
    const [a, b, c] = img.subarray(p * 3, p * 3 + 3);
    expect(b).toBe(i % 256); // channels stay together
    expect(c).toBe(200 + a);
    perm.push(a);
  }
  return perm;
}

const imageOf = (s: SplitStorage, i: number) => s.images.subarray(i * PIX * 3, (i + 1) * PIX * 3);

describe('input corruptions (Zhang et al.)', () => {
  it('corrupts int(r·N) training images chosen without replacement, leaving the rest, test and the original alone', () => {
    const src = source(50);
    const { source: out, corrupted } = corruptInputs(src, { kind: 'random-pixels', rate: 0.3, seed: 1 });
    expect(corrupted.length).toBe(15);
    expect(new Set(corrupted).size).toBe(15);
    expect(Array.from(corrupted)).toEqual(Array.from(corrupted).sort((a, b) => a - b));
    const chosen = new Set(corrupted);
    const train = out.split('train');
    for (let i = 0; i < 50; i++) {
      const changed = imageOf(train, i).some((v, k) => v !== imageOf(src.split('train'), i)[k]);
      if (!chosen.has(i)) expect(changed).toBe(false);
    }
    expect(out.split('test')).toBe(src.split('test'));
    expect(Array.from(imageOf(src.split('train'), corrupted[0]).subarray(0, 3))).toEqual([0, corrupted[0], 200]);
    expect(corruptInputs(src, { kind: 'gaussian', rate: 0.29, seed: 1 }).corrupted.length).toBe(14); // int(14.5)
  });

  it('shuffled-pixels applies ONE permutation to every chosen image; random-pixels one per image', () => {
    const src = source(40);
    const shuffled = corruptInputs(src, { kind: 'shuffled-pixels', rate: 0.5, seed: 2 });
    const perms = Array.from(shuffled.corrupted, (i) => permutationOf(imageOf(shuffled.source.split('train'), i), i).join(','));
    expect(new Set(perms).size).toBe(1);
    expect(perms[0]).not.toBe(Array.from({ length: PIX }, (_, p) => p).join(','));
    expect([...perms[0].split(',').map(Number)].sort((a, b) => a - b)).toEqual(Array.from({ length: PIX }, (_, p) => p));

    const random = corruptInputs(src, { kind: 'random-pixels', rate: 0.5, seed: 2 });
    const rperms = Array.from(random.corrupted, (i) => permutationOf(imageOf(random.source.split('train'), i), i).join(','));
    expect(new Set(rperms).size).toBe(rperms.length);
  });

  it("gaussian images use the per-channel CIFAR mean/std in [0, 255] (not black, unlike the authors' uint8 bug)", () => {
    const src = createSyntheticSource({ trainSize: 400, testSize: 2, imageShape: [8, 8, 3] });
    const { source: out, corrupted } = corruptInputs(src, { kind: 'gaussian', rate: 1, seed: 3 });
    expect(corrupted.length).toBe(400);
    const img = out.split('train').images;
    const mean = [0.4914, 0.4822, 0.4465];
    const std = [0.2023, 0.1994, 0.201];
    for (let c = 0; c < 3; c++) {
      let s = 0;
      let sq = 0;
      let n = 0;
      for (let k = c; k < img.length; k += 3) {
        s += img[k] / 255;
        sq += (img[k] / 255) ** 2;
        n++;
      }
      const m = s / n;
      // clipping at 0 and 1 is > 2σ away: moments barely move
      expect(Math.abs(m - mean[c])).toBeLessThan(0.005);
      expect(Math.abs(Math.sqrt(sq / n - m * m) - std[c])).toBeLessThan(0.006);
    }
  });

  it("gaussian on 1-channel data uses the training split's measured mean and std; options override", () => {
    const src = createSyntheticSource({ trainSize: 300, testSize: 2, imageShape: [6, 6, 1], seed: 4 });
    const orig = src.split('train').images;
    const om = orig.reduce((a, v) => a + v, 0) / orig.length;
    const { source: out } = corruptInputs(src, { kind: 'gaussian', rate: 1, seed: 3 });
    const img = out.split('train').images;
    const gm = img.reduce((a, v) => a + v, 0) / img.length;
    expect(Math.abs(gm - om)).toBeLessThan(3);
    const custom = corruptInputs(src, { kind: 'gaussian', rate: 1, seed: 3, mean: [0.9], std: [0.01] }).source.split('train').images;
    expect(custom.every((v) => Math.abs(v - 229.5) < 15)).toBe(true); // 6σ
    expect(Math.abs(custom.reduce((a, v) => a + v, 0) / custom.length - 229.5)).toBeLessThan(0.5);
    expect(() => corruptInputs(src, { kind: 'gaussian', rate: 1, seed: 3, mean: [0.5, 0.5], std: [0.1, 0.1] })).toThrow(/need 1 values/);
  });

  it('is deterministic in the seed and rejects bad options', () => {
    const src = source(30);
    const a = corruptInputs(src, { kind: 'random-pixels', rate: 0.5, seed: 9 }).source.split('train').images;
    const b = corruptInputs(src, { kind: 'random-pixels', rate: 0.5, seed: 9 }).source.split('train').images;
    const c = corruptInputs(src, { kind: 'random-pixels', rate: 0.5, seed: 10 }).source.split('train').images;
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    expect(() => corruptInputs(src, { kind: 'gaussian', rate: -0.1, seed: 1 })).toThrow(/rate = -0.1/);
    expect(() => corruptInputs(src, { kind: 'gausian' as never, rate: 0.1, seed: 1 })).toThrow(/did you mean 'gaussian'/);
  });
});
