/**
 * Macenko, canonical preset, against HEnorm_python's published outputs for
 * example1.png (SOURCES.md): the fitted stain matrix, max concentrations and
 * kept-pixel count, and the normalized, H-only and E-only images.
 */
import test from 'ava';

import { fitStains, normalizeStain } from '../../src/stain/normalize.js';
import { diff, rgbFixture } from '../support/helpers.js';

// HEnorm_python's intermediate values for example1 (columns H, E there; rows here).
const EXPECTED_HE = [0.541458, 0.752028, 0.375869, 0.208619, 0.804355, 0.55632];
const EXPECTED_MAX_C = [1.192333, 0.934151];
const EXPECTED_KEPT = 458534;

test('macenko canonical fits example1 to HEnorm_python stain matrix, maxC and kept pixels', async (t) => {
  const img = await rgbFixture('HEnorm_python__example1.png');
  const { fits } = await fitStains(img, { method: 'macenko', preset: 'canonical', backend: 'cpu' });
  const f = fits[0]!;
  t.is(f.status, 0);
  t.is(f.tissuePixels, EXPECTED_KEPT);
  f.he.forEach((v, i) => t.true(Math.abs(v - EXPECTED_HE[i]!) < 1e-3, `he[${i}] ${v} vs ${EXPECTED_HE[i]}`));
  f.maxC.forEach((v, i) => t.true(Math.abs(v - EXPECTED_MAX_C[i]!) < 1e-3, `maxC[${i}] ${v} vs ${EXPECTED_MAX_C[i]}`));
});

test('macenko canonical reproduces norm1, norm1_H and norm1_E within 0.5 mean and 2 max grey levels', async (t) => {
  const img = await rgbFixture('HEnorm_python__example1.png');
  const r = await normalizeStain(img, { method: 'macenko', preset: 'canonical', backend: 'cpu', singleStains: true });
  t.deepEqual(r.unchanged, []);
  for (const [name, out] of [
    ['norm1', r.data],
    ['norm1_H', r.hematoxylin!],
    ['norm1_E', r.eosin!],
  ] as const) {
    const expected = await rgbFixture(`HEnorm_python__${name}.png`);
    const d = diff(out, expected.data);
    t.log(`${name}: mean |diff| ${d.mean.toFixed(4)}, max ${d.max}`);
    t.true(d.mean <= 0.5, `${name} mean ${d.mean}`);
    t.true(d.max <= 2, `${name} max ${d.max}`);
  }
});

test('a stain fit made once is reused for every tile when given as sourceFit', async (t) => {
  const img = await rgbFixture('HEnorm_python__example1.png');
  const { fits } = await fitStains(img, { method: 'macenko', backend: 'cpu' });
  // Four 512x512 quadrants as a batch, normalized with the whole image's fit,
  // must equal the corresponding quadrants of the whole image normalized at once.
  const q = 512;
  const tiles = new Uint8Array(4 * q * q * 3);
  for (let k = 0; k < 4; k++) {
    const ox = (k % 2) * q, oy = Math.floor(k / 2) * q;
    for (let y = 0; y < q; y++) {
      const src = ((oy + y) * 1024 + ox) * 3;
      tiles.set(img.data.subarray(src, src + q * 3), (k * q * q + y * q) * 3);
    }
  }
  const whole = await normalizeStain(img, { method: 'macenko', backend: 'cpu' });
  const perTile = await normalizeStain({ data: tiles, n: 4, height: q, width: q }, { method: 'macenko', backend: 'cpu', sourceFit: fits[0]! });
  let mismatches = 0;
  for (let k = 0; k < 4; k++) {
    const ox = (k % 2) * q, oy = Math.floor(k / 2) * q;
    for (let y = 0; y < q; y++) {
      for (let x = 0; x < q * 3; x++) {
        if (perTile.data[(k * q * q + y * q) * 3 + x] !== whole.data[((oy + y) * 1024 + ox) * 3 + x]) mismatches++;
      }
    }
  }
  t.is(mismatches, 0);
});
