/**
 * openSlide: levels, downsamples, µm per pixel and associated images of real
 * slides through both readers, plain images as one-level slides, and the
 * thumbnail.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { openSlide, type Slide } from '../../src/slide/slide.js';
import { diff, dataFile } from '../support/helpers.js';
import { KIDNEY, PYRAMID, SUBIFD_BASE, SVS, withOpenSlide, writeSubifdSlide } from '../support/slide_support.js';

const READERS = ['sharp', 'openslide'] as const;

function forReader(reader: (typeof READERS)[number], title: string) {
  return reader === 'openslide' ? withOpenSlide(`${title} (openslide)`) : ([test, `${title} (sharp)`] as const);
}

async function using<T>(path: string, reader: 'sharp' | 'openslide' | 'auto', fn: (s: Slide) => Promise<T>): Promise<T> {
  const slide = await openSlide(path.startsWith('/') ? path : dataFile(path), { reader });
  try {
    return await fn(slide);
  } finally {
    await slide.close();
  }
}

for (const reader of READERS) {
  const [run, title] = forReader(reader, 'CMU-1-Small-Region.svs is one 2220x2967 level at 0.499 µm/px with thumbnail, label and macro');
  run(title, (t) =>
    using(SVS, reader, async (s) => {
      t.is(s.reader, reader);
      t.is(s.format, 'aperio');
      t.deepEqual(s.levels.map((l) => [l.width, l.height, l.downsample, l.tileWidth, l.tileHeight]), [[2220, 2967, 1, 240, 240]]);
      t.deepEqual(s.mpp, { x: 0.499, y: 0.499 });
      t.deepEqual([...s.associatedImages], ['label', 'macro', 'thumbnail']);
      // Sizes as OpenSlide and the SVS directory give them.
      const sizes = await Promise.all(s.associatedImages.map(async (n) => {
        const im = await s.readAssociated(n);
        t.is(im.data.length, im.width * im.height * 3);
        return [n, im.width, im.height];
      }));
      t.deepEqual(sizes, [['label', 387, 463], ['macro', 1280, 431], ['thumbnail', 574, 768]]);
    }));

  const [run2, title2] = forReader(reader, 'the derived pyramid has 5 levels, their downsamples, and 0.499 µm/px from 20040 px/cm');
  run2(title2, (t) =>
    using(PYRAMID, reader, async (s) => {
      t.is(s.format, 'generic-tiff');
      const sizes = [[2220, 2967], [1110, 1483], [555, 741], [277, 370], [138, 185]];
      t.deepEqual(s.levels.map((l) => [l.width, l.height]), sizes);
      // OpenSlide's rule: the mean of the two axis ratios.
      s.levels.forEach((l, i) => t.true(Math.abs(l.downsample - (2220 / sizes[i]![0]! + 2967 / sizes[i]![1]!) / 2) < 1e-9));
      t.true(s.levels.every((l) => l.tileWidth === 256 && l.tileHeight === 256));
      t.true(Math.abs(s.mpp!.x - 10_000 / 20040.080078125) < 1e-6, `mpp ${JSON.stringify(s.mpp)}`);
      t.true(Math.abs(s.mpp!.y - 0.499) < 1e-4);
      t.deepEqual([...s.associatedImages], []);
      t.is(s.bestLevelForDownsample(1), 0);
      t.is(s.bestLevelForDownsample(4.5), 2);
      t.is(s.bestLevelForDownsample(4.002), 1, 'a downsample just below a level\'s is not that level');
      t.is(s.bestLevelForDownsample(1000), 4);
      t.is(s.bestLevelForDownsample(0.5), 0);
    }));
}

test('auto opens the SVS with OpenSlide when linked, and the strip TIFF and a PNG with sharp', async (t) => {
  const { OPENSLIDE_LINKED } = await import('../support/slide_support.js');
  await using(SVS, 'auto', async (s) => t.is(s.reader, OPENSLIDE_LINKED ? 'openslide' : 'sharp'));
  await using(KIDNEY, 'auto', async (s) => t.is(s.reader, 'sharp'));
  await using('tiatoolbox__source_image.png', 'auto', async (s) => t.is(s.reader, 'sharp'));
});

test('kidney-48-5.tif (a plain strip TIFF) opens as one 1493x901 level on a 512 grid and reads like sharp\'s decode', (t) =>
  using(KIDNEY, 'auto', async (s) => {
    t.is(s.format, 'tiff');
    t.deepEqual(s.levels.map((l) => ({ ...l })), [{ width: 1493, height: 901, downsample: 1, tileWidth: 512, tileHeight: 512 }]);
    t.is(s.mpp, null);
    const full = await sharp(dataFile(KIDNEY)).flatten({ background: '#ffffff' }).removeAlpha().raw().toBuffer();
    const region = await s.readRegion(0, 400, 300, 700, 500); // straddles the 512 grid both ways
    const expected = new Uint8Array(700 * 500 * 3);
    for (let r = 0; r < 500; r++) expected.set(full.subarray(((300 + r) * 1493 + 400) * 3, ((300 + r) * 1493 + 1100) * 3), r * 700 * 3);
    t.is(diff(region.data, expected).max, 0);
  }));

test('a PNG opens as a one-level slide and readRegion past its edge is white', (t) =>
  using('tiatoolbox__source_image.png', 'auto', async (s) => {
    t.is(s.format, 'png');
    t.deepEqual(s.levels.map((l) => [l.width, l.height, l.downsample]), [[256, 256, 1]]);
    const region = await s.readRegion(0, 200, 250, 100, 20);
    const full = await sharp(dataFile('tiatoolbox__source_image.png')).removeAlpha().raw().toBuffer();
    let first: string | null = null;
    for (let r = 0; r < 20 && !first; r++) {
      for (let c = 0; c < 100 && !first; c++) {
        const inside = 200 + c < 256 && 250 + r < 256;
        for (let k = 0; k < 3; k++) {
          const got = region.data[(r * 100 + c) * 3 + k]!;
          const want = inside ? full[((250 + r) * 256 + 200 + c) * 3 + k]! : 255;
          if (got !== want) first = `pixel (${c}, ${r}) channel ${k}: ${got} vs ${want}`;
        }
      }
    }
    t.is(first, null);
  }));

test('transparent pixels are composited on white', async (t) => {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'hf-slide-'));
  try {
    const path = join(dir, 'half.png');
    // Left half opaque red, right half fully transparent black, a 50 % alpha row at the bottom.
    const rgba = new Uint8Array(8 * 4 * 4);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 8; x++) rgba.set(x < 4 ? [200, 0, 0, y === 3 ? 128 : 255] : [0, 0, 0, 0], (y * 8 + x) * 4);
    await sharp(rgba, { raw: { width: 8, height: 4, channels: 4 } }).png().toFile(path);
    const s = await openSlide(path);
    const r = await s.readRegion(0, 0, 0, 8, 4);
    t.deepEqual([...r.data.subarray(0, 3)], [200, 0, 0]);
    t.deepEqual([...r.data.subarray(7 * 3, 8 * 3)], [255, 255, 255]);
    // 200·128/255 + 255·127/255 ≈ 227.4; 0·… + 127 = 127.
    const half = [...r.data.subarray((3 * 8) * 3, (3 * 8) * 3 + 3)];
    t.true(Math.abs(half[0]! - 227) <= 1 && Math.abs(half[1]! - 127) <= 1, `${half}`);
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

for (const reader of READERS) {
  const [run, title] = forReader(reader, 'thumbnail(300) of the pyramid is 224x300, resampled from level 3 as sharp resizes that page (mean |diff| ≤ 1)');
  run(title, (t) =>
    using(PYRAMID, reader, async (s) => {
      const { image, downsample } = await s.thumbnail(300);
      t.deepEqual([image.width, image.height], [224, 300]);
      t.true(Math.abs(downsample - (2220 / 224 + 2967 / 300) / 2) < 1e-9);
      // Downsample 9.9 → level 3 (8.02), the largest not above it; then one Lanczos resize.
      const ref = await sharp(dataFile(PYRAMID), { page: 3 }).resize(224, 300, { fit: 'fill' }).removeAlpha().raw().toBuffer();
      const d = diff(image.data, ref);
      t.true(d.mean <= 1, `mean |diff| ${d.mean}`);
    }));
}

test('reading after close rejects with an Error, and close is idempotent', async (t) => {
  const s = await openSlide(dataFile(PYRAMID));
  await s.close();
  await s.close();
  await t.throwsAsync(() => s.readRegion(0, 0, 0, 10, 10), { instanceOf: Error, message: /closed/ });
});

const [runClose, closeTitle] = withOpenSlide('closing an OpenSlide slide while reads are in flight lets them finish, then frees it');
runClose(closeTitle, async (t) => {
  const s = await openSlide(dataFile(SVS), { reader: 'openslide', cacheBytes: 0 });
  const reads = [0, 1, 2, 3].map((i) => s.readRegion(0, 240 * i, 240 * i, 480, 480).then(() => 'ok', (e: Error) => e.message));
  await s.close();
  const outcomes = await Promise.all(reads);
  // Each read either completed or was told the slide is closed; none crashed.
  t.true(outcomes.every((o) => o === 'ok' || /closed/.test(o)), outcomes.join(', '));
});

/** The SubIFD slides (slide_support.ts), written once for the two tests below. */
const subifdDir = mkdtempSync(join(tmpdir(), 'hf-subifd-'));
const OME = join(subifdDir, 'subifd-pyramid.ome.tif');
const PLAIN_SUBIFD = join(subifdDir, 'subifd-pyramid.tif');
const subifdSlides = Promise.all([writeSubifdSlide(OME, true), writeSubifdSlide(PLAIN_SUBIFD, false)]);
test.after.always(() => rmSync(subifdDir, { recursive: true, force: true }));
/** libvips's pyramid: halve (rounding down) until the level fits in one 64 px tile. */
const SUBIFD_LEVELS = [[277, 370], [138, 185], [69, 92], [34, 46]];

