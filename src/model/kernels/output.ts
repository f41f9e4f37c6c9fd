import * as tf from '@tensorflow/tfjs-core';

/** The backend calls a kernel composed of other ops with this: it needs the buffer of `t`, not `t`. */
interface RefCountingBackend {
  incRef(dataId: object): void;
}

/**
 * Hands the buffer of `t` to the engine as a kernel's output: the backend keeps one more reference,
 * the Tensor wrapper made by the inner ops is dropped, so nothing leaks and nothing is freed early.
 */
export function asKernelOutput(backend: unknown, t: tf.Tensor): tf.TensorInfo {
  (backend as RefCountingBackend).incRef(t.dataId);
  const info: tf.TensorInfo = { dataId: t.dataId, shape: t.shape, dtype: t.dtype };
  t.dispose();
  return info;
}

/**
 * A Tensor view of a kernel input, holding its own reference to the buffer (the engine's wrapper does
 * not add one, and disposing it would free the input). Make it inside tf.tidy so it is dropped after.
 */
export function asTensor<T extends tf.Tensor>(backend: unknown, info: tf.TensorInfo): T {
  (backend as RefCountingBackend).incRef(info.dataId);
  return tf.engine().makeTensorFromTensorInfo(info) as T;
}

/** `x` cut by `before`/`after` where they are negative, then zero-padded where they are positive, per spatial axis. */
export function cropThenPad(
  x: tf.Tensor4D,
  [top, bottom]: [number, number],
  [left, right]: [number, number],
): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const ct = Math.max(0, -top),
    cb = Math.max(0, -bottom),
    cl = Math.max(0, -left),
    cr = Math.max(0, -right);
  const cropped = ct + cb + cl + cr > 0 ? tf.slice(x, [0, ct, cl, 0], [b, h - ct - cb, w - cl - cr, c]) : x;
  const pt = Math.max(0, top),
    pb = Math.max(0, bottom),
    pl = Math.max(0, left),
    pr = Math.max(0, right);
  return pt + pb + pl + pr > 0
    ? tf.pad(cropped, [
        [0, 0],
        [pt, pb],
        [pl, pr],
        [0, 0],
      ])
    : cropped;
}
