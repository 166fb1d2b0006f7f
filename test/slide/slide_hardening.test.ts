/**
 * Hostile and broken slides (issue 14): no native crash, no garbage pixels,
 * and messages that name the file, the directory or tile, and the value.
 * Every input is synthesized here; a reproduction that could abort the
 * process runs in a child process, so a regression fails its test instead of
 * killing the ava worker.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { openSlide } from '../../src/slide/slide.js';
import { DIST } from '../support/helpers.js';
import { OPENSLIDE_LINKED, aperioDescription, asciiTag, ifd0Values, longTag, writeTiledTiff } from '../support/slide_support.js';

const READERS = ['auto', 'sharp', ...(OPENSLIDE_LINKED ? ['openslide'] as const : [])] as const;

let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hf-slide-hardening-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * Opens `path` with each reader and reads a 10x10 region, in a child process:
 * its exit code and one line per reader ("<reader> READ" or "<reader> ERROR <message>").
 */
async function openInChild(path: string): Promise<{ code: number | null; signal: string | null; lines: string[] }> {
  const script = `
    const { openSlide } = await import(${JSON.stringify(join(DIST, 'src', 'slide', 'slide.js'))});
    for (const reader of ${JSON.stringify(READERS)}) {
      try {
        const slide = await openSlide(process.env.HF_SLIDE, { reader });
        await slide.readRegion(0, 0, 0, 10, 10);
        console.log(reader + ' READ');
      } catch (e) {
        console.log(reader + ' ERROR ' + String(e.message).replace(/\\n/g, ' '));
      }
    }`;
  try {
    const r = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, HF_SLIDE: path } });
    return { code: 0, signal: null, lines: r.stdout.trim().split('\n') };
  } catch (e) {
    const err = e as { code: number | null; signal: string | null; stdout: string };
    return { code: err.code, signal: err.signal, lines: err.stdout.trim().split('\n') };
  }
}

/** A 300x200 SVS-like tiled TIFF (64 px JPEG tiles) with these tags set in IFD 0. */
async function tiff(name: string, tags: Parameters<typeof writeTiledTiff>[1]['tags'] = []): Promise<{ path: string; bytes: Buffer }> {
  const path = join(await mkdtemp(join(dir, 't-')), name);
  const bytes = await writeTiledTiff(path, { width: 300, height: 200, tile: 64, tags });
  return { path, bytes };
}

/** Every reader refuses the file at open, the process survives, and the message names the file and `what`. */
async function refusedEverywhere(t: import('ava').ExecutionContext, path: string, what: RegExp): Promise<void> {
  const { code, signal, lines } = await openInChild(path);
  t.is(code, 0, `the child process died (signal ${signal}): ${lines.join(' | ')}`);
  t.is(lines.length, READERS.length, lines.join(' | '));
  for (const line of lines) {
    t.regex(line, /^\w+ ERROR cannot open slide /, line);
    t.true(line.includes(path), `names the file: ${line}`);
    t.regex(line, what, line);
  }
}

