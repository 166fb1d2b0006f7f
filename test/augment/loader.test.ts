/**
 * The prefetching BatchLoader: the event loop stays free while a large batch
 * is augmented natively, batches equal a direct `augment` of the same images,
 * `prefetch` k means k batches in flight, leaving early leaves nothing
 * running, a failing batch names itself and its cause, and bad options are
 * refused at the door. Serial: several tests count what is in flight.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { augment } from '../../src/augment/augment.js';
import { BatchLoader, InMemorySource, epochOrder, type BatchSource, type SourceChunk } from '../../src/augment/loader.js';
import { sharesStorage } from '../../src/augment/tensor.js';
import type { AugmentPipelineInput } from '../../src/augment/pipeline.js';
import { kernelBackendStatus } from '../../src/kernels/registry.js';
import type { RgbBatch } from '../../src/kernels/types.js';
import { syntheticHE } from '../support/helpers.js';

tf.env().set('IS_TEST', true);
await tf.setBackend('cpu');
await tf.ready();

const cpu = (await kernelBackendStatus()).find((b) => b.name === 'cpu');
const native = cpu?.available ? test.serial : test.serial.skip;
const skipWhy = cpu?.available ? '' : ` (skipped: ${cpu?.detail ?? 'no cpu kernel backend'})`;

const PIPELINE: AugmentPipelineInput = {
  d4: true,
  crop: 12,
  hed: 'light',
  hsv: { brightness: 0.1, contrast: 0.1, saturation: 0.1, hue: 0.02 },
  blur: { sigma: [0.2, 1.2], p: 0.5 },
  noise: { sigma: 0.02, p: 0.5 },
  elastic: { alpha: 2, sigma: 4, p: 0.5 },
  normalize: 'imagenet',
};

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Images i of a batch, in this order, as one batch (a copy). */
function gather(batch: RgbBatch, indices: readonly number[]): RgbBatch {
  const size = batch.height * batch.width * 3;
  const data = new Uint8Array(indices.length * size);
  indices.forEach((v, k) => data.set(batch.data.subarray(v * size, (v + 1) * size), k * size));
  return { data, n: indices.length, height: batch.height, width: batch.width };
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A source that reads from memory after `ms`, and fails for the batches `fail` says. */
function slowSource(batch: RgbBatch, ms: number, fail: (indices: readonly number[]) => string | undefined = () => undefined): BatchSource {
  const inner = new InMemorySource(batch);
  return {
    size: inner.size,
    height: inner.height,
    width: inner.width,
    labelSize: 0,
    async read(indices): Promise<SourceChunk> {
      await delay(ms);
      const why = fail(indices);
      if (why) throw new Error(why);
      return inner.read(indices);
    },
  };
}

native(`a timer keeps firing while a 256x224x224 batch with blur is augmented${skipWhy}`, async (t) => {
  const n = 256;
  const side = 224;
  const data = new Uint8Array(n * side * side * 3);
  for (let i = 0; i < data.length; i++) data[i] = (Math.imul(i, 2654435761) >>> 24) & 255;
  const loader = new BatchLoader(new InMemorySource({ data, n, height: side, width: side }), { blur: { sigma: [1, 2], p: 1 }, normalize: 'imagenet' }, {
    batchSize: n,
    prefetch: 1,
    backend: 'cpu',
  });
  await loader.backend();
  let ticks = 0;
  let last = performance.now();
  let maxGap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, 5);
  const t0 = performance.now();
  const it = loader[Symbol.asyncIterator]();
  const first = await it.next();
  const ms = performance.now() - t0;
  clearInterval(timer);
  await it.return();
  t.false(first.done);
  t.is(first.value?.n, n);
  t.log(`batch of ${n}x${side}x${side}: ${ms.toFixed(0)} ms, ${ticks} timer ticks, longest gap ${maxGap.toFixed(1)} ms`);
  t.true(ticks >= 3, `the 5 ms timer fired ${ticks} times in ${ms.toFixed(0)} ms`);
});

