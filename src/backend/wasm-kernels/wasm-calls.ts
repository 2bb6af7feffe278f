import * as tf from '@tensorflow/tfjs';

/**
 * Thin, typed calls into kernels the wasm backend already runs fast (XNNPACK convolution, transpose,
 * pad, reshape). atflow's training kernels are compositions of these. They call the kernel functions
 * directly, as the stock wasm composite kernels do, because tf ops inside a kernel would create tracked
 * tensors the engine does not expect; every intermediate is released with `release`.
 */
export type Shape4 = [number, number, number, number];

/** The part of tfjs-backend-wasm's BackendWasm that kernels use. */
export interface WasmBackendLike {
  disposeData(dataId: object, force?: boolean): boolean;
  readSync(dataId: object): unknown;
}

/** Stock wasm kernel functions, captured before atflow replaces any of them. */
const stockKernels = new Map<string, tf.KernelConfig>();

export function rememberStockKernel(config: tf.KernelConfig): void {
  if (!stockKernels.has(config.kernelName)) stockKernels.set(config.kernelName, config);
}

export function stockKernel(kernelName: string): tf.KernelConfig | undefined {
  return stockKernels.get(kernelName);
}

function kernelFor(kernelName: string): tf.KernelConfig {
  const k = stockKernels.get(kernelName) ?? tf.getKernel(kernelName, 'wasm');
  if (!k) throw new Error(`wasm kernel '${kernelName}' is not registered (is @tensorflow/tfjs-backend-wasm loaded?)`);
  return k;
}

/** Runs a wasm kernel (the stock one when atflow replaced it) and returns its single output. */
export function runWasmKernel(
  kernelName: string,
  backend: WasmBackendLike,
  inputs: Record<string, tf.TensorInfo>,
  attrs: Record<string, unknown> = {},
): tf.TensorInfo {
  const out = kernelFor(kernelName).kernelFunc({
    inputs,
    backend: backend as unknown as tf.KernelBackend,
    attrs: attrs as tf.NamedAttrMap,
  });
  return (Array.isArray(out) ? out[0] : out) as tf.TensorInfo;
}

/** Falls back to the stock wasm kernel for cases atflow's kernel does not handle. */
export function runStock(
  kernelName: string,
  args: tf.KernelFunc extends (a: infer A) => unknown ? A : never,
): tf.TensorInfo | tf.TensorInfo[] {
  const k = stockKernels.get(kernelName);
  if (!k) throw new Error(`no stock wasm kernel '${kernelName}' to fall back to for this case`);
  return k.kernelFunc(args);
}

export function release(backend: WasmBackendLike, ...infos: tf.TensorInfo[]): void {
  for (const t of infos) backend.disposeData(t.dataId);
}

export function reshape(backend: WasmBackendLike, x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return runWasmKernel('Reshape', backend, { x }, { shape });
}

export function transpose(backend: WasmBackendLike, x: tf.TensorInfo, perm: number[]): tf.TensorInfo {
  return runWasmKernel('Transpose', backend, { x }, { perm });
}

export function pad(backend: WasmBackendLike, x: tf.TensorInfo, paddings: Array<[number, number]>): tf.TensorInfo {
  return runWasmKernel('PadV2', backend, { x }, { paddings, constantValue: 0 });
}

export function slice(backend: WasmBackendLike, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  return runWasmKernel('Slice', backend, { x }, { begin, size });
}

/** XNNPACK convolution, NHWC, stride 1 or more, dilation, explicit (possibly asymmetric) zero padding. */
export function conv2d(
  backend: WasmBackendLike,
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  opts: { strides?: [number, number]; dilations?: [number, number]; pads: { top: number; bottom: number; left: number; right: number } },
): tf.TensorInfo {
  const { top, bottom, left, right } = opts.pads;
  return runWasmKernel(
    'Conv2D',
    backend,
    { x, filter },
    {
      strides: opts.strides ?? [1, 1],
      dilations: opts.dilations ?? [1, 1],
      pad: [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ],
      dataFormat: 'NHWC',
    },
  );
}

/**
 * Inserts (s-1) zeros after every row / column of an NHWC tensor: [N, H, W, C] -> [N, H*sh, W*sw, C]
 * (the trailing s-1 zero rows/columns included; callers account for them in their padding).
 */
export function zeroInterleave(backend: WasmBackendLike, x: tf.TensorInfo, sh: number, sw: number): tf.TensorInfo {
  const [n, h, w, c] = x.shape as Shape4;
  if (sh === 1 && sw === 1) return reshape(backend, x, [n, h, w, c]);
  const six = reshape(backend, x, [n, h, 1, w, 1, c]);
  const padded = pad(backend, six, [
    [0, 0],
    [0, 0],
    [0, sh - 1],
    [0, 0],
    [0, sw - 1],
    [0, 0],
  ]);
  release(backend, six);
  const out = reshape(backend, padded, [n, h * sh, w * sw, c]);
  release(backend, padded);
  return out;
}

/** What tfjs passes a kernel function, with the named inputs it must have. */
export interface KernelArgs<I extends string> {
  inputs: Record<I, tf.TensorInfo>;
  backend: WasmBackendLike;
  attrs: tf.NamedAttrMap;
}
