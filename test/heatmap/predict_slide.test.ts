/**
 * predictSlide end to end on a synthetic pyramidal slide with a planted red
 * square, with a stand-in model that outputs each tile's mean redness: the
 * map is aligned with the slide (its peak and its region land on the square,
 * at level 0 and level 1, stride = size and stride < size), the raw float32
 * map equals the PNG within quantization and is NaN off the tissue, TTA goes
 * through, and bad input leaves the output folder as it was. Several
 * models make an ensemble (the mean of their probabilities, each with its TTA).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { ensembleSlidePredictor, loadSlidePredictor } from '../../src/heatmap/load_predictor.js';
import { rednessPredictor, withDihedralTta, type SlidePredictorSpec } from '../../src/heatmap/predictor.js';
import type { RgbBatch } from '../../src/image.js';
import { predictSlide } from '../../src/heatmap/predict_slide.js';
import { decodeProbabilityF32 } from '../../src/heatmap/probability_map.js';
import type { RegionCollection } from '../../src/heatmap/regions.js';
import { labelTile, parseAnnotations } from '../../src/tiling/annotations.js';
import { CLI } from '../support/helpers.js';
import { rednessModel, SLIDE_MPP, SLIDE_WIDTH, SQUARE, SQUARE_CENTRE, TISSUE, writeTestSlide } from '../support/heatmap_support.js';

const root = mkdtempSync(join(tmpdir(), 'histoflow-heatmap-'));
const SLIDE = join(root, 'slide.tif');
const GLASS = join(root, 'glass.tif');

test.before(async () => {
  await writeTestSlide(SLIDE);
  await writeTestSlide(GLASS, { tissue: false });
});

let n = 0;
const outDir = () => join(root, `out${n++}`);

interface Header { width: number; height: number; stride: number; cellSizeLevel0: number; level: number; downsample: number; dtype: string; byteOrder: string; mpp: number | null; threshold: number; model: string }

function readMap(dir: string): { header: Header; data: Float32Array } {
  const header = JSON.parse(readFileSync(join(dir, 'probability.json'), 'utf8')) as Header;
  return { header, data: decodeProbabilityF32(readFileSync(join(dir, 'probability.f32'))) };
}

for (const [level, size, stride] of [[0, 32, 16], [0, 32, 32], [0, 48, 16], [1, 16, 8]] as const) {
  test(`the map's peak and its region land on the planted red square (level ${level}, size ${size}, stride ${stride})`, async (t) => {
    const out = outDir();
    const r = await predictSlide(SLIDE, rednessModel(size), { out, level, stride, batchSize: 16 });
    const { header, data } = readMap(out);
    t.is(data.length, header.width * header.height);
    const cell = header.cellSizeLevel0;
    t.is(cell, stride * 2 ** level);
    // Peak: the centroid of the cells at the maximum, in level-0 px.
    let max = -1;
    data.forEach((p) => (max = p > max ? p : max));
    let sx = 0, sy = 0, count = 0;
    data.forEach((p, k) => {
      if (!(p >= max - 1e-6)) return; // NaN (no data) too
      sx += ((k % header.width) + 0.5) * cell;
      sy += (Math.floor(k / header.width) + 0.5) * cell;
      count++;
    });
    t.log(`peak ${max.toFixed(3)} over ${count} cells at (${(sx / count).toFixed(1)}, ${(sy / count).toFixed(1)}); square centre (${SQUARE_CENTRE.x}, ${SQUARE_CENTRE.y})`);
    t.true(max > 0.9, `peak ${max}`);
    t.true(Math.abs(sx / count - SQUARE_CENTRE.x) <= cell && Math.abs(sy / count - SQUARE_CENTRE.y) <= cell);

    // The region at 0.5 is the square: its bbox holds the centre, its area is the square's within the cells' granularity.
    const geo = JSON.parse(readFileSync(join(out, 'regions.geojson'), 'utf8')) as RegionCollection;
    t.is(geo.features.length, 1);
    const f = geo.features[0]!.properties;
    t.true(f.bbox[0] <= SQUARE_CENTRE.x && SQUARE_CENTRE.x <= f.bbox[2] && f.bbox[1] <= SQUARE_CENTRE.y && SQUARE_CENTRE.y <= f.bbox[3]);
    const squareArea = SQUARE.side ** 2;
    t.log(`region area ${f.area_px} px² vs the square's ${squareArea}`);
    t.true(Math.abs(f.area_px - squareArea) <= 0.25 * squareArea, `area ${f.area_px}`); // 7–15 % off on these grids
    t.is(f.area_um2, f.area_px * SLIDE_MPP ** 2);
    t.true(f.max_probability >= f.mean_probability && f.mean_probability >= 0.5);
    // Read back as annotations: the polygon covers most of the square and little outside it.
    const polygons = parseAnnotations(geo);
    const inside = labelTile(polygons, { x: SQUARE.left, y: SQUARE.top, width: SQUARE.side, height: SQUARE.side });
    t.is(inside.label, 'Tumor'); // QuPath's built-in class
    // Cells are decided whole: the boundary may fall up to half a cell inside the square on each side.
    t.true(inside.coverage > 1 - cell / SQUARE.side, `covers ${inside.coverage} of the square`);
    t.is(r.regions, 1);
    t.is(r.tumourAreaPx, f.area_px);
  });
}

test('probability.f32 with its JSON header equals probability.png within quantization, and is NaN off the tissue', async (t) => {
  const out = outDir();
  const r = await predictSlide(SLIDE, rednessModel(32), { out, stride: 16 });
  const { header, data } = readMap(out);
  t.like(header, { dtype: 'float32', byteOrder: 'little-endian', stride: 16, level: 0, downsample: 1, mpp: SLIDE_MPP, threshold: 0.5, model: 'test:redness' });
  t.deepEqual([header.width, header.height], [64, 48]);
  const meta = await sharp(join(out, 'probability.png')).metadata();
  t.deepEqual([meta.width, meta.height, meta.channels, meta.space], [header.width, header.height, 2, 'b-w'], 'grey + alpha');
  // sharp decodes grey + alpha as RGBA: grey in R, alpha in A.
  const { data: rgba } = await sharp(join(out, 'probability.png')).raw().toBuffer({ resolveWithObject: true });
  const png = Uint8Array.from({ length: 2 * data.length }, (_, i) => rgba[4 * (i >> 1) + (i & 1 ? 3 : 0)]!);
  let nan = 0;
  for (let k = 0; k < data.length; k++) {
    const p = data[k]!;
    if (Number.isNaN(p)) {
      nan++;
      t.is(png[2 * k + 1], 0, `cell ${k}: no data is transparent`);
    } else {
      t.is(png[2 * k + 1], 255);
      if (Math.abs(png[2 * k]! / 255 - p) > 0.5 / 255 + 1e-6) t.fail(`cell ${k}: png ${png[2 * k]} vs ${p}`);
    }
  }
  // Cells wholly on glass (outside the tissue rectangle by a tile) are no data; cells deep in the pink are its redness.
  const at = (x: number, y: number) => data[Math.floor(y / 16) * header.width + Math.floor(x / 16)]!;
  t.true(Number.isNaN(at(8, 8)) && Number.isNaN(at(1000, 700)) && Number.isNaN(at(TISSUE.left - 40, 400)));
  const pink = (226 - (160 + 200) / 2) / 255;
  t.true(Math.abs(at(300, 200) - pink) < 1e-4, `pink cell ${at(300, 200)} vs ${pink}`);
  t.true(nan > 0 && nan < data.length);
  // tiles.csv: one row per tile predicted, level-0 coordinates, the square's tiles at the top.
  const rows = readFileSync(join(out, 'tiles.csv'), 'utf8').trim().split('\n');
  t.is(rows[0], 'x,y,level,size,tissue_fraction,probability');
  t.is(rows.length - 1, r.tiles);
  const best = rows.slice(1).map((l) => l.split(',').map(Number)).sort((a, b) => b[5]! - a[5]!)[0]!;
  t.true(best[0]! >= SQUARE.left && best[0]! + 32 <= SQUARE.left + SQUARE.side && best[5] === 1, `best tile ${best}`);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  t.like(summary, { tiles: r.tiles, model: 'test:redness', tta: false, threshold: 0.5, width: 1024, height: 768, mpp: SLIDE_MPP });
  t.true(Math.abs(summary.tissueAreaPx - TISSUE.width * TISSUE.height) < 0.05 * TISSUE.width * TISSUE.height, `tissue area ${summary.tissueAreaPx}`);
});

test('overlay.png is the thumbnail with the map in viridis and a colour bar beside it', async (t) => {
  const out = outDir();
  await predictSlide(SLIDE, rednessModel(32), { out, stride: 32 });
  const thumb = await sharp(join(out, 'thumbnail.png')).metadata();
  const overlay = await sharp(join(out, 'overlay.png')).raw().toBuffer({ resolveWithObject: true });
  t.is(overlay.info.height, thumb.height!);
  t.true(overlay.info.width > thumb.width!, 'room for the colour bar');
  // At the square's centre the overlay blends viridis(1) = (253, 231, 37) over red: far more green than pure red has.
  const d = SLIDE_WIDTH / thumb.width!; // the thumbnail's downsample
  const px = (x: number, y: number) => {
    const o = (Math.round(y / d) * overlay.info.width + Math.round(x / d)) * overlay.info.channels;
    return [overlay.data[o]!, overlay.data[o + 1]!, overlay.data[o + 2]!];
  };
  const [r, g] = px(SQUARE_CENTRE.x, SQUARE_CENTRE.y);
  t.true(r! > 200 && g! > 100, `square centre ${px(SQUARE_CENTRE.x, SQUARE_CENTRE.y)}`);
  t.deepEqual(px(10, 10), [245, 245, 245], 'glass is untouched');
});

test('TTA through predictSlide gives the same map for a model that is invariant to rotations and flips', async (t) => {
  const a = outDir(), b = outDir();
  await predictSlide(SLIDE, rednessModel(32), { out: a, stride: 32 });
  const r = await predictSlide(SLIDE, rednessModel(32), { out: b, stride: 32, tta: true });
  t.true(r.tta);
  const x = readMap(a).data, y = readMap(b).data;
  t.is(x.length, y.length);
  const differ: string[] = [];
  for (let k = 0; k < x.length; k++) {
    if (Number.isNaN(x[k]!) !== Number.isNaN(y[k]!) || Math.abs(x[k]! - y[k]!) > 1e-5) differ.push(`cell ${k}: ${x[k]} vs ${y[k]}`);
  }
  t.deepEqual(differ.slice(0, 5), [], `${differ.length} cells differ by more than 1e-5`);
});

const files = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : null);

test('a slide with no tissue is a clear error, and the output folder is not created', async (t) => {
  const out = outDir();
  await t.throwsAsync(predictSlide(GLASS, rednessModel(32), { out }), { instanceOf: RangeError, message: /no tissue was found/ });
  t.is(files(out), null);
});

test('a model whose input size differs from the tiles is a RangeError naming options.size; the folder is left as it was', async (t) => {
  const out = outDir();
  mkdirSync(out);
  writeFileSync(join(out, 'keep.txt'), 'mine');
  await t.throwsAsync(predictSlide(SLIDE, rednessModel(64), { out, size: 32 }), {
    instanceOf: RangeError,
    message: /input size of model 'test:redness', 64 px.*for options\.size but received 32/,
  });
  t.deepEqual(files(out), ['keep.txt']);
});

test('a model that fails part-way leaves no new file in the output folder', async (t) => {
  const out = outDir();
  mkdirSync(out);
  writeFileSync(join(out, 'keep.txt'), 'mine');
  let calls = 0;
  const failing = { name: 'failing', inputSize: 32, predict: async (b: { n: number }) => (++calls > 2 ? Promise.reject(new Error('model crashed')) : new Float32Array(b.n)) };
  await t.throwsAsync(predictSlide(SLIDE, failing, { out, batchSize: 8 }), { message: 'model crashed' });
  t.true(calls > 2);
  t.deepEqual(files(out), ['keep.txt']);
  const fresh = outDir();
  await t.throwsAsync(predictSlide(SLIDE, { ...failing, predict: async (b: { n: number }) => new Float32Array(b.n).fill(2) }, { out: fresh }), {
    instanceOf: RangeError,
    message: /prediction of model 'failing'/,
  });
  t.is(files(fresh), null);
});

test('bad arguments are TypeErrors and RangeErrors naming the parameter', async (t) => {
  const out = outDir();
  const m = rednessModel(32);
  await t.throwsAsync(predictSlide(SLIDE, m, { out, threshold: 2 }), { instanceOf: RangeError, message: /options\.threshold/ });
  await t.throwsAsync(predictSlide(SLIDE, m, { out, stride: 'a' as unknown as number }), { instanceOf: TypeError, message: /options\.stride/ });
  await t.throwsAsync(predictSlide(SLIDE, m, { out, level: 9 }), { instanceOf: RangeError, message: /options\.level/ });
  await t.throwsAsync(predictSlide(SLIDE, m, { out, tta: 1 as unknown as boolean }), { instanceOf: TypeError, message: /options\.tta/ });
  await t.throwsAsync(predictSlide(SLIDE, { ...m, inputSize: 0 }, { out }), { instanceOf: RangeError, message: /predictor\.inputSize/ });
  await t.throwsAsync(predictSlide(SLIDE, m, { out, colour: 'red' } as never), { instanceOf: RangeError, message: /Unknown option 'colour'/ });
  await t.throwsAsync(predictSlide(join(root, 'missing.tif'), m, { out }));
  t.is(files(out), null);
});

test('a missing model is a clear error', async (t) => {
  await t.throwsAsync(loadSlidePredictor(join(root, 'no-such-model')), { message: /model not found: .*no-such-model/ });
  await t.throwsAsync(loadSlidePredictor('builtin:nothing'), { instanceOf: RangeError, message: /--model/ });
  t.is((await loadSlidePredictor('builtin:redness')).name, 'builtin:redness');
});

test('histoflow predict-slide writes every output and ends --json with the summary; its errors exit 1 leaving no folder', (t) => {
  const out = outDir();
  const ok = spawnSync(process.execPath, [CLI, 'predict-slide', SLIDE, '--model', 'builtin:redness', '--stride', '48', '--tta', '--threshold', '0.3', '--out', out, '--json'], { encoding: 'utf8' });
  t.is(ok.status, 0, ok.stderr);
  const summary = JSON.parse(ok.stdout.trim().split('\n').at(-1)!);
  t.like(summary, { model: 'builtin:redness', tta: true, tileSize: 96, stride: 48, regions: 1 });
  t.deepEqual(files(out), ['overlay.png', 'overlay.tif', 'probability.f32', 'probability.json', 'probability.npy', 'probability.png', 'regions.geojson', 'regions.xml', 'report.html', 'report_files', 'summary.json', 'thumbnail.png', 'tiles.csv']);
  t.is(ok.stderr, '', 'quiet with --json');

  for (const [args, message] of [
    [['--model', join(root, 'nope')], /model not found/],
    [['--model', 'builtin:redness', '--size', '64'], /options\.size/],
    [['--model', 'builtin:redness', '--threshold', 'x'], /--threshold/],
  ] as const) {
    const bad = join(root, `bad${n++}`);
    const r = spawnSync(process.execPath, [CLI, 'predict-slide', SLIDE, ...args, '--out', bad], { encoding: 'utf8' });
    t.is(r.status, 1);
    t.regex(r.stderr, message);
    t.is(files(bad), null);
  }
  const glass = join(root, `bad${n++}`);
  const r = spawnSync(process.execPath, [CLI, 'predict-slide', GLASS, '--model', 'builtin:redness', '--out', glass], { encoding: 'utf8' });
  t.is(r.status, 1);
  t.regex(r.stderr, /no tissue/);
  t.is(files(glass), null);
});

/** A stand-in that is not rotation-invariant: the redness of each tile's left half. */
function leftHalfRedness(inputSize = 96): SlidePredictorSpec {
  return {
    name: 'left-half', inputSize,
    predict: async (batch) => Float32Array.from({ length: batch.n }, (_, i) => {
      let s = 0;
      for (let y = 0; y < batch.height; y++) {
        for (let x = 0; x < batch.width / 2; x++) {
          const p = ((i * batch.height + y) * batch.width + x) * 3;
          s += batch.data[p]! - (batch.data[p + 1]! + batch.data[p + 2]!) / 2;
        }
      }
      return Math.min(1, Math.max(0, s / (batch.height * (batch.width / 2)) / 255));
    }),
  };
}

