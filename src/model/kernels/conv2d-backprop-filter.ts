/**
 * Conv2DBackpropFilter for wasm, which has none (training a conv net on wasm fails without it).
 *
 * dW[fy, fx, ci, co] = sum over b, oy, ox of x[b, s*oy + fy - pad, s*ox + fx - pad, ci] * dy[b, oy, ox, co]:
 * a convolution of x with dy as the filter, dilated by the stride, once the batch axis is made the channel
 * axis ([Cin, H, W, B] conv [outH, outW, B, Cout] -> [Cin, kh, kw, Cout]). XNNPACK runs it fast. Exact.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backend_util, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { asKernelOutput, asTensor, cropThenPad } from './output.ts';

export function conv2dBackpropFilterByDilation(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  info: backend_util.Conv2DInfo,
): tf.Tensor4D {
  const {
    filterHeight: kh,
    filterWidth: kw,
    strideHeight: sh,
    strideWidth: sw,
    outHeight,
    outWidth,
    inHeight,
    inWidth,
  } = info;
  return tf.tidy(() => {
    const { top, left } = info.padInfo;
    const bottom = kh + (outHeight - 1) * sh - inHeight - top;
    const right = kw + (outWidth - 1) * sw - inWidth - left;
    const xp = cropThenPad(x, [top, bottom], [left, right]);
    const input = tf.transpose(xp, [3, 1, 2, 0]) as tf.Tensor4D; // [Cin, Hp, Wp, B]
    const kernel = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [outH, outW, B, Cout]
    const dw = tf.conv2d(input, kernel, 1, 'valid', 'NHWC', [sh, sw]); // [Cin, kh, kw, Cout]
    return tf.transpose(dw, [1, 2, 0, 3]) as tf.Tensor4D;
  });
}

export const conv2dBackpropFilterKernel: KernelFunc = ({ inputs, attrs, backend }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const format = backend_util.convertConv2DDataFormat(a.dataFormat);
  if (format !== 'channelsLast') throw new Error('Conv2DBackpropFilter on wasm supports NHWC only');
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    a.filterShape,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
    false,
    format,
  );
  const out = tf.tidy(() => conv2dBackpropFilterByDilation(asTensor(backend, x), asTensor(backend, dy), info));
  return asKernelOutput(backend, out);
};
