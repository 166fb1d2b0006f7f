/** Matrix products (BatchMatMul, _FusedMatMul) and FusedBatchNorm in the addon. */
import { broadcast_util, util, type TensorInfo } from '@tensorflow/tfjs-core';

import type { NnActivation } from '../../../bindings/nn_binding.js';
import { allFloat32, allocate, f32, nativeKernel, nn, output, type KernelArgs } from './common.js';

const ACTIVATIONS: Record<string, NnActivation> = {
  linear: 'linear', relu: 'relu', relu6: 'relu6', elu: 'elu', sigmoid: 'sigmoid', leakyrelu: 'leakyrelu',
};

function matMul({ inputs, backend, attrs }: KernelArgs, fused: boolean): TensorInfo | null {
  const { a, b, bias, preluActivationWeights } = inputs;
  if (!a || !b || !allFloat32(a, b, bias) || preluActivationWeights || a.shape.length < 2 || b.shape.length < 2) return null;
  const activation = fused ? ACTIVATIONS[(attrs.activation as string | undefined) ?? 'linear'] : 'linear';
  if (!activation) return null;
  const transA = Boolean(attrs.transposeA), transB = Boolean(attrs.transposeB);
  const ra = a.shape.length, rb = b.shape.length;
  const m = transA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const k = transA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const kb = transB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const n = transB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (k !== kb) return null; // let TF.js raise its own error
  const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2);
  const outer = broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  const batch = util.sizeFromShape(outer), batchA = util.sizeFromShape(outerA), batchB = util.sizeFromShape(outerB);
  if ((batchA !== 1 && batchA !== batch) || (batchB !== 1 && batchB !== batch)) return null;
  const biasLen = bias ? util.sizeFromShape(bias.shape) : 0;
  if (bias && biasLen !== 1 && (biasLen !== n || bias.shape[bias.shape.length - 1] !== n)) return null;
  const out = allocate(backend, batch * m * n);
  nn().batchMatMul([batch, batchA, batchB, m, n, k, transA ? 1 : 0, transB ? 1 : 0], f32(backend, a), f32(backend, b),
    bias ? f32(backend, bias) : null, activation, (attrs.leakyreluAlpha as number | undefined) ?? 0.2, out);
  return output(backend, [...outer, m, n], out);
}

export const denseKernels = () => [
  nativeKernel('BatchMatMul', (args) => matMul(args, false)),
  nativeKernel('_FusedMatMul', (args) => matMul(args, true)),
  nativeKernel('FusedBatchNorm', ({ inputs: { x, mean, variance, offset, scale }, backend, attrs }) => {
    if (!x || !mean || !variance || !allFloat32(x, mean, variance, offset, scale)) return null;
    const y = allocate(backend, util.sizeFromShape(x.shape));
    nn().batchNorm(f32(backend, x), f32(backend, mean), f32(backend, variance), offset ? f32(backend, offset) : null,
      scale ? f32(backend, scale) : null, (attrs.varianceEpsilon as number | undefined) ?? 0.001, y);
    return output(backend, x.shape, y);
  }),
];
