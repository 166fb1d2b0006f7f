/**
 * The element-wise and reduction kernels that dominate a training step after
 * the convolutions (profile of the baseline CNN on tfjs cpu, see
 * src/bench/train_profile.ts): broadcasting binary ops, unary ops and
 * activations with their gradients' helpers (Step, EluGrad), Tile, Sum, Mean.
 */
import { backend_util, broadcast_util, util, type TensorInfo } from '@tensorflow/tfjs-core';

import type { NnBinaryOp, NnUnaryOp } from '../../../bindings/nn_binding.js';
import { allFloat32, allocate, f32, nativeKernel, nn, output } from './common.js';

const UNARY: Record<string, NnUnaryOp> = {
  Neg: 'neg', Square: 'square', Sqrt: 'sqrt', Rsqrt: 'rsqrt', Exp: 'exp', Log: 'log', Abs: 'abs',
  Relu: 'relu', Relu6: 'relu6', Elu: 'elu', Sigmoid: 'sigmoid', Step: 'step',
};

const BINARY: Record<string, NnBinaryOp> = {
  Add: 'add', Sub: 'sub', Multiply: 'mul', RealDiv: 'div', SquaredDifference: 'squaredDifference',
  Maximum: 'maximum', Minimum: 'minimum',
};

function reduceKernel(name: 'Sum' | 'Mean') {
  return nativeKernel(name, ({ inputs: { x }, backend, attrs }) => {
    if (!x || !allFloat32(x)) return null;
    const axes = util.parseAxisParam(attrs.axis as number | number[], x.shape).sort((p, q) => p - q);
    if (axes.length === 0 || new Set(axes).size !== axes.length) return null;
    // The addon reduces one contiguous block of axes: [outer, reduce, inner].
    if (axes[axes.length - 1]! - axes[0]! !== axes.length - 1) return null;
    const outer = util.sizeFromShape(x.shape.slice(0, axes[0]));
    const reduce = util.sizeFromShape(x.shape.slice(axes[0], axes[axes.length - 1]! + 1));
    const inner = util.sizeFromShape(x.shape.slice(axes[axes.length - 1]! + 1));
    const [outShape] = backend_util.computeOutAndReduceShapes(x.shape, axes);
    const shape = attrs.keepDims ? backend_util.expandShapeToKeepDim(outShape, axes) : outShape;
    const out = allocate(backend, outer * inner);
    nn().reduceSum(f32(backend, x), [outer, reduce, inner], name === 'Mean', out);
    return output(backend, shape, out);
  });
}

export const elementwiseKernels = () => [
  ...Object.entries(UNARY).map(([name, op]) =>
    nativeKernel(name, ({ inputs: { x }, backend, attrs }) => {
      if (!x || !allFloat32(x)) return null;
      const y = allocate(backend, util.sizeFromShape(x.shape));
      nn().unary(op, f32(backend, x), name === 'Step' ? ((attrs.alpha as number | undefined) ?? 0) : 0, y);
      return output(backend, x.shape, y);
    }),
  ),
  ...Object.entries(BINARY).map(([name, op]) =>
    nativeKernel(name, ({ inputs: { a, b }, backend }) => binary(op, a, b, backend)),
  ),
  nativeKernel('EluGrad', ({ inputs: { dy, y }, backend }) => binary('eluGrad', dy, y, backend)),
  nativeKernel('Tile', ({ inputs: { x }, backend, attrs }) => {
    const reps = attrs.reps as number[];
    if (!x || !allFloat32(x) || x.shape.length === 0 || x.shape.length > 8 || reps.some((r) => r < 1)) return null;
    const shape = x.shape.map((d, i) => d * reps[i]!);
    const out = allocate(backend, util.sizeFromShape(shape));
    nn().tile(f32(backend, x), x.shape, reps, out);
    return output(backend, shape, out);
  }),
  reduceKernel('Sum'),
  reduceKernel('Mean'),
];

function binary(op: NnBinaryOp, a: TensorInfo | undefined, b: TensorInfo | undefined, backend: Parameters<typeof f32>[0]): TensorInfo | null {
  if (!a || !b || !allFloat32(a, b) || a.shape.length > 8 || b.shape.length > 8) return null;
  const shape = broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
  const out = allocate(backend, util.sizeFromShape(shape));
  nn().binary(op, f32(backend, a), a.shape, f32(backend, b), b.shape, shape, out);
  return output(backend, shape, out);
}
