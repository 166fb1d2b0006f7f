/** The command line as a user runs it: outputs, --json, and clear errors. */
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { dataFile, histoflow } from './helpers.js';



test('histoflow info --json reports the addon, backends, gpu.js and TF.js', async (t) => {
  const r = await histoflow('info', '--json');
  t.is(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  t.truthy(info.version);
  t.true(info.addon.loaded, info.addon.reason);
  t.regex(info.addon.simd, /avx|sse|neon|scalar/);
  t.true(info.addon.threads >= 1);
  t.is(typeof info.addon.cuda.compiled, 'boolean');
  t.true(Array.isArray(info.addon.cuda.devices));
  t.deepEqual(info.kernelBackends.map((b: { name: string }) => b.name), ['cuda', 'cpu', 'gpujs', 'js']);
  t.true(Array.isArray(info.tfjsBackends));
});

test('histoflow stain writes one PNG per input under its own name, and --json gives the fits', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'hf-stain-'));
  const white = join(mkdtempSync(join(tmpdir(), 'hf-white-')), 'blank-glass.png');
  await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 255, g: 255, b: 255 } } }).png().toFile(white);
  const r = await histoflow(
    'stain', dataFile('tiatoolbox__source_image.png'), white,
    '--method', 'macenko', '--preset', 'tiatoolbox', '--target', dataFile('tiatoolbox__target_image.png'),
    '--out', out, '--json', '--single-stains',
  );
  t.is(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  t.is(summary.method, 'macenko');
  t.is(summary.target.he.length, 6);
  t.deepEqual(summary.images.map((i: { status: string }) => i.status), ['normalized', 'unchanged']);
  t.deepEqual(readdirSync(out).sort(), [
    'blank-glass.png',
    'tiatoolbox__source_image.png',
    'tiatoolbox__source_image_E.png',
    'tiatoolbox__source_image_H.png',
  ]);
  const meta = await sharp(join(out, 'tiatoolbox__source_image.png')).metadata();
  t.is(meta.width, 256);
  t.is(meta.height, 256);
  t.is(r.stderr, '', 'no progress output with --json');
});

test('histoflow stain with a bad option or a missing file exits 1 with a message naming it, writing nothing', async (t) => {
  const out = join(mkdtempSync(join(tmpdir(), 'hf-stain-')), 'out');
  const bad = await histoflow('stain', dataFile('tiatoolbox__source_image.png'), '--method', 'magic', '--out', out);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /--method/);
  const missing = await histoflow('stain', 'no-such-file.png', '--out', out);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /no-such-file\.png/);
  const notImage = join(dirname(out), 'not-an-image.png');
  writeFileSync(notImage, 'this is text, not a PNG\n');
  const corrupt = await histoflow('stain', notImage, '--out', out);
  t.is(corrupt.code, 1);
  t.regex(corrupt.stderr, /cannot read image/);
  t.false(existsSync(out) && readdirSync(out).length > 0);
});
