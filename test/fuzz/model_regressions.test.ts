/**
 * What the fuzz suite's 'model' family found in src/models/io.ts (seed 4242,
 * cases 640, 934, 1516, 873; seed 777001, case 1489;
 * `node scripts/fuzz.mjs --family model --seed S --case I`).
 * Each edits one field of a saved model.json; loading it, then predicting,
 * must end in a clear error or a score per image.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import test from 'ava';

import { loadModel, saveModel } from '../../src/models/io.js';
import { classifyError } from '../support/fuzz_verdict.js';

let work = '';
let saved = '';

test.before(async () => {
  await tf.setBackend('cpu');
  work = await mkdtemp(join(tmpdir(), 'histoflow-model-regressions-'));
  saved = join(work, 'saved');
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
  });
  await saveModel(model, saved, { card: { inputSize: 8, architecture: 'custom', preprocess: {} } });
  model.dispose();
});

test.after.always(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The parts of model.json the cases edit. */
interface ModelJson {
  weightsManifest: Array<{ paths: unknown[]; weights: Array<{ shape: unknown[] }> }>;
  modelTopology: { config: { layers: Array<{ config: Record<string, unknown> }> } };
}

const DEEP = '"@@DEEP@@"';
const deep = (inner: string) => `${'['.repeat(100_000)}${inner}${']'.repeat(100_000)}`;

/** loadModel + predict on a copy of the saved model with `edit` applied (DEEP in the text replaced by `replacement`). */
async function loadEdited(name: string, edit: (json: ModelJson) => void, replacement?: string): Promise<{ outcome: string; message?: string }> {
  const dir = join(work, name);
  await cp(saved, dir, { recursive: true });
  const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as ModelJson;
  edit(json);
  await writeFile(join(dir, 'model.json'), JSON.stringify(json).replace(DEEP, replacement ?? DEEP));
  try {
    const { model } = await loadModel(dir);
    const y = model.predict(tf.zeros([1, 8, 8, 3])) as tf.Tensor;
    const shape = y.shape;
    y.dispose();
    model.dispose();
    return JSON.stringify(shape) === '[1,1]' ? { outcome: 'ok' } : { outcome: 'wrong', message: `predict gave shape ${JSON.stringify(shape)}` };
  } catch (e) {
    return classifyError(e);
  }
}

const CLEAR = ['ok', 'error'];

// model, seed 4242, case 640: JSON.stringify of the path in the refusal message overflows the stack.
test('a weights path nested 100000 arrays deep is refused with a clear error', async (t) => {
  const r = await loadEdited('deep-path', (j) => { j.weightsManifest[0]!.paths = ['@@DEEP@@']; }, deep('"./weights.bin"'));
  t.true(CLEAR.includes(r.outcome), JSON.stringify(r));
});

// model, seed 4242, cases 934, 1621, 1682: the same in the message about a weight's shape.
test('a weight shape nested 100000 arrays deep is refused with a clear error', async (t) => {
  const r = await loadEdited('deep-shape', (j) => { j.weightsManifest[0]!.weights[0]!.shape[0] = '@@DEEP@@'; }, deep('3'));
  t.true(CLEAR.includes(r.outcome), JSON.stringify(r));
});

// model, seed 777001, case 1489: and in the message about a weight's name.
test('a weight name nested 100000 arrays deep is refused with a clear error', async (t) => {
  const r = await loadEdited('deep-name', (j) => { (j.weightsManifest[0]!.weights[0] as { name?: unknown }).name = '@@DEEP@@'; }, deep('"w"'));
  t.true(CLEAR.includes(r.outcome), JSON.stringify(r));
});

// model, seed 4242, cases 873, 1005: loadModel checks only the output's last dimension.
test('a model whose output is [null, 3, 3, 1] instead of [null, 1] is refused at load', async (t) => {
  const r = await loadEdited('no-pooling', (j) => { j.modelTopology.config.layers.splice(2, 1); });
  t.is(r.outcome, 'error', JSON.stringify(r));
});

// model, seed 4242, case 1516 (seed 777001, cases 580, 1688): TF.js accepts strides 0, and predict fails with "Invalid typed array length: Infinity".
test('a convolution with strides [0, 0] ends in a clear error, at load or at predict', async (t) => {
  const r = await loadEdited('zero-strides', (j) => { j.modelTopology.config.layers[0]!.config.strides = [0, 0]; });
  t.true(CLEAR.includes(r.outcome), JSON.stringify(r));
});
