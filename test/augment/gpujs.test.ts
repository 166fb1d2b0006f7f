/**
 * The gpu.js augment runner (src/augment/gpujs_augment.ts) beyond the parity
 * table (augment/parity.test.ts, which runs every op through augment()'s
 * 'gpujs'): kernel-run chunking and test-time augmentation against the
 * TypeScript reference (src/augment/js_augment.ts) within 1e-3, and the
 * dispatch of augment()'s 'gpujs' and 'auto'.
 *
 * Runs in whichever gpu.js mode works here: gpu.js's CPU mode normally,
 * WebGL through headless-gl under `xvfb-run -a`; the mode is in the titles.
 * Skipped, with the reason in the titles, when gpu.js is not installed.
 */
import test from 'ava';

import { augment, chooseAugmentBackend } from '../../src/augment/augment.js';
import { createGpujsAugment, type GpujsAugmentRunner } from '../../src/augment/gpujs_augment.js';
import { batchParams, drawBatchParams, ttaParams, type AugmentBatchParams, type AugmentImageParams } from '../../src/augment/params.js';
import { checkPipeline, outputShape, type AugmentPipelineInput } from '../../src/augment/pipeline.js';
import { augmentJs } from '../../src/augment/js_augment.js';
import type { RgbBatch } from '../../src/kernels/types.js';
import { OPS, SHAPES } from '../support/augment_cases.js';
import { diff, fliplr, rot90, syntheticHE } from '../support/helpers.js';

let runner: GpujsAugmentRunner | undefined;
let why = '';
try {
  runner = await createGpujsAugment();
} catch (e) {
  why = e instanceof Error ? e.message : String(e);
}
const run = runner ? test : test.skip;
const tag = runner ? ` [gpu.js ${runner.mode} mode]` : ` (skipped: ${why})`;

function draw(batch: RgbBatch, input: AugmentPipelineInput, seed: number): { params: AugmentImageParams[]; b: AugmentBatchParams } {
  const p = checkPipeline(input);
  const shape = outputShape(p, batch.height, batch.width, p.d4);
  return { params: drawBatchParams(p, shape, batch.height, batch.width, batch.n, seed, 0, 0), b: batchParams(p, shape) };
}

async function compare(r: GpujsAugmentRunner, batch: RgbBatch, params: AugmentImageParams[], b: AugmentBatchParams): Promise<number> {
  const length = batch.n * b.outH * b.outW * 3;
  const got = new Float32Array(length).fill(NaN);
  const ref = new Float32Array(length);
  await r.run(batch, params, b, got);
  augmentJs(batch, params, b, ref);
  if (got.some((v) => Number.isNaN(v))) return Infinity;
  return diff(got, ref).max;
}

run(`gpujs: kernel runs cut into chunks (ragged last one, an image past the limit) give the same result${tag}`, async (t) => {
  const small = await createGpujsAugment({ mode: runner!.mode as 'cpu', maxPixelsPerRun: 100 });
  const everything = OPS[OPS.length - 1]![2];
  for (const [label, makeBatch] of SHAPES) {
    const batch = makeBatch();
    const { params, b } = draw(batch, everything(batch.height, batch.width), 9);
    const max = await compare(small, batch, params, b);
    t.true(max <= 1e-3, `${label}: max difference ${max}`);
  }
  await t.throwsAsync(createGpujsAugment({ maxPixelsPerRun: (1 << 22) + 1 }), { instanceOf: RangeError, message: /maxPixelsPerRun/ });
});

