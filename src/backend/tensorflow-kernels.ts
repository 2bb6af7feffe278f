import * as tf from '@tensorflow/tfjs';

/**
 * Convolutions with PyTorch's numeric padding on the `tensorflow` backend.
 *
 * atflow's models pass `pad: 1` (symmetric, as PyTorch) to tf.conv2d. tfjs-node 4.22 accepts only
 * 'valid' / 'same' in Conv2DBackpropInput / Conv2DBackpropFilter and rejects numbers in Conv2D as well
 * ("TF Backend supports only 'valid' and 'same' padding"). 'same' is not a substitute: for stride 2 on
 * an even size TensorFlow pads 0 before and 1 after, PyTorch 1 and 1. TensorFlow's own ops take
 * `padding: 'EXPLICIT'` with `explicit_paddings`, so these kernels pass the pads through unchanged:
 * one op each, no extra pad copy. String pads still go to tfjs-node's kernels.
 */
const BACKEND = 'tensorflow';
const KERNELS = [tf.Conv2D, tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter] as const;

type ConvInfo = tf.backend_util.Conv2DInfo;
// tfjs-node's backend: only what these kernels call.
interface NodeBackend {
  binding: { TF_ATTR_INT: number; TF_ATTR_STRING: number; TF_ATTR_BOOL: number; TF_ATTR_TYPE: number; TF_FLOAT: number };
  executeSingleOutput(name: string, attrs: unknown[], inputs: tf.Tensor[]): tf.Tensor;
}

let registered = false;

function isNumericPad(pad: unknown): boolean {
  return typeof pad === 'number' || Array.isArray(pad);
}

/** TensorFlow op attributes of a 2-D convolution with explicit NHWC pads. */
function explicitConvAttrs(backend: NodeBackend, info: ConvInfo): unknown[] {
  const b = backend.binding;
  const p = info.padInfo;
  return [
    { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: 'strides', type: b.TF_ATTR_INT, value: [1, info.strideHeight, info.strideWidth, 1] },
    { name: 'padding', type: b.TF_ATTR_STRING, value: 'EXPLICIT' },
    { name: 'explicit_paddings', type: b.TF_ATTR_INT, value: [0, 0, p.top, p.bottom, p.left, p.right, 0, 0] },
    { name: 'data_format', type: b.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'use_cudnn_on_gpu', type: b.TF_ATTR_BOOL, value: true },
    { name: 'dilations', type: b.TF_ATTR_INT, value: [1, info.dilationHeight, info.dilationWidth, 1] },
  ];
}

/** True when this call needs the explicit path: numeric pads, NHWC (atflow's only layout), float32. */
function wantsExplicit(attrs: Record<string, unknown>, dtype: string): boolean {
  const format = attrs.dataFormat ?? 'NHWC';
  return isNumericPad(attrs.pad) && format === 'NHWC' && dtype === 'float32';
}

/**
 * Replaces tfjs-node's Conv2D / Conv2DBackpropInput / Conv2DBackpropFilter for the `tensorflow` backend
 * with versions that also take numeric and explicit pads (falling back to the originals otherwise).
 * Call after tfjs-node is loaded; idempotent.
 */
export function registerTensorflowPaddingKernels(): void {
  if (registered) return;
  const originals = new Map(KERNELS.map((k) => [k, tf.getKernel(k, BACKEND)]));
  if ([...originals.values()].some((k) => !k)) return; // tfjs-node not loaded: nothing to extend
  registered = true;
  for (const name of KERNELS) tf.unregisterKernel(name, BACKEND);

  const fallback = (name: string) => originals.get(name as (typeof KERNELS)[number])!.kernelFunc;

  tf.registerKernel({
    kernelName: tf.Conv2D,
    backendName: BACKEND,
    kernelFunc: (args) => {
      const { x, filter } = args.inputs as { x: tf.Tensor4D; filter: tf.Tensor4D };
      const a = args.attrs as unknown as tf.Conv2DAttrs;
      if (!wantsExplicit(a as unknown as Record<string, unknown>, x.dtype)) return fallback(tf.Conv2D)(args);
      const info = tf.backend_util.computeConv2DInfo(x.shape, filter.shape, a.strides, a.dilations, a.pad, a.dimRoundingMode, false, 'channelsLast');
      const backend = args.backend as unknown as NodeBackend;
      return backend.executeSingleOutput(tf.Conv2D, explicitConvAttrs(backend, info), [x, filter]) as unknown as tf.TensorInfo;
    },
  });

  tf.registerKernel({
    kernelName: tf.Conv2DBackpropInput,
    backendName: BACKEND,
    kernelFunc: (args) => {
      const { dy, filter } = args.inputs as { dy: tf.Tensor4D; filter: tf.Tensor4D };
      const a = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
      if (!wantsExplicit(a as unknown as Record<string, unknown>, dy.dtype)) return fallback(tf.Conv2DBackpropInput)(args);
      const info = tf.backend_util.computeConv2DInfo(a.inputShape, filter.shape, a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast');
      const backend = args.backend as unknown as NodeBackend;
      const sizes = tf.tensor1d(info.inShape, 'int32');
      try {
        return backend.executeSingleOutput(tf.Conv2DBackpropInput, explicitConvAttrs(backend, info), [sizes, filter, dy]) as unknown as tf.TensorInfo;
      } finally {
        sizes.dispose();
      }
    },
  });

  tf.registerKernel({
    kernelName: tf.Conv2DBackpropFilter,
    backendName: BACKEND,
    kernelFunc: (args) => {
      const { x, dy } = args.inputs as { x: tf.Tensor4D; dy: tf.Tensor4D };
      const a = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
      if (!wantsExplicit(a as unknown as Record<string, unknown>, x.dtype)) return fallback(tf.Conv2DBackpropFilter)(args);
      const info = tf.backend_util.computeConv2DInfo(x.shape, a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast');
      const backend = args.backend as unknown as NodeBackend;
      const sizes = tf.tensor1d(info.filterShape, 'int32');
      try {
        return backend.executeSingleOutput(tf.Conv2DBackpropFilter, explicitConvAttrs(backend, info), [x, sizes, dy]) as unknown as tf.TensorInfo;
      } finally {
        sizes.dispose();
      }
    },
  });
}