native(`batches equal a direct augment of the same images with the same seed, epoch and dataset indices${skipWhy}`, async (t) => {
  const batch = syntheticHE(23, 15, 14, 9);
  const labels = Float32Array.from({ length: 23 }, (_, i) => i);
  const loader = new BatchLoader(new InMemorySource(batch, labels), PIPELINE, { batchSize: 5, shuffle: true, seed: 11, prefetch: 2, backend: 'cpu' });
  const order = epochOrder(23, 11, 2);
  let seen = 0;
  for await (const b of loader.epoch(2)) {
    t.deepEqual(b.indices, Array.from(order.subarray(b.startIndex, b.startIndex + b.n)));
    t.deepEqual(Array.from(b.labels!), b.indices); // labels follow their images through the shuffle
    const direct = await augment(gather(batch, b.indices), PIPELINE, { seed: 11, epoch: 2, indices: b.indices, backend: 'cpu' });
    t.deepEqual(b.params, direct.params);
    t.deepEqual(b.images, direct.data);
    seen += b.n;
    b.release();
  }
  t.is(seen, 23);
});

native(`without shuffle the epoch equals one augment of the whole dataset, whatever the batch size${skipWhy}`, async (t) => {
  const batch = syntheticHE(17, 13, 12, 4);
  const whole = await augment(batch, PIPELINE, { seed: 5, epoch: 1, backend: 'cpu' });
  for (const batchSize of [1, 4, 17, 32]) {
    const parts: Float32Array[] = [];
    for await (const b of new BatchLoader(new InMemorySource(batch), PIPELINE, { batchSize, seed: 5, epoch: 1, backend: 'cpu' })) parts.push(b.images);
    t.deepEqual(concat(parts), whole.data, `batchSize ${batchSize}`);
  }
});

native(`the shuffle does not change what an image becomes: a shuffled epoch is a permutation of the unshuffled one${skipWhy}`, async (t) => {
  const batch = syntheticHE(21, 14, 13, 8);
  const whole = await augment(batch, PIPELINE, { seed: 3, epoch: 4, backend: 'cpu' });
  const size = 12 * 12 * 3;
  let seen = 0;
  for await (const b of new BatchLoader(new InMemorySource(batch), PIPELINE, { batchSize: 6, shuffle: true, seed: 3, backend: 'cpu' }).epoch(4)) {
    t.notDeepEqual(b.indices, Array.from({ length: b.n }, (_, k) => b.startIndex + k)); // really shuffled
    b.indices.forEach((j, k) => {
      t.deepEqual(b.params[k], whole.params[j], `image ${j}`);
      t.deepEqual(b.data.subarray(k * size, (k + 1) * size), whole.data.subarray(j * size, (j + 1) * size), `image ${j}`);
    });
    seen += b.n;
    b.release();
  }
  t.is(seen, 21);
});

native(`a shuffled epoch is the same for any batch size and prefetch${skipWhy}`, async (t) => {
  const batch = syntheticHE(19, 12, 12, 6);
  const run = async (batchSize: number, prefetch: number) => {
    const parts: Float32Array[] = [];
    for await (const b of new BatchLoader(new InMemorySource(batch), PIPELINE, { batchSize, prefetch, shuffle: true, seed: 2, backend: 'cpu' })) {
      parts.push(b.images);
    }
    return concat(parts);
  };
  const a = await run(4, 0);
  t.deepEqual(await run(7, 3), a);
  t.deepEqual(await run(19, 1), a);
});

native(`prefetch k keeps k batches in flight ahead of the consumer, never more${skipWhy}`, async (t) => {
  const k = 3;
  const loader = new BatchLoader(slowSource(syntheticHE(40, 12, 12, 1), 20), PIPELINE, { batchSize: 4, prefetch: k, backend: 'cpu' });
  const it = loader[Symbol.asyncIterator]();
  const first = await it.next();
  t.false(first.done);
  // The first batch, and k more started the moment it was handed over
  // (some may already be done: the worker pool does not finish them in order).
  t.is(loader.stats.started, k + 1);
  t.is(loader.stats.started - loader.stats.yielded, k);
  t.true(loader.stats.inFlight <= k);
  t.is(loader.stats.maxInFlight, k);
  await delay(300); // the consumer "trains"; the k batches ahead finish meanwhile
  t.is(loader.stats.started - loader.stats.yielded, k);
  t.is(loader.stats.inFlight, 0);
  let batches = 1;
  for (let r = await it.next(); !r.done; r = await it.next()) {
    batches++;
    t.true(loader.stats.started - loader.stats.yielded <= k);
  }
  t.is(batches, 10);
  t.is(loader.stats.maxInFlight, k);
  t.is(loader.stats.inFlight, 0);
});

