/**
 * Inputs that break naive stain normalization (background, black, a single
 * pixel, pen marks, almost no tissue) and malformed calls.
 */
import test from 'ava';

import { fitStainTarget, normalizeStain, type StainMethod } from '../../src/stain/normalize.js';
import { rgbFixture } from '../support/helpers.js';

function solid(n: number, h: number, w: number, rgb: [number, number, number]) {
  const data = new Uint8Array(n * h * w * 3);
  for (let i = 0; i < data.length; i += 3) data.set(rgb, i);
  return { data, n, height: h, width: w };
}

function hasNaNOrGarbage(a: Uint8Array, b: Uint8Array): boolean {
  return a.length !== b.length;
}

const EDGE_CASES: [string, () => Promise<{ data: Uint8Array; n: number; height: number; width: number }>][] = [
  ['an all-white patch', async () => solid(1, 96, 96, [255, 255, 255])],
  ['an all-black patch', async () => solid(1, 96, 96, [0, 0, 0])],
  ['a 1x1 image', async () => solid(1, 1, 1, [120, 60, 140])],
  ['a patch with one tissue pixel', async () => {
    const b = solid(1, 32, 32, [250, 250, 250]);
    b.data.set([120, 60, 140], 0);
    return b;
  }],
  ['the red pen-mark tile', () => rgbFixture('histolab__tiles__no-tissue-red-pen.png')],
  ['the almost-white tile', () => rgbFixture('histolab__tiles__almost-white-1.png')],
];

for (const method of ['macenko', 'vahadane'] as StainMethod[]) {
  for (const [label, make] of EDGE_CASES) {
    test(`${method} returns ${label} unchanged or normalized without garbage, and reports unchanged images`, async (t) => {
      const img = await make();
      const r = await normalizeStain(img, { method, backend: 'cpu' });
      t.false(hasNaNOrGarbage(r.data, img.data));
      const fit = r.fits![0]!;
      t.true(fit.he.every(Number.isFinite) && fit.maxC.every(Number.isFinite), `fit ${JSON.stringify(fit)}`);
      if (fit.status !== 0) {
        t.deepEqual(Array.from(r.data), Array.from(img.data));
        t.is(r.unchanged.length, 1);
        t.is(r.unchanged[0]!.index, 0);
        t.regex(r.unchanged[0]!.reason, /tissue|degenerate/);
      } else {
        t.deepEqual(r.unchanged, []);
      }
    });
  }
  test(`${method} leaves all-white, all-black and 1x1 images unchanged and says so`, async (t) => {
    for (const img of [solid(2, 8, 8, [255, 255, 255]), solid(1, 8, 8, [0, 0, 0]), solid(1, 1, 1, [100, 50, 150])]) {
      const r = await normalizeStain(img, { method, backend: 'cpu' });
      t.deepEqual(Array.from(r.data), Array.from(img.data));
      t.is(r.unchanged.length, img.n);
    }
  });
}

test('a batch mixing tissue and background normalizes the tissue and reports only the background', async (t) => {
  const tissue = await rgbFixture('tiatoolbox__source_image.png');
  const n = 3, size = tissue.data.length;
  const data = new Uint8Array(n * size).fill(255);
  data.set(tissue.data, 0);
  data.set(tissue.data, 2 * size);
  const r = await normalizeStain({ data, n, height: tissue.height, width: tissue.width }, { method: 'macenko', backend: 'cpu' });
  t.deepEqual(r.unchanged.map((u) => u.index), [1]);
  t.true(r.data.subarray(size, 2 * size).every((v) => v === 255));
  t.notDeepEqual(Array.from(r.data.subarray(0, 100)), Array.from(tissue.data.subarray(0, 100)));
});

test('a target without tissue is a RangeError that says so', async (t) => {
  await t.throwsAsync(() => fitStainTarget(solid(1, 16, 16, [255, 255, 255]), { method: 'macenko', backend: 'cpu' }), {
    instanceOf: RangeError,
    message: /target/,
  });
});

test('bad inputs throw TypeError/RangeError naming the parameter', async (t) => {
  const ok = solid(1, 4, 4, [100, 50, 150]);
  const cases: [unknown, unknown, RegExp, typeof TypeError | typeof RangeError][] = [
    [{ ...ok, data: new Uint8Array(10) }, {}, /batch\.data/, RangeError],
    [{ ...ok, data: new Float32Array(48) }, {}, /batch\.data/, TypeError],
    [{ ...ok, data: Array.from(ok.data) }, {}, /batch\.data/, TypeError],
    [{ ...ok, height: 0 }, {}, /batch\.height/, RangeError],
    [{ ...ok, width: -3 }, {}, /batch\.width/, RangeError],
    [{ ...ok, n: 1.5 }, {}, /batch\.n/, RangeError],
    [{ ...ok, n: '1' }, {}, /batch\.n/, TypeError],
    [ok, { method: 'magic' }, /method/, RangeError],
    [ok, { preset: 'fancy' }, /preset/, RangeError],
    [ok, { backend: 'tpu' }, /backend/, RangeError],
    [ok, { colour: 'blue' }, /Unknown option 'colour'/, RangeError],
    [ok, { method: 'vahadane', seed: -1 }, /seed/, RangeError],
    [ok, { method: 'vahadane', lambda: Number.NaN }, /lambda/, RangeError],
    [ok, { method: 'reinhard' }, /target/, RangeError],
    [ok, { out: new Uint8Array(3) }, /out/, RangeError],
    [ok, { target: { method: 'macenko', he: [1, 2, 3], maxC: [1, 1] } }, /target\.he/, RangeError],
    [ok, { target: { method: 'macenko', he: [1, 2, 3, 4, 5, 6], maxC: [0, 1] } }, /target\.maxC/, RangeError],
  ];
  for (const [batch, options, message, kind] of cases) {
    await t.throwsAsync(() => normalizeStain(batch as never, options as never), { instanceOf: kind, message }, JSON.stringify(options));
  }
  await t.throwsAsync(() => normalizeStain(null as never), { instanceOf: TypeError, message: /batch/ });
});
