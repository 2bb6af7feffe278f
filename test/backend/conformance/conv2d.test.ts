import * as tf from '@tensorflow/tfjs';
import { BACKENDS_UNDER_TEST, compareWithCpu, coveringCases, initAllBackends, randomValues, TOLERANCE } from './conformance-helpers';

/**
 * Conv2D forward and both gradients (Conv2DBackpropInput, Conv2DBackpropFilter: atflow's wasm kernels),
 * through tf.conv2d / tf.grads so the real dispatch path runs. Every (kernel size, stride, padding)
 * geometry is tested; batch, channels and odd spatial sizes cycle so every value of each appears.
 */
const GEOMETRIES = [1, 3, 5, 7].flatMap((k) => [1, 2].flatMap((stride) => (['same', 'valid'] as const).map((pad) => ({ k, stride, pad }))));
const SHAPES = coveringCases(
  { batch: [1, 7], inChannels: [1, 3, 16, 64], outChannels: [32, 1, 8, 64], height: [5, 9, 11, 7], width: [11, 7, 5, 9] },
  GEOMETRIES.length,
);
// 'valid' needs the input at least as large as the kernel
const CASES = GEOMETRIES.map((g, i) => ({
  ...g,
  ...SHAPES[i],
  height: Math.max(g.k, SHAPES[i].height),
  width: Math.max(g.k, SHAPES[i].width),
}));

beforeAll(initAllBackends);

describe.each(BACKENDS_UNDER_TEST)('conv2d on %s matches cpu', (backend) => {
  test.each(CASES)('k$k stride $stride $pad, x [$batch,$height,$width,$inChannels] -> $outChannels', async (c) => {
    const xShape: [number, number, number, number] = [c.batch, c.height, c.width, c.inChannels];
    const wShape: [number, number, number, number] = [c.k, c.k, c.inChannels, c.outChannels];
    const xs = randomValues(xShape, 1, `x${JSON.stringify(c)}`);
    const ws = randomValues(wShape, 2, `w${JSON.stringify(c)}`);
    const run = () => {
      const x = tf.tensor4d(xs, xShape);
      const w = tf.tensor4d(ws, wShape);
      const y = tf.conv2d(x, w, c.stride, c.pad);
      // a fixed random cotangent, so every output position carries a different weight
      const r = tf.tensor(randomValues(y.shape, 3, `r${JSON.stringify(c)}`), y.shape);
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), r)),
      )([x, w]);
      return [y, dx, dw];
    };
    const { error } = await compareWithCpu(backend, `conv2d ${JSON.stringify(c)}`, run);
    expect(error).toBeLessThanOrEqual(TOLERANCE);
  });
});

/**
 * PyTorch's numeric padding (what atflow's Conv2d passes): on `tensorflow` each geometry takes one of
 * three routes (TensorFlow 'SAME' when its pads equal the requested ones, 'VALID', or an explicit Pad
 * then 'VALID' and a slice for the input gradient), so the cases cover each: stride 1 with pad (k−1)/2
 * (SAME), stride 2 on even and odd sizes (Pad+VALID / SAME), pads larger or smaller than k/2, and pads
 * the convolution never reads (stride 2, (n + 2p − k) odd).
 */
const NUMERIC_CASES = [
  { k: 3, stride: 1, pad: 1, batch: 3, inChannels: 4, outChannels: 8, height: 8, width: 8 },
  { k: 5, stride: 1, pad: 2, batch: 2, inChannels: 3, outChannels: 5, height: 7, width: 9 },
  { k: 3, stride: 2, pad: 1, batch: 3, inChannels: 8, outChannels: 16, height: 8, width: 8 },
  { k: 3, stride: 2, pad: 1, batch: 2, inChannels: 5, outChannels: 4, height: 7, width: 9 },
  { k: 1, stride: 2, pad: 0, batch: 2, inChannels: 6, outChannels: 4, height: 8, width: 8 },
  { k: 3, stride: 1, pad: 2, batch: 2, inChannels: 3, outChannels: 4, height: 6, width: 5 },
  { k: 5, stride: 1, pad: 1, batch: 2, inChannels: 3, outChannels: 4, height: 7, width: 7 },
  { k: 7, stride: 2, pad: 3, batch: 2, inChannels: 3, outChannels: 8, height: 12, width: 11 },
  { k: 4, stride: 2, pad: 1, batch: 2, inChannels: 3, outChannels: 4, height: 8, width: 9 },
];

