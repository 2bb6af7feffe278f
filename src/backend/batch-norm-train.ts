import * as tf from '@tensorflow/tfjs';

/**
 * Train-mode BatchNorm: y = γ·(x − μ_B)/√(σ²_B + ε) + β with the batch's mean μ_B and biased variance
 * σ²_B over (N, H, W), gradients flowing through the batch statistics.
 *
 * On `tensorflow` this is TensorFlow's FusedBatchNormV3 (is_training) forward and
 * FusedBatchNormGradV3 backward, one op each, registered as the kernels below; tfjs' composition
 * (moments + batchNorm and their gradients) is ~15 small ops per layer and pass, most of ResNet-18's
 * non-convolution time. Backends without the kernels (cpu, wasm) use the composition.
 */
export const FUSED_BN_TRAIN = 'AtflowFusedBatchNormTrain';
export const FUSED_BN_TRAIN_GRAD = 'AtflowFusedBatchNormTrainGrad';

interface NodeBackendLike {
  binding: { TF_ATTR_TYPE: number; TF_ATTR_FLOAT: number; TF_ATTR_STRING: number; TF_ATTR_BOOL: number; TF_FLOAT: number };
  executeMultipleOutputs(name: string, attrs: unknown[], inputs: tf.TensorInfo[], numOutputs: number): tf.Tensor[];
}

function bnAttrs(b: NodeBackendLike['binding'], epsilon: number): unknown[] {
  return [
    { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: 'U', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: 'epsilon', type: b.TF_ATTR_FLOAT, value: epsilon },
    { name: 'data_format', type: b.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'is_training', type: b.TF_ATTR_BOOL, value: true },
  ];
}

const TENSORFLOW_KERNELS: tf.KernelConfig[] = [
  {
    // inputs x [N,H,W,C], scale [C], offset [C] → [y, batch mean, batch variance (biased), reserve 1..3]
    kernelName: FUSED_BN_TRAIN,
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, scale, offset } = inputs as { x: tf.TensorInfo; scale: tf.TensorInfo; offset: tf.TensorInfo };
      const { epsilon } = attrs as unknown as { epsilon: number };
      const b = backend as unknown as NodeBackendLike;
      const empty = tf.tensor1d([], 'float32');
      try {
        const attrList = [...bnAttrs(b.binding, epsilon), { name: 'exponential_avg_factor', type: b.binding.TF_ATTR_FLOAT, value: 1 }];
        const [y, mean, unbiased, r1, r2, r3] = b.executeMultipleOutputs('FusedBatchNormV3', attrList, [x, scale, offset, empty, empty], 6);
        // TensorFlow's batch_variance output is Bessel-corrected (for its running average): undo it
        const n = x.shape[0] * x.shape[1] * x.shape[2];
        const biased = tf.tidy(() => tf.mul(unbiased, n > 1 ? (n - 1) / n : 1));
        unbiased.dispose();
        return [y, mean, biased, r1, r2, r3] as unknown as tf.TensorInfo[];
      } finally {
        empty.dispose();
      }
    },
  },
  {
    // inputs dy, x, scale, reserve 1..3 → [dx, dscale, doffset]
    kernelName: FUSED_BN_TRAIN_GRAD,
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { dy, x, scale, r1, r2, r3 } = inputs as Record<'dy' | 'x' | 'scale' | 'r1' | 'r2' | 'r3', tf.TensorInfo>;
      const { epsilon } = attrs as unknown as { epsilon: number };
      const b = backend as unknown as NodeBackendLike;
      const [dx, dscale, doffset, r4, r5] = b.executeMultipleOutputs(
        'FusedBatchNormGradV3',
        bnAttrs(b.binding, epsilon),
        [dy, x, scale, r1, r2, r3],
        5,
      );
      tf.dispose([r4, r5]);
      return [dx, dscale, doffset] as unknown as tf.TensorInfo[];
    },
  },
];

let enabled = true;
/** For same-process A/B benchmarks only: false uses tfjs' composition everywhere. */
export function useFusedBatchNorm(on: boolean): void {
  enabled = on;
}

let registered = false;

/** Registers the tensorflow kernels and the forward kernel's gradient. Idempotent. */
export function registerFusedBatchNorm(): void {
  if (registered) return;
  registered = true;
  for (const k of TENSORFLOW_KERNELS) if (!tf.getKernel(k.kernelName, k.backendName)) tf.registerKernel(k);
  tf.registerGradient({
    kernelName: FUSED_BN_TRAIN,
    inputsToSave: ['x', 'scale'],
    outputsToSave: [false, false, false, true, true, true],
    gradFunc: (dys, saved, attrs) => {
      const [x, scale, r1, r2, r3] = saved;
      const dy = (dys as tf.Tensor[])[0];
      const [dx, dscale, doffset] = tf
        .engine()
        .runKernel(
          FUSED_BN_TRAIN_GRAD,
          { dy, x, scale, r1, r2, r3 } as unknown as tf.NamedTensorMap,
          attrs as unknown as tf.NamedAttrMap,
        ) as tf.Tensor[];
      return { x: () => dx, scale: () => dscale, offset: () => doffset };
    },
  });
}

function fusedAvailable(x: tf.Tensor): boolean {
  return enabled && x.dtype === 'float32' && tf.getKernel(FUSED_BN_TRAIN, tf.getBackend()) !== undefined;
}

/**
 * Train-mode BatchNorm of NHWC `x` over (N, H, W): the normalised output and the batch's mean and
 * biased variance [C] (for the running statistics). Gradients reach x, gamma and beta through the
 * batch statistics, fused on `tensorflow`, composed elsewhere.
 */
export function batchNormTrain(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
): { y: tf.Tensor4D; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  if (fusedAvailable(x)) {
    const [y, mean, variance, r1, r2, r3] = tf
      .engine()
      .runKernel(
        FUSED_BN_TRAIN,
        { x, scale: gamma, offset: beta } as unknown as tf.NamedTensorMap,
        { epsilon } as unknown as tf.NamedAttrMap,
      ) as tf.Tensor[];
    tf.dispose([r1, r2, r3]); // kept for the gradient by the tape, not needed here
    return { y: y as tf.Tensor4D, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
  }
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  const y = tf.batchNorm4d(x, mean as tf.Tensor1D, variance as tf.Tensor1D, beta, gamma, epsilon);
  return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}
