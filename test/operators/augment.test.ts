import * as tf from '@tensorflow/tfjs';
import { from, lastValueFrom } from 'rxjs';
import type { LabeledBatch } from '../../src/core/batch';
import { augment, augmentBatch, defaultAugmentOptions } from '../../src/operators/augment';

const H = 8;
const W = 6;
const C = 2;

/** Batch of n images with all-distinct positive pixels, so every output pixel can be traced back. */
function batch(n: number, epoch = 1, step = 0): LabeledBatch {
  const data = new Float32Array(n * H * W * C);
  for (let k = 0; k < data.length; k++) data[k] = k + 1;
  const labels = new Int32Array(n);
  return {
    stage: 'labeled',
    split: 'train',
    epoch,
    step,
    indices: Int32Array.from({ length: n }, (_, i) => i),
    x: tf.tensor4d(data, [n, H, W, C]),
    labelsTrue: labels,
    labelsUsed: labels,
  };
}

/** Reference: torchvision's RandomCrop(padding=p) + hflip, written from the definition (pad, slice, mirror). */
function reference(img: Float32Array, n: number, top: number, left: number, flip: boolean, p: number): Float32Array {
  const padded = (y: number, x: number, c: number) => {
    const sy = y - p;
    const sx = x - p;
    return sy >= 0 && sy < H && sx >= 0 && sx < W ? img[((n * H + sy) * W + sx) * C + c] : 0;
  };
  const out = new Float32Array(H * W * C);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      for (let c = 0; c < C; c++) {
        const cx = flip ? W - 1 - x : x;
        out[(y * W + x) * C + c] = padded(y + top, cx + left, c);
      }
  return out;
}

/** Finds the (top, left, flip) that explains an output image, or null if none does. */
function explain(input: Float32Array, output: Float32Array, n: number, p: number): { top: number; left: number; flip: boolean } | null {
  const got = output.subarray(n * H * W * C, (n + 1) * H * W * C);
  for (let top = 0; top <= 2 * p; top++)
    for (let left = 0; left <= 2 * p; left++)
      for (const flip of [false, true]) {
        const want = reference(input, n, top, left, flip, p);
        if (want.every((v, k) => v === got[k])) return { top, left, flip };
      }
  return null;
}

describe('augment (random crop with zero padding + horizontal flip)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('every output is a zero-padded shifted window (shift ≤ p), possibly mirrored; all shifts and both flips occur', () => {
    const before = tf.memory().numTensors;
    const n = 300;
    const b = batch(n);
    const input = b.x.dataSync().slice() as Float32Array;
    const out = augmentBatch(b, { crop: 2, flip: true, seed: 7 });
    expect(b.x.isDisposed).toBe(true);
    expect(out.stage).toBe('augmented');
    expect(out.x.shape).toEqual([n, H, W, C]);
    const y = out.x.dataSync() as Float32Array;
    const tops = new Set<number>();
    const lefts = new Set<number>();
    let flips = 0;
    for (let i = 0; i < n; i++) {
      const e = explain(input, y, i, 2);
      expect(e).not.toBeNull();
      tops.add(e!.top);
      lefts.add(e!.left);
      if (e!.flip) flips++;
    }
    expect([...tops].sort()).toEqual([0, 1, 2, 3, 4]);
    expect([...lefts].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(Math.abs(flips / n - 0.5)).toBeLessThan(0.12);
    out.x.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('flip only mirrors left-right exactly; crop only never mirrors', () => {
    const b = batch(40);
    const input = b.x.dataSync().slice() as Float32Array;
    const y = augmentBatch(b, { crop: 0, flip: true, seed: 3 });
    const out = y.x.dataSync() as Float32Array;
    for (let i = 0; i < 40; i++) expect(explain(input, out, i, 0)).not.toBeNull();
    y.x.dispose();
    const b2 = batch(40);
    const y2 = augmentBatch(b2, { crop: 4, flip: false, seed: 3 });
    const out2 = y2.x.dataSync() as Float32Array;
    for (let i = 0; i < 40; i++) expect(explain(input, out2, i, 4)?.flip).toBe(false);
    y2.x.dispose();
  });

  it('is reproducible for (seed, epoch, step) and differs across steps and seeds', () => {
    const run = (seed: number, epoch: number, step: number) => {
      const out = augmentBatch(batch(20, epoch, step), { crop: 4, flip: true, seed });
      const v = Array.from(out.x.dataSync());
      out.x.dispose();
      return v;
    };
    expect(run(1, 2, 3)).toEqual(run(1, 2, 3));
    expect(run(1, 2, 3)).not.toEqual(run(1, 2, 4));
    expect(run(1, 2, 3)).not.toEqual(run(1, 3, 3));
    expect(run(1, 2, 3)).not.toEqual(run(2, 2, 3));
  });

  it('with crop and flip off passes the batch through, re-branded, same tensor', async () => {
    const b = batch(3);
    const out = await lastValueFrom(from([b]).pipe(augment({ crop: 0, flip: false, seed: 1 })));
    expect(out.stage).toBe('augmented');
    expect(out.x).toBe(b.x);
    expect(b.x.isDisposed).toBe(false);
    b.x.dispose();
  });

  it('defaults follow the dataset: on for CIFAR, off for SVHN / MNIST', () => {
    expect(defaultAugmentOptions({ defaultAugment: true }, 5)).toEqual({ crop: 4, flip: true, seed: 5 });
    expect(defaultAugmentOptions({ defaultAugment: false }, 5)).toEqual({ crop: 0, flip: false, seed: 5 });
    expect(() => augment({ crop: -1, seed: 1 })).toThrow(/crop = -1/);
  });
});

describe('augment on wasm', () => {
  it('gives the same pixels as on cpu', async () => {
    const { initBackend } = await import('../../src/backend/select');
    const run = () => {
      const out = augmentBatch(batch(16, 1, 2), { crop: 4, flip: true, seed: 11 });
      const v = Array.from(out.x.dataSync());
      out.x.dispose();
      return v;
    };
    await initBackend('cpu');
    const cpu = run();
    await initBackend('wasm');
    const before = tf.memory().numTensors;
    expect(run()).toEqual(cpu);
    expect(tf.memory().numTensors).toBe(before);
    await initBackend('cpu');
  });
});
