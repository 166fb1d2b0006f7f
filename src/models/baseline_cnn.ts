/**
 * The baseline CNN of the training issues (PCam-sized patches):
 * blocks of two [conv 3x3 'same' → batch norm → ReLU], by default three with
 * 32, 64 and 128 filters, each block followed by 2x2 max pooling; global
 * average pooling; dense 1 with sigmoid. Compiled with Adam (1e-3) and binary
 * cross-entropy. A fourth block (256 filters) widens what each cell of the
 * last map sees from 36 to 76 px of a 96 px patch (a block's two 3x3 convs
 * add 4 strides of its input to the receptive field, its pool 1 more, and
 * the stride doubles), which on PCam is worth more than its 19 % more time
 * an epoch (README, "Training recipes").
 */
import * as tf from '@tensorflow/tfjs';

import { checkInteger, invalidRange } from '../errors.js';

/** The most blocks (poolings) a baseline takes: a 96 px patch is 1 px after six. */
export const BASELINE_MAX_BLOCKS = 6;
/** The baseline's blocks by default: 32, 64, 128 filters. */
export const BASELINE_DEFAULT_DEPTH = 3;

export interface BaselineCnnOptions {
  /** Input height and width (default 96, PCam). */
  inputSize?: number;
  /**
   * Filters of each block, one block per entry, 1 to 6 blocks (default
   * [32, 64, 128]); the input side must be at least 2^blocks.
   */
  filters?: readonly number[];
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
  if (!Array.isArray(filters) || filters.length < 1 || filters.length > BASELINE_MAX_BLOCKS) {
    throw invalidRange('filters', `1 to ${BASELINE_MAX_BLOCKS} filter counts, one per block`, filters);
  }
  filters.forEach((f, i) => checkInteger(`filters[${i}]`, f, 1, 65536));
  if (size < 2 ** filters.length) {
    throw invalidRange('inputSize', `at least ${2 ** filters.length} px for ${filters.length} blocks (each halves the side)`, size);
  }
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