test('a TIFF whose tiles are 2^30 px a side is refused at open by every reader, naming the directory and the value', async (t) => {
  const { path } = await tiff('huge-tiles.tif', [longTag(322, 2 ** 30), longTag(323, 2 ** 30)]);
  await refusedEverywhere(t, path, /impossible geometry \(directory 0 has a tile width of 1073741824 px/);
});

test('an SVS whose tiles would decode to more than 256 MiB is refused at open, naming the tile size', async (t) => {
  const { path } = await tiff('big-tiles.svs', [asciiTag(270, aperioDescription(300, 200, 16384, 'MPP = 0.5')), longTag(322, 16384), longTag(323, 32768)]);
  await refusedEverywhere(t, path, /directory 0 has 16384x32768 px tiles: 2147483648 bytes decoded/);
});

test('a level wider than any slide is refused at open, naming its width', async (t) => {
  const { path } = await tiff('wide.tif', [longTag(256, 2 ** 25)]);
  await refusedEverywhere(t, path, /directory 0 is 33554432 px wide/);
});

test('a tile byte count larger than the whole file is refused at open, naming the tile and the count', async (t) => {
  const { path, bytes } = await tiff('count.tif');
  const counts = ifd0Values(bytes, 325);
  counts[3] = 2 ** 31;
  const { path: bad } = await tiff('count.tif', [longTag(325, ...counts)]);
  t.not(bad, path);
  await refusedEverywhere(t, bad, /directory 0 says its tile 3 holds 2147483648 bytes, more than the whole file/);
});

test('fewer tile offsets than the image has tiles are refused at open, naming both counts', async (t) => {
  const { bytes } = await tiff('offsets.tif');
  const { path } = await tiff('offsets.tif', [longTag(324, ...ifd0Values(bytes, 324).slice(0, 7)), longTag(325, ...ifd0Values(bytes, 325).slice(0, 7))]);
  await refusedEverywhere(t, path, /directory 0 has 7 tile offsets but its 300x200 px image in 64x64 px tiles has 20 tiles/);
});

test('a corrupt JPEG tile of an SVS fails the read that hits it with file, level and tile, with every reader', async (t) => {
  const { path, bytes } = await tiff('corrupt.svs', [asciiTag(270, aperioDescription(300, 200, 64, 'MPP = 0.5'))]);
  // Tile (2, 1) of the 5x4 grid: the second half of its bytes (entropy-coded data, EOI) zeroed, as a failed copy leaves it.
  const at = ifd0Values(bytes, 324)[7]!, length = ifd0Values(bytes, 325)[7]!;
  bytes.fill(0, at + Math.floor(length / 2), at + length);
  await writeFile(path, bytes);
  for (const reader of READERS) {
    const slide = await openSlide(path, { reader, cacheBytes: 0 });
    t.is(slide.format, 'aperio');
    await t.notThrowsAsync(() => slide.readRegion(0, 0, 0, 128, 64), `${reader}: tiles (0, 0) and (1, 0) are intact`);
    // A region inside that one tile: after a failed read OpenSlide 3.4 fails every later read of the handle with the same message.
    const e = await t.throwsAsync(() => slide.readRegion(0, 130, 70, 20, 20), { instanceOf: Error }, reader);
    t.regex(e!.message, /corrupt\.svs, level 0, tile \(2, 1\) at level pixels \(128, 64\) 64x64/, `${reader}: ${e!.message}`);
    t.regex(e!.message, /Corrupt JPEG data|corrupt/i, `${reader}: ${e!.message}`);
    await slide.close();
  }
});

for (const value of ['9e999', 'NaN', '-0.5', '0']) {
  test(`an SVS stating MPP = ${value} opens with mpp null and a warning, with every reader`, async (t) => {
    const { path } = await tiff('mpp.svs', [asciiTag(270, aperioDescription(300, 200, 64, `MPP = ${value}`))]);
    for (const reader of READERS) {
      const slide = await openSlide(path, { reader });
      t.is(slide.mpp, null, reader);
      t.deepEqual(slide.warnings, [`the file states an MPP of '${value}', not a positive finite number of µm/px: treated as unknown (mpp is null)`], reader);
      await slide.close();
    }
  });
}

test('an SVS stating MPP = 0.25 has that mpp and no warning, with every reader', async (t) => {
  const { path } = await tiff('mpp.svs', [asciiTag(270, aperioDescription(300, 200, 64, 'MPP = 0.25'))]);
  for (const reader of READERS) {
    const slide = await openSlide(path, { reader });
    t.deepEqual(slide.mpp, { x: 0.25, y: 0.25 }, reader);
    t.deepEqual(slide.warnings, [], reader);
    await slide.close();
  }
});

test("a TIFF sharp cannot decode, asked of reader 'sharp', blames sharp and does not say OpenSlide failed", async (t) => {
  const { path } = await tiff('unknown-codec.tif', [{ tag: 259, type: 3, count: 1, data: Buffer.from([0x50, 0xc3, 0, 0]) }]); // compression 50000
  const e = await t.throwsAsync(() => openSlide(path, { reader: 'sharp' }), { instanceOf: Error });
  t.regex(e!.message, /^cannot open slide .*unknown-codec\.tif with sharp\/libvips \(reader 'sharp'\): a TIFF file \(/);
  t.notRegex(e!.message, /OpenSlide \(linked\) did not recognise/);
});

test('a thumbnail too small for any level names maxSize, not an internal region size', async (t) => {
  // 20000x20000 px in one level, every 512 px tile the same bytes: a giant slide in a small file.
  const path = join(await mkdtemp(join(dir, 't-')), 'giant.tif');
  const one = await writeTiledTiff(path, { width: 512, height: 512, tile: 512 });
  const tiles = 40 * 40;
  await writeTiledTiff(path, { width: 512, height: 512, tile: 512, tags: [
    longTag(256, 20_000), longTag(257, 20_000),
    longTag(324, ...Array<number>(tiles).fill(ifd0Values(one, 324)[0]!)), longTag(325, ...Array<number>(tiles).fill(ifd0Values(one, 325)[0]!)),
  ] });
  const slide = await openSlide(path, { reader: 'sharp' });
  t.is(slide.levels.length, 1);
  const e = await t.throwsAsync(() => slide.thumbnail(1), { instanceOf: RangeError });
  t.regex(e!.message, /^Expected a larger maxSize for the thumbnail of .*giant\.tif, which has no level coarse enough, but received 1: one thumbnail row spans 20000x20001 px of level 0/);
  t.notRegex(e!.message, /width \* height/);
  await slide.close();
});
