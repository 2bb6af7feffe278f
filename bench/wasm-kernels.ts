/**
 * Micro-benchmark of atflow's wasm training kernels against the stock tfjs-backend-wasm ones, on the
 * MNIST CNN's shapes at batch 128 (median ms of N runs), plus the CNN's input gradient (the PGD step)
 * and full weight gradient. Run: npx tsx bench/wasm-kernels.ts [runs]
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/select';
import { WASM_TRAINING_KERNELS } from '../src/backend/wasm-kernels';
import { stockKernel } from '../src/backend/wasm-kernels/wasm-calls';

const RUNS = Number(process.argv[2] ?? 7);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeMs(f: () => tf.Tensor | tf.Tensor[]): number {
  tf.dispose(f()); // warm-up (XNNPACK operator creation, allocations)
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const out = f();
    (Array.isArray(out) ? out : [out]).forEach((t) => t.dataSync());
    times.push(performance.now() - t0);
    tf.dispose(out);
  }
  return median(times);
}

/** Swaps the registered kernels between atflow's and the stock ones. */
function useStock(stock: boolean): void {
  for (const config of WASM_TRAINING_KERNELS) {
    const s = stockKernel(config.kernelName);
    if (tf.getKernel(config.kernelName, 'wasm')) tf.unregisterKernel(config.kernelName, 'wasm');
    if (stock && !s) continue; // no stock kernel: leave it unregistered, as shipped
    tf.registerKernel(stock && s ? s : { ...config, setupFunc: s?.setupFunc });
  }
}

const r = (shape: number[]) => tf.randomUniform(shape, -1, 1, 'float32', 1);

async function main(): Promise<void> {
  await initBackend('wasm');
  const n = 128;
  const x1 = r([n, 28, 28, 1]),
    w1 = r([3, 3, 1, 32]),
    y1 = r([n, 28, 28, 32]);
  const x2 = r([n, 14, 14, 32]),
    w2 = r([3, 3, 32, 64]),
    y2 = r([n, 14, 14, 64]);
  const p1 = tf.maxPool(y1 as tf.Tensor4D, 2, 2, 'valid'),
    dp1 = r(p1.shape);
  const a = r([n, 3136]),
    b = r([3136, 128]),
    dy = r([n, 128]);
  const flops = (nn: number, oh: number, ow: number, k: number, ci: number, co: number) => 2 * nn * oh * ow * k * k * ci * co;
  const cases: Array<{ name: string; flop?: number; f: () => tf.Tensor | tf.Tensor[] }> = [
    {
      name: 'Conv2D forward conv2 [128,14,14,32]->64',
      flop: flops(n, 14, 14, 3, 32, 64),
      f: () => tf.conv2d(x2 as tf.Tensor4D, w2 as tf.Tensor4D, 1, 'same'),
    },
    {
      name: 'Conv2DBackpropInput conv2',
      flop: flops(n, 14, 14, 3, 32, 64),
      f: () => tf.conv2dTranspose(y2 as tf.Tensor4D, w2 as tf.Tensor4D, [n, 14, 14, 32], 1, 'same'),
    },
    {
      name: 'Conv2DBackpropFilter conv2',
      flop: flops(n, 14, 14, 3, 32, 64),
      f: () =>
        tf
          .engine()
          .runKernel(
            'Conv2DBackpropFilter',
            { x: x2, dy: y2 },
            { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 32, 64] },
          ) as tf.Tensor,
    },
    {
      name: 'Conv2DBackpropFilter conv1 [128,28,28,1]->32',
      flop: flops(n, 28, 28, 3, 1, 32),
      f: () =>
        tf
          .engine()
          .runKernel(
            'Conv2DBackpropFilter',
            { x: x1, dy: y1 },
            { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 1, 32] },
          ) as tf.Tensor,
    },
    {
      name: 'MaxPoolGrad 2x2/2 [128,28,28,32]',
      f: () =>
        tf.engine().runKernel('MaxPoolGrad', { dy: dp1, input: y1, output: p1 }, { filterSize: 2, strides: 2, pad: 'valid' }) as tf.Tensor,
    },
    { name: 'BatchMatMul A^T dY [3136x128]^T... (dense1 dW)', flop: 2 * n * 3136 * 128, f: () => tf.matMul(a, dy, true, false) },
    { name: 'BatchMatMul dY B^T (dense1 dX)', flop: 2 * n * 3136 * 128, f: () => tf.matMul(dy, b, false, true) },
    {
      name: 'Tile [1,14,14,64] x [128,1,1,1]',
      f: () => tf.tile(tf.reshape(tf.slice(y2, [0, 0, 0, 0], [1, 14, 14, 64]), [1, 14, 14, 64]), [n, 1, 1, 1]),
    },
  ];
  const p = {
    w1,
    b1: r([32]),
    w2,
    b2: r([64]),
    w3: tf.mul(r([3136, 128]), 0.02),
    b3: r([128]),
    w4: tf.mul(r([128, 10]), 0.1),
    b4: r([10]),
  };
  const labels = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: n }, (_, i) => i % 10),
      'int32',
    ),
    10,
  );
  const loss = (x: tf.Tensor, q: typeof p) => {
    let h = tf.maxPool(tf.relu(tf.add(tf.conv2d(x as tf.Tensor4D, q.w1 as tf.Tensor4D, 1, 'same'), q.b1)) as tf.Tensor4D, 2, 2, 'valid');
    h = tf.maxPool(tf.relu(tf.add(tf.conv2d(h, q.w2 as tf.Tensor4D, 1, 'same'), q.b2)) as tf.Tensor4D, 2, 2, 'valid');
    const z = tf.relu(tf.add(tf.matMul(tf.reshape(h, [n, -1]), q.w3), q.b3));
    return tf.losses.softmaxCrossEntropy(labels, tf.add(tf.matMul(z, q.w4), q.b4)) as tf.Scalar;
  };
  cases.push({ name: 'MNIST CNN grad w.r.t. input (one PGD step), batch 128', f: () => tf.grad((x: tf.Tensor) => loss(x, p))(x1) });
  cases.push({
    name: 'MNIST CNN train-step gradients (all weights), batch 128',
    f: () =>
      tf.grads((...ws: tf.Tensor[]) =>
        loss(x1, { w1: ws[0], b1: ws[1], w2: ws[2], b2: ws[3], w3: ws[4], b3: ws[5], w4: ws[6], b4: ws[7] }),
      )(Object.values(p)),
  });

  const rows: Array<Record<string, unknown>> = [];
  for (const c of cases) {
    useStock(true);
    let stockMs: number | null = null;
    try {
      stockMs = timeMs(c.f);
    } catch {
      stockMs = null; // stock wasm has no Conv2DBackpropFilter: it cannot train at all
    }
    useStock(false);
    const ms = timeMs(c.f);
    rows.push({
      kernel: c.name,
      stock_ms: stockMs === null ? null : +stockMs.toFixed(2),
      atflow_ms: +ms.toFixed(2),
      speedup: stockMs === null ? null : +(stockMs / ms).toFixed(1),
      gflops: c.flop ? +(c.flop / ms / 1e6).toFixed(1) : null,
    });
    console.log(JSON.stringify(rows[rows.length - 1]));
  }
  console.table(rows);
}

void main();
