import * as tf from '@tensorflow/tfjs';
import { conv2d, release, runStock, slice, transpose, type KernelArgs } from './wasm-calls';

/**
 * dW of a convolution as ONE XNNPACK convolution (the stock wasm backend has no such kernel at all):
 *   dW[kh,kw,ci,co] = sum_{n,oh,ow} x[n, oh*s+kh-pt, ow*s+kw-pl, ci] * dy[n,oh,ow,co]
 * is a convolution of x with batch and channel axes swapped ([Ci,H,W,N]) by the filter dy as
 * [OH,OW,N,Co], dilation = stride, stride 1; its [Ci,KH,KW,Co] output is transposed to [KH,KW,Ci,Co].
 * Rows/columns of x that no window reaches ('valid' with a remainder) are cropped first.
 */
function conv2dBackpropFilter(args: KernelArgs<'x' | 'dy'>): tf.TensorInfo | tf.TensorInfo[] {
  const { inputs, backend, attrs } = args;
  const { x, dy } = inputs;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const format = tf.backend_util.convertConv2DDataFormat(dataFormat);
  if (format !== 'channelsLast' || x.dtype !== 'float32' || dy.dtype !== 'float32') return runStock('Conv2DBackpropFilter', args as never);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    format,
  );
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, inHeight, inWidth, outHeight, outWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Padding after x so that the output is exactly KH x KW; negative = rows no window reaches.
  const bottom = kh + (outHeight - 1) * sh - inHeight - top;
  const right = kw + (outWidth - 1) * sw - inWidth - left;

  let xUsed = x;
  if (bottom < 0 || right < 0) {
    const [n, h, w, c] = x.shape;
    xUsed = slice(backend, x, [0, 0, 0, 0], [n, h + Math.min(0, bottom), w + Math.min(0, right), c]);
  }
  const xT = transpose(backend, xUsed, [3, 1, 2, 0]); // [Ci, H, W, N]
  if (xUsed !== x) release(backend, xUsed);
  const dyT = transpose(backend, dy, [1, 2, 0, 3]); // [OH, OW, N, Co]
  const out = conv2d(backend, xT, dyT, {
    dilations: [sh, sw],
    pads: { top, bottom: Math.max(0, bottom), left, right: Math.max(0, right) },
  }); // [Ci, KH, KW, Co]
  release(backend, xT, dyT);
  const dw = transpose(backend, out, [1, 2, 0, 3]);
  release(backend, out);
  return dw;
}

export const conv2dBackpropFilterConfig: tf.KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilter as unknown as tf.KernelFunc,
};
