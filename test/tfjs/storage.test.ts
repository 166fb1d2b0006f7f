/**
 * The native backend recycles its kernels' large output arrays, and never one
 * that someone else can still see: an array read out (dataSync) or viewed by
 * another tensor (a slice) keeps its values after its tensor is disposed.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { nativeAvailable, random } from '../support/tfjs_support.js';

const N = 1 << 15; // above the pooling threshold
const run = nativeAvailable ? test.serial : test.skip;

type Storage = { data: { get(id: object): { values: unknown } } };
const valuesOf = (t: tf.Tensor) => (tf.backend() as unknown as Storage).data.get(t.dataId).values;

run('a disposed output array is reused by the next kernel output of the same size', async (t) => {
  await tf.setBackend('native');
  const x = tf.tensor1d(random(N, 1));
  const y = tf.relu(x);
  const storage = valuesOf(y);
  y.dispose();
  const z = tf.neg(x);
  t.is(valuesOf(z), storage);
  tf.dispose([x, z]);
});

run('an array read with dataSync keeps its values after its tensor is disposed and the pool is busy', async (t) => {
  await tf.setBackend('native');
  const x = tf.tensor1d(random(N, 2));
  const y = tf.relu(x);
  const seen = y.dataSync();
  const copy = Float32Array.from(seen);
  y.dispose();
  const others = [tf.neg(x), tf.sigmoid(x), tf.square(x)];
  t.deepEqual(Array.from(seen), Array.from(copy));
  tf.dispose([x, ...others]);
});

run('a slice that views an output keeps its values after the output is disposed', async (t) => {
  await tf.setBackend('native');
  const x = tf.tensor1d(random(N, 3));
  const y = tf.relu(x);
  const head = tf.slice(y, [0], [N / 2]);
  const expected = Float32Array.from(random(N, 3).subarray(0, N / 2), (v) => Math.max(v, 0));
  y.dispose();
  const others = [tf.neg(x), tf.sigmoid(x), tf.square(x)];
  t.deepEqual(Array.from(head.dataSync()), Array.from(expected));
  tf.dispose([x, head, ...others]);
});
