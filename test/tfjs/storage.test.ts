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

run('a shorter output (a ragged last batch) reuses an idle array up to twice its length as a view; readers get an exact copy and the whole array returns to the pool', async (t) => {
  await tf.setBackend('native');
  const x = tf.tensor1d(random(N, 4));
  const y = tf.relu(x);
  const whole = valuesOf(y) as Float32Array;
  y.dispose();
  // 0.6 N: within twice; the view starts where the array does.
  const short = tf.slice(x, [0], [Math.floor(0.6 * N)]);
  const z = tf.neg(short);
  const view = valuesOf(z) as Float32Array;
  t.is(view.buffer, whole.buffer);
  t.is(view.length, Math.floor(0.6 * N));
  const expected = Float32Array.from(random(N, 4).subarray(0, view.length), (v) => Math.fround(-v));
  const read = z.dataSync() as Float32Array;
  t.not(read.buffer, whole.buffer); // a copy: Tensor.bytes() and other readers of `.buffer` see only z
  t.deepEqual(Array.from(read), Array.from(expected));
  t.is(((await z.bytes()) as Uint8Array).byteLength, 4 * view.length);
  z.dispose();
  // The read did not share the array: back in the pool whole, the next full-length output gets it.
  const w = tf.sigmoid(x);
  t.is((valuesOf(w) as Float32Array).buffer, whole.buffer);
  t.is((valuesOf(w) as Float32Array).length, N);
  // Under half: not worth a long array, a fresh one.
  const tiny = tf.slice(x, [0], [N / 2 - 1]);
  const u = tf.neg(tiny);
  t.not((valuesOf(u) as Float32Array).buffer, whole.buffer);
  tf.dispose([x, short, w, tiny, u]);
});
