/**
 * Every kernel the `native` TF.js backend replaces gives TF.js cpu's result
 * within 1e-4 (max error relative to the reference's largest magnitude), on
 * random inputs, through TF.js's own ops and gradients (tf.grads), on both
 * engines (oneDNN when linked, and the built-in GEMM). Each case also checks
 * that the addon ran the kernel (a spy on its nn functions), so a silent cpu
 * fallback cannot pass.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { countNativeCalls, engines, input, nativeAvailable, relativeError, runOn, setNnEngine, type Input } from './tfjs_support.js';

const TOLERANCE = 1e-4;

interface Case {
  name: string;
  inputs: Input[];
  fn: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
  /** addon functions that must run (unary/binary as 'binary:mul'). */
  native: string[];
}

/** Forward value and the gradients of Σ(f(xs)·w) for random w, so dy is not all ones. */
function withGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, seed: number): (...xs: tf.Tensor[]) => tf.Tensor[] {
  return (...xs) => {
    const y = f(...xs);
    const w = tf.tensor(input(y.shape, seed).data, y.shape);
    const grads = tf.grads((...as: tf.Tensor[]) => tf.sum(tf.mul(f(...as), w)))(xs);
    return [y, ...grads];
  };
}

type Pad = 'same' | 'valid';
const conv = (xShape: number[], fShape: number[], strides: number, pad: Pad, dilation = 1): Case => ({
  name: `conv2d x${xShape.join('x')} f${fShape.join('x')} s${strides} ${pad} d${dilation}`,
  inputs: [input(xShape, 1), input(fShape, 2)],
  fn:
    dilation === 1
      ? withGrads((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, strides, pad), 3)
      : (x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, strides, pad, 'NHWC', dilation), // TF.js has no conv2d gradient with dilation > 1
  native: dilation === 1 ? ['conv2d', 'conv2dBackpropInput', 'conv2dBackpropFilter'] : ['conv2d'],
});

const fusedConv = (activation: tf.fused.Activation): Case => ({
  name: `fused conv2d + bias + ${activation}`,
  inputs: [input([2, 7, 6, 3], 4), input([3, 3, 3, 5], 5), input([5], 6)],
  fn: withGrads((x, f, b) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: f as tf.Tensor4D, bias: b, strides: 1, pad: 'same', activation }), 7),
  native: ['conv2d', 'conv2dBackpropInput', 'conv2dBackpropFilter'],
});

const depthwise = (xShape: number[], fShape: number[], strides: number, pad: Pad, dilation = 1): Case => ({
  name: `depthwiseConv2d x${xShape.join('x')} f${fShape.join('x')} s${strides} ${pad} d${dilation}`,
  inputs: [input(xShape, 8), input(fShape, 9)],
  fn:
    dilation === 1
      ? withGrads((x, f) => tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, strides, pad), 10)
      : (x, f) => tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, strides, pad, 'NHWC', dilation),
  native: dilation === 1 ? ['depthwiseConv2d', 'depthwiseConv2dBackpropInput', 'depthwiseConv2dBackpropFilter'] : ['depthwiseConv2d'],
});

const pool = (kind: 'max' | 'avg', xShape: number[], size: number, strides: number, pad: Pad): Case => ({
  name: `${kind}Pool x${xShape.join('x')} k${size} s${strides} ${pad}`,
  inputs: [input(xShape, 11)],
  fn: withGrads((x) => (kind === 'max' ? tf.maxPool : tf.avgPool)(x as tf.Tensor4D, size, strides, pad), 12),
  native: kind === 'max' ? ['maxPool', 'maxPoolGrad'] : ['avgPool', 'avgPoolGrad'],
});

const matMul = (aShape: number[], bShape: number[], ta: boolean, tb: boolean): Case => ({
  name: `matMul ${aShape.join('x')}${ta ? 'ᵀ' : ''} · ${bShape.join('x')}${tb ? 'ᵀ' : ''}`,
  inputs: [input(aShape, 13), input(bShape, 14)],
  fn: withGrads((a, b) => tf.matMul(a, b, ta, tb), 15),
  native: ['batchMatMul'],
});

