/**
 * Synthetic slides: deterministic per seed whatever the number of workers;
 * read by both slide readers with levels and mpp; the truth beside them is
 * consistent (tumour inside tissue, masks = GeoJSON polygons by an
 * independent point-in-polygon test) and matches the picture (tissue detection
 * finds the tissue mask; tumour regions carry more stain); dice/iou/resampleMask
 * against hand-computed examples; bad arguments refused, nothing left behind.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { dice, iou, resampleMask } from '../../src/metrics/index.js';
import { openSlide } from '../../src/slide/slide.js';
import { readSlideTruth, synthSlide, type SynthSlideResult } from '../../src/synth/slide.js';
import { detectSlideTissue } from '../../src/tissue/detect.js';
import { withOpenSlide } from '../support/slide_support.js';
import { CLI } from '../support/helpers.js';

const SIZE = 1024;

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'histoflow-synth-slide-'));
}

// One slide painted on workers, the same seed painted on this thread, another seed: shared by the tests.
const dir = tmp();
const made: Promise<SynthSlideResult> = synthSlide(join(dir, 'a.tif'), { seed: 5, width: SIZE });
const sameInProcess = made.then(() => synthSlide(join(dir, 'b.tif'), { seed: 5, width: SIZE, workers: 0 }));
const otherSeed = sameInProcess.then(() => synthSlide(join(dir, 'c.tif'), { seed: 6, width: SIZE }));

async function level0(path: string): Promise<Buffer> {
  return sharp(path, { page: 0, limitInputPixels: false }).raw().toBuffer();
}

test('a slide depends only on its seed: same pixels with workers or without, different for another seed', async (t) => {
  const [a, b, c] = await Promise.all([made, sameInProcess, otherSeed]);
  const [pa, pb, pc] = await Promise.all([level0(a.slide), level0(b.slide), level0(c.slide)]);
  t.is(pa.length, SIZE * SIZE * 3);
  t.true(pa.equals(pb), 'same seed, different worker counts');
  t.false(pa.equals(pc), 'another seed');
  const [ta, tb] = await Promise.all([readSlideTruth(a.slide), readSlideTruth(b.slide)]);
  t.deepEqual(ta.tumour, tb.tumour);
  t.deepEqual(ta.tissue, tb.tissue);
  t.deepEqual({ ...ta.meta, mask: null }, { ...tb.meta, mask: null });
});

test('the output folder holds the slide and its three truth files, no temporaries', async (t) => {
  await otherSeed;
  t.deepEqual(readdirSync(dir).sort(), ['a.json', 'a.tif', 'a.tissue.png', 'a.tumour.png', 'b.json', 'b.tif', 'b.tissue.png', 'b.tumour.png', 'c.json', 'c.tif', 'c.tissue.png', 'c.tumour.png']);
});

for (const reader of ['sharp', 'openslide'] as const) {
  const [run, title] = reader === 'openslide'
    ? withOpenSlide('openslide reads the synthetic slide as a generic tiled TIFF with its levels and 0.5 µm/px')
    : [test, 'sharp reads the synthetic slide with its levels and 0.5 µm/px'];
  run(title, async (t) => {
    const { slide: path } = await made;
    const slide = await openSlide(path, { reader });
    try {
      t.is(slide.reader, reader);
      t.is(slide.format, 'generic-tiff');
      t.deepEqual(slide.mpp, { x: 0.5, y: 0.5 });
      t.deepEqual(slide.levels.map((l) => [l.width, l.height, l.downsample, l.tileWidth]), [[1024, 1024, 1, 256], [512, 512, 2, 256], [256, 256, 4, 256]]);
      // Level 1 is level 0 halved: compare a region against a 2x2 box average of level 0.
      const hi = await slide.readRegion(0, 256, 256, 256, 256), lo = await slide.readRegion(1, 128, 128, 128, 128);
      let sum = 0;
      for (let y = 0; y < 128; y++) for (let x = 0; x < 128; x++) for (let c = 0; c < 3; c++) {
        const at = (dy: number, dx: number): number => hi.data[((2 * y + dy) * 256 + 2 * x + dx) * 3 + c]!;
        sum += Math.abs((at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1)) / 4 - lo.data[(y * 128 + x) * 3 + c]!);
      }
      t.true(sum / (128 * 128 * 3) < 6, `mean |level 1 − box(level 0)| = ${sum / (128 * 128 * 3)}`);
    } finally {
      await slide.close();
    }
  });
}

test('the truth files describe the slide: meta, mask grid, tumour inside tissue, area fraction', async (t) => {
  const r = await made;
  const { meta, tumour, tissue } = await readSlideTruth(r.slide);
  t.like(meta, { generator: 'histoflow synth slide', seed: 5, width: SIZE, height: SIZE, mpp: 0.5, tileSize: 256 });
  t.deepEqual([tumour.width, tumour.height, tumour.downsample], [SIZE / 16, SIZE / 16, 16]);
  t.deepEqual([tissue.width, tissue.height], [SIZE / 16, SIZE / 16]);
  let tumourCells = 0, tissueCells = 0, outside = 0;
  for (let i = 0; i < tumour.data.length; i++) {
    t.true(tumour.data[i] === 0 || tumour.data[i] === 255);
    if (tissue.data[i]) tissueCells++;
    if (tumour.data[i]) {
      tumourCells++;
      if (!tissue.data[i]) outside++;
    }
  }
  t.is(outside, 0, 'tumour cells outside the tissue mask');
  t.true(tumourCells > 0 && tissueCells > tumourCells);
  t.is(meta.tumourAreaFraction, tumourCells / tissueCells);
  t.is(meta.tumourRegions.features.length, r.regions);
  t.true(r.regions >= 1);
});

/** Even-odd ray casting: whether (x, y) lies inside the closed ring. */
function inRing(ring: Array<[number, number]>, x: number, y: number): boolean {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i]!, [xj, yj] = ring[j]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

