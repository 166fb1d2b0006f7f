/**
 * Batch norms folded into their convolutions for inference (src/models/fold.ts).
 * Reference: the unfolded model's own predictions on TF.js cpu, within 2e-6
 * (probabilities; float rounding of the folded weights), and the folding
 * formula in double for the weights themselves.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { foldBatchNorm, foldWeights } from '../../src/models/fold.js';
import { loadModelForInference, saveModel } from '../../src/models/io.js';
import { buildModel } from '../../src/models/zoo.js';
import { countNativeCalls, nativeTest, random } from '../support/tfjs_support.js';

const TOLERANCE = 2e-6;

/** Moving statistics and affine weights far from their initial 0/1, so that folding has something to fold. */
function perturbBatchNorms(model: tf.LayersModel, seed: number): void {
  let s = seed;
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    // The moving variance is the last weight (gamma or beta may be absent): kept positive.
    const weights = layer.getWeights();
    layer.setWeights(weights.map((w, i) => { const v = i === weights.length - 1; return tf.tensor(random(w.size, s++, v ? 0.2 : -0.8, v ? 2 : 0.8), w.shape); }));
  }
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

async function compareFolded(model: tf.LayersModel, x: tf.Tensor): Promise<{ diff: number; folded: number; residuals: number; layers: [number, number] }> {
  const before = model.getWeights().map((w) => Array.from(w.dataSync()));
  const { model: f, folded, residuals } = await foldBatchNorm(model);
  const diff = tf.tidy(() => maxDiff(model.predict(x) as tf.Tensor, f.predict(x) as tf.Tensor));
  // The original is untouched.
  model.getWeights().forEach((w, i) => { if (Array.from(w.dataSync()).some((v, k) => v !== before[i]![k])) throw new Error(`weight ${i} of the original changed`); });
  const layers: [number, number] = [model.layers.length, f.layers.length];
  if (f !== model) f.dispose();
  return { diff, folded, residuals, layers };
}

test.serial('each zoo model predicts the same after folding, to float rounding, with every conv → batch norm (→ ReLU) folded', async (t) => {
  await tf.setBackend('cpu');
  const x = tf.tensor4d(random(4 * 32 * 32 * 3, 3), [4, 32, 32, 3]);
  const expected = { baseline: 6, resnet: 15, vgg: 0, unet: 10 } as const;
  const joined = { baseline: 0, resnet: 6, vgg: 0, unet: 0 } as const;
  for (const name of Object.keys(expected) as (keyof typeof expected)[]) {
    const { model } = await buildModel(name, { inputSize: 32, seed: 1, ...(name === 'unet' ? { depth: 2 } : {}) });
    perturbBatchNorms(model, 40);
    const r = await compareFolded(model, x);
    t.log(`${name}: ${r.folded} batch norms folded, ${r.residuals} residual ends joined, ${r.layers[0]} → ${r.layers[1]} layers, max |Δp| ${r.diff.toExponential(2)}`);
    t.true(r.diff <= TOLERANCE, `${name}: predictions differ by ${r.diff}`);
    t.is(r.folded, expected[name], name);
    t.is(r.residuals, joined[name], name);
    model.dispose();
  }
  x.dispose();
});

test.serial('folding leaves alone what it cannot fold: a branch reading the raw convolution, a shared convolution, another axis, a capped ReLU', async (t) => {
  await tf.setBackend('cpu');
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const input = tf.input({ shape: [12, 12, 4] });
  const shared = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(1) });
  const a = shared.apply(shared.apply(input)) as tf.SymbolicTensor; // used twice
  const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: init(2) }).apply(a) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization({ axis: -1 }).apply(conv) as tf.SymbolicTensor;
  const branch = tf.layers.add().apply([bn, conv]) as tf.SymbolicTensor; // conv's raw output read twice
  const conv2 = tf.layers.conv2d({ filters: 5, kernelSize: 1, useBias: false, kernelInitializer: init(3) }).apply(branch) as tf.SymbolicTensor;
  const bn2 = tf.layers.batchNormalization({ axis: 1 }).apply(conv2) as tf.SymbolicTensor; // not the channels
  const conv3 = tf.layers.conv2d({ filters: 3, kernelSize: 3, kernelInitializer: init(4) }).apply(bn2) as tf.SymbolicTensor;
  const bn3 = tf.layers.batchNormalization({ axis: -1, center: false }).apply(conv3) as tf.SymbolicTensor;
  const capped = tf.layers.reLU({ maxValue: 6 }).apply(bn3) as tf.SymbolicTensor; // stays a layer
  const out = tf.layers.dense({ units: 1, activation: 'sigmoid' }).apply(tf.layers.globalAveragePooling2d({}).apply(capped) as tf.SymbolicTensor) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  perturbBatchNorms(model, 60);
  const x = tf.tensor4d(random(3 * 12 * 12 * 4, 5), [3, 12, 12, 4]);
  const r = await compareFolded(model, x);
  t.is(r.folded, 1, 'only conv3 → bn3 (with a bias, without a centre)');
  t.is(r.layers[1], r.layers[0] - 1);
  t.true(r.diff <= TOLERANCE, `predictions differ by ${r.diff}`);
  model.dispose();
  x.dispose();
});

