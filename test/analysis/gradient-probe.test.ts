import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Model, NamedVariable } from '../../src/core/model';
import { deriveSeed, Rng } from '../../src/core/rng';
import { gradientProbe, logGrid, trainerObjective } from '../../src/analysis/gradient-probe';
import { writeGradientProbe } from '../../src/report/gradient-probe-files';
import { createModel } from '../../src/models';
import { createTrainer } from '../../src/config/builtins';
import { duck, lit } from '../logs/duck';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const v = (name: string, values: number[], shape: number[]): NamedVariable => ({
  name,
  variable: tf.variable(tf.tensor(values, shape), true, `${name}-${Math.random()}`),
});

function tinyModel(): Model {
  const p = [v('a.weight', [1, -2, 0.5, 3, 0.25, -1], [2, 3]), v('a.bias', [0.1, -0.2, 0.3], [3])];
  const b = [v('bn.running_mean', [0, 0, 0], [3])];
  return {
    name: 'tiny',
    numClasses: 3,
    inputShape: [1, 1, 2],
    parameters: p,
    buffers: b,
    apply: () => {
      throw new Error('unused');
    },
    dispose: () => [...p, ...b].forEach((q) => q.variable.dispose()),
  };
}

test('quadratic loss: Δ(α) = α‖c⊙d‖ / ‖c⊙θ‖ with d the seeded per-tensor-normalised direction', () => {
  const m = tinyModel();
  const c = [
    [1, 2, 3, 4, 5, 6],
    [0.5, 7, 1],
  ];
  const theta = m.parameters.map((p) => Array.from(p.variable.dataSync()));
  // L = ½ Σ c·w², and a side effect on a buffer like BatchNorm's running stats in train mode
  const loss = (model: Model) => {
    const next = tf.add(model.buffers[0].variable, 1);
    model.buffers[0].variable.assign(next);
    next.dispose();
    return tf.tidy(
      () =>
        tf.addN(
          model.parameters.map((p, i) => tf.mul(0.5, tf.sum(tf.mul(tf.tensor(c[i], p.variable.shape), tf.square(p.variable))))),
        ) as tf.Scalar,
    );
  };
  const before = tf.memory().numTensors;
  const alphas = logGrid(1e-4, 1e-1, 4);
  const rows = gradientProbe(m, loss, { seed: 5, alphas });
  const d = theta.map((t, i) => {
    const eps = new Rng(deriveSeed(5, 'gradient-probe-direction', i)).fillNormal(new Float32Array(t.length));
    const s = Math.hypot(...t) / Math.hypot(...eps);
    return Array.from(eps, (e) => e * s);
  });
  const norm = (xs: number[][]) => Math.sqrt(xs.flat().reduce((a, x) => a + x * x, 0));
  const expectedRatio = norm(d.map((di, i) => di.map((x, j) => c[i][j] * x))) / norm(theta.map((t, i) => t.map((x, j) => c[i][j] * x)));
  expect(rows.map((r) => r.alpha)).toEqual(alphas);
  rows.forEach((r) => expect(r.delta / (r.alpha * expectedRatio)).toBeCloseTo(1, 3));
  expect(rows[0].grad_norm_base).toBeCloseTo(norm(theta.map((t, i) => t.map((x, j) => c[i][j] * x))), 4);
  // weights and buffers restored exactly, nothing leaked
  expect(m.parameters.map((p) => Array.from(p.variable.dataSync()))).toEqual(theta.map((t) => Array.from(Float32Array.from(t))));
  expect(Array.from(m.buffers[0].variable.dataSync())).toEqual([0, 0, 0]);
  expect(tf.memory().numTensors).toBe(before);
  m.dispose();
});

