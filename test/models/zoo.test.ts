/**
 * The model zoo (src/models/zoo.ts): every classifier builds with the stated
 * input and output shapes, one seed gives identical weights, every classifier
 * trains a step on the `native` backend, custom model.json files load and
 * recompile, bad names are RangeErrors naming `model`. (The segmentation
 * model, unet, has its own file: unet.test.ts.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { saveModel } from '../../src/models/io.js';
import { ZOO_MODELS, buildModel, modelTask, setDropoutSeeds } from '../../src/models/zoo.js';
import { nativeAvailable, random } from '../support/tfjs_support.js';

const SIZE = 32;

async function weightsOf(model: tf.LayersModel): Promise<Float32Array[]> {
  return Promise.all(model.getWeights().map(async (w) => (await w.data()) as Float32Array));
}

// One backend for the whole file (switching it under concurrent tests would race): native when built.
test.before(async () => {
  await tf.setBackend(nativeAvailable ? 'native' : 'cpu');
});

test('the zoo names its models and their task: three classifiers and one segmentation model', (t) => {
  t.deepEqual(ZOO_MODELS.map((name) => [name, modelTask(name)]), [['baseline', 'classify'], ['resnet', 'classify'], ['vgg', 'classify'], ['unet', 'segment']]);
  t.throws(() => modelTask('densenet' as 'unet'), { instanceOf: RangeError, message: /for model/ });
});

for (const name of ZOO_MODELS.filter((n) => modelTask(n) === 'classify')) {
  test(`${name}: input [null, ${SIZE}, ${SIZE}, 3], one sigmoid output in (0, 1), compiled for training`, async (t) => {
    const { model, architecture, inputSize } = await buildModel(name, { inputSize: SIZE, width: 0.25, seed: 3 });
    t.is(architecture, name);
    t.is(inputSize, SIZE);
    t.deepEqual(model.inputs[0]!.shape, [null, SIZE, SIZE, 3]);
    t.deepEqual(model.outputs[0]!.shape, [null, 1]);
    const p = tf.tidy(() => (model.predict(tf.tensor4d(random(2 * SIZE * SIZE * 3, 7, 0, 1), [2, SIZE, SIZE, 3])) as tf.Tensor).dataSync());
    t.is(p.length, 2);
    for (const v of p) t.true(v > 0 && v < 1);
    t.truthy(model.optimizer);
    t.deepEqual(model.metricsNames, ['loss', 'acc']);
    model.dispose();
  });

  test(`${name}: two builds with one seed hold identical weights, another seed differs`, async (t) => {
    const a = await buildModel(name, { inputSize: SIZE, width: 0.25, seed: 11 });
    const b = await buildModel(name, { inputSize: SIZE, width: 0.25, seed: 11 });
    const c = await buildModel(name, { inputSize: SIZE, width: 0.25, seed: 12 });
    const wa = await weightsOf(a.model), wb = await weightsOf(b.model), wc = await weightsOf(c.model);
    t.is(wa.length, wb.length);
    wa.forEach((w, i) => t.deepEqual(wb[i], w));
    t.false(wa.every((w, i) => w.every((v, k) => v === wc[i]![k])));
    [a, b, c].forEach((m) => m.model.dispose());
  });

  (nativeAvailable ? test : test.skip)(`${name}: trains one step on the native backend (finite loss, every trainable weight moves)${nativeAvailable ? '' : ' (skipped: the native TF.js backend needs the addon)'}`, async (t) => {
    t.is(tf.getBackend(), 'native');
    {
      const { model } = await buildModel(name, { inputSize: SIZE, width: 0.25, seed: 5, learningRate: 0.01 });
      const before = await Promise.all(model.trainableWeights.map(async (w) => (await w.read().data()) as Float32Array));
      setDropoutSeeds(model, 5, 0);
      const x = tf.tensor4d(random(4 * SIZE * SIZE * 3, 9, 0, 1), [4, SIZE, SIZE, 3]);
      const y = tf.tensor2d([0, 1, 1, 0], [4, 1]);
      const [loss, acc] = (await model.trainOnBatch(x, y)) as number[];
      t.true(Number.isFinite(loss) && loss! > 0);
      t.true(acc! >= 0 && acc! <= 1);
      const after = await Promise.all(model.trainableWeights.map(async (w) => (await w.read().data()) as Float32Array));
      after.forEach((w, i) => t.false(w.every((v, k) => v === before[i]![k]), `${model.trainableWeights[i]!.name} unchanged`));
      tf.dispose([x, y]);
      model.dispose();
    }
  });
}

test('width scales every filter count (baseline: 32·w, 64·w, 128·w)', async (t) => {
  const { model } = await buildModel('baseline', { inputSize: SIZE, width: 0.5 });
  const filters = model.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => (l.getConfig() as { filters: number }).filters);
  t.deepEqual(filters, [16, 16, 32, 32, 64, 64]);
  model.dispose();
});

/** Parameters of a baseline with these block filters: per block two bias-free 3x3 convs and their batch norms (4 per channel), then dense 1. */
function baselineParams(filters: readonly number[]): number {
  let n = 0, c = 3;
  for (const f of filters) {
    n += 9 * c * f + 4 * f + 9 * f * f + 4 * f;
    c = f;
  }
  return n + c + 1;
}

