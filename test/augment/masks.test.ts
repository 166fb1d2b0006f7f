/**
 * Masks follow their images through augmentation (src/augment/masks.ts):
 * exact crops and dihedral turns against a numpy-style reference, elastic
 * deformation against the image's own warp, ignored pixels kept apart, colour
 * ops never touching a mask.
 */
import test from 'ava';

import { BatchLoader, InMemorySource } from '../../src/augment/loader.js';
import { MASK_TARGET_IGNORE, decodeTargets, encodeTargets, maskTargets } from '../../src/augment/masks.js';
import { augment } from '../../src/augment/augment.js';
import { checkPipeline } from '../../src/augment/pipeline.js';
import { fliplr, rot90, seededRandom, syntheticHE } from '../support/helpers.js';

/** n random masks of h x w with values 0, 1 and some ignored pixels. */
function randomTargets(n: number, h: number, w: number, seed: number): Float32Array {
  const rnd = seededRandom(seed);
  const t = new Float32Array(n * h * w);
  for (let i = 0; i < t.length; i++) {
    const u = rnd();
    t[i] = u < 0.1 ? MASK_TARGET_IGNORE : u < 0.55 ? 1 : 0;
  }
  return t;
}

/** One mask (h x w floats) as h x w x 3 so the image helpers apply, and back. */
const asRgb = (m: Float32Array) => Float32Array.from({ length: m.length * 3 }, (_, k) => m[Math.floor(k / 3)]!);
const fromRgb = (m: Float32Array) => Float32Array.from({ length: m.length / 3 }, (_, k) => m[3 * k]!);

test('maskTargets: positive class 1, ignore value −1, every other class 0', (t) => {
  t.deepEqual(Array.from(maskTargets(Uint8Array.of(0, 1, 2, 255, 2), 2, 255)), [0, 0, 1, MASK_TARGET_IGNORE, 1]);
});

test('encode/decode: exact round trip of 0, 1 and ignored; a half-valid bilinear sample keeps the valid mean', (t) => {
  const targets = Float32Array.of(0, 1, MASK_TARGET_IGNORE, 1);
  const enc = encodeTargets(targets, 1, 2, 2);
  t.deepEqual(Array.from(decodeTargets(Float32Array.from(enc.data, (v) => v / 255))), Array.from(targets));
  // Bilinear at the midpoint of a valid 1 and an ignored pixel: R = 0.5, G = 0.5 → valid weight 1/2, target 1.
  t.deepEqual(Array.from(decodeTargets(Float32Array.of(0.5, 0.5, 0))), [1]);
  // A quarter valid: ignored.
  t.deepEqual(Array.from(decodeTargets(Float32Array.of(0.25, 0.25, 0))), [MASK_TARGET_IGNORE]);
  t.throws(() => encodeTargets(Float32Array.of(2), 1, 1, 1), { instanceOf: RangeError, message: /targets\[0\]/ });
  t.throws(() => encodeTargets(new Float32Array(3), 1, 2, 2), { instanceOf: RangeError, message: /targets/ });
});

test('loader masks: crop and d4 move each mask exactly as its image (numpy rot90/fliplr reference), colour ops leave it alone', async (t) => {
  const n = 24, h = 11, crop = 7;
  const images = syntheticHE(n, h, h, 3);
  const targets = randomTargets(n, h, h, 5);
  const pipeline = { d4: true, crop, hed: 'light' as const, hsv: { brightness: 0.2, hue: 0.05 }, blur: { sigma: [0.5, 1.5] as [number, number], p: 1 }, noise: { sigma: 0.05, p: 1 }, normalize: 'imagenet' as const };
  const loader = new BatchLoader(new InMemorySource(images, targets), pipeline, { batchSize: 10, shuffle: true, seed: 9, masks: true, backend: 'cpu' });
  let seen = 0;
  for await (const b of loader.epoch(2)) {
    t.is(b.labels!.length, b.n * crop * crop);
    for (let k = 0; k < b.n; k++) {
      const i = b.indices[k]!, p = b.params[k]!;
      // The reference: the crop window of the source mask, then d4's turns and flip.
      const window = new Float32Array(crop * crop);
      for (let y = 0; y < crop; y++) for (let x = 0; x < crop; x++) window[y * crop + x] = targets[i * h * h + (p.cropY + y) * h + p.cropX + x]!;
      let expected: Float32Array = asRgb(window);
      for (let turn = 0; turn < (p.d4 & 3); turn++) expected = rot90(expected, crop, crop);
      if (p.d4 & 4) expected = fliplr(expected, crop, crop);
      t.deepEqual(Array.from(b.labels!.subarray(k * crop * crop, (k + 1) * crop * crop)), Array.from(fromRgb(expected)), `image ${i} (d4 ${p.d4})`);
    }
    seen += b.n;
    b.release();
  }
  t.is(seen, n);
});

test('loader masks: elastic deformation and resize warp the mask with the image\'s own field', async (t) => {
  const n = 6, h = 32;
  // Images that are their masks' encoding: augmenting them with the geometry alone must give the loader's labels.
  const targets = randomTargets(n, h, h, 11);
  const encoded = encodeTargets(targets, n, h, h);
  const pipeline = { d4: true, crop: 24, resize: 20, elastic: { alpha: 4, sigma: 6, p: 1 } };
  const loader = new BatchLoader(new InMemorySource(encoded, targets), pipeline, { batchSize: 4, shuffle: true, seed: 3, masks: true, backend: 'cpu' });
  for await (const b of loader.epoch(1)) {
    t.true(b.params.every((p) => p.elasticAlpha > 0));
    // An image's own augmentation, decoded: its warp, independently of the loader's mask path.
    const px = h * h * 3;
    const picked = new Uint8Array(b.n * px);
    b.indices.forEach((i, k) => picked.set(encoded.data.subarray(i * px, (i + 1) * px), k * px));
    const batch = { data: picked, n: b.n, height: h, width: h };
    const own = decodeTargets((await augment(batch, checkPipeline(pipeline), { seed: 3, epoch: 1, indices: b.indices, backend: 'cpu' })).data);
    t.deepEqual(Array.from(b.labels!), Array.from(own));
    // Deformed, not only cropped: some soft targets appear at region edges.
    t.true(Array.from(b.labels!).some((v) => v > 0 && v < 1));
    b.release();
  }
});

test('loader masks: a source whose labels are not one per pixel is a RangeError naming source.labelSize', (t) => {
  const images = syntheticHE(2, 8, 8, 1);
  t.throws(() => new BatchLoader(new InMemorySource(images, Float32Array.of(0, 1)), {}, { masks: true }), { instanceOf: RangeError, message: /source\.labelSize/ });
  t.throws(() => new BatchLoader(new InMemorySource(images, new Float32Array(128)), {}, { masks: 'yes' as unknown as boolean }), { instanceOf: TypeError, message: /masks/ });
});
