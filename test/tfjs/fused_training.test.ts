/**
 * Batch norm and ReLU in training as single kernels on `native`
 * (src/tfjs/fused_training.ts). References: TF.js cpu's own composition
 * (moments → batchNorm, differentiated op by op) for the batch norm, within
 * 1e-5 (forward) and 1e-4 (gradients) of the reference's largest magnitude;
 * TF.js's ReLU gradient (Step, Multiply) bit for bit; tfjs-layers' fused
 * conv2d bit for bit for the Conv2D layer's plain path.
 */
import type { ExecutionContext } from 'ava';
import * as tf from '@tensorflow/tfjs';

import { loadAddon } from '../../bindings/loader.js';
import { buildModel } from '../../src/models/zoo.js';
import { fusedTrainingEnabled, setFusedTraining } from '../../src/tfjs/fused_training.js';
import { setNnWinograd } from '../../src/tfjs/native_backend.js';
import { relativeDifference } from '../support/parity.js';
import { countNativeCalls, nativeTest, random, withSwitch } from '../support/tfjs_support.js';

const run = nativeTest;

const withFused = <T>(on: boolean, fn: () => Promise<T> | T): Promise<T> => withSwitch(setFusedTraining, on, fn);

interface BnResult { y: Float32Array; dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array; movingMean: Float32Array; movingVariance: Float32Array }

/**
 * One training-mode call of a BatchNormalization layer on `backend` and the
 * gradients of Σ y·w with respect to x, gamma and beta; then the moving averages.
 */
async function batchNormOn(backend: string, shape: number[], axis: number, offset: number, grads = true): Promise<BnResult> {
  await tf.setBackend(backend);
  const c = shape[axis < 0 ? shape.length + axis : axis]!;
  const n = shape.reduce((a, b) => a * b, 1);
  const layer = tf.layers.batchNormalization({ axis, momentum: 0.9 });
  layer.build(shape);
  layer.setWeights([tf.tensor1d(random(c, 31, 0.5, 2)), tf.tensor1d(random(c, 32)), tf.tensor1d(random(c, 33)), tf.tensor1d(random(c, 34, 0.5, 1.5))]);
  const x = tf.variable(tf.tensor(random(n, 35, offset - 2, offset + 2), shape));
  const w = tf.tensor(random(n, 36), shape);
  const [gamma, beta] = layer.trainableWeights.map((v) => (v as unknown as { val: tf.Variable }).val);
  let y: Float32Array = new Float32Array();
  if (!grads) {
    tf.tidy(() => void (y = Float32Array.from((layer.apply(x, { training: true }) as tf.Tensor).dataSync())));
    const weights = layer.getWeights();
    const none = new Float32Array();
    const result = { y, dx: none, dgamma: none, dbeta: none, movingMean: Float32Array.from(weights[2]!.dataSync()), movingVariance: Float32Array.from(weights[3]!.dataSync()) };
    tf.dispose([x, w]);
    for (const v of layer.weights) v.dispose();
    return result;
  }
  const { grads: g } = tf.variableGrads(() => {
    const out = layer.apply(x, { training: true }) as tf.Tensor;
    y = Float32Array.from(out.dataSync());
    return tf.sum(tf.mul(out, w)) as tf.Scalar;
  }, [x, gamma!, beta!]);
  const weights = layer.getWeights();
  const result = {
    y, dx: Float32Array.from(g[x.name]!.dataSync()), dgamma: Float32Array.from(g[gamma!.name]!.dataSync()),
    dbeta: Float32Array.from(g[beta!.name]!.dataSync()),
    movingMean: Float32Array.from(weights[2]!.dataSync()), movingVariance: Float32Array.from(weights[3]!.dataSync()),
  };
  tf.dispose([x, w, ...Object.values(g)]);
  for (const v of layer.weights) v.dispose();
  return result;
}

function compare(t: ExecutionContext, got: BnResult, want: BnResult, where: string): void {
  const tol = { y: 1e-5, dx: 1e-4, dgamma: 1e-4, dbeta: 1e-4, movingMean: 1e-5, movingVariance: 1e-4 } as const;
  for (const key of Object.keys(tol) as (keyof typeof tol)[]) {
    const d = relativeDifference(got[key], want[key]);
    t.true(d <= tol[key], `${where}: ${key} differs by ${d.toExponential(2)} of its scale (tolerance ${tol[key]})`);
  }
}

