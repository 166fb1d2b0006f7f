/**
 * The zoo's UNet (src/models/unet.ts): its shapes and parameter count from
 * its layer list, seeded weights, options checked by name, the zoo's build
 * (compiled with the segmentation loss), a save / load round trip through
 * io.ts with and without the optimizer, and a tiny overfit on the `native`
 * backend: two synthetic images with a disc mask learnt to Dice > 0.9.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { loadModel, outputTask, saveModel } from '../../src/models/io.js';
import { unet } from '../../src/models/unet.js';
import { buildModel, modelTask } from '../../src/models/zoo.js';
import { diceBceLoss, segmentationScores } from '../../src/train/segment_loss.js';
import { IN_CI } from '../support/helpers.js';
import { nativeAvailable, nativeStatus, random } from '../support/tfjs_support.js';

const weightsOf = (model: tf.LayersModel) => model.getWeights().map((w) => w.dataSync() as Float32Array);

/**
 * The parameters of the file comment's layer list: 3x3 convolutions without
 * bias, batch norm (γ, β, moving mean and variance), transposed 2x2
 * convolutions with bias, the 1x1 head with bias.
 */
function expectedParams(width: number, depth: number): number {
  const f = (l: number) => Math.max(1, Math.round(16 * 2 ** l * width));
  const block = (cin: number, c: number) => 9 * cin * c + 4 * c + 9 * c * c + 4 * c;
  let n = 0;
  for (let l = 0; l < depth; l++) n += block(l === 0 ? 3 : f(l - 1), f(l));
  n += block(f(depth - 1), f(depth));
  for (let l = depth - 1; l >= 0; l--) n += 4 * f(l + 1) * f(l) + f(l) + block(2 * f(l), f(l));
  return n + f(0) + 1;
}

test.before(async () => {
  await tf.setBackend('cpu');
});

for (const [size, width, depth] of [[32, 1, 3], [24, 0.5, 3], [16, 0.25, 1], [64, 0.125, 6]] as const) {
  test(`unet ${size}px, width ${width}, depth ${depth}: [null, ${size}, ${size}, 3] → [null, ${size}, ${size}, 1], ${expectedParams(width, depth)} parameters`, (t) => {
    const model = unet({ inputSize: size, width, depth, seed: 1 });
    t.deepEqual(model.inputs[0]!.shape, [null, size, size, 3]);
    t.deepEqual(model.outputs[0]!.shape, [null, size, size, 1]);
    t.is(model.countParams(), expectedParams(width, depth));
    t.is(model.layers.filter((l) => l.getClassName() === 'MaxPooling2D').length, depth);
    t.is(model.layers.filter((l) => l.getClassName() === 'Conv2DTranspose').length, depth);
    t.is(model.layers.filter((l) => l.getClassName() === 'Concatenate').length, depth);
    t.is(outputTask(model), 'segment');
    model.dispose();
  });
}

test('unet gives a probability in (0, 1) for every pixel', (t) => {
  const model = unet({ inputSize: 16, width: 0.25, depth: 2 });
  const p = tf.tidy(() => (model.predict(tf.tensor4d(random(2 * 16 * 16 * 3, 3, 0, 1), [2, 16, 16, 3])) as tf.Tensor).dataSync());
  t.is(p.length, 2 * 16 * 16);
  t.true(p.every((v) => v > 0 && v < 1));
  model.dispose();
});

test('two UNets with one seed hold identical weights, another seed differs', (t) => {
  const [a, b, c] = [7, 7, 8].map((seed) => unet({ inputSize: 16, width: 0.25, depth: 2, seed }));
  const wa = weightsOf(a!), wb = weightsOf(b!), wc = weightsOf(c!);
  wa.forEach((w, i) => t.deepEqual(wb[i], w));
  t.false(wa.every((w, i) => w.every((v, k) => v === wc[i]![k])));
  [a, b, c].forEach((m) => m!.dispose());
});

test('unet names the option it refuses', (t) => {
  t.throws(() => unet({ inputSize: 20, depth: 3 }), { instanceOf: RangeError, message: /inputSize to be a multiple of 2\^depth = 8.*received inputSize 20/ });
  t.throws(() => unet({ inputSize: 96, depth: 6 }), { instanceOf: RangeError, message: /inputSize.*2\^depth = 64/ });
  t.throws(() => unet({ depth: 0 }), { instanceOf: RangeError, message: /for depth/ });
  t.throws(() => unet({ depth: 7 }), { instanceOf: RangeError, message: /for depth/ });
  t.throws(() => unet({ depth: 2.5 }), { instanceOf: RangeError, message: /for depth/ });
  t.throws(() => unet({ width: '1' as unknown as number }), { instanceOf: TypeError, message: /for width/ });
  t.throws(() => unet({ inputSize: 4 }), { instanceOf: RangeError, message: /for inputSize/ });
  t.throws(() => unet({ seed: -1 }), { instanceOf: RangeError, message: /for seed/ });
  t.throws(() => unet({ size: 32 } as unknown as { inputSize: number }), { message: /size/ });
});

