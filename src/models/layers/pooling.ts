import * as tf from '@tensorflow/tfjs';

/**
 * Pooling with PyTorch's semantics (no padding, floor mode): F.max_pool2d(x, k) / F.avg_pool2d(x, k),
 * stride = kernel. tfjs 'valid' gives ceil((n−k+1)/s) = floor((n−k)/s)+1 outputs, the same count.
 */
export function maxPool2d(x: tf.Tensor4D, kernel: number): tf.Tensor4D {
  return tf.maxPool(x, kernel, kernel, 'valid');
}

export function avgPool2d(x: tf.Tensor4D, kernel: number): tf.Tensor4D {
  return tf.avgPool(x, kernel, kernel, 'valid');
}

/** PyTorch's pooled size for n pixels: floor((n − k)/k) + 1, or 0 when n < k (PyTorch raises then). */
export function pooledSize(n: number, kernel: number): number {
  return n < kernel ? 0 : Math.floor((n - kernel) / kernel) + 1;
}

/**
 * `x.view(N, -1)` on PyTorch's NCHW tensor: features ordered (c, h, w). Dense weights after a flatten
 * then have PyTorch's layout, so checkpoints need no re-ordering.
 */
export function flattenLikeTorch(x: tf.Tensor4D): tf.Tensor2D {
  const [n, h, w, c] = x.shape;
  if (h === 1 && w === 1) return tf.reshape(x, [n, c]);
  return tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [n, c * h * w]);
}
