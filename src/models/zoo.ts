/**
 * The model zoo: every model takes [null, S, S, 3] images. The classifiers
 * give one sigmoid probability [null, 1] and come back compiled for training
 * with Adam, binary cross-entropy and accuracy; the segmentation model (unet)
 * gives one per pixel [null, S, S, 1] and comes back compiled with Adam and
 * Dice + BCE (src/train/segment_loss.ts). modelTask says which a model is.
 *
 *   baseline   the baseline CNN (baseline_cnn.ts): `depth` blocks (default 3)
 *              with 32·w, 64·w, 128·w, 256·w, … filters; S at least 2^depth
 *   resnet     a small ResNet (He et al. 2016, "basic" blocks): stem conv 3x3
 *              (16·w) + BN + ReLU, then 3 stages of 2 basic blocks with 16·w,
 *              32·w, 64·w filters, stages 2 and 3 opening with stride 2 (a 1x1
 *              stride-2 conv + BN on the shortcut), global average pool, dense 1
 *   vgg        VGG-like (Simonyan & Zisserman 2015): blocks of
 *              [conv 3x3 + ReLU] x 2 → max pool 2x2 with 32·w, 64·w, 128·w
 *              filters, flatten, dense 128·w + ReLU, dropout 0.5, dense 1
 *   unet       UNet (unet.ts): `depth` poolings (default 3), 16·w filters at
 *              the top level doubling per level; S a multiple of 2^depth
 *   a path     any TF.js layers model.json (src/models/io.ts loadModel): input
 *              [null, S, S, 3], one sigmoid output [null, 1] or [null, S, S, 1];
 *              recompiled here for its task
 *
 * `width` (w) scales every filter count (rounded, at least 1). Kernel
 * initializers are glorot-uniform with seeds drawn in layer order from
 * `seed`, so two builds with one seed hold identical weights. Dropout draws
 * its masks from the layer's `seed`, which the trainer sets per batch
 * (setDropoutSeeds) so that training stays reproducible and resumable.
 *
 * Every op here has a kernel on the `native` TF.js backend: the addon's own
 * (conv and transposed conv, pooling, matmul, batch norm, element-wise,
 * concat) or TF.js cpu's, which the native backend registers for everything
 * else (native_backend.ts).
 */
import * as tf from '@tensorflow/tfjs';

import { checkInteger, checkKnownKeys, checkNumber, checkObject, invalidRange, invalidType } from '../errors.js';
import { pathExists } from '../output.js';
import { compileForSegmentation } from '../train/segment_loss.js';
import { loadModel, outputTask, type ModelCard } from './io.js';
import { baselineCnn, BASELINE_DEFAULT_DEPTH, BASELINE_MAX_BLOCKS } from './baseline_cnn.js';
import { BN_MOMENTUM, initializers, scaled } from './conventions.js';
import { unet, UNET_DEFAULT_DEPTH, UNET_MAX_DEPTH } from './unet.js';

export { BN_MOMENTUM };

export const ZOO_MODELS = ['baseline', 'resnet', 'vgg', 'unet'] as const;
export type ZooModel = (typeof ZOO_MODELS)[number];

/** What a model predicts: one probability per image, or one per pixel. */
export type ModelTask = 'classify' | 'segment';

/** The task of a zoo model. */
export function modelTask(name: ZooModel): ModelTask {
  if (!isZooModel(name)) throw invalidRange('model', `one of ${ZOO_MODELS.join(', ')}`, name);
  return name === 'unet' ? 'segment' : 'classify';
}

export interface BuildModelOptions {
  /** Input side S (default 96). A custom model's own input side must match when given. */
  inputSize?: number;
  /** Filter multiplier (default 1). Ignored by custom models. */
  width?: number;
  /** Initializer seed (default 1). Ignored by custom models (their weights are loaded). */
  seed?: number;
  /**
   * baseline and unet: number of poolings (default 3): the baseline's blocks
   * (the input side at least 2^depth, at most 6), the unet's levels (the
   * input side a multiple of 2^depth). resnet and vgg take none.
   */
  depth?: number;
  /** Adam's learning rate (default 1e-3). */
  learningRate?: number;
}

export interface BuiltModel {
  model: tf.LayersModel;
  /** Zoo name, or 'custom'. */
  architecture: string;
  /** What it predicts (and so the loss it was compiled with). */
  task: ModelTask;
  inputSize: number;
  /** The custom model's card when it had one (its preprocessing, …). */
  card?: ModelCard;
}

/** Compiles for the trainer: Adam(lr), binary cross-entropy, accuracy at 0.5. */
export function compileForTraining(model: tf.LayersModel, learningRate: number): void {
  model.compile({ optimizer: tf.train.adam(learningRate), loss: 'binaryCrossentropy', metrics: ['accuracy'] });
}

function resnet(size: number, width: number, seed: number): tf.LayersModel {
  const init = initializers(seed);
  const conv = (x: tf.SymbolicTensor, filters: number, kernelSize: number, strides: number) =>
    tf.layers.conv2d({ filters, kernelSize, strides, padding: 'same', useBias: false, kernelInitializer: init() }).apply(x) as tf.SymbolicTensor;
  const bn = (x: tf.SymbolicTensor) => tf.layers.batchNormalization({ axis: -1, momentum: BN_MOMENTUM }).apply(x) as tf.SymbolicTensor;
  const relu = (x: tf.SymbolicTensor) => tf.layers.reLU().apply(x) as tf.SymbolicTensor;
  const input = tf.input({ shape: [size, size, 3] });
  let x = relu(bn(conv(input, scaled(16, width), 3, 1)));
  [16, 32, 64].forEach((base, stage) => {
    const filters = scaled(base, width);
    for (let block = 0; block < 2; block++) {
      const strides = stage > 0 && block === 0 ? 2 : 1;
      const y = bn(conv(relu(bn(conv(x, filters, 3, strides))), filters, 3, 1));
      const shortcut = strides === 1 && x.shape[3] === filters ? x : bn(conv(x, filters, 1, strides));
      x = relu(tf.layers.add().apply([y, shortcut]) as tf.SymbolicTensor);
    }
  });
  x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
  const output = tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: init() }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: 'resnet' });
}