nativeTest('on native the folded resnet (fused conv + bias + ReLU, conv + shortcut + ReLU kernels) predicts what the unfolded one does on cpu', async (t) => {
  await tf.setBackend('cpu');
  const { model } = await buildModel('resnet', { inputSize: 32, seed: 3 });
  perturbBatchNorms(model, 90);
  const x = tf.tensor4d(random(5 * 32 * 32 * 3, 11), [5, 32, 32, 3]);
  const want = Float32Array.from((model.predict(x) as tf.Tensor).dataSync());
  await tf.setBackend('native');
  const { model: f, residuals } = await foldBatchNorm(model);
  const { result: got, calls } = await countNativeCalls(async () => Float32Array.from((f.predict(x) as tf.Tensor).dataSync()));
  t.is(residuals, 6);
  t.is(calls.get('conv2dAdd'), 6);
  const d = Math.max(...Array.from(got, (v, i) => Math.abs(v - want[i]!)));
  t.true(d <= 1e-5, `predictions differ by ${d}`);
  tf.dispose([x]);
  f.dispose();
  model.dispose();
});

test('foldWeights scales each output channel of the kernel and moves the bias, as the formula in double says', (t) => {
  const kernel = Float32Array.from([1, 2, 3, 4, 5, 6]); // [.., 2 channels]
  const f = foldWeights(kernel, Float32Array.from([0.5, -1]), {
    gamma: Float32Array.from([2, 3]), beta: Float32Array.from([0.25, -0.5]),
    mean: Float32Array.from([1, 2]), variance: Float32Array.from([3, 8]), epsilon: 1,
  });
  const a = [2 / Math.sqrt(4), 3 / Math.sqrt(9)];
  t.deepEqual(Array.from(f.kernel), [1, 2, 3, 4, 5, 6].map((v, i) => Math.fround(v * a[i % 2]!)));
  t.deepEqual(Array.from(f.bias), [Math.fround(0.25 + (0.5 - 1) * a[0]!), Math.fround(-0.5 + (-1 - 2) * a[1]!)]);
  t.throws(() => foldWeights(new Float32Array(5), null, { gamma: null, beta: null, mean: new Float32Array(2), variance: new Float32Array(2), epsilon: 1e-3 }), { instanceOf: RangeError, message: /2 channels/ });
});

test.serial('loadModelForInference folds a saved model (HISTOFLOW_FOLD_BN=0 loads it as saved) and predicts what the saved model does', async (t) => {
  await tf.setBackend('cpu');
  const dir = await mkdtemp(join(tmpdir(), 'histoflow-fold-'));
  try {
    const { model } = await buildModel('baseline', { inputSize: 32, seed: 2 });
    perturbBatchNorms(model, 80);
    await saveModel(model, dir, { card: { inputSize: 32, architecture: 'baseline', preprocess: {} } });
    const x = tf.tensor4d(random(2 * 32 * 32 * 3, 9), [2, 32, 32, 3]);
    const folded = await loadModelForInference(dir);
    process.env.HISTOFLOW_FOLD_BN = '0';
    const saved = await loadModelForInference(dir).finally(() => delete process.env.HISTOFLOW_FOLD_BN);
    t.is(saved.model.layers.length, model.layers.length);
    t.is(folded.model.layers.length, model.layers.length - 12);
    t.is(folded.card.architecture, 'baseline');
    const d = tf.tidy(() => maxDiff(folded.model.predict(x) as tf.Tensor, saved.model.predict(x) as tf.Tensor));
    t.true(d <= TOLERANCE, `predictions differ by ${d}`);
    tf.dispose([x]);
    [model, folded.model, saved.model].forEach((m) => m.dispose());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
