import { initBackend } from '../../src/backend/select';
import { deriveSeed, Rng } from '../../src/core/rng';
import { createModel, stateDictOf } from '../../src/models';
import { firstDifference } from './helpers';

function stats(v: ArrayLike<number>) {
  let mean = 0;
  for (let i = 0; i < v.length; i++) mean += v[i];
  mean /= v.length;
  let sq = 0;
  let maxAbs = 0;
  for (let i = 0; i < v.length; i++) {
    sq += (v[i] - mean) ** 2;
    maxAbs = Math.max(maxAbs, Math.abs(v[i]));
  }
  return { mean, std: Math.sqrt(sq / v.length), maxAbs };
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('initialisation (docs/algorithms.md §3)', () => {
  it('PyTorch defaults: conv and linear weights and biases ~ U(±1/√fan_in)', () => {
    const m = createModel('cnn-small', { numClasses: 10, inputShape: [28, 28, 1], seed: 11 });
    const sd = new Map(stateDictOf(m).map((e) => [e.name, e.values]));
    const fanIn: Record<string, number> = { 'conv1.': 9, 'conv2.': 288, 'fc1.': 1600, 'fc2.': 128 };
    for (const [name, values] of sd) {
      const bound = 1 / Math.sqrt(fanIn[name.slice(0, name.indexOf('.') + 1)]);
      const s = stats(values);
      expect([name, s.maxAbs <= bound]).toEqual([name, true]);
      if (values.length >= 1000) {
        // U(−b, b): mean 0, std b/√3; the extremes come close to b
        expect(Math.abs(s.mean)).toBeLessThan(0.05 * bound);
        expect(Math.abs(s.std / (bound / Math.sqrt(3)) - 1)).toBeLessThan(0.03);
        expect(s.maxAbs).toBeGreaterThan(0.99 * bound);
      }
    }
    m.dispose();
  });

  it('WRN rule: conv ~ N(0, 2/(k·k·out)), BN γ=1 β=0, fc bias 0, fc weight PyTorch default', () => {
    const m = createModel('wrn-16-4', { numClasses: 10, seed: 12 });
    const sd = new Map(stateDictOf(m).map((e) => [e.name, e.values]));
    for (const [name, shape] of [
      ['block2.layer.1.conv1.weight', [128, 128, 3, 3]],
      ['block3.layer.0.convShortcut.weight', [256, 128, 1, 1]],
    ] as const) {
      const s = stats(sd.get(name)!);
      const std = Math.sqrt(2 / (shape[2] * shape[3] * shape[0]));
      expect(Math.abs(s.mean)).toBeLessThan(0.02 * std);
      expect(Math.abs(s.std / std - 1)).toBeLessThan(0.03);
    }
    expect(stats(sd.get('fc.bias')!).maxAbs).toBe(0);
    const fc = stats(sd.get('fc.weight')!);
    expect(fc.maxAbs).toBeLessThanOrEqual(1 / Math.sqrt(256));
    expect(fc.maxAbs).toBeGreaterThan(0.9 / Math.sqrt(256));
    expect(Array.from(sd.get('block1.layer.0.bn1.weight')!).every((v) => v === 1)).toBe(true);
    expect(Array.from(sd.get('block1.layer.0.bn1.bias')!).every((v) => v === 0)).toBe(true);
    expect(Array.from(sd.get('bn1.running_var')!).every((v) => v === 1)).toBe(true);
    expect(Array.from(sd.get('bn1.running_mean')!).every((v) => v === 0)).toBe(true);
    expect(Array.from(sd.get('bn1.num_batches_tracked')!)).toEqual([0]);
    m.dispose();
  });

  it("slot i draws from new Rng(deriveSeed(seed, 'init', i)) in PyTorch layout order; seeds decide everything", () => {
    const m = createModel('cnn-small', { numClasses: 10, inputShape: [28, 28, 1], seed: 42 });
    const sd = stateDictOf(m);
    const conv2 = sd[2];
    expect(conv2.name).toBe('conv2.weight');
    const rng = new Rng(deriveSeed(42, 'init', 2));
    const bound = 1 / Math.sqrt(288);
    const expected = Float32Array.from({ length: 64 * 32 * 9 }, () => -bound + 2 * bound * rng.uniform());
    expect(firstDifference(conv2.values, expected)).toBe(-1);
    const twin = createModel('cnn-small', { numClasses: 10, inputShape: [28, 28, 1], seed: 42 });
    const sibling = createModel('cnn-small', { numClasses: 10, inputShape: [28, 28, 1], seed: 43 });
    const same = stateDictOf(twin);
    const other = stateDictOf(sibling);
    sd.forEach((e, i) => expect(firstDifference(same[i].values, e.values)).toBe(-1));
    expect(firstDifference(other[2].values, conv2.values)).toBe(0);
    [m, twin, sibling].forEach((x) => x.dispose());
  });
});
