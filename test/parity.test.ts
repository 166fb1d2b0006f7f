/**
 * Every kernel backend against the native CPU reference, on real fixtures and
 * on synthetic batches of awkward shapes (odd sizes, 1x1, batch 1 and 257):
 * images within 1 grey level, floats within 1e-3. CUDA cases are skipped, with
 * the reason in their title, where no GPU is present.
 */
import test from 'ava';

import { RGB_FROM_HED, stainMatrix } from '../src/color/deconvolution.js';
import { kernelBackend, kernelBackendStatus } from '../src/kernels/registry.js';
import type { KernelBackend, KernelBackendName, RgbBatch } from '../src/kernels/types.js';
import { normalizeStain, type StainMethod } from '../src/stain/normalize.js';
import { diff, rgbFixture, syntheticHE } from './helpers.js';

const status = await kernelBackendStatus();
const others: KernelBackendName[] = ['cuda', 'gpujs', 'js'];

// Every input image among the fixtures (expected outputs are not inputs).
const FIXTURES = [
  'HEnorm_python__example1.png',
  'tiatoolbox__source_image.png',
  'tiatoolbox__target_image.png',
  'tiatoolbox__kather1.tif',
  'tiatoolbox__kather2.tif',
  'torchstain__source.png',
  'torchstain__target.png',
  'scikit-image__ihc.png',
  'histolab__tcga-lung-rgb.png',
  'histolab__tiles__tissue-level0-4302-10273-4814-10785.png',
  'histolab__tiles__kidney-ihc-level0-350-530-360-540.png',
  'histolab__tiles__no-tissue.png',
  'histolab__tiles__no-tissue-red-pen.png',
  'histolab__tiles__almost-white-1.png',
];

const SHAPES: [string, () => RgbBatch][] = [
  ['257 patches of 7x5', () => syntheticHE(257, 7, 5, 3)],
  ['1 image of 33x17', () => syntheticHE(1, 33, 17, 4)],
  ['a 1x1 image', () => syntheticHE(1, 1, 1, 5)],
];

const METHODS: StainMethod[] = ['macenko', 'vahadane', 'ruifrok', 'reinhard'];

async function normalizeOn(backend: KernelBackendName, img: RgbBatch, method: StainMethod, target: RgbBatch) {
  return normalizeStain(img, { method, backend, ...(method === 'reinhard' ? { target } : {}) });
}

for (const name of others) {
  const s = status.find((b) => b.name === name)!;
  const run = s.available ? test : test.skip;
  const suffix = s.available ? '' : ` (skipped: ${s.detail})`;

  run(`${name}: stain normalization agrees with cpu within 1 grey level on every fixture${suffix}`, async (t) => {
    const target = await rgbFixture('tiatoolbox__target_image.png');
    for (const file of FIXTURES) {
      const img = await rgbFixture(file);
      for (const method of METHODS) {
        const ref = await normalizeOn('cpu', img, method, target);
        const got = await normalizeOn(name, img, method, target);
        const d = diff(got.data, ref.data);
        t.true(d.max <= 1, `${file} ${method}: max |diff| ${d.max}`);
        t.deepEqual(got.unchanged, ref.unchanged, `${file} ${method}`);
      }
    }
  });

  run(`${name}: stain normalization agrees with cpu on odd shapes, 1x1 and batch 257${suffix}`, async (t) => {
    const target = syntheticHE(1, 40, 40, 9);
    for (const [label, make] of SHAPES) {
      const img = make();
      for (const method of METHODS) {
        const ref = await normalizeOn('cpu', img, method, target);
        const got = await normalizeOn(name, img, method, target);
        const d = diff(got.data, ref.data);
        t.true(d.max <= 1, `${label} ${method}: max |diff| ${d.max}`);
        t.deepEqual(got.unchanged, ref.unchanged, `${label} ${method}`);
      }
    }
  });

  run(`${name}: optical density and deconvolution agree with cpu within 1e-3${suffix}`, async (t) => {
    const cpu: KernelBackend = await kernelBackend('cpu');
    const other: KernelBackend = await kernelBackend(name);
    const m = stainMatrix(RGB_FROM_HED);
    for (const [label, make] of [...SHAPES, ['ihc.png', () => rgbFixture('scikit-image__ihc.png')] as const]) {
      const img = await make();
      for (const od of [{ io: 240, offset: 1, minOd: -Infinity }, { io: 255, offset: 0, minOd: 1e-6 }]) {
        t.true(diff(await other.rgbToOd(img, od), await cpu.rgbToOd(img, od)).max < 1e-3, `${label} rgbToOd`);
      }
      const hed = await cpu.deconvolve(img, m.stainFromRgb);
      t.true(diff(await other.deconvolve(img, m.stainFromRgb), hed).max < 1e-3, `${label} deconvolve`);
      const pixels = img.n * img.height * img.width;
      t.true(diff(await other.reconvolve(hed, pixels, m.rgbFromStain), await cpu.reconvolve(hed, pixels, m.rgbFromStain)).max <= 1, `${label} reconvolve`);
    }
  });
}