native(`prefetch 0 starts each batch only when it is asked for${skipWhy}`, async (t) => {
  const loader = new BatchLoader(new InMemorySource(syntheticHE(12, 12, 12, 1)), PIPELINE, { batchSize: 4, prefetch: 0, backend: 'cpu' });
  for await (const b of loader) {
    t.is(loader.stats.started, b.batch + 1);
    await delay(10);
    t.is(loader.stats.started, b.batch + 1);
  }
  t.is(loader.stats.maxInFlight, 1);
});

native(`breaking out of for-await waits for the batches in flight and drops their errors${skipWhy}`, async (t) => {
  const rejections: unknown[] = [];
  const onRejection = (e: unknown) => rejections.push(e);
  process.on('unhandledRejection', onRejection);
  try {
    const failLater = (indices: readonly number[]) => (indices[0]! >= 4 ? 'the disk went away' : undefined);
    const loader = new BatchLoader(slowSource(syntheticHE(40, 12, 12, 3), 30, failLater), PIPELINE, { batchSize: 4, prefetch: 4, backend: 'cpu' });
    for await (const b of loader) {
      t.is(b.batch, 0);
      t.true(loader.stats.inFlight > 0);
      break;
    }
    t.is(loader.stats.inFlight, 0);
    t.is(loader.stats.started, loader.stats.settled);
    const started = loader.stats.started;
    await delay(100);
    t.is(loader.stats.started, started, 'nothing new started after the loop');
    t.deepEqual(rejections, []);
  } finally {
    process.off('unhandledRejection', onRejection);
  }
});

native(`a failing batch rejects its own next() naming the batch and the cause, then the epoch ends${skipWhy}`, async (t) => {
  const failThird = (indices: readonly number[]) => (indices[0] === 8 ? 'tile 8 is truncated' : undefined);
  const loader = new BatchLoader(slowSource(syntheticHE(20, 12, 12, 3), 5, failThird), PIPELINE, { batchSize: 4, prefetch: 2, backend: 'cpu' });
  const it = loader[Symbol.asyncIterator]();
  t.false((await it.next()).done);
  t.false((await it.next()).done);
  const e = await t.throwsAsync(it.next(), { message: /^BatchLoader: batch 2 of epoch 0 \(order positions 8\.\.11\) failed: tile 8 is truncated$/ });
  t.is((e?.cause as Error).message, 'tile 8 is truncated');
  t.is(loader.stats.inFlight, 0);
  t.true((await it.next()).done);
});

native(`a source handing back the wrong images is named as the cause${skipWhy}`, async (t) => {
  const wrong: BatchSource = { size: 8, height: 12, width: 12, labelSize: 0, read: () => ({ batch: syntheticHE(3, 12, 12, 1) }) };
  const it = new BatchLoader(wrong, PIPELINE, { batchSize: 4, backend: 'cpu' })[Symbol.asyncIterator]();
  await t.throwsAsync(it.next(), { message: /batch 0 .* failed: Expected 4 images of 12x12 for source\.read\(\) result\.batch/ });
});

native(`reuse cycles prefetch + 1 arrays, gives the same batches, and says when none was released${skipWhy}`, async (t) => {
  const batch = syntheticHE(32, 12, 12, 8);
  const plain: Float32Array[] = [];
  for await (const b of new BatchLoader(new InMemorySource(batch), PIPELINE, { batchSize: 4, prefetch: 2, seed: 1, backend: 'cpu' })) plain.push(b.images);
  const buffers = new Set<ArrayBufferLike>();
  const reused: Float32Array[] = [];
  for await (const b of new BatchLoader(new InMemorySource(batch), PIPELINE, { batchSize: 4, prefetch: 2, seed: 1, reuse: true, backend: 'cpu' })) {
    buffers.add(b.images.buffer);
    reused.push(b.images.slice());
    b.release();
  }
  t.is(buffers.size, 3);
  t.deepEqual(reused, plain);

  const it = new BatchLoader(new InMemorySource(batch), PIPELINE, { batchSize: 4, prefetch: 1, reuse: true, backend: 'cpu' })[Symbol.asyncIterator]();
  const b0 = (await it.next()).value!;
  await it.next(); // held too: both arrays of the ring are now with the consumer
  await t.throwsAsync(it.next(), { message: /all 2 output arrays are held .* call release\(\)/ });
  b0.release();
  t.false((await it.next()).done);
  await it.return();
});

