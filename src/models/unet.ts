/**
 * UNet (Ronneberger et al. 2015, "U-Net: Convolutional Networks for Biomedical
 * Image Segmentation"), with batch norm and 'same' padding so the mask has the
 * image's size: [null, S, S, 3] → [null, S, S, 1], a sigmoid tumour
 * probability per pixel.
 *
 *   encoder level l = 0 … depth−1:  [conv 3x3 + BN + ReLU] x 2 with 16·w·2^l
 *                                   filters (kept as the skip), max pool 2x2
 *   bottleneck:                     [conv 3x3 + BN + ReLU] x 2, 16·w·2^depth
 *   decoder level l = depth−1 … 0:  transposed conv 2x2 stride 2 (16·w·2^l) →
 *                                   concatenate with skip l → [conv 3x3 + BN + ReLU] x 2
 *   head:                           conv 1x1, 1 filter, sigmoid
 *
 * Upsampling is a transposed convolution rather than a resize + conv: on the
 * `native` backend it is Conv2DBackpropInput, and its gradients Conv2D and
 * Conv2DBackpropFilter, all addon kernels (a nearest resize and its gradient
 * would run on TF.js cpu). Initializers, their seeds in layer order and batch
 * norm's momentum follow the zoo's conventions (conventions.ts).
 */
import * as tf from '@tensorflow/tfjs';

import { checkInteger, checkKnownKeys, checkNumber, checkObject } from '../errors.js';
import { BN_MOMENTUM, initializers, scaled } from './conventions.js';

export interface UnetOptions {
  /** Input side S (default 96); a multiple of 2^depth. */
  inputSize?: number;
  /** Filter multiplier w (default 1): 16·w filters at the first level. */
  width?: number;
  /** Number of poolings (default 3). */
  depth?: number;
  /** Initializer seed (default 1). */
  seed?: number;
}

export const UNET_DEFAULT_DEPTH = 3;
/** The deepest UNet built: 6 poolings (S a multiple of 64, 1024·w filters at the bottom). */
export const UNET_MAX_DEPTH = 6;

/** An uncompiled UNet; see the file comment. */
export function unet(options: UnetOptions = {}): tf.LayersModel {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['inputSize', 'width', 'depth', 'seed']);
  const size = o.inputSize === undefined ? 96 : checkInteger('inputSize', o.inputSize, 8, 4096);
  const width = o.width === undefined ? 1 : checkNumber('width', o.width, 1 / 64, 16);
  const depth = o.depth === undefined ? UNET_DEFAULT_DEPTH : checkInteger('depth', o.depth, 1, UNET_MAX_DEPTH);
  const seed = o.seed === undefined ? 1 : checkInteger('seed', o.seed, 0, 2 ** 31 - 1);
  if (size % 2 ** depth !== 0) {
    throw new RangeError(`Expected inputSize to be a multiple of 2^depth = ${2 ** depth} (depth ${depth} halves it ${depth} times) ` +
      `but received inputSize ${size}; use inputSize ${Math.max(2 ** depth, Math.round(size / 2 ** depth) * 2 ** depth)} or a smaller depth`);
  }
  const init = initializers(seed);
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => layer.apply(x) as tf.SymbolicTensor;
  const block = (x: tf.SymbolicTensor, filters: number) => {
    for (let i = 0; i < 2; i++) {
      x = apply(tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init() }), x);
      x = apply(tf.layers.batchNormalization({ axis: -1, momentum: BN_MOMENTUM }), x);
      x = apply(tf.layers.reLU(), x);
    }
    return x;
  };
  const filters = (level: number) => scaled(16 * 2 ** level, width);

  const input = tf.input({ shape: [size, size, 3] });
  const skips: tf.SymbolicTensor[] = [];
  let x = input;
  for (let level = 0; level < depth; level++) {
    x = block(x, filters(level));
    skips.push(x);
    x = apply(tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }), x);
  }
  x = block(x, filters(depth));
  for (let level = depth - 1; level >= 0; level--) {
    const up = apply(tf.layers.conv2dTranspose({
      filters: filters(level), kernelSize: 2, strides: 2, padding: 'same', kernelInitializer: init(),
    }), x);
    x = block(apply(tf.layers.concatenate({ axis: -1 }), [up, skips[level]!]), filters(level));
  }
  const output = apply(tf.layers.conv2d({ filters: 1, kernelSize: 1, activation: 'sigmoid', kernelInitializer: init() }), x);
  return tf.model({ inputs: input, outputs: output, name: 'unet' });
}
