/**
 * Elastic deformation (native/augment/augment.h, step 1b): the pipeline
 * field, the displacement field's promises (bounded by alpha, RMS about
 * 0.28·alpha, smooth over sigma), that every backend moves pixels by that
 * field (a ramp image reads its own displacement back), and that it is the
 * identity when off. The op-by-op parity with the TypeScript reference on
 * every shape is in augment/parity.test.ts.
 */
import test from 'ava';

import { loadAddon } from '../../bindings/loader.js';
import { augment } from '../../src/augment/augment.js';
import { drawBatchParams, identityParams } from '../../src/augment/params.js';
import { ELASTIC_DEFAULTS, checkPipeline, outputShape, type AugmentPipelineInput } from '../../src/augment/pipeline.js';
import { elasticField } from '../../src/augment/js_augment.js';
import { kernelBackendStatus } from '../../src/kernels/registry.js';
import type { RgbBatch } from '../../src/kernels/types.js';
import { syntheticHE } from '../support/helpers.js';

const addonState = loadAddon();
const cpuOk = addonState.ok && typeof addonState.addon.augment === 'function' && (await kernelBackendStatus()).find((b) => b.name === 'cpu')!.available;
const gpujsOk = (await kernelBackendStatus()).find((b) => b.name === 'gpujs')?.available ?? false;
const BACKENDS = [
  ...(cpuOk ? ['cpu' as const] : []),
  'js' as const,
  ...(gpujsOk ? ['gpujs' as const] : []),
];
const skipped = [!cpuOk && 'cpu (addon unavailable)', !gpujsOk && 'gpujs (gpu.js unavailable)'].filter(Boolean).join(', ');
const note = skipped ? ` (not run on ${skipped})` : '';

test('checkPipeline fills elastic defaults and the canonical form validates to itself', (t) => {
  const p = checkPipeline({ elastic: {} });
  t.deepEqual(p.elastic, { ...ELASTIC_DEFAULTS });
  t.deepEqual(checkPipeline({ elastic: { alpha: 2, sigma: 1, p: 0 } }).elastic, { alpha: 2, sigma: 1, p: 0 });
  t.deepEqual(checkPipeline(JSON.parse(JSON.stringify(p))), p);
  t.is(checkPipeline({ elastic: null }).elastic, null);
});

test('elastic is drawn with probability p from its own slots, without shifting the other ops', (t) => {
  const p = checkPipeline({ d4: true, hed: 'light', blur: { p: 0.5 }, elastic: { alpha: 5, sigma: 7.3, p: 0.4 } });
  const shape = outputShape(p, 12, 12);
  const all = drawBatchParams(p, shape, 12, 12, 500, 9, 0, 0);
  const on = all.filter((q) => q.elasticAlpha > 0);
  t.true(on.length > 160 && on.length < 240, `${on.length} of 500`);
  for (const q of on) {
    t.is(q.elasticAlpha, 5);
    t.is(q.elasticSigma, Math.fround(7.3));
    t.true(Number.isSafeInteger(q.elasticSeed));
  }
  t.is(new Set(on.map((q) => q.elasticSeed)).size, on.length);
  const without = drawBatchParams({ ...p, elastic: null }, shape, 12, 12, 500, 9, 0, 0);
  t.deepEqual(without, all.map((q) => ({ ...q, elasticAlpha: 0, elasticSigma: 1, elasticSeed: 0 })));
});

test('the elastic field stays within alpha per axis, has an RMS near 0.28 alpha and changes by at most 1.5 alpha/sigma per pixel', (t) => {
  for (const [alpha, sigma] of [[6, 16], [2, 1], [10, 3.7]] as const) {
    let sq = 0;
    let count = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const p = { ...identityParams(), elasticAlpha: alpha, elasticSigma: Math.fround(sigma), elasticSeed: seed * 7919 };
      const { dy, dx } = elasticField(p, 64, 80);
      let steepest = 0;
      for (let y = 0; y < 64; y++) {
        for (let x = 0; x < 80; x++) {
          const i = y * 80 + x;
          t.true(Math.abs(dy[i]!) <= alpha && Math.abs(dx[i]!) <= alpha);
          sq += dy[i]! ** 2 + dx[i]! ** 2;
          count += 2;
          if (x > 0) steepest = Math.max(steepest, Math.abs(dx[i]! - dx[i - 1]!), Math.abs(dy[i]! - dy[i - 1]!));
          if (y > 0) steepest = Math.max(steepest, Math.abs(dx[i]! - dx[i - 80]!), Math.abs(dy[i]! - dy[i - 80]!));
        }
      }
      // The B-spline's weight derivatives sum to at most 1.5 in absolute value.
      t.true(steepest <= (1.5 * alpha) / Math.fround(sigma) + 1e-9, `alpha ${alpha}, sigma ${sigma}: step ${steepest}`);
    }
    const rms = Math.sqrt(sq / count) / alpha;
    t.true(rms > 0.24 && rms < 0.32, `alpha ${alpha}, sigma ${sigma}: RMS ${rms} alpha`);
  }
  const a = elasticField({ ...identityParams(), elasticAlpha: 3, elasticSigma: 4, elasticSeed: 1 }, 9, 9);
  const b = elasticField({ ...identityParams(), elasticAlpha: 3, elasticSigma: 4, elasticSeed: 2 }, 9, 9);
  t.notDeepEqual(a.dx, b.dx);
});

