/**
 * The `native` TF.js backend's parity table: every kernel it replaces, on
 * both nn engines (oneDNN and the built-in GEMM, as two backends), gives TF.js
 * cpu's result within 1e-4 of the reference's largest magnitude, on seeded
 * random inputs, through TF.js's own ops and gradients (tf.grads). Each shape
 * also checks that the addon ran the kernel (a spy on its nn functions), so a
 * silent cpu fallback cannot pass.
 */
import * as tf from '@tensorflow/tfjs';

import { trainingFamily } from '../../src/tfjs/backend.js';
import { parityTable } from '../support/parity.js';
import { dims, kernel, kernelCase, withGrads, type Engine, type Kernel } from '../support/tfjs_kernel_cases.js';
import { engineStatus, input } from '../support/tfjs_support.js';

type Pad = 'same' | 'valid';

const conv = (xShape: number[], fShape: number[], strides: number, pad: Pad, dilation = 1) =>
  kernel(`x${dims(xShape)} f${dims(fShape)} s${strides} ${pad} d${dilation}`, {
    inputs: [input(xShape, 1), input(fShape, 2)],
    fn:
      dilation === 1
        ? withGrads((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, strides, pad), 3)
        : (x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, strides, pad, 'NHWC', dilation), // TF.js has no conv2d gradient with dilation > 1
    native: dilation === 1 ? ['conv2d', 'conv2dBackpropInput', 'conv2dBackpropFilter'] : ['conv2d'],
  });

// The default shape is direct; `channels` ≥ 8 makes it a Winograd F(4×4, 3×3) forward (native/nn/conv2d.h).
const fusedConv = (activation: tf.fused.Activation, channels = 0) =>
  kernel(channels ? `${activation}, ${channels} channels` : activation, {
    inputs: channels
      ? [input([2, 9, 7, channels], 4), input([3, 3, channels, channels + 3], 5), input([channels + 3], 6)]
      : [input([2, 7, 6, 3], 4), input([3, 3, 3, 5], 5), input([5], 6)],
    fn: withGrads((x, f, b) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: f as tf.Tensor4D, bias: b, strides: 1, pad: 'same', activation }), 7),
    native: ['conv2d', 'conv2dBackpropInput', 'conv2dBackpropFilter'],
  });

const depthwise = (xShape: number[], fShape: number[], strides: number, pad: Pad, dilation = 1) =>
  kernel(`x${dims(xShape)} f${dims(fShape)} s${strides} ${pad} d${dilation}`, {
    inputs: [input(xShape, 8), input(fShape, 9)],
    fn:
      dilation === 1
        ? withGrads((x, f) => tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, strides, pad), 10)
        : (x, f) => tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, strides, pad, 'NHWC', dilation),
    native: dilation === 1 ? ['depthwiseConv2d', 'depthwiseConv2dBackpropInput', 'depthwiseConv2dBackpropFilter'] : ['depthwiseConv2d'],
  });

const pool = (kind: 'max' | 'avg', xShape: number[], size: number, strides: number, pad: Pad) =>
  kernel(`x${dims(xShape)} k${size} s${strides} ${pad}`, {
    inputs: [input(xShape, 11)],
    fn: withGrads((x) => (kind === 'max' ? tf.maxPool : tf.avgPool)(x as tf.Tensor4D, size, strides, pad), 12),
    native: kind === 'max' ? ['maxPool', 'maxPoolGrad'] : ['avgPool', 'avgPoolGrad'],
  });

const matMul = (aShape: number[], bShape: number[], ta: boolean, tb: boolean) =>
  kernel(`${dims(aShape)}${ta ? 'ᵀ' : ''} · ${dims(bShape)}${tb ? 'ᵀ' : ''}`, {
    inputs: [input(aShape, 13), input(bShape, 14)],
    fn: withGrads((a, b) => tf.matMul(a, b, ta, tb), 15),
    native: ['batchMatMul'],
  });

const binary = (op: 'add' | 'sub' | 'mul' | 'div' | 'squaredDifference' | 'maximum' | 'minimum', a: number[], b: number[]) =>
  kernel(`${op} ${dims(a) || 'scalar'} with ${dims(b) || 'scalar'}`, {
    inputs: [input(a, 16), input(b, 17, op === 'div' ? 0.5 : -1, op === 'div' ? 2 : 1)],
    fn: withGrads((x, y) => (tf[op] as (p: tf.Tensor, q: tf.Tensor) => tf.Tensor)(x, y), 18),
    native: [`binary:${op}`],
  });

const unary = (op: 'neg' | 'square' | 'sqrt' | 'rsqrt' | 'exp' | 'log' | 'abs' | 'relu' | 'relu6' | 'elu' | 'sigmoid', lo = -1, hi = 1, label: string = op) =>
  kernel(label, {
    inputs: [input([3, 5, 7, 4], 19, lo, hi)],
    fn: withGrads((x) => (tf[op] as (p: tf.Tensor) => tf.Tensor)(x), 20),
    native: [`unary:${op}`],
  });

const engines = engineStatus();
// The training family's tfjs-cpu backend (TF.js's own cpu kernels): a plain dependency, always there.
const cpu = { name: 'tfjs-cpu', available: true, detail: await trainingFamily.create('tfjs-cpu'), inCi: true };