run('a batch norm layer in training runs as one kernel forward and one backward on native, within float rounding of TF.js cpu', async (t) => {
  t.true(fusedTrainingEnabled());
  // Rows not a multiple of the kernel's 128-row blocks, more channels than a block, two rows, and a mean of 50 against a spread of 1.
  for (const [shape, offset] of [[[4, 7, 5, 3], 0], [[2, 3, 3, 130], 0], [[2, 1, 1, 8], 0], [[3, 6, 6, 16], 50], [[5, 12], 1]] as [number[], number][]) {
    const want = await batchNormOn('cpu', shape, -1, offset);
    const { result: got, calls } = await countNativeCalls(() => batchNormOn('native', shape, -1, offset));
    compare(t, got, want, `[${shape}] around ${offset}`);
    t.is(calls.get('batchNormTrain'), 1, `[${shape}]: one forward call in the addon`);
    t.is(calls.get('batchNormTrainGrad'), 1, `[${shape}]: one backward call in the addon`);
  }
});

run('a batch norm and the ReLU layer after it train as one kernel each way on native, within float rounding of TF.js cpu', async (t) => {
  const gradsOn = async (backend: string) => {
    await tf.setBackend(backend);
    const model = tf.sequential({ layers: [tf.layers.batchNormalization({ inputShape: [5, 6, 7], axis: -1 }), tf.layers.reLU()] });
    const c = 7;
    model.layers[0]!.setWeights([tf.tensor1d(random(c, 51, 0.5, 2)), tf.tensor1d(random(c, 52)), tf.tensor1d(random(c, 53)), tf.tensor1d(random(c, 54, 0.5, 1.5))]);
    const x = tf.variable(tf.tensor4d(random(3 * 5 * 6 * 7, 55, -2, 2), [3, 5, 6, 7]));
    const w = tf.tensor4d(random(3 * 5 * 6 * 7, 56), [3, 5, 6, 7]);
    const vars = [x, ...model.trainableWeights.map((v) => (v as unknown as { val: tf.Variable }).val)];
    let y = new Float32Array();
    const { grads } = tf.variableGrads(() => {
      const out = model.apply(x, { training: true }) as tf.Tensor;
      y = Float32Array.from(out.dataSync());
      return tf.sum(tf.mul(out, w)) as tf.Scalar;
    }, vars);
    const result = { y, grads: vars.map((v) => Float32Array.from(grads[v.name]!.dataSync())) };
    tf.dispose([x, w, ...Object.values(grads)]);
    model.dispose();
    return result;
  };
  const want = await gradsOn('cpu');
  const { result: got, calls } = await countNativeCalls(() => gradsOn('native'));
  t.true(relativeDifference(got.y, want.y) <= 1e-5, 'y');
  t.true(got.y.every((v) => v >= 0));
  ['x', 'gamma', 'beta'].forEach((name, i) => {
    const d = relativeDifference(got.grads[i]!, want.grads[i]!);
    t.true(d <= 1e-4, `d${name} differs by ${d.toExponential(2)}`);
  });
  t.is(calls.get('batchNormTrain'), 1);
  t.is(calls.get('batchNormTrainGrad'), 1);
  t.false(calls.has('unary:relu'));
  t.false(calls.has('binary:reluGrad'));
});

run('batch norm along another axis than the last keeps tfjs-layers\' own composition on native, and matches cpu', async (t) => {
  // Forward and moving averages only: TF.js's own gradient of a broadcast batch norm fails on cpu too (a reshape error).
  const want = await batchNormOn('cpu', [3, 4, 5, 6], 1, 0, false);
  const { result: got, calls } = await countNativeCalls(() => batchNormOn('native', [3, 4, 5, 6], 1, 0, false));
  compare(t, got, want, 'axis 1');
  t.false(calls.has('batchNormTrain'));
});

