/**
 * Convolution and pooling kernels: TF.js computes the geometry (its own
 * computeConv2DInfo / computePool2DInfo, so 'same'/'valid'/explicit padding
 * and rounding are exactly TF.js's), the addon runs it on NHWC data.
 */
import { backend_util, util, type KernelConfig, type TensorInfo } from '@tensorflow/tfjs-core';

import type { NnActivation } from '../../../bindings/nn_binding.js';
import { allFloat32, allocate, f32, NATIVE_BACKEND, nativeKernel, nn, output, type KernelArgs } from './common.js';

type Info = backend_util.Conv2DInfo;
type Pad = 'same' | 'valid' | number | backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;
type Pair = number | [number, number];
type Shape4 = [number, number, number, number];

function shapeOf(c: Info): number[] {
  return [c.batchSize, c.inHeight, c.inWidth, c.inChannels, c.outHeight, c.outWidth, c.outChannels,
    c.filterHeight, c.filterWidth, c.strideHeight, c.strideWidth, c.dilationHeight, c.dilationWidth,
    c.padInfo.top, c.padInfo.left];
}

function usable(c: Info): boolean {
  return c.dataFormat === 'channelsLast' && c.padInfo.top >= 0 && c.padInfo.left >= 0 &&
    util.sizeFromShape(c.outShape) > 0 && util.sizeFromShape(c.inShape) > 0;
}

