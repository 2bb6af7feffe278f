import * as tf from '@tensorflow/tfjs';
import { type KernelArgs, release, reshape, runStock, runWasmKernel, slice, type WasmBackendLike, zeroInterleave } from './wasm-calls';

/** The C function behind the wasm MaxPoolWithArgmax kernel, called directly to pass its own padding. */
type ArgmaxPoolFn = (
  xId: number,
  pooledId: number,
  indexesId: number,
  dtype: number,
  includeBatchInIndex: boolean,
  batch: number,
  channels: number,
  inHeight: number,
  inWidth: number,
  outHeight: number,
  outWidth: number,
  strideHeight: number,
  strideWidth: number,
  dilationHeight: number,
  dilationWidth: number,
  filterHeight: number,
  filterWidth: number,
  padTop: number,
  padLeft: number,
) => void;

interface BackendWasmInternals extends WasmBackendLike {
  wasm: { cwrap(name: string, ret: null, args: string[]): ArgmaxPoolFn };
  dataIdMap: { get(dataId: object): { id: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}

const argmaxPoolFns = new WeakMap<object, ArgmaxPoolFn>();
function argmaxPoolFn(backend: BackendWasmInternals): ArgmaxPoolFn {
  let fn = argmaxPoolFns.get(backend);
  if (!fn) {
    fn = backend.wasm.cwrap(
      'MaxPoolWithArgmax',
      null,
      new Array<string>(19).fill('number').map((t, i) => (i === 4 ? 'boolean' : t)),
    );
    argmaxPoolFns.set(backend, fn);
  }
  return fn;
}

const FLOAT32 = 0; // CppDType.float32 in tfjs-backend-wasm

/**
 * dx of max pooling whose windows do not overlap (filter <= stride, e.g. 2x2/2): a scatter of dy to the
 * position of each window's FIRST maximum (the cpu reference's and PyTorch's choice on ties, which
 * ReLU zeros make common).
 * x is laid on the window grid [N, OH*s, OW*s, C];
 * `(x == y) * rank` (rank 0 on padding cells) marks maxima with a value that decreases along the window in row-major order, so
 * the wasm argmax pooling (which keeps the last of equal values and starts from FLT_MIN, hence is
 * wrong on raw negative windows) returns the first maximum's grid position; ScatterNd puts dy there.
 * A few linear passes instead of the stock kernel's per-input window rescans.
 */
function maxPoolGrad(args: KernelArgs<'dy' | 'input' | 'output'>): tf.TensorInfo | tf.TensorInfo[] {
  const { inputs, attrs } = args;
  const backend = args.backend as BackendWasmInternals;
  const { dy, input, output } = inputs;
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;
  if (input.dtype !== 'float32' || dy.dtype !== 'float32' || input.shape.length !== 4) return runStock('MaxPoolGrad', args as never);
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { batchSize: n, inChannels: c, inHeight: h, inWidth: w, outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw } = info;
  const kh = info.effectiveFilterHeight;
  const kw = info.effectiveFilterWidth;
  if (kh > sh || kw > sw) return overlappingMaxPoolGrad(backend, dy, input, output, info);
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const gh = oh * sh;
  const gw = ow * sw;
  // Rows/cols of x inside the grid (the grid can end before x: 'valid' with a remainder).
  const hIn = Math.min(h, gh - top);
  const wIn = Math.min(w, gw - left);

  let xIn = input;
  if (hIn < h || wIn < w) xIn = slice(backend, input, [0, 0, 0, 0], [n, hIn, wIn, c]);
  const grid = runWasmKernel(
    'PadV2',
    backend,
    { x: xIn },
    {
      paddings: [
        [0, 0],
        [top, gh - top - hIn],
        [left, gw - left - wIn],
        [0, 0],
      ],
      constantValue: 0, // only ever 0: the wasm backend caches pad operators without their value
    },
  );
  if (xIn !== input) release(backend, xIn);
  const grid6 = reshape(backend, grid, [n, oh, sh, ow, sw, c]);
  const y6 = reshape(backend, output, [n, oh, 1, ow, 1, c]);
  // Equal only has a slow generic path for broadcasting; upsample y with XNNPACK's broadcasting multiply first.
  const ones = runWasmKernel('Fill', backend, {}, { shape: [1, 1, sh, 1, sw, 1], value: 1, dtype: 'float32' });
  const yUp = runWasmKernel('Multiply', backend, { a: y6, b: ones });
  const isMax = runWasmKernel('Equal', backend, { a: grid6, b: yUp });
  release(backend, grid, grid6, y6, ones, yUp);
  const isMaxF = runWasmKernel('Cast', backend, { x: isMax }, { dtype: 'float32' });
  release(backend, isMax);
  const rank = windowRank(backend, { oh, ow, sh, sw, kh, kw, top, left, hIn, wIn });
  const ranked6 = runWasmKernel('Multiply', backend, { a: isMaxF, b: rank });
  release(backend, isMaxF, rank);
  const ranked = reshape(backend, ranked6, [n, gh, gw, c]);
  release(backend, ranked6);

  const pooled = backend.makeOutput([n, oh, ow, c], 'float32');
  const indexes = backend.makeOutput([n, oh, ow, c], 'int32');
  argmaxPoolFn(backend)(
    backend.dataIdMap.get(ranked.dataId).id,
    backend.dataIdMap.get(pooled.dataId).id,
    backend.dataIdMap.get(indexes.dataId).id,
    FLOAT32,
    true,
    n,
    c,
    gh,
    gw,
    oh,
    ow,
    sh,
    sw,
    1,
    1,
    kh,
    kw,
    0,
    0,
  );
  release(backend, ranked, pooled);

  const count = n * oh * ow * c;
  const indices = reshape(backend, indexes, [count, 1]);
  const updates = reshape(backend, dy, [count]);
  const dxGridFlat = runWasmKernel('ScatterNd', backend, { indices, updates }, { shape: [n * gh * gw * c] });
  release(backend, indexes, indices, updates);
  const dxGrid = reshape(backend, dxGridFlat, [n, gh, gw, c]);
  release(backend, dxGridFlat);
  let dx = dxGrid;
  if (top > 0 || left > 0 || gh - top !== hIn || gw - left !== wIn) {
    dx = slice(backend, dxGrid, [0, top, left, 0], [n, hIn, wIn, c]);
    release(backend, dxGrid);
  }
  return padToInput(backend, dx, h, w);
}

/**
 * [1, oh, sh, ow, sw, 1] over the window grid: for a window cell, kh*kw minus its row-major position
 * (so the first maximum ranks highest); 0 for padding cells and cells outside every window.
 */
function windowRank(
  backend: BackendWasmInternals,
  g: { oh: number; ow: number; sh: number; sw: number; kh: number; kw: number; top: number; left: number; hIn: number; wIn: number },
): tf.TensorInfo {
  const gh = g.oh * g.sh;
  const gw = g.ow * g.sw;
  const values = new Float32Array(gh * gw);
  for (let r = 0; r < gh; r++) {
    for (let q = 0; q < gw; q++) {
      const i = r % g.sh;
      const j = q % g.sw;
      const inWindow = i < g.kh && j < g.kw;
      const inX = r - g.top >= 0 && r - g.top < g.hIn && q - g.left >= 0 && q - g.left < g.wIn;
      values[r * gw + q] = inWindow && inX ? g.kh * g.kw - (i * g.kw + j) : 0;
    }
  }
  return tensorFromValues(backend, values, [1, g.oh, g.sh, g.ow, g.sw, 1]);
}

function tensorFromValues(backend: BackendWasmInternals, values: Float32Array, shape: number[]): tf.TensorInfo {
  const t = backend.makeOutput(shape, 'float32');
  backend.typedArrayFromHeap(t).set(values);
  return t;
}

/** [1, oh, ow, 1]: 1 where window cell (i, j) of output (oh, ow) lies inside x, 0 where it is padding. */
function cellInsideX(
  backend: BackendWasmInternals,
  i: number,
  j: number,
  g: { oh: number; ow: number; sh: number; sw: number; top: number; left: number; hIn: number; wIn: number },
): tf.TensorInfo {
  const values = new Float32Array(g.oh * g.ow);
  for (let a = 0; a < g.oh; a++) {
    const r = a * g.sh + i - g.top;
    for (let b = 0; b < g.ow; b++) {
      const q = b * g.sw + j - g.left;
      values[a * g.ow + b] = r >= 0 && r < g.hIn && q >= 0 && q < g.wIn ? 1 : 0;
    }
  }
  return tensorFromValues(backend, values, [1, g.oh, g.ow, 1]);
}

/**
 * Overlapping windows (e.g. 3x3/2, which the stock kernel gets wrong): one pass per window cell
 * (i, j), in row-major order. The cell's strided view of x is compared with the window maxima y; the
 * first cell that matches (tracked in `taken`) receives dy, which is scattered back to the cell's
 * strided positions by zero-interleaving and padding, and summed.
 */
function overlappingMaxPoolGrad(
  backend: BackendWasmInternals,
  dy: tf.TensorInfo,
  input: tf.TensorInfo,
  output: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo {
  const { batchSize: n, inChannels: c, inHeight: h, inWidth: w, outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw } = info;
  const kh = info.effectiveFilterHeight;
  const kw = info.effectiveFilterWidth;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Padded extent every window lies in; x may extend past it ('valid' with a remainder).
  const ph = (oh - 1) * sh + kh;
  const pw = (ow - 1) * sw + kw;
  const hIn = Math.min(h, ph - top);
  const wIn = Math.min(w, pw - left);
  let xIn = input;
  if (hIn < h || wIn < w) xIn = slice(backend, input, [0, 0, 0, 0], [n, hIn, wIn, c]);
  const xp = runWasmKernel(
    'PadV2',
    backend,
    { x: xIn },
    {
      paddings: [
        [0, 0],
        [top, ph - top - hIn],
        [left, pw - left - wIn],
        [0, 0],
      ],
      constantValue: 0,
    },
  );
  if (xIn !== input) release(backend, xIn);

  let taken = runWasmKernel('Fill', backend, {}, { shape: [n, oh, ow, c], value: 0, dtype: 'float32' });
  let dxp: tf.TensorInfo | null = null;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const cell = runWasmKernel(
        'StridedSlice',
        backend,
        { x: xp },
        {
          begin: [0, i, j, 0],
          end: [n, i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1, c],
          strides: [1, sh, sw, 1],
          beginMask: 0,
          endMask: 0,
          ellipsisMask: 0,
          newAxisMask: 0,
          shrinkAxisMask: 0,
        },
      );
      const eq = runWasmKernel('Equal', backend, { a: cell, b: output });
      const eqAll = runWasmKernel('Cast', backend, { x: eq }, { dtype: 'float32' });
      const inside = cellInsideX(backend, i, j, { oh, ow, sh, sw, top, left, hIn, wIn });
      const eqF = runWasmKernel('Multiply', backend, { a: eqAll, b: inside }); // padding cells never count
      release(backend, cell, eq, eqAll, inside);
      // first match only: eq * (1 - taken) == max(eq - taken, 0) for 0/1 values
      const diff = runWasmKernel('Sub', backend, { a: eqF, b: taken });
      const first = runWasmKernel('Relu', backend, { x: diff });
      release(backend, eqF, diff);
      const takenNext = runWasmKernel('Add', backend, { a: taken, b: first });
      release(backend, taken);
      taken = takenNext;
      const contrib = runWasmKernel('Multiply', backend, { a: first, b: dy });
      release(backend, first);
      const spread = zeroInterleave(backend, contrib, sh, sw); // [n, oh*sh, ow*sw, c]
      release(backend, contrib);
      let placed = runWasmKernel(
        'PadV2',
        backend,
        { x: spread },
        {
          paddings: [
            [0, 0],
            [i, Math.max(0, ph - i - oh * sh)],
            [j, Math.max(0, pw - j - ow * sw)],
            [0, 0],
          ],
          constantValue: 0,
        },
      );
      release(backend, spread);
      if (placed.shape[1] !== ph || placed.shape[2] !== pw) {
        const cropped = slice(backend, placed, [0, 0, 0, 0], [n, ph, pw, c]);
        release(backend, placed);
        placed = cropped;
      }
      if (dxp === null) dxp = placed;
      else {
        const sum = runWasmKernel('Add', backend, { a: dxp, b: placed });
        release(backend, dxp, placed);
        dxp = sum;
      }
    }
  }
  release(backend, xp, taken);
  const dx = slice(backend, dxp as tf.TensorInfo, [0, top, left, 0], [n, hIn, wIn, c]);
  release(backend, dxp as tf.TensorInfo);
  return padToInput(backend, dx, h, w);
}

export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: 'MaxPoolGrad',
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as tf.KernelFunc,
};

/**
 * dx of the rows and columns the pooling read, zero-padded at the end to the input's h × w (the trailing
 * rows and columns no window reached get no gradient). Takes ownership of dx.
 */
function padToInput(backend: WasmBackendLike, dx: tf.TensorInfo, h: number, w: number): tf.TensorInfo {
  const [, hIn, wIn] = dx.shape;
  if (hIn >= h && wIn >= w) return dx;
  const paddings = [
    [0, 0],
    [0, h - hIn],
    [0, w - wIn],
    [0, 0],
  ];
  const full = runWasmKernel('PadV2', backend, { x: dx }, { paddings, constantValue: 0 });
  release(backend, dx);
  return full;
}
