import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/backend/select';
import { AtflowError } from '../../../src/core/errors';
import {
  ceObjective,
  crossEntropy,
  crossEntropyPerExample,
  cwMarginPerExample,
  dlrLossPerExample,
  martLoss,
  martLossPerExample,
  tePenalty,
  tePenaltyPerExample,
  tradesKlBatchMean,
  tradesKlObjective,
  tradesKlPerExample,
  tradesKlSum,
  tradesLoss,
  withTePenalty,
} from '../../../src/algorithms/objectives';

// Two examples, three classes, written as probabilities: logits = ln p, so softmax(logits) = p exactly
// up to float32 rounding.
const P_NAT = [
  [0.5, 0.3, 0.2],
  [0.1, 0.6, 0.3],
];
const P_ADV = [
  [0.4, 0.4, 0.2],
  [0.2, 0.5, 0.3],
];
// KL_0 = 0.5·ln(0.5/0.4) + 0.3·ln(0.3/0.4) + 0.2·ln(1) = 0.111571776 − 0.086304622 = 0.025267154
// KL_1 = 0.1·ln(0.1/0.2) + 0.6·ln(0.6/0.5) + 0.3·ln(1) = −0.069314718 + 0.109392937 = 0.040078219
const KL_HAND = [0.025267154, 0.040078219];
const ln = (rows: number[][]) => tf.tensor2d(rows.map((r) => r.map(Math.log)));
const labels = () => tf.tensor1d([0, 2], 'int32');

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThanOrEqual(tol);
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`objectives on ${backend}`, () => {
    beforeAll(async () => {
      await initBackend(backend);
    });

    it('cross-entropy equals −log softmax_y by hand, and stays finite for huge logits', () => {
      tf.tidy(() => {
        const z = tf.tensor2d([
          [1, 2, 3],
          [0, 0, 0],
        ]);
        // labels [2, 1]: CE_0 = log(e^1 + e^2 + e^3) − 3 = log(1 + e^−1 + e^−2); CE_1 = log 3
        const y = tf.tensor1d([2, 1], 'int32');
        const hand = [Math.log(1 + Math.exp(-1) + Math.exp(-2)), Math.log(3)];
        close(crossEntropyPerExample(z, y).dataSync(), hand, 1e-6);
        close(crossEntropy(z, y).dataSync(), [(hand[0] + hand[1]) / 2], 1e-6);
        const big = tf.tensor2d([[1000, 0, -1000]]);
        close(crossEntropyPerExample(big, tf.tensor1d([1], 'int32')).dataSync(), [1000], 1e-3);
        close(crossEntropyPerExample(big, tf.tensor1d([0], 'int32')).dataSync(), [0], 1e-6);
      });
    });

    it('the TRADES KL term equals the hand-computed KL(p(x)‖p(x′)), per example, summed and /B', () => {
      tf.tidy(() => {
        close(tradesKlPerExample(ln(P_NAT), ln(P_ADV)).dataSync(), KL_HAND, 2e-6);
        close(tradesKlSum(ln(P_NAT), ln(P_ADV)).dataSync(), [KL_HAND[0] + KL_HAND[1]], 3e-6);
        close(tradesKlBatchMean(ln(P_NAT), ln(P_ADV)).dataSync(), [(KL_HAND[0] + KL_HAND[1]) / 2], 2e-6);
        // direction matters: KL(p‖q) ≠ KL(q‖p)
        const reversed = tradesKlSum(ln(P_ADV), ln(P_NAT)).dataSync()[0];
        expect(Math.abs(reversed - (KL_HAND[0] + KL_HAND[1]))).toBeGreaterThan(1e-3);
      });
    });

    it('a zero target probability contributes 0 (PyTorch KLDivLoss convention), not NaN', () => {
      tf.tidy(() => {
        // p(x) = [1, 0, 0] in float32 (exp(−1000) underflows); KL = −log q_0
        const nat = tf.tensor2d([[0, -1000, -1000]]);
        const adv = tf.tensor2d([[0.2, 0.1, -0.3]]);
        const q0 = Math.exp(0.2) / (Math.exp(0.2) + Math.exp(0.1) + Math.exp(-0.3));
        close(tradesKlPerExample(nat, adv).dataSync(), [-Math.log(q0)], 1e-6);
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tradesKlSum(a as tf.Tensor2D, b as tf.Tensor2D))([nat, adv]);
        for (const t of g) expect(Array.from(t.dataSync()).every(Number.isFinite)).toBe(true);
      });
    });

    it('TRADES with β = 0 is CE, and with β = 6 is CE + 6·KL_sum/B', () => {
      tf.tidy(() => {
        const y = labels();
        const ce = crossEntropy(ln(P_NAT), y).dataSync()[0];
        close(tradesLoss(ln(P_NAT), ln(P_ADV), y, 0).dataSync(), [ce], 1e-7);
        close(tradesLoss(ln(P_NAT), ln(P_ADV), y, 6).dataSync(), [ce + (6 * (KL_HAND[0] + KL_HAND[1])) / 2], 1e-5);
      });
    });

    it('the training KL is not detached: gradients reach both logits, as the analytic formulas say', () => {
      tf.tidy(() => {
        const nat = ln(P_NAT);
        const adv = ln(P_ADV);
        const [gNat, gAdv] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tradesKlBatchMean(a as tf.Tensor2D, b as tf.Tensor2D))([nat, adv]);
        // ∂KL_i/∂z_adv,k = q_k − p_k;  ∂KL_i/∂z_nat,k = p_k·(ln p_k − ln q_k − KL_i); both divided by B = 2
        const wantAdv: number[] = [];
        const wantNat: number[] = [];
        for (let i = 0; i < 2; i++)
          for (let k = 0; k < 3; k++) {
            wantAdv.push((P_ADV[i][k] - P_NAT[i][k]) / 2);
            wantNat.push((P_NAT[i][k] * (Math.log(P_NAT[i][k]) - Math.log(P_ADV[i][k]) - KL_HAND[i])) / 2);
          }
        close(gAdv.dataSync(), wantAdv, 1e-6);
        close(gNat.dataSync(), wantNat, 1e-6);
      });
    });

    it('the TE penalty is w·mean over B×K of (softmax − p̂)², per example w·mean_k (hand-computed)', () => {
      tf.tidy(() => {
        const targets = tf.tensor2d([
          [1 / 3, 1 / 3, 1 / 3],
          [0, 1, 0],
        ]);
        // squared differences: row 0: (0.5−⅓)², (0.3−⅓)², (0.2−⅓)² = 0.0277778, 0.0011111, 0.0177778 → 0.0466667
        //                      row 1: 0.01, 0.16, 0.09 → 0.26
        const w = 2;
        close(tePenaltyPerExample(ln(P_NAT), targets, w).dataSync(), [(w * 0.0466667) / 3, (w * 0.26) / 3], 1e-6);
        close(tePenalty(ln(P_NAT), targets, w).dataSync(), [(w * (0.0466667 + 0.26)) / 6], 1e-6);
      });
    });

    it('PGD+TE and TRADES+TE attack objectives are exactly docs/algorithms.md §5.3, with per-example shares that sum to them', () => {
      tf.tidy(() => {
        const y = labels();
        const targets = tf.tensor2d([
          [0.2, 0.2, 0.6],
          [0.3, 0.3, 0.4],
        ]);
        const te = { weight: 2.0214, targets };
        const pen = tePenalty(ln(P_ADV), targets, te.weight).dataSync()[0];
        const pgdTe = withTePenalty(ceObjective(), te);
        const ce = crossEntropy(ln(P_ADV), y).dataSync()[0];
        close(pgdTe(ln(P_ADV), y).dataSync(), [ce + pen], 1e-6);
        close([tf.sum(pgdTe.perExample!(ln(P_ADV), y)).dataSync()[0]], [ce + pen], 1e-6);

        const beta = 6;
        const tradesTe = withTePenalty(tradesKlObjective(ln(P_NAT), { scale: beta / 2 }), te);
        const klSum = KL_HAND[0] + KL_HAND[1];
        close(tradesTe(ln(P_ADV), y).dataSync(), [(beta / 2) * klSum + pen], 1e-5);
        close([tf.sum(tradesTe.perExample!(ln(P_ADV), y)).dataSync()[0]], [(beta / 2) * klSum + pen], 1e-5);
        // before TE starts: the unscaled KL_sum
        close(tradesKlObjective(ln(P_NAT))(ln(P_ADV), y).dataSync(), [klSum], 3e-6);
      });
    });

    it('MART equals a naive float64 transcription of the reference mart_loss', () => {
      tf.tidy(() => {
        const nat = [
          [0.3, -1.2, 2.0, 0.1],
          [1.5, 0.2, -0.7, 0.4],
          [0.0, 0.5, 0.1, 0.45],
        ];
        const adv = [
          [0.9, -0.2, 1.1, 0.3],
          [0.1, 1.2, -0.3, 0.8],
          [0.2, 0.4, 0.3, 0.1],
        ];
        const y = [2, 0, 1];
        const beta = 6;
        const softmax = (z: number[]) => {
          const m = Math.max(...z);
          const e = z.map((v) => Math.exp(v - m));
          const s = e.reduce((a, b) => a + b, 0);
          return e.map((v) => v / s);
        };
        const want = y.map((yi, i) => {
          const q = softmax(adv[i]);
          const p = softmax(nat[i]);
          const order = q
            .map((v, k) => [v, k])
            .sort((a, b) => a[0] - b[0])
            .map((e) => e[1]);
          const top = order[order.length - 1];
          const newY = top === yi ? order[order.length - 2] : top;
          const bce = -Math.log(q[yi]) - Math.log(1.0001 - q[newY] + 1e-12);
          const kl = p.reduce((a, pk, k) => a + pk * (Math.log(pk) - Math.log(q[k] + 1e-12)), 0);
          return bce + beta * kl * (1.0000001 - p[yi]);
        });
        const yT = tf.tensor1d(y, 'int32');
        close(martLossPerExample(tf.tensor2d(nat), tf.tensor2d(adv), yT, beta).dataSync(), want, 1e-5);
        close(martLoss(tf.tensor2d(nat), tf.tensor2d(adv), yT, beta).dataSync(), [(want[0] + want[1] + want[2]) / 3], 1e-5);
        // differentiable w.r.t. both logits (used with variableGrads by the MART trainer)
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => martLoss(a as tf.Tensor2D, b as tf.Tensor2D, yT, beta))([
          tf.tensor2d(nat),
          tf.tensor2d(adv),
        ]);
        for (const t of g) expect(tf.sum(tf.abs(t)).dataSync()[0]).toBeGreaterThan(0);
      });
    });

    it('CW margin and DLR equal their definitions by hand; DLR needs ≥ 3 classes', () => {
      tf.tidy(() => {
        const z = tf.tensor2d([
          [1, 3, 2, 0],
          [1, 3, 2, 0],
        ]);
        const y = tf.tensor1d([0, 1], 'int32');
        // CW: max_{j≠y} z_j − z_y = 3 − 1 = 2; 2 − 3 = −1
        close(cwMarginPerExample(z, y).dataSync(), [2, -1], 1e-6);
        // DLR: −(z_y − max_{j≠y} z_j)/(z_π1 − z_π3): −(1 − 3)/(3 − 1) = 1; −(3 − 2)/(3 − 1) = −0.5
        close(dlrLossPerExample(z, y).dataSync(), [1, -0.5], 1e-6);
        const g = tf.grad((a: tf.Tensor) => tf.sum(dlrLossPerExample(a as tf.Tensor2D, y)))(z);
        // row 1 (y = 1 on top): d/dz of −(z1 − z2)/(z1 − z3): z1 → −1/2 + 1/4·... checked numerically below
        const eps = 1e-3;
        const num = (row: number[], yi: number) => {
          const f = (r: number[]) => {
            const s = [...r].sort((a, b) => b - a);
            const other = Math.max(...r.filter((_, k) => k !== yi));
            return -(r[yi] - other) / (s[0] - s[2] + 1e-12);
          };
          return row.map((_, k) => {
            const up = [...row];
            const dn = [...row];
            up[k] += eps;
            dn[k] -= eps;
            return (f(up) - f(dn)) / (2 * eps);
          });
        };
        close(g.dataSync(), [...num([1, 3, 2, 0], 0), ...num([1, 3, 2, 0], 1)], 1e-3);
        expect(() => dlrLossPerExample(tf.tensor2d([[1, 2]]), tf.tensor1d([0], 'int32'))).toThrow(AtflowError);
        expect(() => dlrLossPerExample(tf.tensor2d([[1, 2]]), tf.tensor1d([0], 'int32'))).toThrow(/at least 3 classes/);
      });
    });

    it('rejects float labels and mismatched shapes with named errors', () => {
      tf.tidy(() => {
        expect(() => crossEntropy(ln(P_NAT), tf.tensor1d([0, 1]))).toThrow(/int32/);
        expect(() => crossEntropy(ln(P_NAT), tf.tensor1d([0, 1, 2], 'int32'))).toThrow(/labels must be \[B\] = \[2\]/);
        expect(() => tradesKlSum(ln(P_NAT), tf.zeros([2, 4]) as tf.Tensor2D)).toThrow(/same shape/);
        expect(() => withTePenalty(ceObjective(), { weight: -1, targets: ln(P_NAT) })).toThrow(/weight/);
      });
    });

    it('objectives dispose every intermediate', () => {
      const nat = ln(P_NAT);
      const adv = ln(P_ADV);
      const y = labels();
      const before = tf.memory().numTensors;
      const outs = [
        crossEntropy(adv, y),
        tradesLoss(nat, adv, y, 6),
        martLoss(nat, adv, y, 6),
        tePenalty(adv, nat, 3),
        withTePenalty(tradesKlObjective(nat, { scale: 3 }), { weight: 1, targets: nat })(adv, y),
      ];
      expect(tf.memory().numTensors).toBe(before + outs.length);
      tf.dispose([...outs, nat, adv, y]);
    });
  });
}
