/**
 * Stain normalization of images with alpha. The rule (src/image.ts
 * OPAQUE_ALPHA, src/cli/stain.ts): a pixel less than half opaque (alpha < 128)
 * is not tissue, so it stays out of every fit, the input's and the target's;
 * every pixel is still transformed with that fit, and the output keeps the
 * input's alpha channel byte for byte. The reference for "stays out of the
 * fit" is the same method run on the opaque pixels alone.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { opaqueMask, pixelsWhere } from '../../src/image.js';
import type { RgbBatch } from '../../src/kernels/types.js';
import { fitStainTarget, normalizeStain, type StainMethod } from '../../src/stain/normalize.js';
import { histoflow, syntheticHE } from '../support/helpers.js';

const SIDE = 32;
/** Tissue in the centre 16x16 square; around it, transparent pixels of a saturated green no H&E fit should see. */
const INNER = { left: 8, top: 8, width: 16, height: 16 };
const tissue = syntheticHE(1, SIDE, SIDE, 5);
const alpha = new Uint8Array(SIDE * SIDE);
const rgb = new Uint8Array(tissue.data);
for (let y = 0; y < SIDE; y++) {
  for (let x = 0; x < SIDE; x++) {
    const inside = x >= INNER.left && x < INNER.left + INNER.width && y >= INNER.top && y < INNER.top + INNER.height;
    const k = y * SIDE + x;
    // 127 is still transparent by the rule, 128 opaque: the border of the square is half opaque.
    alpha[k] = inside ? (x === INNER.left ? 128 : 255) : y === 0 ? 127 : 0;
    if (!inside) rgb.set([20, 200, 40], k * 3);
  }
}
const image: RgbBatch = { data: rgb, n: 1, height: SIDE, width: SIDE };
/** The opaque pixels alone, as their own 16x16 image (row-major, the order fits see them in). */
const opaque: RgbBatch = { ...pixelsWhere(image, opaqueMask(alpha)), height: INNER.height, width: INNER.width };
const target = syntheticHE(1, 24, 24, 9);

test('opaqueMask keeps pixels with alpha ≥ 128 and pixelsWhere gathers them in order', (t) => {
  t.deepEqual(Array.from(opaqueMask(Uint8Array.from([0, 1, 127, 128, 255]))), [0, 0, 0, 1, 1]);
  t.is(opaque.data.length, 16 * 16 * 3);
  t.deepEqual(Array.from(opaque.data.subarray(0, 3)), Array.from(rgb.subarray((8 * SIDE + 8) * 3, (8 * SIDE + 8) * 3 + 3)));
});

for (const method of ['macenko', 'vahadane', 'reinhard'] as StainMethod[]) {
  test(`${method}: with fitMask, transparent pixels stay out of the fit; the opaque ones normalize as the opaque pixels alone do`, async (t) => {
    const options = { method, backend: 'js' as const, ...(method === 'reinhard' ? { target } : {}) };
    const masked = await normalizeStain(image, { ...options, fitMask: opaqueMask(alpha) });
    const alone = await normalizeStain(opaque, options);
    const plain = await normalizeStain(image, options);
    t.deepEqual(masked.unchanged, []);
    if (method === 'reinhard') t.deepEqual(masked.lab, alone.lab);
    else t.deepEqual(masked.fits, alone.fits);
    const got = pixelsWhere({ ...image, data: masked.data }, opaqueMask(alpha)).data;
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - alone.data[i]!));
    // Reinhard's fit on a subset runs as an equivalent target on the whole image: one level of rounding.
    t.true(worst <= (method === 'reinhard' ? 1 : 0), `max difference ${worst}`);
    // Without the mask the green background enters the fit and changes the tissue's colours.
    const unmasked = pixelsWhere({ ...image, data: plain.data }, opaqueMask(alpha)).data;
    t.notDeepEqual(Array.from(unmasked), Array.from(alone.data));
  });
}

