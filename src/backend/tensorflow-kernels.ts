import * as tf from '@tensorflow/tfjs';

/**
 * Convolutions with PyTorch's numeric padding on the `tensorflow` backend.
 *
 * atflow's models pass `pad: 1` (symmetric, as PyTorch) to tf.conv2d. tfjs-node 4.22 accepts only
 * 'valid' / 'same' in its Conv2D / Conv2DBackpropInput / Conv2DBackpropFilter kernels. TensorFlow's
 * `padding: 'EXPLICIT'` takes any pads but runs a slow generic path (Conv2DBackpropInput
 * [64,4,4,512]·[3,3,512,512]: 215 ms EXPLICIT against 22 ms SAME on 2 cores), so each call is mapped
 * to TensorFlow's fast paths:
 *  - 'SAME' when TensorFlow's SAME pads are exactly the requested ones (stride 1, odd kernel k,
 *    pad (k−1)/2: PyTorch's usual `padding=k//2`; also stride 2 on odd sizes);
 *  - 'VALID' when no padding is used;
 *  - otherwise 'VALID' on the input padded explicitly (one Pad op), and for the input gradient a
 *    slice of the padded gradient. For stride 2 on an even size ('same' would pad 0 before and 1
 *    after, PyTorch pads 1 and 1) this is ~1.7× faster than EXPLICIT.
 * Pads the convolution never reads (the last rows when (n + 2p − k) is not a multiple of the stride)
 * are dropped first. String pads still go to tfjs-node's kernels.
 */
const BACKEND = 'tensorflow';
const KERNELS = [tf.Conv2D, tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter] as const;

type ConvInfo = tf.backend_util.Conv2DInfo;
// tfjs-node's backend: only what these kernels call.
interface NodeBackend {
  binding: { TF_ATTR_INT: number; TF_ATTR_STRING: number; TF_ATTR_BOOL: number; TF_ATTR_TYPE: number; TF_FLOAT: number; TF_INT32: number };
  executeSingleOutput(name: string, attrs: unknown[], inputs: tf.TensorInfo[]): tf.Tensor;
}

let registered = false;
let fastPaths = true;

/** For same-process A/B benchmarks only: false sends every numeric pad to TensorFlow's EXPLICIT path (the previous kernels). */
export function useTensorflowFastConvPaths(on: boolean): void {
  fastPaths = on;
}

function isNumericPad(pad: unknown): boolean {
  return typeof pad === 'number' || Array.isArray(pad);
}

/** Pads of one spatial axis, and how TensorFlow runs it. */
interface AxisPlan {
  /** Pads actually read by the convolution (after dropping unread trailing pad). */
  readonly before: number;
  readonly after: number;
  /** TensorFlow's SAME pads for this axis give exactly before/after. */
  readonly sameMatches: boolean;
}

function axisPlan(inSize: number, outSize: number, k: number, stride: number, dilation: number, before: number): AxisPlan {
  const kEff = (k - 1) * dilation + 1;
  // rows read: (out−1)·s + kEff, starting `before` rows ahead of the input
  const after = Math.max(0, (outSize - 1) * stride + kEff - inSize - before);
  const sameOut = Math.ceil(inSize / stride);
  const sameTotal = Math.max((sameOut - 1) * stride + kEff - inSize, 0);
  const sameBefore = Math.floor(sameTotal / 2);
  return { before, after, sameMatches: sameOut === outSize && sameBefore === before && sameTotal - sameBefore === after };
}

type Plan = { kind: 'SAME' | 'VALID' } | { kind: 'PAD'; pads: [number, number, number, number] };

/** How to run a numeric-pad convolution with TensorFlow's fast paths. */
export function convPlan(info: ConvInfo): Plan {
  const h = axisPlan(info.inHeight, info.outHeight, info.filterHeight, info.strideHeight, info.dilationHeight, info.padInfo.top);
  const w = axisPlan(info.inWidth, info.outWidth, info.filterWidth, info.strideWidth, info.dilationWidth, info.padInfo.left);
  if (h.before + h.after + w.before + w.after === 0) return { kind: 'VALID' };
  if (h.sameMatches && w.sameMatches) return { kind: 'SAME' };
  return { kind: 'PAD', pads: [h.before, h.after, w.before, w.after] };
}

