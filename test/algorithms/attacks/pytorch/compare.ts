/**
 * Dev-time cross-check (not CI): atflow's attack steps and objectives vs PyTorch on the same tiny
 * network. Usage: see torch_reference.py. Prints the largest absolute difference per quantity.
 */
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../src/backend/select';
import { pgdL2Steps, pgdLinf, pgdLinfSteps } from '../../../../src/algorithms/attacks';
import {
  ceObjective,
  crossEntropy,
  martLoss,
  tePenalty,
  tradesKlObjective,
  tradesKlSum,
  tradesLoss,
  withTePenalty,
} from '../../../../src/algorithms/objectives';
import { denseModel } from '../tiny-model';

const W = [
  [0.8, -0.5, 0.3],
  [-0.4, 0.9, -0.2],
  [0.6, 0.1, -0.7],
  [-0.3, -0.6, 0.5],
];
const b = [0.1, -0.2, 0.05];
const X = [0.2, 0.9, 0.5, 0.05, 0.7, 0.3, 0.97, 0.4, 0.5, 0.5, 0.1, 0.8];
const D0 = [0.01, -0.02, 0.015, -0.005, -0.01, 0.02, 0.02, 0.0, 0.005, -0.015, -0.01, 0.02];
const T = [
  [0.6, 0.3, 0.1],
  [0.2, 0.7, 0.1],
  [0.3, 0.3, 0.4],
];

interface VG {
  value: number;
  grad: number[];
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function main(): Promise<void> {
  const ref = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  for (const backend of ['cpu', 'wasm'] as const) {
    await initBackend(backend);
    const model = denseModel(W, b, [2, 2, 1]);
    const x = tf.tensor4d(X, [3, 2, 2, 1]);
    const x0 = tf.tensor4d(
      X.map((v, i) => v + D0[i]),
      [3, 2, 2, 1],
    );
    const y = tf.tensor1d([0, 1, 2], 'int32');
    const targets = tf.tensor2d(T);
    const logitsNat = model.apply(x, 'eval');
    const rows: [string, number][] = [];
    for (let s = 1; s <= 2; s++) {
      const xa = pgdLinf(model, x, y, 0, { eps: 0.1, alpha: 0.06, steps: s, randomStart: 'none' });
      rows.push([`pgd step ${s}`, maxDiff(xa.dataSync(), ref.pgd_steps[s - 1])]);
    }
    const step = (objective: Parameters<typeof pgdLinfSteps>[4]['objective']) =>
      pgdLinfSteps(model, x, y, x0, { eps: 0.1, alpha: 0.06, steps: 1, objective }).dataSync();
    rows.push(['pgd+te step', maxDiff(step(withTePenalty(ceObjective(), { weight: 20, targets })), ref.pgd_te_step)]);
    rows.push(['trades step', maxDiff(step(tradesKlObjective(logitsNat)), ref.trades_step)]);
    rows.push([
      'trades+te step',
      maxDiff(step(withTePenalty(tradesKlObjective(logitsNat, { scale: 2 }), { weight: 20, targets })), ref.trades_te_step),
    ]);
    rows.push([
      'trades l2 step',
      maxDiff(
        pgdL2Steps(model, x, y, x0, { eps: 0.05, alpha: 0.04, steps: 1, objective: tradesKlObjective(logitsNat) }).dataSync(),
        ref.trades_l2_step,
      ),
    ]);
    const vg = (name: string, r: VG, f: (l: tf.Tensor2D) => tf.Scalar, at: tf.Tensor4D = x0) => {
      const { value, grad } = tf.valueAndGrad((xx: tf.Tensor) => f(model.apply(xx as tf.Tensor4D, 'eval')))(at);
      rows.push([`${name} value`, Math.abs(value.dataSync()[0] - r.value)]);
      rows.push([`${name} grad`, maxDiff(grad.dataSync(), r.grad)]);
    };
    vg('ce', ref.ce, (l) => crossEntropy(l, y));
    vg('kl_sum', ref.kl, (l) => tradesKlSum(logitsNat, l));
    vg('te (w=300)', ref.te300, (l) => tePenalty(l, targets, 300));
    vg('trades loss (wrt x′)', ref.trades_loss, (l) => tradesLoss(logitsNat, l, y, 6));
    vg('mart', ref.mart, (l) => martLoss(logitsNat, l, y, 6));
    const logitsAdv0 = model.apply(x0, 'eval');
    vg('trades loss (wrt x, target not detached)', ref.trades_loss_grad_nat, (l) => tradesLoss(l, logitsAdv0, y, 6), x);
    console.log(`\n${backend}: max |atflow − PyTorch|`);
    for (const [k, v] of rows) console.log(`  ${k.padEnd(44)} ${v.toExponential(2)}`);
    model.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
