import * as tf from '@tensorflow/tfjs';
import { BACKENDS_UNDER_TEST, compareWithCpu, coveringCases, initAllBackends, randomValues, TOLERANCE } from './conformance-helpers';

/**
 * MaxPool forward + MaxPoolGrad (square and non-square windows, overlapping or not, 'same'/'valid',
 * odd sizes, and ReLU-style ties), matMul with every transpose combination (the dense-layer gradients),
 * and tile, each against cpu through the tf ops.
 */
const POOL_GEOMETRIES = (
  [
    [2, 2],
    [3, 3],
    [2, 3],
    [3, 2],
    [1, 1],
  ] as const
).flatMap((filter) =>
  [1, 2].flatMap((stride) => (['same', 'valid'] as const).map((pad) => ({ filter: [...filter] as [number, number], stride, pad }))),
);
const POOL_SHAPES = coveringCases(
  { batch: [1, 7], channels: [1, 3, 16, 64], height: [5, 8, 9, 7], width: [7, 9, 6, 5] },
  POOL_GEOMETRIES.length,
);
const POOL_CASES = POOL_GEOMETRIES.map((g, i) => ({ ...g, ...POOL_SHAPES[i], ties: i % 3 === 0 }));

const MATMUL_CASES = coveringCases(
  {
    transposeA: [false, true],
    transposeB: [false, true, true, false],
    batch: [[], [3], [], [2]] as number[][],
    m: [1, 7, 33, 64],
    k: [5, 64, 1, 17],
    n: [10, 1, 128, 9],
  },
  8,
);

const TILE_CASES: Array<{ shape: number[]; reps: number[] }> = [
  { shape: [3], reps: [4] },
  { shape: [2, 3], reps: [1, 5] },
  { shape: [7, 1, 4], reps: [2, 3, 1] },
  { shape: [2, 3, 4, 5], reps: [1, 2, 1, 3] },
  { shape: [1, 5, 5, 16], reps: [7, 1, 1, 1] },
  { shape: [2, 2, 2, 2, 2], reps: [2, 1, 2, 1, 2] },
];

beforeAll(initAllBackends);

describe.each(BACKENDS_UNDER_TEST)('pooling, matmul and tile on %s match cpu', (backend) => {
  test.each(POOL_CASES)('maxPool $filter stride $stride $pad, x [$batch,$height,$width,$channels], ties $ties', async (c) => {
    const shape: [number, number, number, number] = [c.batch, c.height, c.width, c.channels];
    let xs = randomValues(shape, 4, `pool${JSON.stringify(c)}`);
    // ReLU outputs: many exact zeros, so windows tie and the first maximum must get the gradient
    if (c.ties) xs = xs.map((v) => Math.max(0, v));
    const run = () => {
      const x = tf.tensor4d(xs, shape);
      const y = tf.maxPool(x, c.filter, c.stride, c.pad);
      const r = tf.tensor(randomValues(y.shape, 5, `r${JSON.stringify(c)}`), y.shape);
      const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, c.filter, c.stride, c.pad), r)))(x);
      return [y, dx];
    };
    const { error } = await compareWithCpu(backend, `pool ${JSON.stringify(c)}`, run);
    expect(error).toBeLessThanOrEqual(TOLERANCE);
  });

  test.each(MATMUL_CASES)('matMul transposeA $transposeA transposeB $transposeB batch $batch m $m k $k n $n', async (c) => {
    const aShape = [...c.batch, ...(c.transposeA ? [c.k, c.m] : [c.m, c.k])];
    const bShape = [...c.batch, ...(c.transposeB ? [c.n, c.k] : [c.k, c.n])];
    const as = randomValues(aShape, 6, `a${JSON.stringify(c)}`);
    const bs = randomValues(bShape, 7, `b${JSON.stringify(c)}`);
    const run = () => tf.matMul(tf.tensor(as, aShape), tf.tensor(bs, bShape), c.transposeA, c.transposeB);
    const { error, shape } = await compareWithCpu(backend, `matmul ${JSON.stringify(c)}`, run);
    expect(shape).toEqual([...c.batch, c.m, c.n]);
    expect(error).toBeLessThanOrEqual(TOLERANCE);
  });

  test('dense-layer gradients (matMul with transposed operands) through tf.grads', async () => {
    const xs = randomValues([7, 33], 8, 'dense x');
    const ws = randomValues([33, 10], 9, 'dense w');
    const run = () =>
      tf.grads((x: tf.Tensor, w: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, w))))([tf.tensor(xs, [7, 33]), tf.tensor(ws, [33, 10])]);
    const { error } = await compareWithCpu(backend, 'dense grads', run);
    expect(error).toBeLessThanOrEqual(TOLERANCE);
  });

  test.each(TILE_CASES)('tile $shape by $reps', async (c) => {
    const xs = randomValues(c.shape, 10, `tile${JSON.stringify(c)}`);
    const { error, shape } = await compareWithCpu(backend, `tile ${JSON.stringify(c)}`, () => tf.tile(tf.tensor(xs, c.shape), c.reps));
    expect(shape).toEqual(c.shape.map((d, i) => d * c.reps[i]));
    expect(error).toBe(0); // tile copies values: bit-exact
  });

  test('tile keeps integer tensors exact (stock fallback)', async () => {
    const { error } = await compareWithCpu(backend, 'tile int32', () =>
      tf.cast(tf.tile(tf.tensor([1, -2, 3], [3], 'int32'), [3]), 'float32'),
    );
    expect(error).toBe(0);
  });
});
