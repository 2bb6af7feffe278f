import type { ExampleColumns, Phase } from '../../core/records';
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

/**
 * One batch's rows of the `examples` table (DESIGN.md) from the clean and adversarial logit statistics.
 * `teTargetEntropy` / `tePenalty` are NaN (written as null) when TE is not active for the batch.
 */
export function exampleColumns(o: {
  readonly epoch: number;
  readonly phase: Phase;
  readonly indices: Int32Array;
  readonly labelsTrue: Int32Array;
  readonly labelsUsed: Int32Array;
  readonly clean: LogitStats;
  readonly adv: LogitStats;
  readonly teTargetEntropy?: Float32Array | null;
  readonly tePenalty?: Float32Array | null;
}): ExampleColumns {
  const B = o.indices.length;
  const isNoisy = new Uint8Array(B);
  for (let i = 0; i < B; i++) isNoisy[i] = o.labelsUsed[i] !== o.labelsTrue[i] ? 1 : 0;
  return {
    epoch: o.epoch,
    phase: o.phase,
    example: o.indices,
    label_true: o.labelsTrue,
    label_used: o.labelsUsed,
    is_noisy: isNoisy,
    loss_clean: o.clean.loss,
    pred_clean: o.clean.pred,
    correct_clean: o.clean.correct,
    p_label_clean: o.clean.pLabel,
    margin_clean: o.clean.margin,
    loss_adv: o.adv.loss,
    pred_adv: o.adv.pred,
    correct_adv: o.adv.correct,
    p_label_adv: o.adv.pLabel,
    margin_adv: o.adv.margin,
    te_target_entropy: o.teTargetEntropy ?? new Float32Array(B).fill(NaN),
    te_penalty: o.tePenalty ?? new Float32Array(B).fill(NaN),
  };
}