test('a fitMask that masks every pixel leaves the image unchanged and says why; a wrong-sized one is a RangeError', async (t) => {
  const none = new Uint8Array(SIDE * SIDE);
  const r = await normalizeStain(image, { method: 'reinhard', target, fitMask: none, backend: 'js' });
  t.deepEqual(r.unchanged, [{ index: 0, reason: 'no pixel to fit (all masked out)' }]);
  t.deepEqual(r.data, image.data);
  const m = await normalizeStain(image, { method: 'macenko', fitMask: none, backend: 'js' });
  t.deepEqual(m.unchanged, [{ index: 0, reason: 'fewer than 2 tissue pixels' }]);
  await t.throwsAsync(normalizeStain(image, { method: 'macenko', fitMask: new Uint8Array(5) }), {
    instanceOf: RangeError,
    message: `Expected a Uint8Array of ${SIDE * SIDE} bytes (one per pixel) for fitMask but received a Uint8Array of length 5`,
  });
});

async function rgbaPng(path: string, pixels: Uint8Array, a: Uint8Array, side: number): Promise<string> {
  const rgba = Buffer.alloc(side * side * 4);
  for (let k = 0; k < side * side; k++) {
    rgba.set(pixels.subarray(k * 3, k * 3 + 3), k * 4);
    rgba[k * 4 + 3] = a[k]!;
  }
  await sharp(rgba, { raw: { width: side, height: side, channels: 4 } }).png().toFile(path);
  return path;
}

test.serial('histoflow stain keeps an RGBA input\'s alpha and fits only its opaque pixels, on inputs and targets', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-stain-alpha-'));
  const input = await rgbaPng(join(dir, 'cutout.png'), rgb, alpha, SIDE);
  const croppedPath = join(dir, 'cropped.png');
  await sharp(Buffer.from(opaque.data), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(croppedPath);
  const out = join(dir, 'out');
  const r = await histoflow('stain', input, croppedPath, '--method', 'macenko', '--single-stains', '--out', out, '--json');
  t.is(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { images: { alpha: boolean; status: string }[] };
  t.deepEqual(summary.images.map((i) => [i.alpha, i.status]), [[true, 'normalized'], [false, 'normalized']]);
  for (const name of ['cutout.png', 'cutout_H.png', 'cutout_E.png']) {
    const { data, info } = await sharp(join(out, name)).raw().toBuffer({ resolveWithObject: true });
    t.is(info.channels, 4, name);
    const a = new Uint8Array(SIDE * SIDE);
    for (let k = 0; k < a.length; k++) a[k] = data[k * 4 + 3]!;
    t.deepEqual(a, alpha, `${name} keeps the alpha channel`);
  }
  // The opaque square normalizes exactly as the same pixels cropped into an RGB image.
  const normalized = await sharp(join(out, 'cutout.png')).extract(INNER).removeAlpha().raw().toBuffer();
  const reference = await sharp(join(out, 'cropped.png')).raw().toBuffer();
  t.deepEqual(normalized, reference);

  // A target's transparent pixels stay out of its fit too: the same target as with the opaque square alone.
  const withAlpha = await histoflow('stain', croppedPath, '--method', 'reinhard', '--target', input, '--out', join(dir, 'r1'), '--json');
  t.is(withAlpha.code, 0, withAlpha.stderr);
  const fitted = await fitStainTarget(opaque, { method: 'reinhard' });
  t.deepEqual(JSON.parse(withAlpha.stdout).target, fitted);
  const clear = await rgbaPng(join(dir, 'clear.png'), rgb, new Uint8Array(SIDE * SIDE), SIDE);
  const refused = await histoflow('stain', croppedPath, '--method', 'reinhard', '--target', clear, '--out', join(dir, 'r2'));
  t.is(refused.code, 1);
  t.true(refused.stderr.includes(`Expected a target image with opaque pixels but every pixel of ${clear} is transparent (alpha < 128)`), refused.stderr);
});
