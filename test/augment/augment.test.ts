/**
 * Augmentation beyond backend parity (that is augment/parity.test.ts):
 * determinism (seed, thread count, batch split), test-time augmentation, the
 * pipeline's validation, and the addon's own guards. CUDA cases are skipped,
 * with the reason in their title, without a GPU.
 */
import test from 'ava';

import { loadAddon } from '../../bindings/loader.js';
import { augment, chooseAugmentBackend, ttaViews, type AugmentResult } from '../../src/augment/augment.js';
import { drawBatchParams, identityParams, type AugmentBatchParams } from '../../src/augment/params.js';
import { checkPipeline, outputShape, type AugmentPipelineInput } from '../../src/augment/pipeline.js';
import { augmentJs, noiseValue } from '../../src/augment/js_augment.js';
import type { RgbBatch } from '../../src/kernels/types.js';
import { kernelBackendStatus } from '../../src/kernels/registry.js';
import { OPS } from '../support/augment_cases.js';
import { fliplr, rot90, syntheticHE } from '../support/helpers.js';

const addonState = loadAddon();
const addon = addonState.ok && typeof addonState.addon.augment === 'function' ? addonState.addon : undefined;
const noAddon = addonState.ok ? 'histoflow.node predates augment (rebuild it)' : addonState.reason;
const status = await kernelBackendStatus();

function nativeAvailability(name: 'cpu' | 'cuda'): { run: typeof test | typeof test.skip; suffix: string } {
  if (!addon) return { run: test.skip, suffix: ` (skipped: ${noAddon})` };
  const s = status.find((b) => b.name === name)!;
  return s.available ? { run: test, suffix: '' } : { run: test.skip, suffix: ` (skipped: ${s.detail})` };
}

function reference(batch: RgbBatch, r: AugmentResult): Float32Array {
  const out = new Float32Array(r.data.length);
  augmentJs(batch, r.params, r.batchParams, out);
  return out;
}

