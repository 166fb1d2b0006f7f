/**
 * Reinhard on images of one colour, as Macenko does on images without
 * stains: an all-white (or any one-colour) source is returned unchanged and
 * listed in `unchanged` with the reason, on every kernel backend (they share
 * the decision in src/stain/normalize.ts); a target of one colour (a black
 * image) is refused, as a target without tissue is. Before, both gave a
 * solid-colour image without a word.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { UnavailableError } from '../../src/errors.js';
import { kernelBackend } from '../../src/kernels/registry.js';
import type { KernelBackendName, RgbBatch } from '../../src/kernels/types.js';
import { REINHARD_MIN_STD, checkStainTarget, fitStainTarget, normalizeStain } from '../../src/stain/normalize.js';
import { histoflow, IN_CI, syntheticHE } from '../support/helpers.js';

const REASON = `degenerate colour statistics (one colour: every L*a*b* std < ${REINHARD_MIN_STD})`;
const TARGET_REFUSED = `Expected a target image with colour variation but its fit failed: ${REASON}`;

function solid(n: number, side: number, rgb: [number, number, number]): RgbBatch {
  const data = new Uint8Array(n * side * side * 3);
  for (let i = 0; i < data.length; i += 3) data.set(rgb, i);
  return { data, n, height: side, width: side };
}

/** Images one after the other in one batch (all of one size). */
function batchOf(...images: RgbBatch[]): RgbBatch {
  const data = new Uint8Array(images.reduce((s, im) => s + im.data.length, 0));
  let at = 0;
  for (const im of images) {
    data.set(im.data, at);
    at += im.data.length;
  }
  return { data, n: images.length, height: images[0]!.height, width: images[0]!.width };
}

const tissue = syntheticHE(1, 24, 24, 7);
const target = syntheticHE(1, 24, 24, 11);

/** Why a backend cannot run here, or null; cuda needs a GPU, which CI lacks, the others CI always builds (a failure there). */
async function unavailable(name: KernelBackendName): Promise<string | null> {
  try {
    await kernelBackend(name);
    return null;
  } catch (e) {
    if (!(e instanceof UnavailableError) || (IN_CI && name !== 'cuda')) throw e;
    return e.message;
  }
}

const BACKENDS = ['cpu', 'gpujs', 'js', 'cuda'] as KernelBackendName[];
const reasons = await Promise.all(BACKENDS.map(unavailable));
for (const [i, name] of BACKENDS.entries()) {
  const why = reasons[i];
  (why ? test.skip : test)(`reinhard on ${name} leaves an all-white image unchanged and says so, and normalizes the tissue beside it as alone${why ? ` (skipped: ${why})` : ''}`, async (t) => {
    const white = solid(1, 24, [255, 255, 255]);
    const r = await normalizeStain(batchOf(tissue, white, tissue), { method: 'reinhard', target, backend: name });
    t.deepEqual(r.unchanged, [{ index: 1, reason: REASON }]);
    const size = tissue.data.length;
    t.deepEqual(r.data.subarray(size, 2 * size), white.data);
    // The reference for the tissue images: the same call on the tissue image alone.
    const alone = await normalizeStain(tissue, { method: 'reinhard', target, backend: name });
    t.deepEqual(alone.unchanged, []);
    t.deepEqual(r.data.subarray(0, size), alone.data);
    t.deepEqual(r.data.subarray(2 * size), alone.data);
    t.notDeepEqual(alone.data, tissue.data);
  });
}

test('reinhard leaves any one-colour image unchanged (1x1 included) but normalizes an image with two colours', async (t) => {
  for (const img of [solid(1, 8, [255, 255, 255]), solid(2, 8, [0, 0, 0]), solid(1, 1, [100, 50, 150]), solid(1, 8, [200, 120, 180])]) {
    const r = await normalizeStain(img, { method: 'reinhard', target, backend: 'js' });
    t.deepEqual(r.data, img.data);
    t.deepEqual(r.unchanged.map((u) => u.index), Array.from({ length: img.n }, (_, i) => i));
  }
  const two = solid(1, 8, [230, 220, 235]);
  two.data.set([120, 60, 140], 0);
  const r = await normalizeStain(two, { method: 'reinhard', target, backend: 'js' });
  t.deepEqual(r.unchanged, []);
  t.notDeepEqual(r.data, two.data);
});

test('a black (one-colour) reinhard target is refused as a target without tissue is, whether fitted or given', async (t) => {
  const black = solid(1, 16, [0, 0, 0]);
  await t.throwsAsync(fitStainTarget(black, { method: 'reinhard', backend: 'js' }), { instanceOf: RangeError, message: TARGET_REFUSED });
  await t.throwsAsync(normalizeStain(tissue, { method: 'reinhard', target: black, backend: 'js' }), { instanceOf: RangeError, message: TARGET_REFUSED });
  t.throws(() => checkStainTarget('target', { method: 'reinhard', lab: { mean: [0, 0, 0], std: [0, 0.2, 0], pixels: 256 } }, 'reinhard'), {
    instanceOf: RangeError,
    message: `Expected a target with colour variation (some std ≥ ${REINHARD_MIN_STD}; all lower maps every image to one colour) for target.lab.std but received an array of length 3`,
  });
});

test.serial('histoflow stain --method reinhard reports an all-white input as unchanged and writes it as it was', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-reinhard-'));
  const raw = (img: RgbBatch) => ({ raw: { width: img.width, height: img.height, channels: 3 as const } });
  const whitePath = join(dir, 'white.png');
  const targetPath = join(dir, 'target.png');
  await sharp(Buffer.from(solid(1, 24, [255, 255, 255]).data), raw(tissue)).png().toFile(whitePath);
  await sharp(Buffer.from(target.data), raw(target)).png().toFile(targetPath);
  const out = join(dir, 'out');
  const r = await histoflow('stain', whitePath, '--method', 'reinhard', '--target', targetPath, '--backend', 'js', '--out', out, '--json');
  t.is(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { images: { status: string; reason?: string }[] };
  t.is(summary.images[0]!.status, 'unchanged');
  t.is(summary.images[0]!.reason, REASON);
  const written = await sharp(join(out, 'white.png')).raw().toBuffer();
  t.true(written.every((v) => v === 255));
  const plain = await histoflow('stain', whitePath, '--method', 'reinhard', '--target', targetPath, '--backend', 'js', '--out', out);
  t.true(plain.stderr.includes(`${whitePath}: left unchanged (${REASON})`), plain.stderr);
  const blackPath = join(dir, 'black.png');
  writeFileSync(blackPath, await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } }).png().toBuffer());
  const refused = await histoflow('stain', whitePath, '--method', 'reinhard', '--target', blackPath, '--out', join(dir, 'refused'));
  t.is(refused.code, 1);
  t.true(refused.stderr.includes(TARGET_REFUSED), refused.stderr);
});
