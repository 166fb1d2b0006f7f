/**
 * Every zoo model computes the same training step on the `native` backend
 * (addon kernels, cpu fallbacks for the rest) as on plain TF.js cpu: same
 * seed, same batch, weights after 2 SGD steps within 1e-4 of the largest
 * magnitude of each weight (the bound test/tfjs/parity.test.ts holds each
 * replaced kernel to). Classifiers learn labels with binary cross-entropy,
 * the segmentation model a mask with its Dice + BCE loss.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { ZOO_MODELS, buildModel, modelTask, setDropoutSeeds } from '../../src/models/zoo.js';
import { diceBceLoss } from '../../src/train/segment_loss.js';
import { nativeAvailable, random } from '../support/tfjs_support.js';

const SIZE = 24;

async function twoSteps(backend: string, name: string): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const { model } = await buildModel(name, { inputSize: SIZE, width: 0.25, seed: 8 });
  // Plain SGD: a weight's error is then the gradient's error times lr (Adam would divide
  // near-zero gradients by their own size and amplify their rounding).
  const segment = modelTask(name as (typeof ZOO_MODELS)[number]) === 'segment';
  model.compile({ optimizer: tf.train.sgd(0.1), loss: segment ? diceBceLoss : 'binaryCrossentropy' });
  const x = tf.tensor4d(random(6 * SIZE * SIZE * 3, 21, 0, 1), [6, SIZE, SIZE, 3]);
  const y = segment
    ? tf.tensor4d(random(6 * SIZE * SIZE, 22, 0, 2).map(Math.floor), [6, SIZE, SIZE, 1])
    : tf.tensor2d([0, 1, 1, 0, 1, 0], [6, 1]);
  for (let step = 0; step < 2; step++) {
    setDropoutSeeds(model, 8, step);
    await model.trainOnBatch(x, y);
  }
  const out = model.getWeights().map((w) => w.dataSync() as Float32Array);
  tf.dispose([x, y]);
  model.dispose();
  return out;
}

for (const name of ZOO_MODELS) {
  (nativeAvailable ? test.serial : test.skip)(`${name}: two training steps on native equal cpu's within 1e-4 relative${nativeAvailable ? '' : ' (skipped: the native TF.js backend needs the addon)'}`, async (t) => {
    const cpu = await twoSteps('cpu', name);
    const native = await twoSteps('native', name);
    t.is(native.length, cpu.length);
    cpu.forEach((w, i) => {
      let scale = 0, err = 0;
      for (let k = 0; k < w.length; k++) {
        scale = Math.max(scale, Math.abs(w[k]!));
        err = Math.max(err, Math.abs(w[k]! - native[i]![k]!));
      }
      t.true(err <= 1e-4 * Math.max(scale, 1e-6), `weight ${i}: max error ${err} vs scale ${scale}`);
    });
  });
}
