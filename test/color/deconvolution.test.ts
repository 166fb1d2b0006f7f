/**
 * Colour deconvolution against scikit-image's rgb2hed formula (SOURCES.md) and
 * histolab's expected H / E / DAB channel images built on it.
 */
import test from 'ava';

import { RGB_FROM_HED, deconvolve, odToRgb, reconvolve, rgb2hed, rgbToOd, stainMatrix } from '../../src/color/deconvolution.js';
import { diff, rgbFixture, syntheticHE } from '../support/helpers.js';

/** Gauss–Jordan inverse, independent of the library's cofactor inverse. */
function inverse(m: number[][]): number[][] {
  const n = m.length;
  const a = m.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r]![c]!) > Math.abs(a[p]![c]!)) p = r;
    [a[c], a[p]] = [a[p]!, a[c]!];
    const d = a[c]![c]!;
    for (let k = 0; k < 2 * n; k++) a[c]![k]! /= d;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = a[r]![c]!;
      for (let k = 0; k < 2 * n; k++) a[r]![k]! -= f * a[c]![k]!;
    }
  }
  return a.map((row) => row.slice(n));
}

/** skimage.color.rgb2hed in float64. */
function skimageRgb2hed(data: Uint8Array): Float64Array {
  const inv = inverse(RGB_FROM_HED.map((r) => [...r]));
  const out = new Float64Array(data.length);
  const logAdjust = Math.log(1e-6);
  for (let p = 0; p < data.length; p += 3) {
    const od = [0, 1, 2].map((k) => Math.log(Math.max(data[p + k]! / 255, 1e-6)) / logAdjust);
    for (let s = 0; s < 3; s++) {
      out[p + s] = Math.max(0, od[0]! * inv[0]![s]! + od[1]! * inv[1]![s]! + od[2]! * inv[2]![s]!);
    }
  }
  return out;
}

test('rgb2hed matches scikit-image on ihc.png within 1e-4', async (t) => {
  const img = await rgbFixture('scikit-image__ihc.png');
  const { data } = await rgb2hed(img, { backend: 'cpu' });
  const expected = skimageRgb2hed(img.data);
  const d = diff(data, expected);
  t.log(`max |diff| ${d.max.toExponential(2)}`);
  t.true(d.max < 1e-4);
});

// histolab's channel images (filters.HematoxylinChannel etc.) are
// skimage.color.hed2rgb of that one stain, the others zeroed, as uint8.
for (const [name, channel] of [['hematoxylin', 0], ['eosin', 1], ['dab', 2]] as const) {
  test(`rgb2hed then single-stain reconvolve reproduces histolab's ${name} channel image within 1 grey level`, async (t) => {
    const img = await rgbFixture('histolab__tcga-lung-rgb.png');
    const { data: hed } = await rgb2hed(img, { backend: 'cpu' });
    const single = new Float32Array(hed.length);
    for (let p = channel; p < hed.length; p += 3) single[p] = hed[p]!;
    const { data } = await reconvolve(single, { matrix: RGB_FROM_HED, backend: 'cpu' });
    const expected = await rgbFixture(`histolab__expect__tcga-lung-rgb-${name}-channel.png`);
    const d = diff(data, expected.data);
    t.log(`${name}: mean ${d.mean.toFixed(4)}, max ${d.max}`);
    t.true(d.max <= 1);
  });
}

test('reconvolve inverts deconvolve for a custom two-stain matrix', async (t) => {
  const img = syntheticHE(2, 17, 13);
  const matrix = [[0.65, 0.7, 0.29], [0.07, 0.99, 0.11]];
  const { data: stains } = await deconvolve(img, { matrix, backend: 'cpu' });
  const { data: back } = await reconvolve(stains, { matrix, backend: 'cpu' });
  // Pixels whose concentrations were clipped at 0 cannot come back exactly.
  const m = stainMatrix(matrix);
  let checked = 0, worst = 0;
  for (let p = 0; p < img.data.length; p += 3) {
    const od = [0, 1, 2].map((k) => Math.log(Math.max(img.data[p + k]! / 255, 1e-6)) / Math.log(1e-6));
    const raw = [0, 1, 2].map((s) => od[0]! * m.stainFromRgb[s]! + od[1]! * m.stainFromRgb[3 + s]! + od[2]! * m.stainFromRgb[6 + s]!);
    if (raw.some((v) => v < 0) || img.data.subarray(p, p + 3).some((v) => v === 0)) continue;
    checked++;
    for (let k = 0; k < 3; k++) worst = Math.max(worst, Math.abs(back[p + k]! - img.data[p + k]!));
  }
  t.true(checked > 100);
  t.true(worst <= 1, `worst ${worst}`);
});

test('rgbToOd follows −ln((I+1)/240) and odToRgb inverts it', async (t) => {
  const data = new Uint8Array(256 * 3);
  for (let i = 0; i < data.length; i++) data[i] = i % 256;
  const img = { data, n: 1, height: 1, width: 256 };
  const { data: od } = await rgbToOd(img, { backend: 'cpu' });
  for (let i = 0; i < data.length; i++) t.true(Math.abs(od[i]! + Math.log((data[i]! + 1) / 240)) < 1e-5);
  const { data: back } = await odToRgb(od, { backend: 'cpu' });
  t.deepEqual(Array.from(back), Array.from(data));
});

test('a singular stain matrix is a RangeError naming the matrix', (t) => {
  t.throws(() => stainMatrix([[1, 0, 0], [2, 0, 0], [0, 0, 1]]), { instanceOf: RangeError, message: /matrix/ });
  t.throws(() => stainMatrix([[1, 0]] as unknown as number[][]), { instanceOf: RangeError, message: /matrix/ });
});
