/**
 * The `native` TF.js backend where it does not run its own kernels (the
 * kernels themselves are in tfjs/parity.test.ts): a reduction it hands back to
 * cpu, int32 tensors, and the addon's own length and engine checks.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { relativeDifference } from '../support/parity.js';
import { countNativeCalls, input, nativeAvailable, nativeStatus, runOn } from '../support/tfjs_support.js';

const TOLERANCE = 1e-4;

const run = nativeAvailable ? test.serial : test.skip;
const why = nativeAvailable ? '' : ` (skipped: ${nativeStatus.detail})`;

run(`a sum over non-adjacent axes still matches cpu (cpu kernel, no addon call)${why}`, async (t) => {
  const inputs = [input([3, 4, 5], 40)];
  const fn = (x: tf.Tensor) => tf.sum(x, [0, 2]);
  const expected = await runOn('cpu', inputs, fn);
  const { result, calls } = await countNativeCalls(() => runOn('native', inputs, fn));
  t.false(calls.has('reduceSum'));
  t.true(relativeDifference(result[0]!, expected[0]!) <= TOLERANCE);
});

run(`int32 tensors fall back to the cpu kernels and keep their dtype${why}`, async (t) => {
  await tf.setBackend('native');
  const y = tf.tidy(() => tf.add(tf.tensor([1, 2, 3], [3], 'int32'), tf.tensor([4, 5, 6], [3], 'int32')));
  t.is(y.dtype, 'int32');
  t.deepEqual(Array.from(y.dataSync()), [5, 7, 9]);
  y.dispose();
});

run(`the addon rejects an output of the wrong length with a RangeError, not a crash${why}`, async (t) => {
  const { loadAddon } = await import('../../bindings/loader.js');
  const s = loadAddon();
  if (!s.ok) return t.fail(s.reason);
  const shape = [1, 4, 4, 2, 4, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1];
  t.throws(() => s.addon.nn.conv2d(shape, new Float32Array(32), new Float32Array(54), null, 'linear', 0, new Float32Array(47)), {
    instanceOf: RangeError,
    message: /y to hold 48 elements/,
  });
  t.throws(() => s.addon.nn.setEngine('mkl' as 'onednn'), { instanceOf: RangeError, message: /engine/ });
});