function randomTiles(n: number, size: number, seed: number): RgbBatch {
  let s = seed;
  const data = Uint8Array.from({ length: n * size * size * 3 }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 24));
  return { data, n, height: size, width: size };
}

test('an ensemble of slide models is the mean of its members per tile, each with its own TTA', async (t) => {
  const a = rednessPredictor(16), b = leftHalfRedness(16);
  const tiles = randomTiles(5, 16, 3);
  const ensemble = ensembleSlidePredictor([a, b]);
  t.is(ensemble.inputSize, 16);
  t.true(ensemble.handlesTta);
  for (const tta of [false, true]) {
    const pa = await (tta ? withDihedralTta(a.predict) : a.predict)(tiles, { tta });
    const pb = await (tta ? withDihedralTta(b.predict) : b.predict)(tiles, { tta });
    const pe = await ensemble.predict(tiles, { tta });
    for (let i = 0; i < 5; i++) t.true(Math.abs(pe[i]! - (pa[i]! + pb[i]!) / 2) <= 1e-7, `tile ${i}, tta ${tta}`);
  }
  // The left half's redness depends on orientation: TTA must have changed something.
  t.notDeepEqual(await withDihedralTta(b.predict)(tiles, { tta: true }), await b.predict(tiles, { tta: false }));
  t.is(ensembleSlidePredictor([a]), a);
  t.throws(() => ensembleSlidePredictor([a, rednessPredictor(32)]), { instanceOf: RangeError, message: /--model .*16x16 .*32x32/ });
  t.throws(() => ensembleSlidePredictor([]), { instanceOf: TypeError, message: /--model/ });
});