test('PGD-AT objective on a small MLP: Δ → 0 as α → 0, grows with α, no leaks; Parquet + SVG written', async () => {
  const model = createModel('mlp', { numClasses: 10, inputShape: [4, 4, 1], seed: 1 });
  const trainer = createTrainer('pgd-at', { attack: { eps: 0.1, alpha: 0.03, steps: 3 } });
  const rng = new Rng(3);
  const x = tf.tensor4d(rng.fillUniform(new Float32Array(16 * 16), 0, 1), [16, 4, 4, 1]);
  const y = tf.tensor1d(
    Int32Array.from({ length: 16 }, () => rng.int(10)),
    'int32',
  );
  const before = tf.memory().numTensors;
  const rows = gradientProbe(model, trainerObjective(trainer, x, y, 42), { seed: 9, alphas: [1e-6, 1e-3, 1e-1] });
  expect(tf.memory().numTensors).toBe(before);
  expect(rows[0].delta).toBeLessThan(1e-2);
  expect(rows[2].delta).toBeGreaterThan(rows[0].delta);
  for (const r of rows) expect(Number.isFinite(r.delta) && Number.isFinite(r.loss)).toBe(true);
  // same seeds → same numbers (fixed batch, attack seed and direction)
  expect(gradientProbe(model, trainerObjective(trainer, x, y, 42), { seed: 9, alphas: [1e-6, 1e-3, 1e-1] })).toEqual(rows);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-probe-'));
  try {
    await writeGradientProbe(dir, { runId: 'r', epoch: 2, trainer: 'pgd-at', seed: 9, batchSize: 16, rows });
    await writeGradientProbe(dir, { runId: 'r', epoch: 3, trainer: 'pgd-at', seed: 9, batchSize: 16, rows });
    await writeGradientProbe(dir, { runId: 'r', epoch: 2, trainer: 'pgd-at', seed: 9, batchSize: 16, rows }); // replaces epoch 2
    const got = await duck(
      `select epoch, alpha, delta from read_parquet(${lit(path.join(dir, 'gradient_probe.parquet'))}) order by epoch, alpha`,
    );
    expect(got).toEqual([2, 3].flatMap((e) => rows.map((r) => ({ epoch: e, alpha: r.alpha, delta: r.delta }))));
    const svg = fs.readFileSync(path.join(dir, 'gradient_probe.svg'), 'utf8');
    // one line per probed epoch (vega draws each as a path in a mark-line group)
    expect((svg.match(/<g class="mark-line role-mark[^"]*"[^>]*>\s*<path/g) ?? []).length).toBe(2);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    tf.dispose([x, y]);
    model.dispose();
  }
});

/** softmax regression x ↦ flatten(x)·W + b, the model whose CE gradient has a closed form */
function linearModel(rng: Rng, features: number, classes: number): Model {
  const p = [
    v(
      'fc.weight',
      Array.from(rng.fillNormal(new Float32Array(features * classes)), (z) => 0.5 * z),
      [features, classes],
    ),
    v(
      'fc.bias',
      Array.from(rng.fillNormal(new Float32Array(classes)), (z) => 0.1 * z),
      [classes],
    ),
  ];
  return {
    name: 'linear',
    numClasses: classes,
    inputShape: [features, 1, 1],
    parameters: p,
    buffers: [],
    apply: (x) => tf.tidy(() => tf.add(tf.matMul(tf.reshape(x, [x.shape[0], features]), p[0].variable), p[1].variable) as tf.Tensor2D),
    dispose: () => p.forEach((q) => q.variable.dispose()),
  };
}

/** ∇ of mean CE(softmax(X·W + b), y) in plain JS: dW = Xᵀ(P − Y)/n, db = mean(P − Y), flattened [W, b] */
function ceGradient(X: number[][], y: number[], W: number[], b: number[], classes: number): number[] {
  const n = X.length;
  const f = X[0].length;
  const gW = new Array(f * classes).fill(0);
  const gb = new Array(classes).fill(0);
  X.forEach((xi, i) => {
    const z = b.map((bk, k) => bk + xi.reduce((s, xj, j) => s + xj * W[j * classes + k], 0));
    const m = Math.max(...z);
    const e = z.map((zk) => Math.exp(zk - m));
    const sum = e.reduce((s, t) => s + t, 0);
    e.forEach((ek, k) => {
      const r = (ek / sum - (k === y[i] ? 1 : 0)) / n;
      gb[k] += r;
      xi.forEach((xj, j) => (gW[j * classes + k] += xj * r));
    });
  });
  return [...gW, ...gb];
}

test("adversarial 'fixed': Δ(α) equals the closed-form CE gradient change with the attack at θ held fixed", () => {
  const rng = new Rng(11);
  const [n, f, k] = [12, 6, 3];
  const model = linearModel(rng, f, k);
  const trainer = createTrainer('pgd-at', { attack: { eps: 0.3, alpha: 0.1, steps: 5 } });
  const x = tf.tensor4d(rng.fillUniform(new Float32Array(n * f), 0, 1), [n, f, 1, 1]);
  const y = tf.tensor1d(
    Int32Array.from({ length: n }, () => rng.int(k)),
    'int32',
  );
  const alphas = [1e-3, 1e-1, 0.5];
  const before = tf.memory().numTensors;
  const fixed = gradientProbe(model, trainerObjective(trainer, x, y, 7), { seed: 4, alphas, adversarial: 'fixed' });
  const recomputed = gradientProbe(model, trainerObjective(trainer, x, y, 7), { seed: 4, alphas });
  expect(tf.memory().numTensors).toBe(before);

  // the reference: the attack's examples at θ (the same call the probe makes), then plain-JS gradients
  const xAdv = tf.tidy(() => {
    const logits = model.apply(x, 'eval');
    return trainer.attack({ model, x, y, seed: 7, logitsNatEval: logits, te: null });
  });
  const Xadv = Array.from({ length: n }, (_, i) => Array.from(xAdv.dataSync().slice(i * f, (i + 1) * f)));
  xAdv.dispose();
  const labels = Array.from(y.dataSync());
  const theta = model.parameters.map((p) => Array.from(p.variable.dataSync()));
  const d = theta.map((t, i) => {
    const eps = new Rng(deriveSeed(4, 'gradient-probe-direction', i)).fillNormal(new Float32Array(t.length));
    const s = Math.hypot(...t) / Math.hypot(...eps);
    return Array.from(eps, (e) => e * s);
  });
  const g0 = ceGradient(Xadv, labels, theta[0], theta[1], k);
  const norm0 = Math.hypot(...g0);
  alphas.forEach((a, j) => {
    const g = ceGradient(
      Xadv,
      labels,
      theta[0].map((w, i) => w + a * d[0][i]),
      theta[1].map((w, i) => w + a * d[1][i]),
      k,
    );
    const expected = Math.hypot(...g.map((gi, i) => gi - g0[i])) / norm0;
    expect(fixed[j].delta / expected).toBeCloseTo(1, 3);
    expect(fixed[j].grad_norm_base / norm0).toBeCloseTo(1, 4);
  });
  // the two modes share the base point; at a large step the recomputed attack moves, and with it Δ
  expect(recomputed[0].grad_norm_base).toBe(fixed[0].grad_norm_base);
  expect(Math.abs(recomputed[2].delta - fixed[2].delta) / fixed[2].delta).toBeGreaterThan(0.01);
  tf.dispose([x, y]);
  model.dispose();
});