for (const [size, depth, width] of [[32, 1, 0.25], [32, 4, 0.5], [96, 4, 0.5], [64, 6, 0.125], [16, 4, 1]] as const) {
  test(`baseline depth ${depth} at ${size} px, width ${width}: ${depth} blocks of doubling filters, ${depth} poolings to ${size >> depth} px, the stated parameters`, async (t) => {
    const { model } = await buildModel('baseline', { inputSize: size, width, depth, seed: 1 });
    const filters = Array.from({ length: depth }, (_, k) => Math.max(1, Math.round(32 * 2 ** k * width)));
    const convs = model.layers.filter((l) => l.getClassName() === 'Conv2D');
    t.deepEqual(convs.map((l) => (l.getConfig() as { filters: number }).filters), filters.flatMap((f) => [f, f]));
    const pools = model.layers.filter((l) => l.getClassName() === 'MaxPooling2D');
    t.deepEqual(pools.map((l) => (l.outputShape as number[])[1]), filters.map((_, k) => size >> (k + 1)));
    t.is(model.countParams(), baselineParams(filters));
    t.deepEqual(model.outputs[0]!.shape, [null, 1]);
    model.dispose();
  });
}

test('baseline: depth 3 is the default (the same weights), depth 4 keeps the first three blocks\' weights and adds a fourth', async (t) => {
  const plain = await buildModel('baseline', { inputSize: SIZE, width: 0.25, seed: 4 });
  const three = await buildModel('baseline', { inputSize: SIZE, width: 0.25, seed: 4, depth: 3 });
  const four = await buildModel('baseline', { inputSize: SIZE, width: 0.25, seed: 4, depth: 4 });
  const w = await weightsOf(plain.model), w3 = await weightsOf(three.model);
  t.is(w3.length, w.length);
  w.forEach((v, i) => t.deepEqual(w3[i], v));
  // Kernel seeds are drawn in layer order: the first three blocks' six convs match (trainable: kernel, gamma, beta each).
  const trainable = (m: tf.LayersModel) => Promise.all(m.trainableWeights.map(async (v) => (await v.read().data()) as Float32Array));
  const t3 = await trainable(plain.model), t4 = await trainable(four.model);
  for (let i = 0; i < 18; i++) t.deepEqual(t4[i], t3[i]);
  t.is(t4.length, t3.length + 6);
  [plain, three, four].forEach((m) => m.model.dispose());
});