run(`gpujs: test-time augmentation parameters give the reference's 8 dihedral views, exact rotations of each other${tag}`, async (t) => {
  const batch = syntheticHE(3, 10, 9, 12);
  const p = checkPipeline({ crop: 7, hed: 'strong', blur: { p: 1 }, normalize: 'imagenet' });
  const shape = outputShape(p, 10, 9, true);
  const params = ttaParams(p, shape, 10, 9, 3);
  const size = 7 * 7 * 3;
  const data = new Uint8Array(24 * 10 * 9 * 3);
  for (let i = 0; i < 24; i++) data.set(batch.data.subarray(((i >> 3) * 90 * 3), ((i >> 3) + 1) * 90 * 3), i * 90 * 3);
  const input: RgbBatch = { data, n: 24, height: 10, width: 9 };
  const b = batchParams(p, shape);
  const got = new Float32Array(24 * size);
  await runner!.run(input, params, b, got);
  const ref = new Float32Array(24 * size);
  augmentJs(input, params, b, ref);
  const d = diff(got, ref);
  t.true(d.max <= 1e-3, `max difference ${d.max}`);
  for (let i = 0; i < 3; i++) {
    const view = (k: number) => got.subarray((i * 8 + k) * size, (i * 8 + k + 1) * size);
    for (let k = 0; k < 8; k++) {
      let expected: Float32Array = view(0).slice();
      for (let turn = 0; turn < (k & 3); turn++) expected = rot90(expected, 7, 7);
      if (k & 4) expected = fliplr(expected, 7, 7);
      t.deepEqual(view(k), expected, `image ${i}, view ${k}`);
    }
  }
});

run(`gpujs: test-time augmentation through augment() gives the reference's 8 dihedral views, exact rotations of each other${tag}`, async (t) => {
  const batch = syntheticHE(3, 10, 9, 12);
  for (const pipeline of [{ crop: 7, hed: 'strong', blur: { p: 1 }, normalize: 'imagenet' }, { crop: [9, 9], resize: 5 }] as AugmentPipelineInput[]) {
    const r = await augment(batch, pipeline, { tta: true, backend: 'gpujs' });
    const js = await augment(batch, pipeline, { tta: true, backend: 'js' });
    t.regex(r.backend, /^gpujs \(requested; gpu\.js \w+ mode\)$/);
    t.is(r.n, 24);
    t.deepEqual(r.params, js.params);
    const d = diff(r.data, js.data);
    t.true(d.max <= 1e-3, `max difference ${d.max}`);
    // Without a resize the views are permutations of one another, bit for bit.
    if (pipeline.resize) continue;
    const s = r.height;
    const size = s * s * 3;
    for (let i = 0; i < 3; i++) {
      const view = (k: number) => r.data.subarray((i * 8 + k) * size, (i * 8 + k + 1) * size);
      for (let k = 0; k < 8; k++) {
        let expected: Float32Array = view(0).slice();
        for (let turn = 0; turn < (k & 3); turn++) expected = rot90(expected, s, s);
        if (k & 4) expected = fliplr(expected, s, s);
        t.deepEqual(view(k), expected, `image ${i}, view ${k}`);
      }
    }
  }
});

run(`gpujs: augment() with backend 'gpujs' writes into out and matches js${tag}`, async (t) => {
  const batch = syntheticHE(5, 12, 12, 14);
  const pipeline = OPS[OPS.length - 1]![2](12, 12);
  const out = new Float32Array(5 * 12 * 12 * 3);
  const r = await augment(batch, pipeline, { seed: 3, epoch: 2, startIndex: 10, backend: 'gpujs', out });
  t.is(r.data, out);
  const js = await augment(batch, pipeline, { seed: 3, epoch: 2, startIndex: 10, backend: 'js' });
  t.deepEqual(r.params, js.params);
  const d = diff(r.data, js.data);
  t.true(d.max <= 1e-3, `max difference ${d.max}`);
});

test(`auto takes cuda → cpu → gpujs (only with a GL context) → js${tag}`, async (t) => {
  const auto = await chooseAugmentBackend('auto');
  t.regex(auto.reason, /^(cuda|cpu|gpujs|js) \(auto/);
  if ((auto.runner.name as string) === 'gpujs') t.not(runner?.mode, 'cpu');
  if (auto.runner.name === 'js') {
    if (runner?.mode === 'cpu') t.regex(auto.reason, /gpujs: gpu\.js has no GL context here/);
    else if (!runner) t.regex(auto.reason, /gpujs: /);
    else t.fail('gpujs has a GL context, yet auto chose js');
  }
});
