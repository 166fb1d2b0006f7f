/**
 * The native backend's backward pass frees gradients and saved tensors as it
 * goes (src/tfjs/lean_gradients.ts). Reference: TF.js's own engine.gradients
 * on the same backend (setLeanGradients(false)); the same kernels run in the
 * same order, so the tolerance is zero: bit-identical values.
 */
import * as tf from '@tensorflow/tfjs';

import { buildModel } from '../../src/models/zoo.js';
import { setFusedTraining } from '../../src/tfjs/fused_training.js';
import { leanGradientsActive, setLeanGradients } from '../../src/tfjs/lean_gradients.js';
import { NativeStorageBackend } from '../../src/tfjs/native_storage.js';
import { nativeTest, random, withSwitch } from '../support/tfjs_support.js';

const run = nativeTest;

const withLean = <T>(on: boolean, fn: () => Promise<T> | T): Promise<T> => withSwitch(setLeanGradients, on, fn);

/** The baseline CNN trained `steps` steps from seed 1: its weights and losses, and the most bytes of live tensors in a step. */
async function trainBaseline(size: number, batch: number, steps: number): Promise<{ weights: Float32Array[]; losses: number[]; peak: number }> {
  const { model } = await buildModel('baseline', { inputSize: size, seed: 1 });
  const x = tf.tensor4d(random(batch * size * size * 3, 5), [batch, size, size, 3]);
  const y = tf.tensor2d(Float32Array.from({ length: batch }, (_, i) => i % 2), [batch, 1]);
  const storage = tf.backend() as NativeStorageBackend;
  const losses: number[] = [];
  let peak = 0;
  for (let s = 0; s < steps; s++) {
    storage.resetPeak();
    const before = storage.memoryStats().liveBytes;
    const out = await model.trainOnBatch(x, y);
    losses.push(Array.isArray(out) ? out[0]! : out);
    peak = Math.max(peak, storage.memoryStats().peakLiveBytes - before);
  }
  const weights = model.getWeights().map((w) => w.dataSync() as Float32Array).map((v) => Float32Array.from(v));
  tf.dispose([x, y]);
  model.dispose();
  return { weights, losses, peak };
}

run('the lean backward pass is what the native backend trains with', async (t) => {
  await tf.setBackend('native');
  t.true(leanGradientsActive());
});

run('the baseline CNN trains to bit-identical weights and losses with the lean backward pass and with TF.js\'s own', async (t) => {
  await tf.setBackend('native');
  const lean = await withLean(true, () => trainBaseline(16, 8, 3));
  const stock = await withLean(false, () => trainBaseline(16, 8, 3));
  t.deepEqual(lean.losses, stock.losses);
  t.is(lean.weights.length, stock.weights.length);
  lean.weights.forEach((w, i) => t.deepEqual(Array.from(w), Array.from(stock.weights[i]!), `weight ${i}`));
});

run('a training step of the baseline CNN peaks at under half the live tensor bytes of TF.js\'s own backward pass', async (t) => {
  await tf.setBackend('native');
  // Bytes of ArrayBuffers behind live tensors (NativeStorageBackend.memoryStats): deterministic, unlike RSS.
  // Batch norm as TF.js composes it (many saved tensors and gradients per layer), the case this pass was made for.
  setFusedTraining(false);
  try {
    const lean = await withLean(true, () => trainBaseline(32, 16, 2));
    const stock = await withLean(false, () => trainBaseline(32, 16, 2));
    t.log(`peak of live tensors in a step: lean ${(lean.peak / 2 ** 20).toFixed(1)} MiB, TF.js's ${(stock.peak / 2 ** 20).toFixed(1)} MiB`);
    t.true(lean.peak < 0.5 * stock.peak);
  } finally {
    setFusedTraining(true);
  }
});

run('a gradient step leaves no tensor behind but the gradients it returns', async (t) => {
  await tf.setBackend('native');
  const x = tf.variable(tf.tensor2d(random(64 * 64, 6), [64, 64]));
  const before = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.relu(tf.matMul(x, x).mul(x).add(x))) as tf.Scalar, [x]);
  t.is(tf.memory().numTensors, before + 2); // value and one gradient
  tf.dispose([value, grads[x.name]!]);
  x.dispose();
});

run('a tensor used several times gets the same gradient as with TF.js\'s own backward pass', async (t) => {
  await tf.setBackend('native');
  const f = (x: tf.Tensor) => tf.sum(tf.add(tf.mul(x, x), tf.sigmoid(tf.mul(x, x)))).add(tf.sum(x));
  const x = tf.tensor1d(random(1 << 15, 7));
  const lean = await withLean(true, () => tf.grad(f)(x).dataSync().slice());
  const stock = await withLean(false, () => tf.grad(f)(x).dataSync().slice());
  t.deepEqual(Array.from(lean), Array.from(stock));
  x.dispose();
});

