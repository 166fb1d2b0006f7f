/**
 * Model folders (src/models/io.ts) and inference (src/models/predict.ts):
 * a saved model loads back with identical weights and outputs, optimizer
 * state included; TTA equals the mean of the model over the 8 dihedral views
 * computed independently with TF.js ops; bad folders give clear errors.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { loadModel, saveModel, ModelNotFoundError } from '../../src/models/io.js';
import { createPredictor } from '../../src/models/predict.js';
import { baselineCnn } from '../../src/models/baseline_cnn.js';

const SIZE = 16;

function tinyModel(): tf.LayersModel {
  return baselineCnn({ inputSize: SIZE, filters: [4, 4, 4], seed: 3 });
}

function randomBatch(n: number, seed: number) {
  const data = new Uint8Array(n * SIZE * SIZE * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) data[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  return { n, height: SIZE, width: SIZE, data };
}

test.before(async () => {
  await tf.setBackend('cpu');
});

test('a saved model loads back with the same weights, card and outputs; optimizer state round-trips', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hf-model-'));
  try {
    const model = tinyModel();
    const x = tf.randomUniform([4, SIZE, SIZE, 3], 0, 1, 'float32', 5);
    const y = tf.tensor2d([0, 1, 1, 0], [4, 1]);
    await model.trainOnBatch(x, y); // gives Adam non-trivial slots
    const card = { inputSize: SIZE, architecture: 'baseline', preprocess: {}, epoch: 1 };
    await saveModel(model, dir, { card, includeOptimizer: true });
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    t.is(json.format, 'layers-model');
    t.deepEqual(json.weightsManifest[0].paths, ['./weights.bin']);
    const loaded = await loadModel(dir);
    t.deepEqual(loaded.card, card);
    const a = model.getWeights(), b = loaded.model.getWeights();
    t.is(a.length, b.length);
    for (let i = 0; i < a.length; i++) t.deepEqual(Array.from(await b[i]!.data()), Array.from(await a[i]!.data()));
    const oa = await model.optimizer.getWeights(), ob = await loaded.model.optimizer.getWeights();
    t.true(oa.length > 1);
    t.is(ob.length, oa.length);
    for (let i = 0; i < oa.length; i++) t.deepEqual(Array.from(await ob[i]!.tensor.data()), Array.from(await oa[i]!.tensor.data()));
    const pa = (model.predict(x) as tf.Tensor).dataSync(), pb = (loaded.model.predict(x) as tf.Tensor).dataSync();
    t.deepEqual(Array.from(pb), Array.from(pa));
    // One more identical step on both gives identical weights: resuming is exact.
    await model.trainOnBatch(x, y);
    await loaded.model.trainOnBatch(x, y);
    const a2 = model.getWeights(), b2 = loaded.model.getWeights();
    for (let i = 0; i < a2.length; i++) t.deepEqual(Array.from(await b2[i]!.data()), Array.from(await a2[i]!.data()));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('TTA is the mean over the 8 dihedral views, computed with TF.js ops', async (t) => {
  const model = tinyModel();
  const card = { inputSize: SIZE, architecture: 'baseline', preprocess: {} };
  const batch = randomBatch(5, 11);
  const predictor = createPredictor(model, card, { batchSize: 16 });
  const plain = await predictor.predict(batch);
  const tta = await predictor.predict(batch, { tta: true });
  const x = tf.tensor4d(Float32Array.from(batch.data, (v) => v / 255), [5, SIZE, SIZE, 3]);
  const views: tf.Tensor4D[] = [];
  for (const base of [x, tf.transpose(x, [0, 2, 1, 3]) as tf.Tensor4D]) {
    views.push(base, tf.reverse(base, 1), tf.reverse(base, 2), tf.reverse(base, [1, 2]));
  }
  const direct = (model.predict(x) as tf.Tensor).dataSync();
  const mean = tf.addN(views.map((v) => model.predict(v) as tf.Tensor)).div(8).dataSync();
  for (let i = 0; i < 5; i++) {
    t.true(Math.abs(plain[i]! - direct[i]!) < 1e-5, `plain ${i}: ${plain[i]} vs ${direct[i]}`);
    t.true(Math.abs(tta[i]! - mean[i]!) < 1e-5, `tta ${i}: ${tta[i]} vs ${mean[i]}`);
  }
  t.true(tta.some((v, i) => Math.abs(v - plain[i]!) > 1e-6), 'TTA changes an untrained model\'s scores');
  await t.throwsAsync(predictor.predict({ n: 1, height: 8, width: 8, data: new Uint8Array(192) }), { instanceOf: RangeError, message: /batch/ });
});

test("TTA 'crops' of a crop-trained model is the mean over the centre and corner windows x 8 views, computed with TF.js ops", async (t) => {
  const model = tinyModel();
  const side = SIZE + 4;
  const card = { inputSize: SIZE, imageSize: side, architecture: 'baseline', preprocess: { crop: { size: SIZE, mode: 'center' as const } } };
  const data = new Uint8Array(3 * side * side * 3);
  let s = 29;
  for (let i = 0; i < data.length; i++) data[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  const batch = { n: 3, height: side, width: side, data };
  const predictor = createPredictor(model, card, { batchSize: 16 });
  const tta = await predictor.predict(batch, { tta: true });
  const crops = await predictor.predict(batch, { tta: 'crops' });
  const x = tf.tensor4d(Float32Array.from(data, (v) => v / 255), [3, side, side, 3]);
  const meanOfViews = (windows: ReadonlyArray<readonly [number, number]>) => {
    const outs: tf.Tensor[] = [];
    for (const [y, x0] of windows) {
      const w = tf.slice(x, [0, y, x0, 0], [3, SIZE, SIZE, 3]) as tf.Tensor4D;
      for (const base of [w, tf.transpose(w, [0, 2, 1, 3]) as tf.Tensor4D]) {
        for (const v of [base, tf.reverse(base, 1), tf.reverse(base, 2), tf.reverse(base, [1, 2])]) outs.push(model.predict(v) as tf.Tensor);
      }
    }
    return tf.addN(outs).div(outs.length).dataSync();
  };
  const centre = meanOfViews([[2, 2]]);
  const five = meanOfViews([[2, 2], [0, 0], [0, 4], [4, 0], [4, 4]]);
  for (let i = 0; i < 3; i++) {
    t.true(Math.abs(tta[i]! - centre[i]!) < 1e-5, `tta ${i}: ${tta[i]} vs ${centre[i]}`);
    t.true(Math.abs(crops[i]! - five[i]!) < 1e-5, `crops ${i}: ${crops[i]} vs ${five[i]}`);
  }
  t.true(crops.some((v, i) => Math.abs(v - tta[i]!) > 1e-6), 'the corner windows change an untrained model\'s scores');
  await t.throwsAsync(predictor.predict(batch, { tta: 'five' as never }), { instanceOf: RangeError, message: /for tta/ });
  t.throws(() => createPredictor(model, card, { tta: 'yes' as never }), { instanceOf: RangeError, message: /options\.tta/ });
});

test('missing, empty and corrupt model folders give clear errors', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hf-model-'));
  try {
    await t.throwsAsync(loadModel(join(dir, 'nope')), { instanceOf: ModelNotFoundError, message: /Model not found.*no such file/ });
    await t.throwsAsync(loadModel(dir), { instanceOf: ModelNotFoundError, message: /no model\.json/ });
    await writeFile(join(dir, 'model.json'), '{not json');
    await t.throwsAsync(loadModel(dir), { message: /Cannot read .*model\.json/ });
    await saveModel(tinyModel(), dir);
    const w = await readFile(join(dir, 'weights.bin'));
    await writeFile(join(dir, 'weights.bin'), w.subarray(0, w.length - 4));
    await t.throwsAsync(loadModel(dir), { message: /truncated or mismatched/ });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
