import * as tf from '@tensorflow/tfjs';
import { conv2d, release, runStock, runWasmKernel, slice, transpose, zeroInterleave, type KernelArgs } from './wasm-calls';

/**
 * dx of a convolution as ONE stride-1 XNNPACK convolution: the gradient dy, with (stride-1) zeros inserted
 * between its rows/columns, correlated with the spatially flipped filter whose in/out channels are
 * swapped. Padding before = K-1-pad_before; after = whatever makes dx exactly the input's size.
 * The stock wasm kernel is a scalar loop (10-30x slower than the forward convolution).
 */
function conv2dBackpropInput(args: KernelArgs<'dy' | 'filter'>): tf.TensorInfo | tf.TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const dy = inputs.dy;
  const filter = inputs.filter;
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const format = tf.backend_util.convertConv2DDataFormat(dataFormat);
  if (format !== 'channelsLast' || dy.dtype !== 'float32' || filter.dtype !== 'float32')
    return runStock('Conv2DBackpropInput', args as never);
  const info = tf.backend_util.computeConv2DInfo(
    inputShape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    format,
  );
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, inHeight, inWidth, outHeight, outWidth } = info;
  const top = kh - 1 - info.padInfo.top;
  const left = kw - 1 - info.padInfo.left;
  // Height of the zero-interleaved dy that carries data ((OH-1)*s+1), and the padding after it that
  // makes the stride-1 output exactly inHeight rows.
  let bottom = inHeight - ((outHeight - 1) * sh + 1) + info.padInfo.top;
  let right = inWidth - ((outWidth - 1) * sw + 1) + info.padInfo.left;
  if (top < 0 || left < 0) return runStock('Conv2DBackpropInput', args as never);

  // zeroInterleave leaves (s-1) trailing zero rows/cols; they count against the padding after.
  let dilated = zeroInterleave(backend, dy, sh, sw);
  bottom -= sh - 1;
  right -= sw - 1;
  if (bottom < 0 || right < 0) {
    const [n, h, w, c] = dilated.shape;
    const cropped = slice(backend, dilated, [0, 0, 0, 0], [n, h + Math.min(0, bottom), w + Math.min(0, right), c]);
    release(backend, dilated);
    dilated = cropped;
    bottom = Math.max(0, bottom);
    right = Math.max(0, right);
  }
  // [KH, KW, Cin, Cout] -> flipped in space, [KH, KW, Cout, Cin]
  const flipped = runWasmKernel('Reverse', backend, { x: filter }, { dims: [0, 1] });
  const kernel = transpose(backend, flipped, [0, 1, 3, 2]);
  release(backend, flipped);
  const dx = conv2d(backend, dilated, kernel, { pads: { top, bottom, left, right } });
  release(backend, dilated, kernel);
  return dx;
}

export const conv2dBackpropInputConfig: tf.KernelConfig = {
  kernelName: 'Conv2DBackpropInput',
  backendName: 'wasm',
  kernelFunc: conv2dBackpropInput as unknown as tf.KernelFunc,
};
