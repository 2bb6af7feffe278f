import * as tf from '@tensorflow/tfjs';

/**
 * ReLU's gradient as one kernel, `ReluGrad(dy, x) = dy · [x > 0]` (TensorFlow's op of the same name).
 *
 * tfjs' stock gradient is dy · cast(step(x)), five kernels (IsNan, Greater, Select, Fill, Multiply) and
 * four temporaries per ReLU per backward pass: about half of the MNIST CNN's input gradient on the
 * `tensorflow` backend. The gradient registered here calls `ReluGrad` where the backend has it:
 * TensorFlow's own op on `tensorflow`, one pass over the values on `cpu`. Backends without it keep
 * tfjs' composition: `wasm` on purpose, because there its XNNPACK kernels beat a JS loop over the heap
 * (relu forward + gradient of [128,26,26,32]: 150 ms stock vs 200 ms with a JS-loop kernel, same
 * process, loaded machine). At x = 0 both give 0 (PyTorch's choice too).
 */
export const RELU_GRAD = 'ReluGrad';

interface CpuBackendLike {
  data: { get(dataId: object): { values: Float32Array } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}
interface NodeBackendLike {
  binding: { TF_ATTR_TYPE: number; TF_FLOAT: number };
  executeSingleOutput(name: string, attrs: unknown[], inputs: tf.TensorInfo[]): tf.Tensor;
}

/** out[i] = x[i] > 0 ? dy[i] : 0 */
function reluGradLoop(dy: Float32Array, x: Float32Array, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = x[i] > 0 ? dy[i] : 0;
}

type Inputs = { dy: tf.TensorInfo; x: tf.TensorInfo };

const KERNELS: tf.KernelConfig[] = [
  {
    kernelName: RELU_GRAD,
    backendName: 'cpu',
    kernelFunc: ({ inputs, backend }) => {
      const { dy, x } = inputs as Inputs;
      const b = backend as unknown as CpuBackendLike;
      const out = new Float32Array(tf.util.sizeFromShape(x.shape));
      reluGradLoop(b.data.get(dy.dataId).values, b.data.get(x.dataId).values, out);
      return b.makeTensorInfo(x.shape, 'float32', out);
    },
  },
  {
    kernelName: RELU_GRAD,
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, backend }) => {
      const { dy, x } = inputs as Inputs;
      const b = backend as unknown as NodeBackendLike;
      // TensorFlow's ReluGrad(gradients, features)
      return b.executeSingleOutput(
        RELU_GRAD,
        [{ name: 'T', type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT }],
        [dy, x],
      ) as unknown as tf.TensorInfo;
    },
  },
];

let enabled = true;
/** For same-process A/B benchmarks only: false restores tfjs' stock composition. */
export function useReluGradKernel(on: boolean): void {
  enabled = on;
}

function hasReluGrad(): boolean {
  return enabled && tf.getKernel(RELU_GRAD, tf.getBackend()) !== undefined;
}

/** tfjs' composition, for backends without the kernel. */
function stockReluGrad(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return tf.mul(dy, tf.cast(tf.step(x), 'float32'));
}

function reluGrad(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  if (x.dtype !== 'float32' || dy.dtype !== 'float32' || !hasReluGrad()) return stockReluGrad(dy, x);
  return tf.engine().runKernel(RELU_GRAD, { dy, x } as unknown as tf.NamedTensorMap) as tf.Tensor;
}

let registered = false;

/**
 * Registers the ReluGrad kernels for the backends whose package is loaded, and the gradients of Relu
 * (calling ReluGrad) and of ReluGrad itself (linear in dy, zero in x: second-order methods keep
 * working). Idempotent; kernels of a backend registered later are added on the next call.
 */
export function registerReluGrad(): void {
  for (const k of KERNELS) {
    if (!tf.getKernel(k.kernelName, k.backendName)) tf.registerKernel(k);
  }
  if (registered) return;
  registered = true;
  // tfjs warns when a gradient is overridden; this override is intended.
  /* eslint-disable no-console -- silences tfjs's own warning for the one call that overrides on purpose */
  const warn = console.warn;
  console.warn = () => undefined;
  try {
    tf.registerGradient({
      kernelName: tf.Relu,
      inputsToSave: ['x'],
      gradFunc: (dy, saved) => {
        const [x] = saved;
        return { x: () => reluGrad(dy as tf.Tensor, x) };
      },
    });
  } finally {
    console.warn = warn;
  }
  /* eslint-enable no-console */
  tf.registerGradient({
    kernelName: RELU_GRAD,
    inputsToSave: ['x'],
    gradFunc: (ddx, saved) => {
      const [x] = saved;
      return { dy: () => reluGrad(ddx as tf.Tensor, x), x: () => tf.zerosLike(x) };
    },
  });
}