test('an OME-TIFF with SubIFD levels opens with all its levels through sharp (auto leaves it to sharp: OpenSlide 3.4 sees one level)', async (t) => {
  await subifdSlides;
  await using(OME, 'auto', async (s) => {
    t.is(s.reader, 'sharp');
    t.is(s.format, 'ome-tiff');
    t.deepEqual(s.levels.map((l) => [l.width, l.height]), SUBIFD_LEVELS);
    t.true(s.levels.every((l) => l.tileWidth === 64));
    // Written at 0.499 · 8.0167 µm/px (level 3 of the CMU pyramid), as px/cm.
    t.true(Math.abs(s.mpp!.x - SUBIFD_BASE.mpp) < 1e-3, JSON.stringify(s.mpp));
    // Level 0 holds the pyramid's page 3 (deflate, lossless).
    const base = await s.readRegion(0, 0, 0, 277, 370);
    const page3 = await sharp(dataFile(PYRAMID), { page: SUBIFD_BASE.page }).removeAlpha().raw().toBuffer();
    t.is(diff(base.data, page3).max, 0);
    // Level 1: the 2x2 mean of level 0, within 1 grey level (rounding).
    const half = await s.readRegion(1, 0, 0, 138, 185);
    const mean2x2 = new Uint8Array(138 * 185 * 3);
    for (let y = 0; y < 185; y++) {
      for (let x = 0; x < 138; x++) {
        for (let k = 0; k < 3; k++) {
          const at = (yy: number, xx: number) => base.data[(yy * 277 + xx) * 3 + k]!;
          mean2x2[(y * 138 + x) * 3 + k] = Math.round((at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1)) / 4);
        }
      }
    }
    const d = diff(half.data, mean2x2);
    t.true(d.max <= 1, `level 1 vs the 2x2 mean of level 0: max |diff| ${d.max}, mean ${d.mean}`);
  });
});