run('a custom gradient that returns a tensor of the caller\'s leaves it intact, and a given dy too', async (t) => {
  await tf.setBackend('native');
  const held = tf.tensor1d(random(1 << 15, 8));
  const dy = tf.onesLike(held);
  const f = tf.customGrad((...args) => ({ value: (args[0] as tf.Tensor).clone(), gradFunc: () => held }));
  const x = tf.tensor1d(random(1 << 15, 9));
  // x reaches y twice through f: the two gradients are added, then the parts let go
  const g = tf.grad((v: tf.Tensor) => tf.add(f(v), f(v)))(x, dy);
  t.false(held.isDisposed);
  t.false(dy.isDisposed);
  const expected = held.dataSync().map((v) => v + v);
  t.deepEqual(Array.from(g.dataSync()), Array.from(expected));
  tf.dispose([held, dy, x, g]);
});

run('a second-order gradient takes TF.js\'s path and is right', async (t) => {
  await tf.setBackend('native');
  // d²/dx² x³ = 6x
  const x = tf.tensor1d([0.5, -2, 3]);
  const g2 = tf.grad(tf.grad((v: tf.Tensor) => tf.pow(v, 3)))(x);
  const got = Array.from(g2.dataSync());
  [3, -12, 18].forEach((e, i) => t.true(Math.abs(got[i]! - e) <= 1e-5, `element ${i}: ${got[i]} vs ${e}`));
  tf.dispose([x, g2]);
});

run('a custom gradient that hands one tensor to two inputs gives both their gradient, as TF.js\'s own does', async (t) => {
  await tf.setBackend('native');
  const add = tf.customGrad((...args) => ({
    value: tf.add(args[0] as tf.Tensor, args[1] as tf.Tensor),
    gradFunc: (dy) => {
      const g = tf.mul(dy as tf.Tensor, 3);
      return [g, g];
    },
  }));
  const a = tf.tensor1d([0.5, -2, 3]);
  const b = tf.tensor1d([1, 2, 4]);
  // a's part is added to the gradient from a·2 first; b's part must still be there
  const f = (u: tf.Tensor, v: tf.Tensor) => tf.sum(tf.add(add(u, v), tf.mul(u, 2)));
  const lean = await withLean(true, () => tf.grads(f)([a, b]).map((g) => Array.from(g.dataSync())));
  const stock = await withLean(false, () => tf.grads(f)([a, b]).map((g) => Array.from(g.dataSync())));
  t.deepEqual(lean, stock);
  t.deepEqual(lean, [[5, 5, 5], [3, 3, 3]]);
  tf.dispose([a, b]);
});

run('a custom gradient whose value is its own input passes the summed gradient on, as TF.js\'s own does', async (t) => {
  await tf.setBackend('native');
  // straight through: value is the input tensor itself, the gradient halved
  const through = tf.customGrad((...args) => ({ value: args[0] as tf.Tensor, gradFunc: (dy) => tf.mul(dy as tf.Tensor, 0.5) }));
  const x = tf.tensor1d([0.5, -2, 3]);
  const f = (v: tf.Tensor) => tf.sum(through(tf.exp(v)));
  const lean = await withLean(true, () => Array.from(tf.grad(f)(x).dataSync()));
  const stock = await withLean(false, () => Array.from(tf.grad(f)(x).dataSync()));
  t.deepEqual(lean, stock);
  t.true(lean.every((v) => v !== 0));
  x.dispose();
});

run('a tensor a custom gradient keeps with tf.keep outlives the backward pass', async (t) => {
  await tf.setBackend('native');
  let kept: tf.Tensor | null = null;
  const f = tf.customGrad((...args) => ({
    value: (args[0] as tf.Tensor).clone(),
    gradFunc: (dy) => (kept = tf.keep(tf.mul(dy as tf.Tensor, 2))),
  }));
  const x = tf.tensor1d([0.5, -2, 3]);
  // x's gradient is the kept tensor plus the one from `+ x`: the kept part is added, then must not be let go
  const g = tf.grad((v: tf.Tensor) => tf.sum(tf.add(f(v), v)))(x);
  t.deepEqual(Array.from(g.dataSync()), [3, 3, 3]);
  t.false(kept!.isDisposed);
  tf.dispose([x, g, kept!]);
});
