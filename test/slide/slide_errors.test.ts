/**
 * Files no reader can open and calls with bad arguments: a clear Error naming
 * the format (from the first bytes) and what would read it, or a
 * TypeError/RangeError naming the parameter; never a crash, never a file
 * written.
 */
import { copyFile, mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import test from 'ava';

import { formatFromBytes, whatWouldRead } from '../../src/slide/format.js';
import { MAX_REGION_PIXELS, openSlide } from '../../src/slide/slide.js';
import { dataFile } from '../support/helpers.js';
import { OPENSLIDE_LINKED, PYRAMID, SVS, withOpenSlide } from '../support/slide_support.js';

let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hf-slide-errors-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A folder of its own for one test's inputs (tests run concurrently). */
async function folder(): Promise<string> {
  return mkdtemp(join(dir, 't-'));
}

/** Opens `path` with every reader choice and expects the same kind of rejection. */
async function rejectsEverywhere(t: import('ava').ExecutionContext, path: string, message: RegExp): Promise<void> {
  const inputs = async () => (await readdir(dirname(path))).sort();
  const before = await inputs();
  for (const reader of ['auto', 'sharp', ...(OPENSLIDE_LINKED ? ['openslide'] as const : [])] as const) {
    const e = await t.throwsAsync(() => openSlide(path, { reader }), { instanceOf: Error }, reader);
    t.regex(e?.message ?? '', message, `${reader}: ${e?.message}`);
    t.false(e instanceof TypeError || e instanceof RangeError, 'a file problem is not an argument error');
  }
  t.deepEqual(await inputs(), before, 'nothing written next to the input');
}

test('an empty file is reported as empty, with what histoflow reads', async (t) => {
  const path = join(await folder(), 'empty.svs');
  await writeFile(path, '');
  await rejectsEverywhere(t, path, /empty file.*whole-slide image|empty file/s);
});

test('a text file is reported as text, not an image', async (t) => {
  const path = join(await folder(), 'notes.tif');
  await writeFile(path, 'This is not a slide.\nJust words.\n');
  await rejectsEverywhere(t, path, /text file/);
});

test('a random binary is reported as an unrecognised format', async (t) => {
  const path = join(await folder(), 'random.bin');
  const bytes = new Uint8Array(4096);
  let s = 7;
  for (let i = 0; i < bytes.length; i++) bytes[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  bytes[0] = 0x01; // not a text byte, not a known magic
  await writeFile(path, bytes);
  await rejectsEverywhere(t, path, /unrecognised binary format/);
});

for (const name of [SVS, PYRAMID]) {
  test(`${name} cut in half is reported as a truncated TIFF at open`, async (t) => {
    const path = join(await folder(), `half-${name}`);
    await copyFile(dataFile(name), path);
    const { size } = await import('node:fs').then((fs) => fs.statSync(path));
    await truncate(path, Math.floor(size / 2));
    await rejectsEverywhere(t, path, /TIFF file .*truncated|truncated/);
  });
}

test('a TIFF whose first directory lies past the end of the file is reported as broken', async (t) => {
  const path = join(await folder(), 'bad-ifd.tif');
  const bytes = new Uint8Array(await readFile(dataFile(PYRAMID)));
  new DataView(bytes.buffer).setUint32(4, 0x7fffff00, true); // II*: little-endian offset of IFD 0
  await writeFile(path, bytes);
  const e = await t.throwsAsync(() => openSlide(path, { reader: 'sharp' }), { instanceOf: Error });
  t.regex(e!.message, /a TIFF file whose structure is broken.*past the end/);
});

test('garbage in the tile data rejects the reads that hit it with an Error naming file, level and tile, and the process carries on', async (t) => {
  const path = join(await folder(), 'garbage-tiles.tif');
  const bytes = new Uint8Array(await readFile(dataFile(PYRAMID)));
  // Level 0's tiles fill most of the first half of the file: overwrite a band of them.
  bytes.fill(0xab, 200_000, 600_000);
  await writeFile(path, bytes);
  for (const reader of ['sharp', ...(OPENSLIDE_LINKED ? ['openslide'] as const : [])] as const) {
    const slide = await openSlide(path, { reader, cacheBytes: 0 });
    const lv = slide.levels[0]!;
    const outcomes = await Promise.all(
      Array.from({ length: Math.ceil(lv.height / 256) }, (_, ty) =>
        slide.readRegion(0, 0, ty * 256, lv.width, 256).then(() => 'ok', (e: unknown) => (e instanceof Error ? e.message : 'other'))),
    );
    const errors = outcomes.filter((o) => o !== 'ok' && o !== 'other');
    t.true(errors.length > 0, `${reader}: ${outcomes.join(',')}`);
    t.false(outcomes.includes('other'));
    for (const message of errors) t.regex(message, /garbage-tiles\.tif, level 0, tile \(\d+, \d+\) at level pixels/, `${reader}: the file, level and tile are named`);
    await slide.close();
  }
});

test('a DICOM file names DICOM and the OpenSlide version that reads it', async (t) => {
  const path = join(await folder(), 'slide.dcm');
  const bytes = new Uint8Array(1024);
  bytes.set([0x44, 0x49, 0x43, 0x4d], 128);
  await writeFile(path, bytes);
  const e = await t.throwsAsync(() => openSlide(path), { instanceOf: Error });
  t.regex(e!.message, /DICOM file.*OpenSlide ≥ 4\.0/s);
});

test('a MIRAX index without its data folder names MIRAX and what OpenSlide needs', async (t) => {
  const path = join(await folder(), 'slide.mrxs');
  await writeFile(path, '[GENERAL]\nSLIDE_VERSION = 01.03\n');
  const e = await t.throwsAsync(() => openSlide(path), { instanceOf: Error });
  t.regex(e!.message, OPENSLIDE_LINKED ? /MIRAX slide.*data folder/s : /MIRAX slide.*libopenslide-dev/s);
});

test('without OpenSlide, vendor formats are told to install libopenslide-dev and rebuild', (t) => {
  for (const format of ['mirax', 'hamamatsu-vms', 'unknown', 'tiff'] as const) {
    t.regex(whatWouldRead(format, false), /install libopenslide-dev .*rebuild/);
  }
  t.is(formatFromBytes(Buffer.from('II*\0'), '.ndpi'), 'tiff');
  t.is(formatFromBytes(Buffer.from([0x49, 0x49, 0x2b, 0x00]), '.svs'), 'bigtiff');
  t.is(formatFromBytes(Buffer.from([0x89, 0x50, 0x4e, 0x47]), '.png'), 'png');
  t.is(formatFromBytes(Buffer.from([0xff, 0x4f, 0xff, 0x51]), '.j2k'), 'jpeg2000');
});

const [runPng, pngTitle] = withOpenSlide('asking OpenSlide for a PNG says OpenSlide does not recognise it');
runPng(pngTitle, async (t) => {
  const e = await t.throwsAsync(() => openSlide(dataFile('tiatoolbox__source_image.png'), { reader: 'openslide' }), { instanceOf: Error });
  t.regex(e!.message, /with OpenSlide: a PNG file .*does not recognise/);
});

test('a missing file is reported as missing, a directory as a directory', async (t) => {
  await t.throwsAsync(() => openSlide(join(dir, 'nope.svs')), { instanceOf: Error, message: /no such file/ });
  const sub = await folder();
  await t.throwsAsync(() => openSlide(sub), { instanceOf: Error, message: /is a directory/ });
});

test('bad options are TypeError/RangeError naming the option', async (t) => {
  await t.throwsAsync(() => openSlide(42 as unknown as string), { instanceOf: TypeError, message: /for path/ });
  await t.throwsAsync(() => openSlide(dataFile(PYRAMID), { reader: 'vips' as 'sharp' }), { instanceOf: RangeError, message: /options\.reader/ });
  await t.throwsAsync(() => openSlide(dataFile(PYRAMID), { cacheBytes: -1 }), { instanceOf: RangeError, message: /options\.cacheBytes/ });
  await t.throwsAsync(() => openSlide(dataFile(PYRAMID), { cacheBytes: 1.5 }), { instanceOf: RangeError, message: /options\.cacheBytes/ });
  await t.throwsAsync(() => openSlide(dataFile(PYRAMID), { cache: 1 } as object), { instanceOf: RangeError, message: /Unknown option 'cache'/ });
});

test('bad region arguments are TypeError/RangeError naming the parameter, before any read', async (t) => {
  const slide = await openSlide(dataFile(PYRAMID));
  const cases: Array<[unknown[], typeof TypeError | typeof RangeError, RegExp]> = [
    [[5, 0, 0, 10, 10], RangeError, /for level/],
    [[-1, 0, 0, 10, 10], RangeError, /for level/],
    [[0, -1, 0, 10, 10], RangeError, /for x /],
    [[0, 0, Number.NaN, 10, 10], RangeError, /for y /],
    [[0, 0, 0, 1.5, 10], RangeError, /for width /],
    [[0, 0, 0, 10, 0], RangeError, /for height /],
    [[0, '0', 0, 10, 10], TypeError, /for x /],
    [[0, 0, 0, 2 ** 14, 2 ** 14], RangeError, /width \* height/],
  ];
  for (const [args, type, message] of cases) {
    await t.throwsAsync(() => (slide.readRegion as (...a: unknown[]) => Promise<unknown>)(...args), { instanceOf: type, message }, JSON.stringify(args));
  }
  t.true(2 ** 28 > MAX_REGION_PIXELS);
  await t.throwsAsync(() => slide.thumbnail(0), { instanceOf: RangeError, message: /maxSize/ });
  await t.throwsAsync(() => slide.readAssociated('label'), { instanceOf: RangeError, message: /has none.*for name/ });
  t.throws(() => slide.bestLevelForDownsample(Number.NaN), { instanceOf: RangeError, message: /downsample/ });
  t.is(slide.cacheStats().misses, 0, 'no tile was read');
  await slide.close();
});