const binary = (op: 'add' | 'sub' | 'mul' | 'div' | 'squaredDifference' | 'maximum' | 'minimum', a: number[], b: number[]): Case => ({
  name: `${op} ${a.join('x') || 'scalar'} with ${b.join('x') || 'scalar'}`,
  inputs: [input(a, 16), input(b, 17, op === 'div' ? 0.5 : -1, op === 'div' ? 2 : 1)],
  fn: withGrads((x, y) => (tf[op] as (p: tf.Tensor, q: tf.Tensor) => tf.Tensor)(x, y), 18),
  native: [`binary:${op === 'squaredDifference' ? 'squaredDifference' : op}`],
});

const unary = (op: 'neg' | 'square' | 'sqrt' | 'rsqrt' | 'exp' | 'log' | 'abs' | 'relu' | 'relu6' | 'elu' | 'sigmoid', lo = -1, hi = 1): Case => ({
  name: `${op} and its gradient`,
  inputs: [input([3, 5, 7, 4], 19, lo, hi)],
  fn: withGrads((x) => (tf[op] as (p: tf.Tensor) => tf.Tensor)(x), 20),
  native: [`unary:${op}`],
});

const CASES: Case[] = [
  conv([2, 9, 11, 5], [3, 3, 5, 7], 1, 'same'),
  conv([2, 9, 11, 5], [3, 3, 5, 7], 2, 'valid'),
  conv([1, 13, 10, 3], [5, 5, 3, 4], 2, 'same'),
  conv([3, 7, 7, 6], [1, 1, 6, 5], 1, 'valid'),
  conv([1, 12, 9, 4], [3, 3, 4, 3], 1, 'same', 2),
  conv([2, 11, 12, 3], [3, 2, 3, 2], 1, 'valid', 2),
  fusedConv('relu'),
  fusedConv('relu6'),
  fusedConv('elu'),
  fusedConv('sigmoid'),
  fusedConv('linear'),
  depthwise([2, 9, 8, 4], [3, 3, 4, 2], 1, 'same'),
  depthwise([1, 10, 11, 3], [3, 3, 3, 1], 2, 'valid'),
  depthwise([1, 12, 12, 2], [3, 3, 2, 2], 1, 'same', 2),
  pool('max', [2, 9, 11, 3], 2, 2, 'valid'),
  pool('max', [1, 9, 11, 4], 3, 2, 'same'),
  pool('max', [2, 7, 7, 2], 3, 1, 'same'),
  pool('avg', [2, 9, 11, 3], 2, 2, 'valid'),
  pool('avg', [1, 9, 11, 4], 3, 2, 'same'),
  pool('avg', [2, 7, 7, 2], 3, 1, 'same'),
  matMul([5, 7], [7, 3], false, false),
  matMul([7, 5], [3, 7], true, true),
  matMul([3, 4, 5], [3, 5, 2], false, false),
  {
    // TF.js has no gradient for a broadcast batch: forward only.
    name: 'matMul 1x4x5 · 3x2x5ᵀ (broadcast batch)',
    inputs: [input([1, 4, 5], 41), input([3, 2, 5], 42)],
    fn: (a, b) => tf.matMul(a, b, false, true),
    native: ['batchMatMul'],
  },
  {
    name: 'fused matMul + bias + relu (a dense layer)',
    inputs: [input([6, 9], 21), input([9, 4], 22), input([4], 23)],
    fn: withGrads((a, b, c) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias: c, activation: 'relu' }), 24),
    native: ['batchMatMul'],
  },
  {
    name: 'batchNorm with per-channel mean, variance, offset and scale, and its gradients',
    inputs: [input([2, 5, 6, 7], 25), input([7], 26), input([7], 27, 0.5, 2), input([7], 28), input([7], 29, 0.5, 2)],
    fn: withGrads((x, m, v, o, s) => tf.batchNorm(x, m, v, o, s, 1e-3), 30),
    native: ['batchNorm'],
  },
  binary('add', [2, 3, 4, 5], [5]),
  binary('sub', [2, 3, 4, 5], [4, 1]),
  binary('mul', [2, 3, 4, 5], []),
  binary('mul', [3, 1], [1, 4]),
  binary('div', [2, 3, 4, 5], [2, 3, 4, 5]),
  binary('squaredDifference', [2, 3, 4, 5], [2, 3, 4, 5]), // TF.js's own gradients of these two do not reduce broadcast inputs
  binary('maximum', [6, 5], [6, 5]),
  binary('minimum', [6, 5], [6, 5]),
  unary('neg'),
  unary('square'),
  unary('sqrt', 0.1, 2),
  unary('rsqrt', 0.1, 2),
  unary('exp'),
  unary('log', 0.1, 2),
  unary('abs'),
  unary('relu'),
  { ...unary('relu6', -3, 9), name: 'relu6 and its gradient (inputs past 6)' },
  unary('elu'),
  unary('sigmoid'),
  {
    name: 'tile',
    inputs: [input([2, 3, 4], 31)],
    fn: withGrads((x) => tf.tile(x, [2, 1, 3]), 32),
    native: ['tile'],
  },
  ...([[0, 1, 2], [1, 2], [3], [0], [1, 2, 3]] as const).map((axes) => ({
    name: `sum and mean over axes [${axes.join(',')}]`,
    inputs: [input([3, 4, 5, 6], 33)],
    fn: (x: tf.Tensor) => [tf.sum(x, [...axes]), tf.mean(x, [...axes], true)],
    native: ['reduceSum'],
  })),
];