test('the tumour mask is the GeoJSON regions rasterised at cell centres (≥ 99% of cells agree)', async (t) => {
  const { meta, tumour } = await readSlideTruth((await made).slide);
  const rings = meta.tumourRegions.features.map((f) => f.geometry.coordinates[0]!);
  let agree = 0;
  for (let j = 0; j < tumour.height; j++) for (let i = 0; i < tumour.width; i++) {
    const x = (i + 0.5) * 16, y = (j + 0.5) * 16;
    const inPolygon = rings.some((ring) => inRing(ring, x, y));
    if (inPolygon === (tumour.data[j * tumour.width + i] === 255)) agree++;
  }
  const share = agree / tumour.data.length;
  t.log(`agreement ${(100 * share).toFixed(2)}% (the polygon has 96 vertices; the mask is the exact outline)`);
  t.true(share >= 0.99);
});

test('tissue detection on the slide finds the tissue mask (IoU ≥ 0.8 on the truth grid)', async (t) => {
  const r = await made;
  const slide = await openSlide(r.slide, { reader: 'sharp' });
  try {
    const detected = await detectSlideTissue(slide);
    const { tissue } = await readSlideTruth(r.slide);
    const onTruthGrid = resampleMask({ data: detected.mask, width: detected.width, height: detected.height, downsample: detected.downsample }, tissue);
    const overlap = iou(onTruthGrid, tissue);
    t.log(`IoU ${overlap.toFixed(3)} (detected ${detected.width}x${detected.height} at 1/${detected.downsample.toFixed(2)})`);
    t.true(overlap >= 0.8);
  } finally {
    await slide.close();
  }
});

test('tumour regions carry more stain than the other tissue: mean optical density and hematoxylin share', async (t) => {
  const r = await made;
  const { tumour, tissue } = await readSlideTruth(r.slide);
  const { data, info } = await sharp(r.slide, { page: 0 }).raw().toBuffer({ resolveWithObject: true });
  // OD = −log10(I/255) per channel (Beer–Lambert); hematoxylin absorbs red most, eosin green (Ruifrok & Johnston).
  const stats = { tumour: { od: 0, redShare: 0, n: 0 }, other: { od: 0, redShare: 0, n: 0 } };
  for (let y = 0; y < info.height; y++) for (let x = 0; x < info.width; x++) {
    const cell = Math.floor(y / 16) * tumour.width + Math.floor(x / 16);
    if (!tissue.data[cell]) continue;
    const s = tumour.data[cell] ? stats.tumour : stats.other;
    const o = (y * info.width + x) * 3;
    const od = [0, 1, 2].map((c) => -Math.log10(Math.max(1, data[o + c]!) / 255));
    const sum = od[0]! + od[1]! + od[2]!;
    s.od += sum;
    s.redShare += sum > 0.15 ? od[0]! / sum : 0;
    s.n++;
  }
  const tumourOd = stats.tumour.od / stats.tumour.n, otherOd = stats.other.od / stats.other.n;
  const tumourRed = stats.tumour.redShare / stats.tumour.n, otherRed = stats.other.redShare / stats.other.n;
  t.log(`mean OD: tumour ${tumourOd.toFixed(3)}, other tissue ${otherOd.toFixed(3)}; red-OD share: tumour ${tumourRed.toFixed(3)}, other ${otherRed.toFixed(3)}`);
  t.true(tumourOd > 1.3 * otherOd);
  t.true(tumourRed > otherRed + 0.03);
});

test('dice and iou match a hand count; two empty masks agree perfectly', (t) => {
  // pred and truth on a 4x2 grid: |P| = 3, |T| = 3, |P∩T| = 2.
  const pred = { data: [1, 1, 0, 0, 1, 0, 0, 0], width: 4, height: 2 };
  const truth = { data: [255, 0, 0, 0, 255, 255, 0, 0], width: 4, height: 2 };
  t.is(dice(pred, truth), (2 * 2) / (3 + 3));
  t.is(iou(pred, truth), 2 / 4);
  t.is(dice({ data: new Float32Array([0.2, 0.7, 0.5, 0.1]), width: 2, height: 2 }, { data: [0, 1, 0, 0], width: 2, height: 2 }), (2 * 1) / (2 + 1));
  t.is(dice({ data: [0, 0], width: 2, height: 1 }, { data: [0, 0], width: 2, height: 1 }), 1);
  t.is(dice({ data: [1, 1], width: 2, height: 1 }, { data: [0, 0], width: 2, height: 1 }), 0);
});