function firstMismatch(a: Float32Array, b: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

const cpu = nativeAvailability('cpu');

test('the js backend runs the reference, and auto says which backend it chose and why', async (t) => {
  const batch = syntheticHE(2, 9, 9, 8);
  const r = await augment(batch, OPS[OPS.length - 1]![2](9, 9), { seed: 3, backend: 'js' });
  t.deepEqual(r.data, reference(batch, r));
  t.is(r.backend, 'js (requested)');
  const auto = await chooseAugmentBackend('auto');
  t.regex(auto.reason, /^(cuda|cpu|gpujs|js) \(auto/);
  if (auto.runner.name === 'js') t.regex(auto.reason, /gpujs: /);
});

cpu.run(`cpu: the same seed gives bit-identical output, another seed or epoch does not${cpu.suffix}`, async (t) => {
  const batch = syntheticHE(6, 24, 24, 9);
  const pipeline = OPS[OPS.length - 1]![2](24, 24);
  const a = await augment(batch, pipeline, { seed: 11, backend: 'cpu' });
  const b = await augment(batch, pipeline, { seed: 11, backend: 'cpu' });
  t.deepEqual(a.data, b.data);
  t.deepEqual(a.params, b.params);
  const c = await augment(batch, pipeline, { seed: 12, backend: 'cpu' });
  const d = await augment(batch, pipeline, { seed: 11, epoch: 1, backend: 'cpu' });
  t.notDeepEqual(a.data, c.data);
  t.notDeepEqual(a.data, d.data);
});

cpu.run(`cpu: one thread and two threads give bit-identical output${cpu.suffix}`, async (t) => {
  const native = addon!;
  const batch = syntheticHE(16, 32, 32, 10);
  const pipeline = OPS[OPS.length - 1]![2](32, 32);
  const before = native.getThreads();
  try {
    native.setThreads(1);
    const one = await augment(batch, pipeline, { seed: 5, backend: 'cpu' });
    native.setThreads(2);
    const two = await augment(batch, pipeline, { seed: 5, backend: 'cpu' });
    t.is(firstMismatch(one.data, two.data), -1);
  } finally {
    native.setThreads(before);
  }
});

cpu.run(`cpu: a batch split in halves with startIndex gives the whole batch's output${cpu.suffix}`, async (t) => {
  const batch = syntheticHE(9, 12, 12, 11);
  const pipeline = OPS[OPS.length - 1]![2](12, 12);
  const whole = await augment(batch, pipeline, { seed: 21, epoch: 3, backend: 'cpu' });
  const size = 12 * 12 * 3;
  const first = { data: batch.data.subarray(0, 4 * size), n: 4, height: 12, width: 12 };
  const second = { data: batch.data.subarray(4 * size), n: 5, height: 12, width: 12 };
  const a = await augment(first, pipeline, { seed: 21, epoch: 3, backend: 'cpu' });
  const b = await augment(second, pipeline, { seed: 21, epoch: 3, startIndex: 4, backend: 'cpu' });
  const joined = new Float32Array(whole.data.length);
  joined.set(a.data, 0);
  joined.set(b.data, a.data.length);
  t.is(firstMismatch(whole.data, joined), -1);
  t.deepEqual([...a.params, ...b.params], whole.params);
});

test('the drawn parameters depend only on (seed, epoch, index) and stay in their ranges', (t) => {
  const p = checkPipeline({ d4: true, crop: 5, hed: { sigma: 0.2 }, hsv: { brightness: 0.1, contrast: 0.3, saturation: 1, hue: 0.05 }, blur: { sigma: [0.5, 1], p: 0.5 }, noise: { sigma: 0.1, p: 0.25 } });
  const shape = outputShape(p, 9, 8);
  const all = drawBatchParams(p, shape, 9, 8, 400, 42, 0, 0);
  t.deepEqual(drawBatchParams(p, shape, 9, 8, 10, 42, 0, 100), all.slice(100, 110));
  const d4 = new Set(all.map((q) => q.d4));
  t.is(d4.size, 8);
  let blurred = 0;
  let noisy = 0;
  for (const q of all) {
    t.true(q.cropY >= 0 && q.cropY <= 4 && q.cropX >= 0 && q.cropX <= 3);
    q.hedAlpha.forEach((a) => t.true(a >= 0.8 - 1e-6 && a <= 1.2 + 1e-6));
    // beta is drawn in OD units and handed to the kernels in rgb2hed units (OD / ln 10⁶).
    q.hedBeta.forEach((b) => t.true(Math.abs(b) <= 0.2 / Math.log(1e6) + 1e-6));
    t.true(q.brightness >= 0.9 - 1e-6 && q.brightness <= 1.1 + 1e-6);
    t.true(q.saturation >= 0 && q.saturation <= 2 + 1e-6);
    t.true(Math.abs(q.hue) <= 0.05 + 1e-6);
    if (q.blurSigma > 0) {
      blurred++;
      t.true(q.blurSigma >= 0.5 - 1e-6 && q.blurSigma <= 1 + 1e-6);
    }
    if (q.noiseSigma > 0) noisy++;
    t.true(Number.isSafeInteger(q.noiseSeed));
    // float32 values, so what is reported is what the kernels use.
    t.is(q.brightness, Math.fround(q.brightness));
  }
  t.true(blurred > 150 && blurred < 250, `blurred ${blurred} of 400`);
  t.true(noisy > 60 && noisy < 140, `noisy ${noisy} of 400`);
  const betas = all.flatMap((q) => q.hedBeta);
  t.true(Math.max(...betas.map(Math.abs)) > 0.9 * 0.2 / Math.log(1e6), 'beta spans its OD range');
  // units 'rgb2hed': the same draws, 13.8 times larger (the literal HEDJitter convention).
  const raw = drawBatchParams(checkPipeline({ ...p, hed: { sigma: 0.2, units: 'rgb2hed' } }), shape, 9, 8, 400, 42, 0, 0);
  raw.forEach((q, i) => q.hedBeta.forEach((b, k) => t.true(Math.abs(b - all[i]!.hedBeta[k]! * Math.log(1e6)) < 1e-6)));
  t.deepEqual(raw.map((q) => q.hedAlpha), all.map((q) => q.hedAlpha));
  // An op turned off does not shift what the others draw.
  const noBlur = drawBatchParams({ ...p, blur: null }, shape, 9, 8, 50, 42, 0, 0);
  t.deepEqual(noBlur.map((q) => [q.d4, q.hedAlpha, q.noiseSeed]), all.slice(0, 50).map((q) => [q.d4, q.hedAlpha, q.noiseSeed]));
});

test('noise_value is a standard normal', (t) => {
  let sum = 0;
  let sq = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const v = noiseValue(12345, i);
    sum += v;
    sq += v * v;
  }
  t.true(Math.abs(sum / n) < 0.03);
  t.true(Math.abs(sq / n - 1) < 0.05);
});

for (const device of ['cpu', 'cuda', 'js'] as const) {
  const { run, suffix } = device === 'js' ? { run: test, suffix: '' } : nativeAvailability(device);
  run(`${device}: test-time augmentation returns each image's 8 dihedral views, exact rotations and flips${suffix}`, async (t) => {
    const batch = syntheticHE(3, 10, 9, 12);
    const r = await augment(batch, { crop: 7, hed: 'strong', blur: { p: 1 }, normalize: 'imagenet' }, { tta: true, backend: device });
    t.is(r.n, 24);
    t.is(r.height, 7);
    t.deepEqual(r.params.slice(0, 8).map((q) => q.d4), [0, 1, 2, 3, 4, 5, 6, 7]);
    t.true(r.params.every((q) => !q.hedEnabled && q.blurSigma === 0 && q.cropY === 1 && q.cropX === 1));
    const size = 7 * 7 * 3;
    for (let i = 0; i < 3; i++) {
      const view = (k: number) => r.data.subarray((i * 8 + k) * size, (i * 8 + k + 1) * size);
      for (let k = 0; k < 8; k++) {
        let expected: Float32Array = view(0).slice();
        for (let turn = 0; turn < (k & 3); turn++) expected = rot90(expected, 7, 7);
        if (k & 4) expected = fliplr(expected, 7, 7);
        t.is(firstMismatch(view(k), expected), -1, `image ${i}, view ${k}`);
      }
      const distinct = new Set(Array.from({ length: 8 }, (_, k) => Array.from(view(k)).join(',')));
      t.is(distinct.size, 8);
    }
  });
}

/** The window of height x width at (y, x) of every image of a batch, cut in JS. */
function cutWindow(batch: RgbBatch, y: number, x: number, height: number, width: number): RgbBatch {
  const data = new Uint8Array(batch.n * height * width * 3);
  for (let i = 0; i < batch.n; i++) {
    for (let r = 0; r < height; r++) {
      const from = ((i * batch.height + y + r) * batch.width + x) * 3;
      data.set(batch.data.subarray(from, from + width * 3), ((i * height + r) * width) * 3);
    }
  }
  return { n: batch.n, height, width, data };
}

for (const device of ['cpu', 'cuda', 'js'] as const) {
  const { run, suffix } = device === 'js' ? { run: test, suffix: '' } : nativeAvailability(device);
  run(`${device}: tta 'crops' gives the 8 views at the centre and the four corner windows, each equal to the views of that window cut out${suffix}`, async (t) => {
    const batch = syntheticHE(3, 10, 9, 13);
    const rest = { hed: 'strong', blur: { p: 1 }, normalize: 'imagenet' } as const;
    const r = await augment(batch, { crop: 7, ...rest }, { tta: 'crops', backend: device });
    // 10 x 9 images, 7 x 7 windows: centre (1, 1), corners (0, 0), (0, 2), (3, 0), (3, 2).
    const windows = [[1, 1], [0, 0], [0, 2], [3, 0], [3, 2]] as const;
    t.is(r.n, 3 * 5 * 8);
    t.deepEqual(r.params.slice(0, 40).map((q) => [q.cropY, q.cropX, q.d4]), windows.flatMap(([y, x]) => [0, 1, 2, 3, 4, 5, 6, 7].map((d4) => [y, x, d4])));
    const size = 7 * 7 * 3;
    for (const [w, [y, x]] of windows.entries()) {
      const cut = await augment(cutWindow(batch, y, x, 7, 7), rest, { tta: true, backend: device });
      for (let i = 0; i < 3; i++) {
        for (let k = 0; k < 8; k++) {
          const got = r.data.subarray(((i * 5 + w) * 8 + k) * size, ((i * 5 + w) * 8 + k + 1) * size);
          t.is(firstMismatch(got, cut.data.subarray((i * 8 + k) * size, (i * 8 + k + 1) * size)), -1, `image ${i}, window (${y}, ${x}), view ${k}`);
        }
      }
    }
  });
}

test("tta 'crops' without a crop, or with a window the size of the image, is the 8 views; other values are errors naming tta", async (t) => {
  const batch = syntheticHE(2, 8, 8, 14);
  const plain = await augment(batch, { normalize: 'imagenet' }, { tta: true, backend: 'js' });
  const crops = await augment(batch, { normalize: 'imagenet' }, { tta: 'crops', backend: 'js' });
  t.is(crops.n, 16);
  t.is(firstMismatch(crops.data, plain.data), -1);
  t.is((await augment(batch, { crop: 8 }, { tta: 'crops', backend: 'js' })).n, 16, 'one distinct window');
  t.is(ttaViews({ crop: 6 }, 8, 8, 'crops'), 40);
  t.is(ttaViews({ crop: 6 }, 8, 8, true), 8);
  t.is(ttaViews({ crop: 6 }, 8, 8, false), 1);
  t.is(ttaViews({ crop: 8 }, 8, 10, 'crops'), 24, 'a window as tall as the image: centre, left, right');
  await t.throwsAsync(augment(batch, {}, { tta: 'corners' as never }), { instanceOf: RangeError, message: /for tta/ });
  await t.throwsAsync(augment(batch, {}, { tta: 1 as never }), { instanceOf: TypeError, message: /for tta/ });
});

test('checkPipeline gives a canonical, JSON-serializable pipeline that validates to itself', (t) => {
  const p = checkPipeline({ d4: true, hed: 'light', hsv: { brightness: 0.1, hue: 0.05 }, blur: { sigma: [0.1, 1.5], p: 0.3 }, crop: 96, normalize: 'imagenet' });
  t.deepEqual(p, {
    stain: null,
    d4: true,
    crop: { size: [96, 96], mode: 'random' },
    resize: null,
    hed: { sigma: 0.05, units: 'od' },
    hsv: { brightness: 0.1, contrast: 0, saturation: 0, hue: 0.05 },
    elastic: null,
    blur: { sigma: [0.1, 1.5], p: 0.3 },
    noise: null,
    normalize: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  });
  t.deepEqual(checkPipeline(JSON.parse(JSON.stringify(p))), p);
  t.deepEqual(checkPipeline({ hed: 'strong' }).hed, { sigma: 0.2, units: 'od' });
  t.deepEqual(checkPipeline({ crop: { size: [3, 4], mode: 'center' }, resize: 8 }).resize, [8, 8]);
  t.deepEqual(outputShape(checkPipeline({ crop: [3, 4], resize: [5, 6] }), 10, 10), { cropHeight: 3, cropWidth: 4, height: 5, width: 6 });
});

const BAD: [string, AugmentPipelineInput | Record<string, unknown>, Record<string, unknown>, typeof TypeError | typeof RangeError, RegExp][] = [
  ['an unknown op', { jpeg: { quality: 50 } } as never, {}, RangeError, /Unknown option 'jpeg' in pipeline/],
  ['a negative elastic alpha', { elastic: { alpha: -1 } }, {}, RangeError, /pipeline\.elastic\.alpha/],
  ['a NaN elastic sigma', { elastic: { sigma: NaN } }, {}, RangeError, /pipeline\.elastic\.sigma/],
  ['an elastic sigma below 1', { elastic: { alpha: 2, sigma: 0.5 } }, {}, RangeError, /pipeline\.elastic\.sigma/],
  ['an elastic probability above 1', { elastic: { p: 1.5 } }, {}, RangeError, /pipeline\.elastic\.p/],
  ['an elastic alpha of the wrong type', { elastic: { alpha: '3' as never } }, {}, TypeError, /pipeline\.elastic\.alpha/],
  ['an unknown field of elastic', { elastic: { scale: 2 } as never }, {}, RangeError, /'scale' in pipeline\.elastic/],
  ['a negative blur sigma', { blur: { sigma: [-1, 2] } }, {}, RangeError, /pipeline\.blur\.sigma\[0\]/],
  ['a blur range upside down', { blur: { sigma: [2, 1] } }, {}, RangeError, /pipeline\.blur\.sigma\[1\]/],
  ['a negative HED sigma', { hed: { sigma: -0.1 } }, {}, RangeError, /pipeline\.hed\.sigma/],
  ['an unknown HED preset', { hed: 'medium' }, {}, RangeError, /pipeline\.hed/],
  ['unknown HED units', { hed: { sigma: 0.05, units: 'log10' as never } }, {}, RangeError, /pipeline\.hed\.units/],
  ['a NaN brightness', { hsv: { brightness: NaN } }, {}, RangeError, /pipeline\.hsv\.brightness/],
  ['a noise probability above 1', { noise: { sigma: 0.1, p: 1.5 } }, {}, RangeError, /pipeline\.noise\.p/],
  ['a crop larger than the image', { crop: [9, 4] }, {}, RangeError, /pipeline\.crop/],
  ['a crop of the wrong type', { crop: '8' as never }, {}, TypeError, /pipeline\.crop/],
  ['an unknown crop mode', { crop: { size: 4, mode: 'corner' as never } }, {}, RangeError, /pipeline\.crop\.mode/],
  ['a zero std', { normalize: { mean: [0, 0, 0], std: [1, 0, 1] } }, {}, RangeError, /pipeline\.normalize\.std\[1\]/],
  ['a d4 on a non-square output', { d4: true }, {}, RangeError, /square output for pipeline\.d4/],
  ['an unknown field of hsv', { hsv: { gamma: 0.1 } }, {}, RangeError, /'gamma' in pipeline\.hsv/],
  ['a negative seed', {}, { seed: -1 }, RangeError, /for seed/],
  ['a fractional epoch', {}, { epoch: 0.5 }, RangeError, /for epoch/],
  ['an unknown option', {}, { threads: 2 }, RangeError, /'threads' in options/],
  ['indices beside startIndex', {}, { indices: [3], startIndex: 1 }, RangeError, /startIndex or indices/],
  ['indices of the wrong length', {}, { indices: [3, 4] }, RangeError, /for indices/],
  ['a negative index', {}, { indices: [-1] }, RangeError, /indices\[0\]/],
  ['an unknown backend', {}, { backend: 'tpu' }, RangeError, /for backend/],
  ['a short out', {}, { out: new Float32Array(5) }, RangeError, /for out/],
  ['an out of the wrong kind', {}, { out: new Float64Array(8 * 6 * 3) }, TypeError, /Float32Array for out/],
];

for (const [label, pipeline, options, kind, message] of BAD) {
  test(`augment rejects ${label} with a ${kind.name} naming the field, leaving out untouched`, async (t) => {
    const batch = syntheticHE(1, 8, 6, 13);
    const out = new Float32Array(8 * 6 * 3).fill(-7);
    const opts = { out, backend: 'js', ...options } as never;
    await t.throwsAsync(augment(batch, pipeline as AugmentPipelineInput, opts), { instanceOf: kind, message });
    t.true(out.every((v) => v === -7));
  });
}

test('augment rejects a batch whose data does not match its shape', async (t) => {
  await t.throwsAsync(augment({ data: new Uint8Array(10), n: 1, height: 2, width: 2 }, {}), { instanceOf: RangeError, message: /batch\.data/ });
});

// ---- the addon's own guards (past src/'s validation) ---------------------------------

const guardBatch = { data: new Uint8Array(4 * 4 * 3), n: 1, height: 4, width: 4 };
const guardBp: AugmentBatchParams = { cropH: 4, cropW: 4, outH: 4, outW: 4, mean: [0, 0, 0], std: [1, 1, 1] };
type Call = [string, () => unknown, typeof TypeError | typeof RangeError];
const GUARDS: Call[] = [
  ['a short output array', () => addon!.augment('cpu', guardBatch, [identityParams()], guardBp, new Float32Array(10)), RangeError],
  ['an output of the wrong kind', () => addon!.augment('cpu', guardBatch, [identityParams()], guardBp, new Uint8Array(48) as never), TypeError],
  ['params of the wrong count', () => addon!.augment('cpu', guardBatch, [], guardBp, new Float32Array(48)), RangeError],
  ['params that are not an array', () => addon!.augment('cpu', guardBatch, {} as never, guardBp, new Float32Array(48)), TypeError],
  ['a crop window outside the image', () => addon!.augment('cpu', guardBatch, [{ ...identityParams(), cropY: 1 }], guardBp, new Float32Array(48)), RangeError],
  ['a crop window larger than the image', () => addon!.augment('cpu', guardBatch, [identityParams()], { ...guardBp, cropH: 5 }, new Float32Array(48)), RangeError],
  ['a d4 of 8', () => addon!.augment('cpu', guardBatch, [{ ...identityParams(), d4: 8 }], guardBp, new Float32Array(48)), RangeError],
  ['a NaN blur sigma', () => addon!.augment('cpu', guardBatch, [{ ...identityParams(), blurSigma: NaN }], guardBp, new Float32Array(48)), RangeError],
  ['an elastic sigma below 1', () => addon!.augment('cpu', guardBatch, [{ ...identityParams(), elasticAlpha: 2, elasticSigma: 0.1 }], guardBp, new Float32Array(48)), RangeError],
  ['an infinite elastic alpha', () => addon!.augment('cpu', guardBatch, [{ ...identityParams(), elasticAlpha: Infinity, elasticSigma: 4 }], guardBp, new Float32Array(48)), RangeError],
  ['a fractional elastic seed', () => addon!.augment('cpu', guardBatch, [{ ...identityParams(), elasticSeed: 0.5 }], guardBp, new Float32Array(48)), RangeError],
  ['a missing field', () => addon!.augment('cpu', guardBatch, [{ ...identityParams(), hedAlpha: undefined as never }], guardBp, new Float32Array(48)), TypeError],
  ['an output size of 0', () => addon!.augment('cpu', guardBatch, [identityParams()], { ...guardBp, outW: 0 }, new Float32Array(0)), RangeError],
];

for (const [label, call, kind] of GUARDS) {
  cpu.run(`the addon's augment rejects ${label} with a ${kind.name}${cpu.suffix}`, (t) => {
    t.throws(call, { instanceOf: kind });
  });
}

cpu.run(`a rejected native augment leaves the addon usable${cpu.suffix}`, async (t) => {
  t.throws(() => addon!.augment('cpu', guardBatch, [identityParams()], guardBp, new Float32Array(1)));
  const batch = { data: new Uint8Array(48).fill(51), n: 1, height: 4, width: 4 };
  const out = new Float32Array(48);
  await addon!.augment('cpu', batch, [identityParams()], guardBp, out);
  t.true(out.every((v) => v === Math.fround(0.2)));
});