/** n images whose red channel is the column index, green the row index, blue 128: bilinear sampling of them is exact. */
function ramps(n: number, size: number): RgbBatch {
  const data = new Uint8Array(n * size * size * 3);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) data.set([x, y, 128], ((i * size + y) * size + x) * 3);
    }
  }
  return { data, n, height: size, width: size };
}

for (const backend of BACKENDS) {
  test(`${backend}: elastic deformation samples each pixel at its displaced position (a ramp reads back the field within 1e-3 px)${note}`, async (t) => {
    const size = 120;
    const batch = ramps(3, size);
    const r = await augment(batch, { elastic: { alpha: 7, sigma: 18, p: 1 } }, { seed: 4, backend });
    let checked = 0;
    for (let i = 0; i < 3; i++) {
      const q = r.params[i]!;
      t.is(q.elasticAlpha, 7);
      const { dy, dx } = elasticField(q, size, size);
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const k = y * size + x;
          const sy = y + dy[k]!;
          const sx = x + dx[k]!;
          if (sy < 0 || sy > size - 1 || sx < 0 || sx > size - 1) continue; // mirrored at the edge
          const o = ((i * size + y) * size + x) * 3;
          t.true(Math.abs(r.data[o]! * 255 - sx) <= 1e-3, `image ${i} (${y}, ${x}): column ${r.data[o]! * 255} vs ${sx}`);
          t.true(Math.abs(r.data[o + 1]! * 255 - sy) <= 1e-3, `image ${i} (${y}, ${x}): row ${r.data[o + 1]! * 255} vs ${sy}`);
          checked++;
        }
      }
    }
    t.true(checked > 3 * size * size * 0.8);
  });

  test(`${backend}: elastic deformation with p 0 or alpha 0 is the identity, bit for bit${note}`, async (t) => {
    const batch = syntheticHE(5, 17, 17, 3);
    const base: AugmentPipelineInput = { d4: true, hed: 'light', blur: { p: 0.5 }, normalize: 'imagenet' };
    const plain = await augment(batch, base, { seed: 8, backend });
    for (const elastic of [{ alpha: 5, p: 0 }, { alpha: 0, p: 1 }]) {
      const r = await augment(batch, { ...base, elastic }, { seed: 8, backend });
      t.deepEqual(r.data, plain.data);
    }
    const warped = await augment(batch, { ...base, elastic: { alpha: 5, p: 1 } }, { seed: 8, backend });
    t.notDeepEqual(warped.data, plain.data);
  });
}

test('elastic deformation mirrors at the edges: a 1x1 image and a 1-pixel-wide one keep their one colour', async (t) => {
  const near = (got: Float32Array, want: number[], label: string) => {
    for (let k = 0; k < got.length; k++) t.true(Math.abs(got[k]! - want[k % 3]! / 255) <= 1e-6, `${label}: ${got[k]} at ${k}`);
  };
  for (const backend of BACKENDS) {
    const one: RgbBatch = { data: Uint8Array.from([200, 90, 160]), n: 1, height: 1, width: 1 };
    near((await augment(one, { elastic: { alpha: 40, sigma: 1, p: 1 } }, { seed: 1, backend })).data, [200, 90, 160], `${backend} 1x1`);
    const column = await augment(one, { resize: [9, 1], elastic: { alpha: 3, sigma: 1, p: 1 } }, { seed: 2, backend });
    near(column.data, [200, 90, 160], `${backend} 9x1`);
  }
});