test('histoflow predict-slide with --model twice maps the slide as the one model does (the mean of equals), and a bad member writes nothing', (t) => {
  const one = outDir(), two = outDir();
  const common = [CLI, 'predict-slide', SLIDE, '--stride', '48', '--json'];
  const r1 = spawnSync(process.execPath, [...common, '--model', 'builtin:redness', '--out', one], { encoding: 'utf8' });
  const r2 = spawnSync(process.execPath, [...common, '--model', 'builtin:redness', '--model', 'builtin:redness', '--out', two], { encoding: 'utf8' });
  t.is(r1.status, 0, r1.stderr);
  t.is(r2.status, 0, r2.stderr);
  t.deepEqual(readFileSync(join(two, 'probability.f32')), readFileSync(join(one, 'probability.f32')));
  t.regex(JSON.parse(r2.stdout.trim().split('\n').at(-1)!).model, /^ensemble of 2: builtin:redness, builtin:redness$/);
  const bad = join(root, `bad${n++}`);
  const r = spawnSync(process.execPath, [CLI, 'predict-slide', SLIDE, '--model', 'builtin:redness', '--model', join(root, 'missing'), '--out', bad], { encoding: 'utf8' });
  t.is(r.status, 1);
  t.regex(r.stderr, /model not found: .*missing/);
  t.is(files(bad), null);
});