test('a plain TIFF with SubIFD levels (no OME) lists its SubIFDs as levels', async (t) => {
  await subifdSlides;
  await using(PLAIN_SUBIFD, 'auto', async (s) => {
    t.is(s.reader, 'sharp');
    t.is(s.format, 'generic-tiff');
    t.deepEqual(s.levels.map((l) => [l.width, l.height]), SUBIFD_LEVELS);
    const r = await s.readRegion(1, 100, 100, 50, 50);
    const ref = await sharp(PLAIN_SUBIFD, { subifd: 0 })
      .extract({ left: 100, top: 100, width: 38, height: 50 }).removeAlpha().raw().toBuffer();
    for (let row = 0; row < 50; row++) {
      t.deepEqual([...r.data.subarray(row * 150, row * 150 + 114)], [...ref.subarray(row * 114, row * 114 + 114)]);
      t.true(r.data.subarray(row * 150 + 114, row * 150 + 150).every((v) => v === 255), 'white past the edge');
    }
  });
});

test('slides open and read in worker threads, each with its own handle, like on the main thread', async (t) => {
  const { Worker } = await import('node:worker_threads');
  const slideModule = new URL('../../src/slide/slide.js', import.meta.url).href;
  const code = `
    import { parentPort, workerData } from 'node:worker_threads';
    const { openSlide } = await import(${JSON.stringify(slideModule)});
    const s = await openSlide(workerData.path);
    const r = await s.readRegion(0, workerData.x, 1000, 96, 96);
    parentPort.postMessage({ reader: s.reader, data: r.data });
    await s.close();`;
  const xs = [1000, 1100, 1200];
  const results = await Promise.all(xs.map((x) => new Promise<{ reader: string; data: Uint8Array }>((resolve, reject) => {
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { workerData: { path: dataFile(SVS), x } });
    w.once('message', resolve);
    w.once('error', reject);
  })));
  await using(SVS, 'auto', async (s) => {
    for (const [i, x] of xs.entries()) {
      t.is(results[i]!.reader, s.reader);
      t.deepEqual(results[i]!.data, (await s.readRegion(0, x, 1000, 96, 96)).data);
    }
  });
});