function convInfo(inShape: number[], filterShape: number[], a: Record<string, unknown>, dilations: Pair, depthwise: boolean): Info {
  const format = backend_util.convertConv2DDataFormat((a.dataFormat as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC');
  return backend_util.computeConv2DInfo(inShape as Shape4, filterShape as Shape4, a.strides as Pair, dilations,
    a.pad as Pad, a.dimRoundingMode as Rounding, depthwise, format);
}

function poolInfo(inShape: number[], a: Record<string, unknown>): Info {
  return backend_util.computePool2DInfo(inShape as Shape4, a.filterSize as Pair, a.strides as Pair, 1, a.pad as Pad, a.dimRoundingMode as Rounding);
}

const ACTIVATIONS: Record<string, NnActivation> = {
  linear: 'linear', relu: 'relu', relu6: 'relu6', elu: 'elu', sigmoid: 'sigmoid', leakyrelu: 'leakyrelu',
};

function conv2d({ inputs, backend, attrs }: KernelArgs, fused: boolean): TensorInfo | null {
  const { x, filter, bias, preluActivationWeights } = inputs;
  if (!x || !filter || !allFloat32(x, filter, bias) || preluActivationWeights) return null;
  const activation = fused ? ACTIVATIONS[(attrs.activation as string | undefined) ?? 'linear'] : 'linear';
  if (!activation) return null;
  const c = convInfo(x.shape, filter.shape, attrs, (attrs.dilations as Pair | undefined) ?? 1, false);
  if (!usable(c) || (bias && util.sizeFromShape(bias.shape) !== c.outChannels)) return null;
  const y = allocate(backend, util.sizeFromShape(c.outShape));
  nn().conv2d(shapeOf(c), f32(backend, x), f32(backend, filter), bias ? f32(backend, bias) : null, activation,
    (attrs.leakyreluAlpha as number | undefined) ?? 0.2, y);
  return output(backend, c.outShape, y);
}

/** y = act(x ∗ filter + bias + addend) in one addon call: the residual convolution of a folded model (src/models/fold.ts). */
function conv2dAdd({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x, filter, bias, addend } = inputs;
  const activation = ACTIVATIONS[(attrs.activation as string | undefined) ?? 'linear'];
  if (!x || !filter || !addend || !allFloat32(x, filter, bias, addend) || (activation !== 'linear' && activation !== 'relu')) {
    throw new Error('HistoflowConv2DAdd: x, filter and addend must be non-empty float32 tensors (bias optional), activation linear or relu');
  }
  const c = convInfo(x.shape, filter.shape, attrs, (attrs.dilations as Pair | undefined) ?? 1, false);
  if (!usable(c) || (bias && util.sizeFromShape(bias.shape) !== c.outChannels) || !util.arraysEqual(addend.shape, c.outShape)) {
    throw new Error(`HistoflowConv2DAdd: addend [${addend.shape}] must have the convolution's output shape [${c.outShape}] (NHWC), bias one value per output channel`);
  }
  const y = allocate(backend, util.sizeFromShape(c.outShape));
  nn().conv2dAdd(shapeOf(c), f32(backend, x), f32(backend, filter), bias ? f32(backend, bias) : null, f32(backend, addend), activation, 0, y);
  return output(backend, c.outShape, y);
}

export const convKernels = () => [
  { kernelName: 'HistoflowConv2DAdd', backendName: NATIVE_BACKEND, kernelFunc: conv2dAdd as unknown as KernelConfig['kernelFunc'] } as KernelConfig,
  nativeKernel('Conv2D', (args) => conv2d(args, false)),
  nativeKernel('FusedConv2D', (args) => conv2d(args, true)),
  nativeKernel('Conv2DBackpropInput', ({ inputs: { dy, filter }, backend, attrs }) => {
    if (!dy || !filter || !allFloat32(dy, filter)) return null;
    const c = convInfo(attrs.inputShape as number[], filter.shape, attrs, 1, false);
    if (!usable(c)) return null;
    const dx = allocate(backend, util.sizeFromShape(c.inShape));
    nn().conv2dBackpropInput(shapeOf(c), f32(backend, dy), f32(backend, filter), dx);
    return output(backend, c.inShape, dx);
  }),
  nativeKernel('Conv2DBackpropFilter', ({ inputs: { x, dy }, backend, attrs }) => {
    if (!x || !dy || !allFloat32(x, dy)) return null;
    const c = convInfo(x.shape, attrs.filterShape as number[], attrs, 1, false);
    if (!usable(c)) return null;
    const df = allocate(backend, util.sizeFromShape(c.filterShape));
    nn().conv2dBackpropFilter(shapeOf(c), f32(backend, x), f32(backend, dy), df);
    return output(backend, c.filterShape, df);
  }),
  nativeKernel('DepthwiseConv2dNative', ({ inputs: { x, filter }, backend, attrs }) => {
    if (!x || !filter || !allFloat32(x, filter)) return null;
    const c = convInfo(x.shape, filter.shape, attrs, (attrs.dilations as Pair | undefined) ?? 1, true);
    if (!usable(c)) return null;
    const y = allocate(backend, util.sizeFromShape(c.outShape));
    nn().depthwiseConv2d(shapeOf(c), f32(backend, x), f32(backend, filter), y);
    return output(backend, c.outShape, y);
  }),
  nativeKernel('DepthwiseConv2dNativeBackpropInput', ({ inputs: { dy, filter }, backend, attrs }) => {
    if (!dy || !filter || !allFloat32(dy, filter)) return null;
    const c = convInfo(attrs.inputShape as number[], filter.shape, attrs, (attrs.dilations as Pair | undefined) ?? 1, true);
    if (!usable(c)) return null;
    const dx = allocate(backend, util.sizeFromShape(c.inShape));
    nn().depthwiseConv2dBackpropInput(shapeOf(c), f32(backend, dy), f32(backend, filter), dx);
    return output(backend, c.inShape, dx);
  }),
  nativeKernel('DepthwiseConv2dNativeBackpropFilter', ({ inputs: { x, dy }, backend, attrs }) => {
    if (!x || !dy || !allFloat32(x, dy)) return null;
    const c = convInfo(x.shape, attrs.filterShape as number[], attrs, (attrs.dilations as Pair | undefined) ?? 1, true);
    if (!usable(c)) return null;
    const df = allocate(backend, util.sizeFromShape(c.filterShape));
    nn().depthwiseConv2dBackpropFilter(shapeOf(c), f32(backend, x), f32(backend, dy), df);
    return output(backend, c.filterShape, df);
  }),
  ...(['MaxPool', 'AvgPool'] as const).map((name) =>
    nativeKernel(name, ({ inputs: { x }, backend, attrs }) => {
      if (!x || !allFloat32(x)) return null;
      const c = poolInfo(x.shape, attrs);
      if (!usable(c)) return null;
      const y = allocate(backend, util.sizeFromShape(c.outShape));
      (name === 'MaxPool' ? nn().maxPool : nn().avgPool)(shapeOf(c), f32(backend, x), y);
      return output(backend, c.outShape, y);
    }),
  ),
  nativeKernel('MaxPoolGrad', ({ inputs: { dy, input }, backend, attrs }) => {
    if (!dy || !input || !allFloat32(dy, input)) return null;
    const c = poolInfo(input.shape, attrs);
    if (!usable(c)) return null;
    const dx = allocate(backend, util.sizeFromShape(input.shape));
    nn().maxPoolGrad(shapeOf(c), f32(backend, dy), f32(backend, input), dx);
    return output(backend, input.shape, dx);
  }),
  nativeKernel('AvgPoolGrad', ({ inputs: { dy, input }, backend, attrs }) => {
    if (!dy || !input || !allFloat32(dy, input)) return null;
    const c = poolInfo(input.shape, attrs);
    if (!usable(c)) return null;
    const dx = allocate(backend, util.sizeFromShape(input.shape));
    nn().avgPoolGrad(shapeOf(c), f32(backend, dy), dx);
    return output(backend, input.shape, dx);
  }),
];