test('the zoo builds unet compiled with Adam and the segmentation loss; depth is unet\'s alone', async (t) => {
  t.is(modelTask('unet'), 'segment');
  const built = await buildModel('unet', { inputSize: 32, width: 0.25, depth: 2, learningRate: 0.01, seed: 4 });
  t.is(built.architecture, 'unet');
  t.is(built.task, 'segment');
  t.is(built.model.optimizer.getClassName(), 'Adam');
  t.is(built.model.loss, diceBceLoss);
  t.is(built.model.layers.filter((l) => l.getClassName() === 'MaxPooling2D').length, 2);
  const same = unet({ inputSize: 32, width: 0.25, depth: 2, seed: 4 });
  weightsOf(same).forEach((w, i) => t.deepEqual(weightsOf(built.model)[i], w));
  same.dispose();
  built.model.dispose();
  await t.throwsAsync(buildModel('vgg', { inputSize: 32, depth: 2 }), { instanceOf: RangeError, message: /for depth/ });
  await t.throwsAsync(buildModel('unet', { inputSize: 36 }), { instanceOf: RangeError, message: /inputSize.*2\^depth = 8/ });
  const classifier = await buildModel('baseline', { inputSize: 32, width: 0.25 });
  t.is(classifier.task, 'classify');
  classifier.model.dispose();
});

/** Two 32x32 images: noise with a brighter disc each (other centres and radii), and their disc masks. */
function discs(size: number): { x: tf.Tensor4D; y: tf.Tensor4D; masks: Float32Array } {
  const noise = random(2 * size * size * 3, 31, 0, 0.4);
  const masks = new Float32Array(2 * size * size);
  const x = new Float32Array(2 * size * size * 3);
  [[12, 14, 7], [20, 17, 9]].forEach(([cy, cx, r], n) => {
    for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) {
      const p = (n * size + i) * size + j;
      masks[p] = (i - cy!) ** 2 + (j - cx!) ** 2 <= r! ** 2 ? 1 : 0;
      for (let c = 0; c < 3; c++) x[p * 3 + c] = noise[p * 3 + c]! + 0.5 * masks[p]! * (c === 0 ? 1 : 0.4);
    }
  });
  return { x: tf.tensor4d(x, [2, size, size, 3]), y: tf.tensor4d(masks, [2, size, size, 1]), masks };
}

test('a UNet saved and loaded through io.ts predicts identically; with its optimizer it resumes the same training', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hf-unet-'));
  try {
    const { model } = await buildModel('unet', { inputSize: 32, width: 0.25, depth: 2, learningRate: 0.01, seed: 9 });
    const { x, y } = discs(32);
    await model.trainOnBatch(x, y); // moves the weights, batch-norm statistics and Adam's slots off their start
    const card = { inputSize: 32, architecture: 'unet', preprocess: {} };
    await saveModel(model, join(dir, 'plain'), { card });
    await saveModel(model, join(dir, 'resume'), { card, includeOptimizer: true });
    const predict = (m: tf.LayersModel) => tf.tidy(() => (m.predict(x) as tf.Tensor).dataSync());
    const plain = await loadModel(join(dir, 'plain'));
    t.deepEqual(plain.card.architecture, 'unet');
    t.deepEqual(predict(plain.model), predict(model));
    const resumed = await loadModel(join(dir, 'resume'));
    t.is(resumed.model.loss, diceBceLoss);
    t.is(resumed.model.optimizer.getClassName(), 'Adam');
    const next = (await model.trainOnBatch(x, y)) as number;
    const again = (await resumed.model.trainOnBatch(x, y)) as number;
    t.is(again, next);
    t.deepEqual(predict(resumed.model), predict(model));
    tf.dispose([x, y]);
    [model, plain.model, resumed.model].forEach((m) => m.dispose());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

(nativeAvailable || IN_CI ? test.serial : test.skip)(`a UNet learns two disc masks on the native backend in 60 steps (Dice > 0.9)${nativeAvailable ? '' : ` (skipped: ${nativeStatus.detail})`}`, async (t) => {
  await tf.setBackend('native');
  try {
    const { model } = await buildModel('unet', { inputSize: 32, width: 0.25, depth: 2, learningRate: 0.01, seed: 3 });
    const { x, y, masks } = discs(32);
    let first = 0, last = 0;
    for (let step = 0; step < 60; step++) {
      last = (await model.trainOnBatch(x, y)) as number;
      if (step === 0) first = last;
    }
    const probs = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
    const { dice, iou } = segmentationScores(probs, masks, 2, 0.5);
    t.log(`loss ${first.toFixed(3)} → ${last.toFixed(3)}; Dice ${dice.toFixed(3)}, IoU ${iou.toFixed(3)} (inference mode, moving batch-norm statistics)`);
    t.true(dice > 0.9, `Dice ${dice}`);
    tf.dispose([x, y]);
    model.dispose();
  } finally {
    await tf.setBackend('cpu');
  }
});