function convAttrs(backend: NodeBackend, info: ConvInfo, padding: 'SAME' | 'VALID' | 'EXPLICIT'): unknown[] {
  const b = backend.binding;
  const p = info.padInfo;
  return [
    { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: 'strides', type: b.TF_ATTR_INT, value: [1, info.strideHeight, info.strideWidth, 1] },
    { name: 'padding', type: b.TF_ATTR_STRING, value: padding },
    { name: 'explicit_paddings', type: b.TF_ATTR_INT, value: padding === 'EXPLICIT' ? [0, 0, p.top, p.bottom, p.left, p.right, 0, 0] : [] },
    { name: 'data_format', type: b.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'use_cudnn_on_gpu', type: b.TF_ATTR_BOOL, value: true },
    { name: 'dilations', type: b.TF_ATTR_INT, value: [1, info.dilationHeight, info.dilationWidth, 1] },
  ];
}

/** Runs a TensorFlow op on int32 constants made for the call (freed after). */
function withInt32<T>(values: number[][], shapes: number[][], f: (ts: tf.Tensor[]) => T): T {
  const ts = values.map((v, i) => tf.tensor(v, shapes[i], 'int32'));
  try {
    return f(ts);
  } finally {
    tf.dispose(ts);
  }
}

/** A 4-d x zero-padded by [before, after] on each axis, in axis order (TensorFlow's Pad). */
function pad4(backend: NodeBackend, x: tf.TensorInfo, paddings: readonly number[]): tf.Tensor {
  const b = backend.binding;
  return withInt32([[...paddings]], [[4, 2]], ([p]) =>
    backend.executeSingleOutput(
      'Pad',
      [
        { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
        { name: 'Tpaddings', type: b.TF_ATTR_TYPE, value: b.TF_INT32 },
      ],
      [x, p],
    ),
  );
}

/** x zero-padded on H and W by [top, bottom, left, right]. */
function padSpatial(backend: NodeBackend, x: tf.TensorInfo, [t, bo, l, r]: readonly number[]): tf.Tensor {
  return pad4(backend, x, [0, 0, t, bo, l, r, 0, 0]);
}

/**
 * TensorFlow 2.21's oneDNN Conv2DBackpropInput returns wrong values (zeros in place of gradients, not
 * the same ones from call to call) when the filter has one input and one output channel, [k, k, 1, 1],
 * for every k > 1, stride and padding (seen on AMD EPYC; TF_ENABLE_ONEDNN_OPTS=0 hides it). With a second,
 * all-zero output channel (dy and the filter padded on their last axis) it takes a path that is right,
 * and the extra channel adds nothing to dx.
 */
function withSecondOutputChannel(
  backend: NodeBackend,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  f: (dy: tf.TensorInfo, filter: tf.TensorInfo) => tf.TensorInfo,
): tf.TensorInfo {
  if (filter.shape[2] !== 1 || filter.shape[3] !== 1) return f(dy, filter);
  const dy2 = pad4(backend, dy, [0, 0, 0, 0, 0, 0, 0, 1]);
  const filter2 = pad4(backend, filter, [0, 0, 0, 0, 0, 0, 0, 1]);
  try {
    return f(dy2, filter2);
  } finally {
    dy2.dispose();
    filter2.dispose();
  }
}

function sliceSpatial(backend: NodeBackend, x: tf.TensorInfo, begin: number[], size: number[]): tf.Tensor {
  const b = backend.binding;
  return withInt32([begin, size], [[4], [4]], ([bg, sz]) =>
    backend.executeSingleOutput(
      'Slice',
      [
        { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
        { name: 'Index', type: b.TF_ATTR_TYPE, value: b.TF_INT32 },
      ],
      [x, bg, sz],
    ),
  );
}

/** True when this call needs our path: numeric pads, NHWC (atflow's only layout), float32. */
function wantsNumericPad(attrs: Record<string, unknown>, dtype: string): boolean {
  const format = attrs.dataFormat ?? 'NHWC';
  return isNumericPad(attrs.pad) && format === 'NHWC' && dtype === 'float32';
}

function conv2d(backend: NodeBackend, x: tf.TensorInfo, filter: tf.TensorInfo, info: ConvInfo): tf.Tensor {
  const plan = convPlan(info);
  if (!fastPaths) return backend.executeSingleOutput(tf.Conv2D, convAttrs(backend, info, 'EXPLICIT'), [x, filter]);
  if (plan.kind !== 'PAD') return backend.executeSingleOutput(tf.Conv2D, convAttrs(backend, info, plan.kind), [x, filter]);
  const xp = padSpatial(backend, x, plan.pads);
  try {
    return backend.executeSingleOutput(tf.Conv2D, convAttrs(backend, info, 'VALID'), [xp, filter]);
  } finally {
    xp.dispose();
  }
}

function conv2dBackpropInput(backend: NodeBackend, dy: tf.TensorInfo, filter: tf.TensorInfo, info: ConvInfo): tf.Tensor {
  const plan = convPlan(info);
  const [n, h, w, c] = info.inShape;
  if (!fastPaths || plan.kind !== 'PAD') {
    const padding = fastPaths ? (plan.kind as 'SAME' | 'VALID') : 'EXPLICIT';
    return withInt32([info.inShape], [[4]], ([sizes]) =>
      backend.executeSingleOutput(tf.Conv2DBackpropInput, convAttrs(backend, info, padding), [sizes, filter, dy]),
    );
  }
  const [t, bo, l, r] = plan.pads;
  const padded = [n, h + t + bo, w + l + r, c];
  const dxp = withInt32([padded], [[4]], ([sizes]) =>
    backend.executeSingleOutput(tf.Conv2DBackpropInput, convAttrs(backend, info, 'VALID'), [sizes, filter, dy]),
  );
  try {
    return sliceSpatial(backend, dxp, [0, t, l, 0], [n, h, w, c]);
  } finally {
    dxp.dispose();
  }
}

/** x[:, ::sh, ::sw, :] over the rows and columns a strided 1×1 convolution reads (TensorFlow's StridedSlice). */
function subsampleSpatial(backend: NodeBackend, x: tf.TensorInfo, outH: number, outW: number, sh: number, sw: number): tf.Tensor {
  const b = backend.binding;
  const [n, , , c] = x.shape;
  const attrs = [
    { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: 'Index', type: b.TF_ATTR_TYPE, value: b.TF_INT32 },
    ...['begin_mask', 'end_mask', 'ellipsis_mask', 'new_axis_mask', 'shrink_axis_mask'].map((name) => ({
      name,
      type: b.TF_ATTR_INT,
      value: 0,
    })),
  ];
  return withInt32(
    [
      [0, 0, 0, 0],
      [n, (outH - 1) * sh + 1, (outW - 1) * sw + 1, c],
      [1, sh, sw, 1],
    ],
    [[4], [4], [4]],
    (t) => backend.executeSingleOutput('StridedSlice', attrs, [x, ...t]),
  );
}

/**
 * TensorFlow 2.21's oneDNN Conv2DBackpropFilter corrupts the heap (glibc's "corrupted size vs. prev_size",
 * or a silent SIGSEGV later) for a 1×1 filter at stride 2 with few channels (seen: 3→8, 8→16 on 12×12 and
 * 32×32, 1→8 on 28×28; not 64→128; AMD EPYC, TF_ENABLE_ONEDNN_OPTS=0 hides it). A strided 1×1
 * convolution only reads x[:, ::s, ::s, :], so its filter gradient is the stride-1 one of that subsample,
 * a path that is right.
 */
function strided1x1BackpropFilter(backend: NodeBackend, x: tf.TensorInfo, dy: tf.TensorInfo, info: ConvInfo): tf.Tensor {
  const xs = subsampleSpatial(backend, x, info.outHeight, info.outWidth, info.strideHeight, info.strideWidth);
  const unit = { ...info, strideHeight: 1, strideWidth: 1 };
  try {
    return withInt32([info.filterShape], [[4]], ([sizes]) =>
      backend.executeSingleOutput(tf.Conv2DBackpropFilter, convAttrs(backend, unit, 'VALID'), [xs, sizes, dy]),
    );
  } finally {
    xs.dispose();
  }
}

function conv2dBackpropFilter(backend: NodeBackend, x: tf.TensorInfo, dy: tf.TensorInfo, info: ConvInfo): tf.Tensor {
  const plan = convPlan(info);
  if (
    info.filterHeight === 1 &&
    info.filterWidth === 1 &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    (info.strideHeight > 1 || info.strideWidth > 1)
  ) {
    if (plan.kind !== 'PAD') return strided1x1BackpropFilter(backend, x, dy, info);
    const xp = padSpatial(backend, x, plan.pads);
    try {
      return strided1x1BackpropFilter(backend, xp, dy, info);
    } finally {
      xp.dispose();
    }
  }
  if (!fastPaths || plan.kind !== 'PAD') {
    const padding = fastPaths ? (plan.kind as 'SAME' | 'VALID') : 'EXPLICIT';
    return withInt32([info.filterShape], [[4]], ([sizes]) =>
      backend.executeSingleOutput(tf.Conv2DBackpropFilter, convAttrs(backend, info, padding), [x, sizes, dy]),
    );
  }
  const xp = padSpatial(backend, x, plan.pads);
  try {
    return withInt32([info.filterShape], [[4]], ([sizes]) =>
      backend.executeSingleOutput(tf.Conv2DBackpropFilter, convAttrs(backend, info, 'VALID'), [xp, sizes, dy]),
    );
  } finally {
    xp.dispose();
  }
}

/**
 * Replaces tfjs-node's Conv2D / Conv2DBackpropInput / Conv2DBackpropFilter for the `tensorflow` backend
 * with versions that also take numeric pads (falling back to the originals otherwise).
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
      const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
      const a = args.attrs as unknown as tf.Conv2DAttrs;
      if (!wantsNumericPad(a as unknown as Record<string, unknown>, x.dtype)) return fallback(tf.Conv2D)(args);
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        filter.shape as [number, number, number, number],
        a.strides,
        a.dilations,
        a.pad,
        a.dimRoundingMode,
        false,
        'channelsLast',
      );
      return conv2d(args.backend as unknown as NodeBackend, x, filter, info) as unknown as tf.TensorInfo;
    },
  });

  tf.registerKernel({
    kernelName: tf.Conv2DBackpropInput,
    backendName: BACKEND,
    kernelFunc: (args) => {
      const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
      const a = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
      const backend = args.backend as unknown as NodeBackend;
      return withSecondOutputChannel(backend, dy, filter, (dy, filter) => {
        if (!wantsNumericPad(a as unknown as Record<string, unknown>, dy.dtype))
          return fallback(tf.Conv2DBackpropInput)({ ...args, inputs: { dy, filter } }) as tf.TensorInfo;
        const info = tf.backend_util.computeConv2DInfo(
          a.inputShape,
          filter.shape as [number, number, number, number],
          a.strides,
          1,
          a.pad,
          a.dimRoundingMode,
          false,
          'channelsLast',
        );
        return conv2dBackpropInput(backend, dy, filter, info) as unknown as tf.TensorInfo;
      });
    },
  });

  tf.registerKernel({
    kernelName: tf.Conv2DBackpropFilter,
    backendName: BACKEND,
    kernelFunc: (args) => {
      const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const a = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
      const nhwcFloat = (a.dataFormat ?? 'NHWC') === 'NHWC' && x.dtype === 'float32';
      // a strided 1×1 filter takes the subsample path whatever its pad (strided1x1BackpropFilter says why)
      const strided1x1 =
        nhwcFloat &&
        a.filterShape[0] === 1 &&
        a.filterShape[1] === 1 &&
        (typeof a.strides === 'number' ? a.strides > 1 : a.strides.some((v) => v > 1));
      if (!strided1x1 && !wantsNumericPad(a as unknown as Record<string, unknown>, x.dtype)) return fallback(tf.Conv2DBackpropFilter)(args);
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        a.filterShape,
        a.strides,
        1,
        a.pad,
        a.dimRoundingMode,
        false,
        'channelsLast',
      );
      return conv2dBackpropFilter(args.backend as unknown as NodeBackend, x, dy, info) as unknown as tf.TensorInfo;
    },
  });
}
