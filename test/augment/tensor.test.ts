/**
 * Batches as TF.js tensors: on the 'cpu' backend the tensor's storage is the
 * augmented Float32Array itself (no copy), and the table of which backend
 * copies says so. tfjs-node[-gpu] cases run only where they are installed.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { augment } from '../../src/augment/augment.js';
import { batchToTensor, importTfjs, labelsToTensor, sharesStorage, tensorCopy } from '../../src/augment/tensor.js';
import { kernelBackendStatus } from '../../src/kernels/registry.js';
import { syntheticHE } from '../support/helpers.js';

tf.env().set('IS_TEST', true); // quiets the "install tfjs-node" banner
await tf.setBackend('cpu');
await tf.ready();

const cpuKernels = (await kernelBackendStatus()).find((b) => b.name === 'cpu');
const augmentRun = cpuKernels?.available ? test : test.skip;

test("batchToTensor's tensor on the cpu backend is stored in the very Float32Array it was given", (t) => {
  const data = new Float32Array(2 * 3 * 5 * 3).map((_, i) => i / 7);
  const x = batchToTensor(tf, data, [2, 3, 5, 3]);
  const backend = tf.backend() as unknown as { data: { get(id: object): { values: unknown } } };
  t.is(tf.getBackend(), 'cpu');
  t.deepEqual(x.shape, [2, 3, 5, 3]);
  t.is(x.dtype, 'float32');
  t.is(backend.data.get(x.dataId).values, data);
  t.true(sharesStorage(tf, x, data));
  t.is(x.dataSync(), data);
  x.dispose();
});

test('a write into the Float32Array is seen by the tensor (shared storage, not a snapshot)', (t) => {
  const data = new Float32Array(1 * 2 * 2 * 3);
  const x = batchToTensor(tf, data, [1, 2, 2, 3]);
  data[5] = 42.5;
  data[11] = -3;
  t.is(x.dataSync()[5], 42.5);
  t.is(x.dataSync()[11], -3);
  t.is(tf.sum(x).dataSync()[0], 39.5);
  x.dispose();
});

augmentRun('an augmented batch becomes a tensor over its own output array', async (t) => {
  const batch = syntheticHE(3, 16, 16, 2);
  const r = await augment(batch, { crop: 8, d4: true, hsv: { brightness: 0.2 }, normalize: 'imagenet' }, { seed: 3, backend: 'cpu' });
  const x = batchToTensor(tf, r.data, [r.n, r.height, r.width, 3]);
  t.true(sharesStorage(tf, x, r.data));
  t.deepEqual(x.shape, [3, 8, 8, 3]);
  t.is(x.dataSync(), r.data);
  x.dispose();
});

test('labelsToTensor shares its Float32Array on cpu too, as n x labelSize', (t) => {
  const labels = new Float32Array([0, 1, 1, 0]);
  const y = labelsToTensor(tf, labels, 4);
  t.deepEqual(y.shape, [4, 1]);
  t.true(sharesStorage(tf, y, labels));
  y.dispose();
});

test('a tensor made by a copying path is told apart from a shared one', (t) => {
  const data = new Float32Array(12);
  const copied = tf.tensor4d(Array.from(data), [1, 2, 2, 3]);
  t.false(sharesStorage(tf, copied, data));
  copied.dispose();
});

test('tensorCopy: cpu and native share, tensorflow takes the array at first use, others copy their own way', (t) => {
  t.is(tensorCopy('cpu'), 'none');
  t.is(tensorCopy('native'), 'none');
  t.is(tensorCopy('tensorflow'), 'at first use');
  t.is(tensorCopy('webgl'), 'backend copy');
});

test('batchToTensor rejects a wrong kind, a wrong shape and a wrong length, naming each', (t) => {
  t.throws(() => batchToTensor(tf, new Float64Array(12) as unknown as Float32Array, [1, 2, 2, 3]), { instanceOf: TypeError, message: /for data/ });
  t.throws(() => batchToTensor(tf, new Float32Array(12), [1, 2, 2, 4]), { instanceOf: RangeError, message: /shape\[3\]/ });
  t.throws(() => batchToTensor(tf, new Float32Array(12), [1, 2, 2]), { instanceOf: TypeError, message: /for shape/ });
  t.throws(() => batchToTensor(tf, new Float32Array(13), [1, 2, 2, 3]), { instanceOf: RangeError, message: /12 floats .* for data/ });
  t.throws(() => batchToTensor(tf, new Float32Array(12), [0, 2, 2, 3]), { instanceOf: RangeError, message: /shape\[0\]/ });
  t.throws(() => batchToTensor({} as typeof tf, new Float32Array(12), [1, 2, 2, 3]), { instanceOf: TypeError, message: /tf\.tensor4d/ });
});

test('importTfjs finds the installed TF.js and says why it passed over the others', async (t) => {
  const loaded = await importTfjs();
  t.true(['tensorflow', 'cpu'].includes(loaded.backend));
  t.is(loaded.copy, tensorCopy(loaded.backend));
  if (loaded.package === '@tensorflow/tfjs') {
    t.regex(loaded.reason, /passed over: @tensorflow\/tfjs-node-gpu: .*@tensorflow\/tfjs-node: /);
  } else {
    t.log(`${loaded.package} is installed: ${loaded.reason}`);
  }
  // Leave the process's TF.js on cpu for the other tests.
  if (loaded.tf === (tf as unknown)) await tf.setBackend('cpu');
});

const nodeTf = await importTfjs('@tensorflow/tfjs-node-gpu').catch(() => importTfjs('@tensorflow/tfjs-node')).catch(() => undefined);
(nodeTf ? test : test.skip)(
  `on tfjs-node the batch tensor reads the array's values at first use${nodeTf ? '' : ' (skipped: neither tfjs-node-gpu nor tfjs-node is installed)'}`,
  (t) => {
    const ntf = nodeTf!.tf;
    t.is(ntf.getBackend(), 'tensorflow');
    t.is(tensorCopy(ntf.getBackend()), 'at first use');
    const data = Float32Array.from({ length: 24 }, (_, i) => i);
    const x = batchToTensor(ntf, data, [2, 2, 2, 3]);
    data[0] = 100; // before first use the backend still holds the array itself
    const s = ntf.sum(x); // first use: TensorFlow takes the memory (and uploads it on a GPU)
    t.is(s.dataSync()[0], 276 + 100);
    t.deepEqual(x.shape, [2, 2, 2, 3]);
    x.dispose();
    s.dispose();
  },
);