function vgg(size: number, width: number, seed: number): tf.LayersModel {
  const init = initializers(seed);
  const model = tf.sequential({ name: 'vgg' });
  let first = true;
  for (const base of [32, 64, 128]) {
    for (let i = 0; i < 2; i++) {
      model.add(tf.layers.conv2d({
        ...(first ? { inputShape: [size, size, 3] } : {}),
        filters: scaled(base, width), kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(),
      }));
      first = false;
    }
    model.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }));
  }
  model.add(tf.layers.flatten());
  model.add(tf.layers.dense({ units: scaled(128, width), activation: 'relu', kernelInitializer: init() }));
  model.add(tf.layers.dropout({ rate: 0.5, seed: 1 }));
  model.add(tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: init() }));
  return model;
}

/** Whether `name` is a zoo model rather than a path to a model.json. */
export function isZooModel(name: string): name is ZooModel {
  return (ZOO_MODELS as readonly string[]).includes(name);
}

/**
 * A zoo model by name, or a custom model from a model.json path (folder or
 * file), compiled with Adam(learningRate). See the file comment.
 */
export async function buildModel(name: string, options: BuildModelOptions = {}): Promise<BuiltModel> {
  if (typeof name !== 'string' || name === '') throw invalidType('model', `one of ${ZOO_MODELS.join(', ')} or a model.json path`, name);
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['inputSize', 'width', 'seed', 'depth', 'learningRate']);
  const inputSize = o.inputSize === undefined ? undefined : checkInteger('inputSize', o.inputSize, 8, 4096);
  const width = o.width === undefined ? 1 : checkNumber('width', o.width, 1 / 64, 16);
  const seed = o.seed === undefined ? 1 : checkInteger('seed', o.seed, 0, 2 ** 31 - 1);
  const learningRate = o.learningRate === undefined ? 1e-3 : checkNumber('learningRate', o.learningRate, 0, 10);
  const depth = o.depth === undefined ? undefined : checkInteger('depth', o.depth, 1, name === 'baseline' ? BASELINE_MAX_BLOCKS : UNET_MAX_DEPTH);
  if (depth !== undefined && name !== 'unet' && name !== 'baseline') throw invalidRange('depth', 'no depth (only baseline and unet take one)', depth);
  if (!isZooModel(name)) {
    if (!(await pathExists(name))) {
      throw invalidRange('model', `one of ${ZOO_MODELS.join(', ')} or the path of a TF.js model.json (file or folder)`, name);
    }
    const { model, card, path } = await loadModel(name);
    const input = model.inputs[0]!;
    const side = input.shape[1]!;
    if (inputSize !== undefined && side !== inputSize) {
      model.dispose();
      throw new RangeError(`Expected a model with a ${inputSize}x${inputSize} input (the data's image size) for model but ${path} takes ${side}x${side} ` +
        `(input layer '${input.sourceLayer.name}', shape [${input.shape.map((d) => d ?? 'null').join(', ')}])`);
    }
    const task = outputTask(model) === 'segment' ? 'segment' : 'classify';
    if (task === 'segment') compileForSegmentation(model, learningRate);
    else compileForTraining(model, learningRate);
    return { model, architecture: 'custom', task, inputSize: side, card };
  }
  const size = inputSize ?? 96;
  let model: tf.LayersModel;
  if (name === 'baseline') {
    const blocks = depth ?? BASELINE_DEFAULT_DEPTH;
    if (size < 2 ** blocks) throw invalidRange('depth', `at most ${Math.floor(Math.log2(size))} for a ${size} px input (each block halves the side)`, blocks);
    const filters = Array.from({ length: blocks }, (_, k) => scaled(32 * 2 ** k, width));
    model = baselineCnn({ inputSize: size, filters, seed, batchNormMomentum: BN_MOMENTUM });
  } else if (name === 'resnet') {
    model = resnet(size, width, seed);
  } else if (name === 'vgg') {
    model = vgg(size, width, seed);
  } else {
    model = unet({ inputSize: size, width, depth: depth ?? UNET_DEFAULT_DEPTH, seed });
    compileForSegmentation(model, learningRate);
    return { model, architecture: name, task: 'segment', inputSize: size };
  }
  compileForTraining(model, learningRate);
  return { model, architecture: name, task: 'classify', inputSize: size };
}

/**
 * Gives every Dropout layer a seed derived from (seed, step): a new mask per
 * batch, the same masks on every run and on a resumed one. (TF.js's Dropout
 * draws from its `seed` on every call, so a fixed seed would repeat one mask,
 * and no seed draws from Math.random.)
 */
export function setDropoutSeeds(model: tf.LayersModel, seed: number, step: number): void {
  let k = 0;
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'Dropout') continue;
    // 31-bit, never 0 (a 0 seed means "random" to TF.js).
    const h = (Math.imul(seed + 0x9e3779b9, 0x85ebca6b) ^ Math.imul(step + 1, 0xc2b2ae35) ^ Math.imul(++k, 0x27d4eb2f)) >>> 1;
    (layer as unknown as { seed: number }).seed = h === 0 ? 1 : h;
  }
}