run('the ReLU gradient on native is one kernel, bit for bit TF.js\'s ops on the ReLU\'s output, and dy·step(x) for every x but NaN (±Infinity, ±0, subnormals)', async (t) => {
  await tf.setBackend('native');
  const special = [NaN, Infinity, -Infinity, 0, -0, 1e-40, -1e-40, 3.5, -2];
  const xs = Float32Array.from({ length: 81 }, (_, i) => special[i % 9]!);
  const dys = Float32Array.from({ length: 81 }, (_, i) => special[Math.floor(i / 9)]!);
  const grad = () => tf.tidy(() => {
    const dy = tf.tensor1d(dys);
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.relu(x), dy)))(tf.tensor1d(xs));
    return Float32Array.from(g.dataSync());
  });
  const { result: fused, calls } = await countNativeCalls(async () => grad());
  const stock = await withFused(false, grad);
  t.is(calls.get('binary:reluGrad'), 1);
  t.false(calls.has('unary:step'));
  const show = (v: number) => (Object.is(v, -0) ? '-0' : String(v));
  t.deepEqual(Array.from(fused).map(show), Array.from(stock).map(show));
  // TF.js's own definition, mul(dy, step(x)) with step(x) = x > 0 ? 1 : 0, in float32.
  const formula = Array.from(xs, (x, i) => Math.fround(dys[i]! * (x > 0 ? 1 : 0)));
  const notNaN = (_: unknown, i: number) => !Number.isNaN(xs[i]!);
  t.deepEqual(Array.from(fused).filter(notNaN).map(show), formula.filter(notNaN).map(show));
});

run('the baseline CNN trains (SGD, direct convolutions) on native with the fused kernels to within 1e-5 of TF.js\'s composition after three steps, and its first layer skips the image\'s gradient', async (t) => {
  await tf.setBackend('native');
  const train = async () => {
    const { model } = await buildModel('baseline', { inputSize: 16, seed: 1 });
    // Plain SGD: a weight moves by lr·gradient, so the two runs differ as their gradients do (Adam's
    // first steps move every weight by ±lr, and a gradient near 0 may take either sign).
    model.compile({ optimizer: tf.train.sgd(0.01), loss: 'binaryCrossentropy' });
    const x = tf.tensor4d(random(8 * 16 * 16 * 3, 5), [8, 16, 16, 3]);
    const y = tf.tensor2d(Float32Array.from({ length: 8 }, (_, i) => i % 2), [8, 1]);
    const losses: number[] = [];
    const { calls } = await countNativeCalls(async () => {
      for (let s = 0; s < 3; s++) {
        const out = await model.trainOnBatch(x, y);
        losses.push(Array.isArray(out) ? out[0]! : out);
      }
    });
    const weights = model.getWeights().map((w) => Float32Array.from(w.dataSync()));
    tf.dispose([x, y]);
    model.dispose();
    return { losses, weights, calls };
  };
  // Direct convolutions on both sides: Winograd's own rounding (~1e-6 of Σ|x·w| a layer, amplified
  // through five batch-norm backward passes) would hide the fusion's difference, which is what is tested.
  const { fused, stock } = await withSwitch(setNnWinograd, false, async () => ({ fused: await train(), stock: await withFused(false, train) }));
  fused.losses.forEach((l, i) => t.true(Math.abs(l - stock.losses[i]!) <= 1e-4, `step ${i}: loss ${l} vs ${stock.losses[i]}`));
  t.is(fused.weights.length, stock.weights.length);
  fused.weights.forEach((w, i) => {
    const d = relativeDifference(w, stock.weights[i]!);
    t.true(d <= 1e-5, `weight ${i} (${w.length} values) differs by ${d.toExponential(2)}`);
  });
  // Every ReLU layer is its batch norm's only reader: all six run inside the batch norm kernels. The
  // one ReLU left per step is the loss's (tfjs-layers' sigmoid cross-entropy: relu(z) − z·y + log1p(e^−|z|)).
  t.is(fused.calls.get('binary:reluGrad'), 3);
  t.is(fused.calls.get('unary:relu'), 3);
  t.is(stock.calls.get('unary:relu'), 3 * 7);
  // Six convolutions: the first one's input is the image, which needs no gradient.
  t.is(fused.calls.get('conv2dBackpropInput'), 3 * 5);
  t.is(stock.calls.get('conv2dBackpropInput'), 3 * 6);
  t.is(fused.calls.get('batchNormTrain'), 3 * 6);
});