const run = nativeAvailable ? test.serial : test.skip;

for (const engine of nativeAvailable ? engines() : ['builtin' as const]) {
  for (const c of CASES) {
    run(`${c.name} matches cpu on the ${engine} engine`, async (t) => {
      setNnEngine(engine);
      const expected = await runOn('cpu', c.inputs, c.fn);
      const { result: actual, calls } = await countNativeCalls(() => runOn('native', c.inputs, c.fn));
      for (const name of c.native) t.true((calls.get(name) ?? 0) > 0, `${name} did not run in the addon`);
      t.is(actual.length, expected.length);
      expected.forEach((e, i) => {
        const err = relativeError(actual[i]!, e);
        t.true(err <= TOLERANCE, `output ${i}: relative error ${err.toExponential(2)} > ${TOLERANCE}`);
      });
    });
  }
}

run('a sum over non-adjacent axes still matches cpu (cpu kernel, no addon call)', async (t) => {
  const inputs = [input([3, 4, 5], 40)];
  const fn = (x: tf.Tensor) => tf.sum(x, [0, 2]);
  const expected = await runOn('cpu', inputs, fn);
  const { result, calls } = await countNativeCalls(() => runOn('native', inputs, fn));
  t.false(calls.has('reduceSum'));
  t.true(relativeError(result[0]!, expected[0]!) <= TOLERANCE);
});

run('int32 tensors fall back to the cpu kernels and keep their dtype', async (t) => {
  await tf.setBackend('native');
  const y = tf.tidy(() => tf.add(tf.tensor([1, 2, 3], [3], 'int32'), tf.tensor([4, 5, 6], [3], 'int32')));
  t.is(y.dtype, 'int32');
  t.deepEqual(Array.from(y.dataSync()), [5, 7, 9]);
  y.dispose();
});

run('the addon rejects an output of the wrong length with a RangeError, not a crash', async (t) => {
  const { loadAddon } = await import('../bindings/loader.js');
  const s = loadAddon();
  if (!s.ok) return t.fail(s.reason);
  const shape = [1, 4, 4, 2, 4, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1];
  t.throws(() => s.addon.nn.conv2d(shape, new Float32Array(32), new Float32Array(54), null, 'linear', 0, new Float32Array(47)), {
    instanceOf: RangeError,
    message: /y to hold 48 elements/,
  });
  t.throws(() => s.addon.nn.setEngine('mkl' as 'onednn'), { instanceOf: RangeError, message: /engine/ });
});
