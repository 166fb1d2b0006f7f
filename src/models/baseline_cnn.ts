/**
 * The baseline CNN of the training issues (PCam-sized patches):
 * three blocks of two [conv 3x3 'same' → batch norm → ReLU] with 32, 64 and
 * 128 filters, each block followed by 2x2 max pooling; global average
 * pooling; dense 1 with sigmoid. Compiled with Adam (1e-3) and binary
 * cross-entropy.
 */
import * as tf from '@tensorflow/tfjs';

import { checkInteger } from '../errors.js';

export interface BaselineCnnOptions {
  /** Input height and width (default 96, PCam). */
  inputSize?: number;
  /** Filters of the three blocks (default [32, 64, 128]). */
  filters?: readonly [number, number, number];
  /** Adam's learning rate (default 1e-3). */
  learningRate?: number;
  /** Seed of the glorot-uniform kernel initializers, so two builds start from identical weights. */
  seed?: number;
  /** Batch norm's moving-average momentum (default 0.99, Keras's). */
  batchNormMomentum?: number;
}

export function baselineCnn(options: BaselineCnnOptions = {}): tf.LayersModel {
  const size = options.inputSize ?? 96;
  checkInteger('inputSize', size, 8, 4096);
  const filters = options.filters ?? [32, 64, 128];
  const seed = options.seed ?? 1;
  let s = seed;
  const init = () => tf.initializers.glorotUniform({ seed: s++ });
  const model = tf.sequential();
  let first = true;
  for (const f of filters) {
    for (let i = 0; i < 2; i++) {
      model.add(
        tf.layers.conv2d({
          ...(first ? { inputShape: [size, size, 3] } : {}),
          filters: f,
          kernelSize: 3,
          padding: 'same',
          useBias: false,
          kernelInitializer: init(),
        }),
      );
      first = false;
      model.add(tf.layers.batchNormalization({ axis: -1, momentum: options.batchNormMomentum ?? 0.99 }));
      model.add(tf.layers.reLU());
    }
    model.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }));
  }
  model.add(tf.layers.globalAveragePooling2d({}));
  model.add(tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: init() }));
  model.compile({ optimizer: tf.train.adam(options.learningRate ?? 1e-3), loss: 'binaryCrossentropy' });
  return model;
}