native(`with tf, batches are tensors over the augmented arrays and release() disposes them${skipWhy}`, async (t) => {
  const batch = syntheticHE(10, 12, 12, 2);
  const labels = Float32Array.from({ length: 10 }, (_, i) => i % 2);
  const before = tf.memory().numTensors;
  const loader = new BatchLoader(new InMemorySource(batch, labels), PIPELINE, { batchSize: 4, reuse: true, tf, backend: 'cpu' });
  const shapes: number[][] = [];
  for await (const b of loader) {
    shapes.push(b.images.shape);
    t.true(sharesStorage(tf, b.images, b.data));
    t.deepEqual(b.labels!.shape, [b.n, 1]);
    b.release();
  }
  t.deepEqual(shapes, [[4, 12, 12, 3], [4, 12, 12, 3], [2, 12, 12, 3]]);
  t.is(tf.memory().numTensors, before);
});

native(`dropLast leaves out the short last batch${skipWhy}`, async (t) => {
  const src = new InMemorySource(syntheticHE(10, 12, 12, 2));
  const sizes = async (dropLast: boolean) => {
    const out: number[] = [];
    for await (const b of new BatchLoader(src, PIPELINE, { batchSize: 4, dropLast, backend: 'cpu' })) out.push(b.n);
    return out;
  };
  t.deepEqual(await sizes(false), [4, 4, 2]);
  t.deepEqual(await sizes(true), [4, 4]);
});

test.serial('epochOrder is a permutation, the same for the same seed and epoch, another for the next epoch', (t) => {
  const a = epochOrder(1000, 7, 0);
  t.deepEqual(Array.from(a).sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
  t.deepEqual(epochOrder(1000, 7, 0), a);
  t.notDeepEqual(epochOrder(1000, 7, 1), a);
  t.notDeepEqual(epochOrder(1000, 8, 0), a);
});

test.serial('bad options are refused at the door, naming the option', (t) => {
  const src = new InMemorySource(syntheticHE(4, 12, 12, 1));
  t.throws(() => new BatchLoader(src, PIPELINE, { batchSize: 0 }), { instanceOf: RangeError, message: /for batchSize but received 0/ });
  t.throws(() => new BatchLoader(src, PIPELINE, { prefetch: -1 }), { instanceOf: RangeError, message: /for prefetch but received -1/ });
  t.throws(() => new BatchLoader(src, PIPELINE, { prefetch: 1.5 }), { instanceOf: RangeError, message: /for prefetch/ });
  t.throws(() => new BatchLoader(src, PIPELINE, { prefetch: 65 }), { instanceOf: RangeError, message: /between 0 and 64 for prefetch/ });
  t.throws(() => new BatchLoader(src, PIPELINE, { shuffle: 'yes' as unknown as boolean }), { instanceOf: TypeError, message: /for shuffle/ });
  t.throws(() => new BatchLoader(src, PIPELINE, { backend: 'tpu' as 'cpu' }), { instanceOf: RangeError, message: /for backend/ });
  t.throws(() => new BatchLoader(src, PIPELINE, { batchsize: 4 } as object), { instanceOf: RangeError, message: /Unknown option 'batchsize'/ });
  t.throws(() => new BatchLoader(src, { crop: 20 }), { instanceOf: RangeError, message: /pipeline\.crop/ });
  t.throws(() => new BatchLoader(src, PIPELINE, { tf: {} as typeof tf }), { instanceOf: TypeError, message: /tf\.tensor4d/ });
  t.throws(() => new InMemorySource(syntheticHE(4, 12, 12, 1), new Float32Array(6)), { instanceOf: RangeError, message: /for labels/ });
  t.throws(() => new BatchLoader({ size: 0 } as unknown as BatchSource, PIPELINE), { instanceOf: RangeError, message: /source\.size/ });
});