test('depth errors name depth: too many poolings for the input, out of 1–6, or a model without one', async (t) => {
  await t.throwsAsync(buildModel('baseline', { inputSize: 16, depth: 5 }), { instanceOf: RangeError, message: /at most 4 for a 16 px input .*for depth/ });
  await t.throwsAsync(buildModel('baseline', { inputSize: 96, depth: 7 }), { instanceOf: RangeError, message: /between 1 and 6 for depth/ });
  await t.throwsAsync(buildModel('baseline', { inputSize: 96, depth: 0 }), { instanceOf: RangeError, message: /for depth/ });
  await t.throwsAsync(buildModel('resnet', { inputSize: 96, depth: 3 }), { instanceOf: RangeError, message: /only baseline and unet .*for depth/ });
  await t.throwsAsync(buildModel('vgg', { inputSize: 96, depth: 2 }), { instanceOf: RangeError, message: /for depth/ });
});

test('resnet: three stages, stride-2 downsampling with projected shortcuts, global average pool', async (t) => {
  const { model } = await buildModel('resnet', { inputSize: SIZE, width: 1 });
  const adds = model.layers.filter((l) => l.getClassName() === 'Add');
  t.is(adds.length, 6);
  t.deepEqual(adds.map((l) => (l.outputShape as number[])[1]), [32, 32, 16, 16, 8, 8]);
  t.deepEqual(adds.map((l) => (l.outputShape as number[])[3]), [16, 16, 32, 32, 64, 64]);
  t.true(model.layers.some((l) => l.getClassName() === 'GlobalAveragePooling2D'));
  model.dispose();
});

test('vgg: dropout masks follow (seed, step): the same step repeats its mask, the next step draws another', async (t) => {
  const { model } = await buildModel('vgg', { inputSize: SIZE, width: 0.25, seed: 2 });
  const dropout = model.layers.find((l) => l.getClassName() === 'Dropout')!;
  const x = tf.ones([1, 64]);
  const mask = (step: number) => {
    setDropoutSeeds(model, 2, step);
    return tf.tidy(() => Array.from((dropout.apply(x, { training: true }) as tf.Tensor).dataSync()));
  };
  t.deepEqual(mask(7), mask(7));
  t.notDeepEqual(mask(7), mask(8));
  x.dispose();
  model.dispose();
});

test('a custom model.json loads as a trainable model, recompiled with Adam', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hf-zoo-'));
  try {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [SIZE, SIZE, 3], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }));
    m.add(tf.layers.globalAveragePooling2d({}));
    m.add(tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }));
    await saveModel(m, dir);
    const built = await buildModel(dir, { learningRate: 0.005 });
    t.is(built.architecture, 'custom');
    t.is(built.inputSize, SIZE);
    t.is(built.model.optimizer.getClassName(), 'Adam');
    t.is((built.model.optimizer as unknown as { learningRate: number }).learningRate, 0.005);
    const wa = await weightsOf(m), wb = await weightsOf(built.model);
    wa.forEach((w, i) => t.deepEqual(wb[i], w));
    const x = tf.tensor4d(random(2 * SIZE * SIZE * 3, 4, 0, 1), [2, SIZE, SIZE, 3]);
    const r = (await built.model.trainOnBatch(x, tf.tensor2d([1, 0], [2, 1]))) as number[];
    t.true(Number.isFinite(r[0]));
    await t.throwsAsync(buildModel(dir, { inputSize: 48 }), { instanceOf: RangeError, message: /model/ });
    built.model.dispose();
    m.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a custom model with two outputs, or an unknown name, is a RangeError naming model', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hf-zoo-'));
  try {
    const input = tf.input({ shape: [SIZE, SIZE, 3] });
    const flat = tf.layers.globalAveragePooling2d({}).apply(input) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 2, activation: 'softmax' }).apply(flat) as tf.SymbolicTensor;
    await saveModel(tf.model({ inputs: input, outputs: out }), dir);
    await t.throwsAsync(buildModel(dir), { instanceOf: RangeError, message: /for model/ });
    await t.throwsAsync(buildModel('densenet'), { instanceOf: RangeError, message: /for model but received 'densenet'/ });
    await t.throwsAsync(buildModel('baseline', { width: 0 }), { instanceOf: RangeError, message: /for width/ });
    await t.throwsAsync(buildModel('baseline', { inputSize: 4 }), { instanceOf: RangeError, message: /for inputSize/ });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