parityTable<Engine, Kernel>({
  family: 'tfjs',
  reference: { ...cpu, why: "@tensorflow/tfjs-backend-cpu: TF.js's own kernels in TypeScript, apart from the addon's nn kernels" },
  backends: engines.map((e) => ({ ...e, inCi: true, make: () => e.name })),
  // Every case switches TF.js's global backend and the addon's engine.
  serial: true,
  cases: [
    kernelCase('conv2d and its gradients', [
      conv([2, 9, 11, 5], [3, 3, 5, 7], 1, 'same'),
      conv([2, 9, 11, 5], [3, 3, 5, 7], 2, 'valid'),
      conv([1, 13, 10, 3], [5, 5, 3, 4], 2, 'same'),
      conv([3, 7, 7, 6], [1, 1, 6, 5], 1, 'valid'),
      conv([1, 12, 9, 4], [3, 3, 4, 3], 1, 'same', 2),
      conv([2, 11, 12, 3], [3, 2, 3, 2], 1, 'valid', 2),
      // Winograd F(4×4, 3×3) forwards: 3×3, stride 1, ≥ 8 channels each side; ragged tiles and channels.
      conv([2, 9, 11, 19], [3, 3, 19, 21], 1, 'same'),
      conv([1, 13, 13, 16], [3, 3, 16, 32], 1, 'valid'),
    ]),
    kernelCase('fused conv2d + bias + activation, and its gradients', [
      ...(['relu', 'relu6', 'elu', 'sigmoid', 'linear'] as const).map((a) => fusedConv(a)),
      ...(['relu', 'linear'] as const).map((a) => fusedConv(a, 17)),
    ]),
    kernelCase('depthwiseConv2d and its gradients', [
      depthwise([2, 9, 8, 4], [3, 3, 4, 2], 1, 'same'),
      depthwise([1, 10, 11, 3], [3, 3, 3, 1], 2, 'valid'),
      depthwise([1, 12, 12, 2], [3, 3, 2, 2], 1, 'same', 2),
    ]),
    kernelCase('maxPool and its gradient', [
      pool('max', [2, 9, 11, 3], 2, 2, 'valid'),
      pool('max', [1, 9, 11, 4], 3, 2, 'same'),
      pool('max', [2, 7, 7, 2], 3, 1, 'same'),
    ]),
    kernelCase('avgPool and its gradient', [
      pool('avg', [2, 9, 11, 3], 2, 2, 'valid'),
      pool('avg', [1, 9, 11, 4], 3, 2, 'same'),
      pool('avg', [2, 7, 7, 2], 3, 1, 'same'),
    ]),
    kernelCase('matMul and its gradients', [
      matMul([5, 7], [7, 3], false, false),
      matMul([7, 5], [3, 7], true, true),
      matMul([3, 4, 5], [3, 5, 2], false, false),
      // TF.js has no gradient for a broadcast batch: forward only.
      kernel('1x4x5 · 3x2x5ᵀ (broadcast batch)', {
        inputs: [input([1, 4, 5], 41), input([3, 2, 5], 42)],
        fn: (a, b) => tf.matMul(a, b, false, true),
        native: ['batchMatMul'],
      }),
      kernel('fused with bias + relu (a dense layer)', {
        inputs: [input([6, 9], 21), input([9, 4], 22), input([4], 23)],
        fn: withGrads((a, b, c) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias: c, activation: 'relu' }), 24),
        native: ['batchMatMul'],
      }),
    ]),
    kernelCase('batchNorm and its gradients', [
      kernel('per-channel mean, variance, offset and scale', {
        inputs: [input([2, 5, 6, 7], 25), input([7], 26), input([7], 27, 0.5, 2), input([7], 28), input([7], 29, 0.5, 2)],
        fn: withGrads((x, m, v, o, s) => tf.batchNorm(x, m, v, o, s, 1e-3), 30),
        native: ['batchNorm'],
      }),
    ]),
    kernelCase('binary ops with broadcasting, and their gradients', [
      binary('add', [2, 3, 4, 5], [5]),
      binary('sub', [2, 3, 4, 5], [4, 1]),
      binary('mul', [2, 3, 4, 5], []),
      binary('mul', [3, 1], [1, 4]),
      binary('div', [2, 3, 4, 5], [2, 3, 4, 5]),
      binary('squaredDifference', [2, 3, 4, 5], [2, 3, 4, 5]), // TF.js's own gradients of these two do not reduce broadcast inputs
      binary('maximum', [6, 5], [6, 5]),
      binary('minimum', [6, 5], [6, 5]),
    ]),
    kernelCase('unary ops and their gradients', [
      unary('neg'),
      unary('square'),
      unary('sqrt', 0.1, 2),
      unary('rsqrt', 0.1, 2),
      unary('exp'),
      unary('log', 0.1, 2),
      unary('abs'),
      unary('relu'),
      unary('relu6', -3, 9, 'relu6 (inputs past 6)'),
      unary('elu'),
      unary('sigmoid'),
    ]),
    kernelCase('tile and its gradient', [
      kernel('2x3x4 by [2, 1, 3]', {
        inputs: [input([2, 3, 4], 31)],
        fn: withGrads((x) => tf.tile(x, [2, 1, 3]), 32),
        native: ['tile'],
      }),
    ]),
    kernelCase(
      'sum and mean',
      ([[0, 1, 2], [1, 2], [3], [0], [1, 2, 3]] as const).map((axes) =>
        kernel(`over axes [${axes.join(',')}] of 3x4x5x6`, {
          inputs: [input([3, 4, 5, 6], 33)],
          fn: (x: tf.Tensor) => [tf.sum(x, [...axes]), tf.mean(x, [...axes], true)],
          native: ['reduceSum'],
        }),
      ),
    ),
  ],
});