run('a conv-only model trains to bit-identical weights through the Conv2D layer\'s plain path and through tf.fused.conv2d', async (t) => {
  await tf.setBackend('native');
  const train = async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [9, 11, 4], filters: 5, kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
        tf.layers.conv2d({ filters: 3, kernelSize: 2, dilationRate: 1, padding: 'valid', useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }),
      ],
    });
    model.compile({ optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError' });
    const x = tf.tensor4d(random(6 * 9 * 11 * 4, 7), [6, 9, 11, 4]);
    const y = tf.tensor2d(random(6, 8), [6, 1]);
    for (let s = 0; s < 2; s++) await model.trainOnBatch(x, y);
    const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
    tf.dispose([x, y]);
    model.dispose();
    return weights;
  };
  t.deepEqual(await train(), await withFused(false, train));
});

run('the addon refuses batch norm arguments that do not fit, naming them, instead of reading out of bounds', (t) => {
  const s = loadAddon();
  if (!s.ok) return t.fail(s.reason);
  const { batchNormTrain, batchNormTrainGrad } = s.addon.nn;
  const f = (n: number) => new Float32Array(n);
  t.throws(() => batchNormTrain(f(12), 0, null, null, 1e-3, false, f(12), f(1), f(1)), { instanceOf: RangeError, message: /channels/ });
  t.throws(() => batchNormTrain(f(12), 2.5, null, null, 1e-3, false, f(12), f(2), f(2)), { instanceOf: RangeError, message: /channels/ });
  t.throws(() => batchNormTrain(f(12), 5, null, null, 1e-3, false, f(12), f(5), f(5)), { instanceOf: RangeError, message: /whole number of rows/ });
  t.throws(() => batchNormTrain(f(0), 1, null, null, 1e-3, false, f(0), f(1), f(1)), { instanceOf: RangeError, message: /x to hold at least one value/ });
  t.throws(() => batchNormTrain(f(12), 3, f(2), null, 1e-3, false, f(12), f(3), f(3)), { instanceOf: RangeError, message: /scale and offset/ });
  t.throws(() => batchNormTrain(f(12), 3, null, null, 1e-3, false, f(11), f(3), f(3)), { instanceOf: RangeError, message: /y to hold 12/ });
  t.throws(() => batchNormTrain(f(12), 3, null, null, 1e-3, false, f(12), f(2), f(3)), { instanceOf: RangeError, message: /mean to hold 3/ });
  t.throws(() => batchNormTrain(f(12), 3, null, null, -1, false, f(12), f(3), f(3)), { instanceOf: RangeError, message: /epsilon/ });
  t.throws(() => batchNormTrain(f(12), 3, null, null, NaN, false, f(12), f(3), f(3)), { instanceOf: RangeError, message: /epsilon/ });
  t.throws(() => batchNormTrain([1, 2] as unknown as Float32Array, 1, null, null, 1e-3, false, f(2), f(1), f(1)), { instanceOf: TypeError, message: /x/ });
  t.throws(() => batchNormTrainGrad(f(12), f(10), 3, f(3), f(3), null, 1e-3, null, f(12), null, null), { instanceOf: RangeError, message: /x to hold 12/ });
  t.throws(() => batchNormTrainGrad(f(12), f(12), 3, f(3), f(3), null, 1e-3, null, f(13), null, null), { instanceOf: RangeError, message: /dx to hold 12/ });
  t.throws(() => batchNormTrainGrad(f(12), f(12), 3, f(3), f(4), null, 1e-3, null, f(12), null, null), { instanceOf: RangeError, message: /variance to hold 3/ });
  t.throws(() => batchNormTrainGrad(f(12), f(12), 3, f(3), f(3), null, 1e-3, null, f(12), f(2), null), { instanceOf: RangeError, message: /dscale and doffset/ });
  t.throws(() => batchNormTrainGrad(f(12), f(12), 3, f(3), f(3), null, 1e-3, f(9), f(12), null, null), { instanceOf: RangeError, message: /reluY to hold 12/ });
  t.throws(() => batchNormTrain(f(12), 3, null, null, 1e-3, 1 as unknown as boolean, f(12), f(3), f(3)), { instanceOf: TypeError, message: /relu/ });
});
