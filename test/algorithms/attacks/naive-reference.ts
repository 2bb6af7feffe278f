/**
 * A second, naive implementation for the reference cross-check: the dense model z = x·W + b and the
 * objectives' values and input gradients, in float64 plain arrays with analytic derivatives. No tfjs.
 */
export type Mat = number[][];

export function forward(X: Mat, W: Mat, b: number[]): Mat {
  return X.map((x) => b.map((bk, k) => x.reduce((a, xd, d) => a + xd * W[d][k], bk)));
}

export function softmax(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, v) => a + v, 0);
  return e.map((v) => v / s);
}

/** Back through the dense layer: ∂J/∂x_d = Σ_k W[d][k]·∂J/∂z_k. */
export function backToInput(dZ: Mat, W: Mat): Mat {
  return dZ.map((dz) => W.map((row) => row.reduce((a, w, k) => a + w * dz[k], 0)));
}

/** Mean CE over the batch: value and ∂/∂z = (softmax − onehot)/B. */
export function ce(Z: Mat, y: number[]): { value: number; dZ: Mat } {
  const B = Z.length;
  let value = 0;
  const dZ = Z.map((z, i) => {
    const p = softmax(z);
    value += -Math.log(p[y[i]]) / B;
    return p.map((pk, k) => (pk - (k === y[i] ? 1 : 0)) / B);
  });
  return { value, dZ };
}

/** KL_sum(p(x)‖p(x′)) w.r.t. the adversarial logits: value and ∂/∂z′ = q − p. */
export function klSum(Znat: Mat, Zadv: Mat): { value: number; dZ: Mat } {
  let value = 0;
  const dZ = Zadv.map((za, i) => {
    const p = softmax(Znat[i]);
    const q = softmax(za);
    value += p.reduce((a, pk, k) => a + pk * (Math.log(pk) - Math.log(q[k])), 0);
    return q.map((qk, k) => qk - p[k]);
  });
  return { value, dZ };
}

/** w·mean_{B×K}(softmax(z) − t)²: value and ∂/∂z_k = (2w/BK)·q_k·[(q_k − t_k) − Σ_j (q_j − t_j)·q_j]. */
export function te(Z: Mat, T: Mat, w: number): { value: number; dZ: Mat } {
  const B = Z.length;
  const K = Z[0].length;
  let value = 0;
  const dZ = Z.map((z, i) => {
    const q = softmax(z);
    const r = q.map((qk, k) => qk - T[i][k]);
    value += (w * r.reduce((a, v) => a + v * v, 0)) / (B * K);
    const s = r.reduce((a, rj, j) => a + rj * q[j], 0);
    return q.map((qk, k) => ((2 * w) / (B * K)) * qk * (r[k] - s));
  });
  return { value, dZ };
}

export function add(a: Mat, b: Mat, sb = 1): Mat {
  return a.map((r, i) => r.map((v, j) => v + sb * b[i][j]));
}

/** MART per the reference mart_loss (value only; its gradient is checked by finite differences). */
export function mart(Znat: Mat, Zadv: Mat, y: number[], beta: number): number {
  let total = 0;
  Zadv.forEach((za, i) => {
    const q = softmax(za);
    const p = softmax(Znat[i]);
    const order = q
      .map((v, k) => [v, k])
      .sort((a, c) => a[0] - c[0])
      .map((e) => e[1]);
    const top = order[order.length - 1];
    const newY = top === y[i] ? order[order.length - 2] : top;
    const bce = -Math.log(q[y[i]]) - Math.log(1.0001 - q[newY] + 1e-12);
    const kl = p.reduce((a, pk, k) => a + pk * (Math.log(pk) - Math.log(q[k] + 1e-12)), 0);
    total += bce + beta * kl * (1.0000001 - p[y[i]]);
  });
  return total / Zadv.length;
}

/** Central finite differences of f w.r.t. every entry of X (float64). */
export function finiteDiff(f: (X: Mat) => number, X: Mat, h = 1e-5): Mat {
  return X.map((row, i) =>
    row.map((_, d) => {
      const up = X.map((r) => [...r]);
      const dn = X.map((r) => [...r]);
      up[i][d] += h;
      dn[i][d] -= h;
      return (f(up) - f(dn)) / (2 * h);
    }),
  );
}

export const sign = (v: number) => (v > 0 ? 1 : v < 0 ? -1 : 0);
export const clamp01 = (v: number) => Math.min(1, Math.max(0, v));

/** One PGD-ℓ∞ step: clamp(min(max(x′ + α·sign(g), x − ε), x + ε), 0, 1). */
export function linfStep(X: Mat, Xadv: Mat, G: Mat, eps: number, alpha: number): Mat {
  return Xadv.map((r, i) => r.map((v, d) => clamp01(Math.min(Math.max(v + alpha * sign(G[i][d]), X[i][d] - eps), X[i][d] + eps))));
}

/** One PGD-ℓ2 step: x + renorm_ε(x′ + α·g/(‖g‖+1e−10) − x), clamped. */
export function l2Step(X: Mat, Xadv: Mat, G: Mat, eps: number, alpha: number): Mat {
  return Xadv.map((r, i) => {
    const gn = Math.sqrt(G[i].reduce((a, v) => a + v * v, 0));
    const delta = r.map((v, d) => v + (alpha * G[i][d]) / (gn + 1e-10) - X[i][d]);
    const dn = Math.sqrt(delta.reduce((a, v) => a + v * v, 0));
    const f = dn > eps ? eps / (dn + 1e-7) : 1;
    return delta.map((v, d) => clamp01(X[i][d] + v * f));
  });
}
