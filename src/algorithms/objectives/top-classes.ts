import * as tf from '@tensorflow/tfjs';

/**
 * One-hot masks [B, K] of the classes ranked 1st, 2nd, ... by `values` (ties: the lowest index first).
 * Built from argMax and oneHot, which have (zero) gradients in tfjs, instead of topk/equal, which have
 * none: the masks then sit harmlessly on a differentiated path (DLR and MART read logits through them).
 */
export function topClassMasks(values: tf.Tensor2D, count: number): tf.Tensor2D[] {
  return tf.tidy(() => {
    const k = values.shape[1];
    const masks: tf.Tensor2D[] = [];
    let taken = tf.zerosLike(values);
    const minusInf = tf.fill(values.shape, -Infinity);
    for (let r = 0; r < count; r++) {
      const remaining = r === 0 ? values : tf.where(tf.cast(taken, 'bool'), minusInf, values);
      const mask = oneHotFloat(tf.argMax(remaining, 1) as tf.Tensor1D, k);
      masks.push(mask);
      taken = tf.add(taken, mask);
    }
    return masks;
  });
}

/** Σ_k mask_ik·values_ik: the value each row's mask selects (differentiable w.r.t. values). */
export function pick(mask: tf.Tensor2D, values: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => tf.sum(tf.mul(mask, values), 1) as tf.Tensor1D);
}

/**
 * One-hot rows as float32. Built as cast(oneHot(int32)) because tfjs-backend-wasm 4.22's OneHot kernel
 * ignores a float32 dtype argument (it writes int32 bit patterns, i.e. ~1e−45 instead of 1).
 */
export function oneHotFloat(indices: tf.Tensor1D, depth: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(indices, depth), 'float32') as tf.Tensor2D);
}