describe.each(BACKENDS_UNDER_TEST)('conv2d with numeric (PyTorch) padding on %s matches cpu', (backend) => {
  test.each(NUMERIC_CASES)('k$k stride $stride pad $pad, x [$batch,$height,$width,$inChannels] -> $outChannels', async (c) => {
    const xShape: [number, number, number, number] = [c.batch, c.height, c.width, c.inChannels];
    const wShape: [number, number, number, number] = [c.k, c.k, c.inChannels, c.outChannels];
    const xs = randomValues(xShape, 4, `x${JSON.stringify(c)}`);
    const ws = randomValues(wShape, 5, `w${JSON.stringify(c)}`);
    const run = () => {
      const x = tf.tensor4d(xs, xShape);
      const w = tf.tensor4d(ws, wShape);
      const y = tf.conv2d(x, w, c.stride, c.pad);
      const r = tf.tensor(randomValues(y.shape, 6, `r${JSON.stringify(c)}`), y.shape);
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), r)),
      )([x, w]);
      return [y, dx, dw];
    };
    const { error, shape } = await compareWithCpu(backend, `conv2d numeric ${JSON.stringify(c)}`, run);
    expect(shape).toEqual([
      c.batch,
      Math.floor((c.height + 2 * c.pad - c.k) / c.stride) + 1,
      Math.floor((c.width + 2 * c.pad - c.k) / c.stride) + 1,
      c.outChannels,
    ]);
    expect(error).toBeLessThanOrEqual(TOLERANCE);
  });
});

/**
 * One input and one output channel ([k, k, 1, 1] filters): TensorFlow 2.21's oneDNN Conv2DBackpropInput
 * returns zeros in place of some gradients there, differently from call to call (backend/tensorflow-kernels.ts
 * routes it around). Every geometry, string and numeric pads, three calls each.
 */
const SINGLE_CHANNEL = [2, 3, 5].flatMap((k) =>
  [1, 2].flatMap((stride) => (['valid', 'same', 0, 1] as const).map((pad) => ({ k, stride, pad }))),
);

describe.each(BACKENDS_UNDER_TEST)('conv2d input gradient with a [k, k, 1, 1] filter on %s matches cpu', (backend) => {
  test.each(SINGLE_CHANNEL)('k$k stride $stride pad $pad', async (c) => {
    const xShape: [number, number, number, number] = [2, 11, 9, 1];
    const xs = randomValues(xShape, 4, `x1${JSON.stringify(c)}`);
    const ws = randomValues([c.k, c.k, 1, 1], 5, `w1${JSON.stringify(c)}`);
    const run = () => {
      const x = tf.tensor4d(xs, xShape);
      const w = tf.tensor4d(ws, [c.k, c.k, 1, 1]);
      const y = tf.conv2d(x, w, c.stride, c.pad);
      const r = tf.tensor(randomValues(y.shape, 6, `r1${JSON.stringify(c)}`), y.shape);
      const dx = () => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, w, c.stride, c.pad), r)))(x);
      return [y, dx(), dx(), dx()];
    };
    const { error } = await compareWithCpu(backend, `conv2d [k,k,1,1] ${JSON.stringify(c)}`, run);
    expect(error).toBeLessThanOrEqual(TOLERANCE);
  });
});

/**
 * A strided 1×1 filter with few channels: TensorFlow 2.21's oneDNN Conv2DBackpropFilter corrupts the heap
 * there (glibc aborts with "corrupted size vs. prev_size", or the process dies later with SIGSEGV: a CI
 * run lost its jest worker this way). backend/tensorflow-kernels.ts takes the gradient of the subsample
 * instead. Each case calls it 25 times: the corruption showed within a few hundred calls, every time.
 */
const STRIDED_1X1 = [
  { x: [4, 12, 12, 3], out: 8 },
  { x: [4, 12, 12, 8], out: 16 },
  { x: [2, 28, 28, 1], out: 8 },
  { x: [2, 13, 11, 8], out: 16 },
].flatMap((s) => [2, 3].flatMap((stride) => (['valid', 'same', 0] as const).map((pad) => ({ ...s, stride, pad }))));

describe.each(BACKENDS_UNDER_TEST)('conv2d filter gradient of a strided 1×1 filter with few channels on %s matches cpu', (backend) => {
  test.each(STRIDED_1X1)('x $x -> $out, stride $stride pad $pad', async (c) => {
    const xShape = c.x as [number, number, number, number];
    const wShape: [number, number, number, number] = [1, 1, xShape[3], c.out];
    const xs = randomValues(xShape, 4, `xs${JSON.stringify(c)}`);
    const ws = randomValues(wShape, 5, `ws${JSON.stringify(c)}`);
    const run = () => {
      const x = tf.tensor4d(xs, xShape);
      const w = tf.tensor4d(ws, wShape);
      const y = tf.conv2d(x, w, c.stride, c.pad);
      const r = tf.tensor(randomValues(y.shape, 6, `rs${JSON.stringify(c)}`), y.shape);
      const dw = () => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, a as tf.Tensor4D, c.stride, c.pad), r)))(w);
      const grads = Array.from({ length: 25 }, dw);
      return [y, ...grads];
    };
    const { error } = await compareWithCpu(backend, `conv2d strided 1x1 ${JSON.stringify(c)}`, run);
    expect(error).toBeLessThanOrEqual(TOLERANCE);
  });
});
