/**
 * A model folder whose model.json and weights disagree fails to load with an
 * error that names the model file, the layer and weight, and the expected
 * and actual shapes (TF.js alone says "Shape mismatch: [3,3,3,4] vs.
 * [3,3,4,3]"); a model whose input disagrees with the data names the file
 * and the input layer.
 */
import { mkdtempSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { baselineCnn } from '../../src/models/baseline_cnn.js';
import { loadModel, modelFile, saveModel } from '../../src/models/io.js';
import { createPredictor } from '../../src/models/predict.js';
import { buildModel } from '../../src/models/zoo.js';

interface ModelJson {
  modelTopology: { config: { layers: { class_name: string; config: Record<string, unknown> }[] } };
  weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string }[] }[];
}

let saved: { json: string; weights: Buffer };
test.before(async () => {
  await tf.setBackend('cpu');
  const dir = mkdtempSync(join(tmpdir(), 'hf-model-src-'));
  await saveModel(baselineCnn({ inputSize: 16, filters: [4, 4, 4], seed: 3 }), dir);
  saved = { json: await readFile(join(dir, 'model.json'), 'utf8'), weights: await readFile(join(dir, 'weights.bin')) };
});

/** A copy of the saved model, its model.json changed by `edit` and its weights by `weights`. */
async function broken(edit: (json: ModelJson) => void, weights = (w: Buffer) => w): Promise<{ dir: string; file: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'hf-model-'));
  const json = JSON.parse(saved.json) as ModelJson;
  edit(json);
  await writeFile(join(dir, 'model.json'), JSON.stringify(json));
  await writeFile(join(dir, 'weights.bin'), weights(saved.weights));
  return { dir, file: join(dir, 'model.json') };
}

const firstConv = (json: ModelJson) => json.modelTopology.config.layers.find((l) => l.class_name === 'Conv2D')!;
const dense = (json: ModelJson) => json.modelTopology.config.layers.find((l) => l.class_name === 'Dense')!;

test('a weight whose manifest shape disagrees with its layer names the file, layer, weight and both shapes', async (t) => {
  const { dir, file } = await broken((j) => (j.weightsManifest[0]!.weights[0]!.shape = [3, 3, 4, 3]));
  await t.throwsAsync(loadModel(dir), {
    message: `${file}: weight 'conv2d_Conv2D1/kernel' of layer 'conv2d_Conv2D1' (Conv2D) has shape [3, 3, 4, 3] in the weights manifest ` +
      'but the layer expects [3, 3, 3, 4] (its input [null, 16, 16, 3])',
  });
});

test('a layer whose topology disagrees with its weights (more filters, more units) is named with both shapes', async (t) => {
  const conv = await broken((j) => (firstConv(j).config.filters = 5));
  await t.throwsAsync(loadModel(conv.dir), {
    message: `${conv.file}: weight 'conv2d_Conv2D1/kernel' of layer 'conv2d_Conv2D1' (Conv2D) has shape [3, 3, 3, 4] in the weights manifest ` +
      'but the layer expects [3, 3, 3, 5] (its input [null, 16, 16, 3])',
  });
  const units = await broken((j) => (dense(j).config.units = 2));
  await t.throwsAsync(loadModel(units.dir), {
    message: `${units.file}: weight 'dense_Dense1/kernel' of layer 'dense_Dense1' (Dense) has shape [4, 1] in the weights manifest but the layer expects [4, 2] (its input [null, 4])`,
  });
});

test('a weights file shorter than the manifest names the file and the first weight it cuts, with its shape and bytes', async (t) => {
  const { dir, file } = await broken(() => undefined, (w) => w.subarray(0, w.length - 10));
  const total = saved.weights.length;
  await t.throwsAsync(loadModel(dir), {
    message: `The weights "./weights.bin" of ${file} hold ${total - 10} bytes but weight 'batch_normalization_BatchNormalization6/moving_variance' ` +
      `(shape [4], float32) needs bytes ${total - 16}..${total} of the ${total} the manifest lists: truncated or mismatched files`,
  });
  const longer = await broken(() => undefined, (w) => Buffer.concat([w, Buffer.alloc(8)]));
  await t.throwsAsync(loadModel(longer.dir), {
    message: `The weights "./weights.bin" of ${longer.file} hold ${total + 8} bytes where the manifest needs ${total} ` +
      "(8 bytes more than its last weight 'batch_normalization_BatchNormalization6/moving_variance'): truncated or mismatched files",
  });
});

test('a manifest weight that no layer has, or a malformed shape, is named with the file', async (t) => {
  const renamed = await broken((j) => (j.weightsManifest[0]!.weights[0]!.name = 'conv2d_Other/kernel'));
  const e = await t.throwsAsync(loadModel(renamed.dir));
  t.true(e!.message.startsWith(`${renamed.file}: the weights manifest lists 'conv2d_Other/kernel' (shape [3, 3, 3, 4]), which is no weight of any layer of the model (its weights: conv2d_Conv2D1/kernel,`), e!.message);
  const malformed = await broken((j) => ((j.weightsManifest[0]!.weights[1] as unknown as { shape: unknown }).shape = [4, -1]));
  await t.throwsAsync(loadModel(malformed.dir), {
    message: `${malformed.file}: weight 'batch_normalization_BatchNormalization1/gamma' of the weights manifest has shape [4,-1]; expected a list of integers ≥ 0`,
  });
});

test('a model whose input disagrees with the data names the file and the input layer, in training and in prediction', async (t) => {
  const { dir, file } = await broken(() => undefined);
  await t.throwsAsync(buildModel(dir, { inputSize: 32 }), {
    instanceOf: RangeError,
    message: `Expected a model with a 32x32 input (the data's image size) for model but ${file} takes 16x16 (input layer 'conv2d_Conv2D1_input', shape [null, 16, 16, 3])`,
  });
  const { model, card } = await loadModel(dir);
  t.is(modelFile(model), file);
  const predictor = createPredictor(model, card);
  await t.throwsAsync(predictor.predict({ n: 1, height: 32, width: 32, data: new Uint8Array(32 * 32 * 3) }), {
    instanceOf: RangeError,
    message: `Expected images that preprocess to the 16x16 input of the model ${file} (input layer 'conv2d_Conv2D1_input', shape [null, 16, 16, 3]) ` +
      "for batch but received '32x32 images (→ 32x32)' of type string",
  });
  model.dispose();
});