test('resampleMask: an area vote going coarser, the cell under the centre going finer', (t) => {
  // 4x4 at 1 px per cell → 2x2 at 2 px per cell: the top-left 2x2 block has 2 of 4 positive (≥ half → in),
  // top-right 1 of 4 (out), bottom-left 4 of 4 (in), bottom-right 0.
  const fine = { data: [1, 1, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0], width: 4, height: 4, downsample: 1 };
  t.deepEqual(Array.from(resampleMask(fine, { width: 2, height: 2, downsample: 2 }).data), [255, 0, 255, 0]);
  // 2x1 at 4 px per cell → 4x2 at 2 px per cell; the second row lies beyond the source's one row of 4 px: 0.
  const coarse = { data: [0, 255], width: 2, height: 1, downsample: 4 };
  t.deepEqual(Array.from(resampleMask(coarse, { width: 4, height: 3, downsample: 2 }).data), [0, 0, 255, 255, 0, 0, 255, 255, 0, 0, 0, 0]);
  // Same grid: unchanged.
  t.deepEqual(Array.from(resampleMask(fine, { width: 4, height: 4, downsample: 1 }).data), fine.data.map((v) => v * 255));
});

test('bad arguments are refused naming the parameter, before anything is written', async (t) => {
  const out = tmp();
  await t.throwsAsync(synthSlide(join(out, 's.png')), { instanceOf: RangeError, message: /for path/ });
  await t.throwsAsync(synthSlide(42 as unknown as string), { instanceOf: TypeError, message: /for path/ });
  await t.throwsAsync(synthSlide(join(out, 's.tif'), { width: 100 }), { instanceOf: RangeError, message: /options\.width/ });
  await t.throwsAsync(synthSlide(join(out, 's.tif'), { height: 20000 }), { instanceOf: RangeError, message: /options\.height/ });
  await t.throwsAsync(synthSlide(join(out, 's.tif'), { seed: -1 }), { instanceOf: RangeError, message: /options\.seed/ });
  await t.throwsAsync(synthSlide(join(out, 's.tif'), { compression: 'lzw' as 'jpeg' }), { instanceOf: RangeError, message: /options\.compression/ });
  await t.throwsAsync(synthSlide(join(out, 's.tif'), { sizee: 3 } as never), { instanceOf: RangeError, message: /Unknown option 'sizee'/ });
  t.deepEqual(readdirSync(out), []);
  await t.throwsAsync(readSlideTruth(join(out, 'missing.tif')), { message: /cannot read the ground truth/ });
  t.throws(() => dice({ data: [1, 0], width: 2, height: 1 }, { data: [1, 0, 0], width: 3, height: 1 }), { instanceOf: RangeError, message: /for pred/ });
  t.throws(() => dice({ data: [1, 0], width: 3, height: 1 }, { data: [1, 0, 0], width: 3, height: 1 }), { instanceOf: RangeError, message: /pred\.data/ });
  t.throws(() => resampleMask({ data: [1], width: 1, height: 1 }, { width: 1, height: 1, downsample: 0 }), { instanceOf: RangeError, message: /target\.downsample/ });
});

test('the CLI writes a slide and its truth, quiet with --json (last line: the paths), and names bad options', (t) => {
  const out = tmp();
  const ok = spawnSync(process.execPath, [CLI, 'synth', 'slide', '--out', join(out, 's.tif'), '--size', '512x640', '--seed', '2', '--compression', 'deflate', '--json'], { encoding: 'utf8' });
  t.is(ok.status, 0, ok.stderr);
  t.is(ok.stderr, '');
  const last = JSON.parse(ok.stdout.trim().split('\n').pop()!);
  t.like(last, { slide: join(out, 's.tif'), tumourMask: join(out, 's.tumour.png'), tissueMask: join(out, 's.tissue.png'), meta: join(out, 's.json'), width: 512, height: 640, seed: 2 });
  t.deepEqual(readdirSync(out).sort(), ['s.json', 's.tif', 's.tissue.png', 's.tumour.png']);
  for (const [args, name] of [[['--size', '100'], '--size'], [['--size', '5x5x5'], '--size'], [['--seed', 'x'], '--seed'], [['--compression', 'lzw'], '--compression']] as const) {
    const bad = spawnSync(process.execPath, [CLI, 'synth', 'slide', '--out', join(out, 'bad.tif'), ...args], { encoding: 'utf8' });
    t.not(bad.status, 0);
    t.true(bad.stderr.includes(name), bad.stderr);
  }
  const noOut = spawnSync(process.execPath, [CLI, 'synth', 'slide'], { encoding: 'utf8' });
  t.not(noOut.status, 0);
  t.true(noOut.stderr.includes('--out'));
  t.false(readdirSync(out).some((f) => f.startsWith('bad') || f.endsWith('.tmp')));
});
