/**
 * Per-example statistics of a [B·K] row-major logits array, in float64 JS (no tensors): what the
 * `examples` table records for a forward pass (DESIGN.md).
 */
export interface LogitStats {
  /** CE against the label: logsumexp(z) − z_y. */
  readonly loss: Float32Array;
  readonly pred: Int32Array;
  readonly correct: Uint8Array;
  /** softmax(z)_y */
  readonly pLabel: Float32Array;
  /** z_y − max_{k≠y} z_k (AUM's margin). */
  readonly margin: Float32Array;
}

export function logitStats(logits: Float32Array, labels: Int32Array, numClasses: number): LogitStats {
  const B = labels.length;
  const K = numClasses;
  const loss = new Float32Array(B);
  const pred = new Int32Array(B);
  const correct = new Uint8Array(B);
  const pLabel = new Float32Array(B);
  const margin = new Float32Array(B);
  for (let i = 0; i < B; i++) {
    const o = i * K;
    const y = labels[i];
    let max = -Infinity;
    let arg = 0;
    let otherMax = -Infinity;
    for (let k = 0; k < K; k++) {
      const z = logits[o + k];
      if (z > max) {
        max = z;
        arg = k;
      }
      if (k !== y && z > otherMax) otherMax = z;
    }
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(logits[o + k] - max);
    const lse = max + Math.log(s);
    loss[i] = lse - logits[o + y];
    pLabel[i] = Math.exp(logits[o + y] - lse);
    pred[i] = arg;
    correct[i] = arg === y ? 1 : 0;
    margin[i] = logits[o + y] - otherMax;
  }
  return { loss, pred, correct, pLabel, margin };
}

/** Row-wise softmax of [B·K] logits. */
export function softmaxRows(logits: Float32Array, numClasses: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let o = 0; o < logits.length; o += numClasses) {
    let max = -Infinity;
    for (let k = 0; k < numClasses; k++) max = Math.max(max, logits[o + k]);
    let s = 0;
    for (let k = 0; k < numClasses; k++) s += Math.exp(logits[o + k] - max);
    for (let k = 0; k < numClasses; k++) out[o + k] = Math.exp(logits[o + k] - max) / s;
  }
  return out;
}
