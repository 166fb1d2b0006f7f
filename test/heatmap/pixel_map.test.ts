/**
 * predictSlide with a pixel predictor (a segmentation model): windows of the
 * model's size overlapping by a stride, blended with the sin² weight into a
 * pixel map. The references are computed here, independently, from the
 * level image read through the slide API and the weight formula
 * w(u) = sin²(π(u + ½)/S): a per-pixel function of colour stitches into that
 * function with no seam (at map downsample 1 and 4, at a level > 0, on a
 * slide whose size is no multiple of the stride), windows that disagree
 * blend exactly as the formula says, TTA maps each view back, a TF.js model
 * with a map output is a pixel predictor, and bad options are named.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import test from 'ava';

import { ensembleSlidePredictor, loadSlidePredictor } from '../../src/heatmap/load_predictor.js';
import { PixelMapAccumulator, tissuePixels } from '../../src/heatmap/pixel_map.js';
import { predictSlide } from '../../src/heatmap/predict_slide.js';
import { dihedralSource, dihedralViews, rednessPixelsPredictor, rednessPredictor, withDihedralPixelTta, type SlidePredictorSpec } from '../../src/heatmap/predictor.js';
import { decodeProbabilityF32 } from '../../src/heatmap/probability_map.js';
import type { RgbBatch } from '../../src/image.js';
import { saveModel } from '../../src/models/io.js';
import { openSlide } from '../../src/slide/slide.js';
import { synthSlide } from '../../src/synth/slide.js';
import { integralImage, tissueFraction } from '../../src/tiling/grid.js';
import { CLI } from '../support/helpers.js';

const root = mkdtempSync(join(tmpdir(), 'histoflow-pixel-map-'));
/** 1003 x 875: no level's size is a multiple of the windows' strides. */
const SLIDE = join(root, 'slide.tif');

test.before(async () => {
  await synthSlide(SLIDE, { width: 1003, height: 875, seed: 7, compression: 'deflate', workers: 0 });
});

let n = 0;
const outDir = () => join(root, `out${n++}`);
const files = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : null);

interface Header { width: number; height: number; level: number; mapDownsample: number; kind: string; cellSizeLevel0: number; stride: number }

function readMap(dir: string): { header: Header; data: Float32Array } {
  const header = JSON.parse(readFileSync(join(dir, 'probability.json'), 'utf8')) as Header;
  return { header, data: decodeProbabilityF32(readFileSync(join(dir, 'probability.f32'))) };
}

/** The level image through the slide API. */
async function levelImage(level: number): Promise<RgbBatch> {
  const slide = await openSlide(SLIDE);
  try {
    const { width, height } = slide.levels[level]!;
    return await slide.readRegion(level, 0, 0, width, height);
  } finally {
    await slide.close();
  }
}

const redness = (d: Uint8Array, p: number) => Math.min(1, Math.max(0, (d[3 * p]! - (d[3 * p + 1]! + d[3 * p + 2]!) / 2) / 255));

/** Redness per level pixel, averaged over m x m blocks (the blocks at the right and bottom edges clipped to the level). */
function rednessBlocks(image: RgbBatch, m: number): { data: Float64Array; width: number; height: number } {
  const width = Math.ceil(image.width / m), height = Math.ceil(image.height / m);
  const sum = new Float64Array(width * height), count = new Float64Array(width * height);
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const k = Math.floor(y / m) * width + Math.floor(x / m);
      sum[k] += redness(image.data, y * image.width + x);
      count[k]++;
    }
  }
  return { data: sum.map((s, k) => s / count[k]!), width, height };
}

for (const [level, size, stride, mapDownsample] of [[1, 64, undefined, 1], [1, 64, undefined, 4], [0, 96, 40, 1], [0, 96, 48, 4]] as const) {
  test(`a per-pixel function of colour stitches into that function of the level image, no seam (level ${level}, window ${size}, stride ${stride ?? size / 2}, map downsample ${mapDownsample})`, async (t) => {
    const out = outDir();
    const r = await predictSlide(SLIDE, rednessPixelsPredictor(size), { out, level, mapDownsample, minTissue: 0, batchSize: 16, ...(stride ? { stride } : {}) });
    const { header, data } = readMap(out);
    const expected = rednessBlocks(await levelImage(level), mapDownsample);
    t.deepEqual([header.width, header.height], [expected.width, expected.height]);
    t.like(header, { kind: 'pixels', level, mapDownsample });
    // Level 1 of 1003 x 875 is 502 x 438: its downsample is about 2.
    t.true(Math.abs(header.cellSizeLevel0 / (mapDownsample * 2 ** level) - 1) < 0.01, `map px ${header.cellSizeLevel0} level-0 px`);
    t.like(r, { mapKind: 'pixels', mapDownsample, mapWidth: expected.width, mapHeight: expected.height, tileSize: size, stride: stride ?? size / 2 });
    let worst = 0, at = -1;
    for (let k = 0; k < data.length; k++) {
      const e = Math.abs(data[k]! - expected.data[k]!);
      if (!(e <= worst)) [worst, at] = [e, k]; // NaN too
    }
    t.log(`${data.length} map px, ${r.tiles} windows; worst |map − redness| ${worst.toExponential(2)} at (${at % header.width}, ${Math.floor(at / header.width)})`);
    t.true(worst <= 1e-5, `worst ${worst} at map px ${at}`);
  });
}

test('map pixels without tissue are no data (NaN), the others still the function', async (t) => {
  const out = outDir();
  await predictSlide(SLIDE, rednessPixelsPredictor(64), { out, level: 1, mapDownsample: 2 });
  const { data } = readMap(out);
  const expected = rednessBlocks(await levelImage(1), 2);
  let nan = 0, worst = 0;
  data.forEach((p, k) => (Number.isNaN(p) ? nan++ : (worst = Math.max(worst, Math.abs(p - expected.data[k]!)))));
  t.log(`${nan} of ${data.length} map px no data; worst on tissue ${worst.toExponential(2)}`);
  t.true(nan > 0.1 * data.length && nan < 0.9 * data.length);
  t.true(worst <= 1e-5);
});

test('a map pixel holds data when the tissue fraction of its footprint, as the tile grid computes it, is at least minTissue', (t) => {
  let seed = 9;
  const mask = { mask: Uint8Array.from({ length: 37 * 29 }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 31 ? 255 : 0)), width: 37, height: 29, downsample: 7.5 };
  const sat = integralImage(mask.mask, mask.width, mask.height);
  for (const [levelWidth, levelHeight, downsample, mapDownsample] of [[139, 108, 2, 1], [139, 108, 2, 3], [277, 217, 1, 4], [60, 50, 4, 7]] as const) {
    for (const minTissue of [0, 0.3, 0.5, 1]) {
      const got = tissuePixels({ levelWidth, levelHeight, mapDownsample, windowSize: 16, outputSize: 16 }, downsample, mask, minTissue);
      const width = Math.ceil(levelWidth / mapDownsample), height = Math.ceil(levelHeight / mapDownsample);
      t.is(got.length, width * height);
      let differ = 0;
      for (let i = 0; i < height; i++) {
        for (let j = 0; j < width; j++) {
          const x = j * mapDownsample, y = i * mapDownsample;
          const w = Math.min(levelWidth, x + mapDownsample) - x, h = Math.min(levelHeight, y + mapDownsample) - y;
          const f = tissueFraction(sat, mask, x * downsample, y * downsample, w * downsample, h * downsample);
          // A fraction within rounding of the threshold may fall either way.
          if (got[i * width + j] !== (f >= minTissue ? 1 : 0) && Math.abs(f - minTissue) > 1e-9) differ++;
        }
      }
      t.is(differ, 0, `level ${levelWidth}x${levelHeight}, downsample ${downsample}, map downsample ${mapDownsample}, minTissue ${minTissue}`);
    }
  }
});

test('two windows that disagree blend by the weight sin²(π(u + ½)/S): a pixel at u in one window and u − stride in the next', (t) => {
  // One row of windows of 8 px every 4 px over a level 16 x 8; each window a constant.
  const S = 8, w = (u: number) => Math.sin((Math.PI * (u + 0.5)) / S) ** 2;
  const acc = new PixelMapAccumulator({ levelWidth: 16, levelHeight: 8, mapDownsample: 1, windowSize: S, outputSize: S }, new Uint8Array(16 * 8).fill(1));
  const constants = [0.2, 0.9, 0.4]; // windows at x = 0, 4, 8 (the last reaches x = 15)
  constants.forEach((c, k) => acc.add(4 * k, 0, new Float32Array(S * S).fill(c)));
  const map = acc.finish();
  for (let x = 0; x < 16; x++) {
    let num = 0, den = 0;
    constants.forEach((c, k) => {
      const u = x - 4 * k;
      if (u >= 0 && u < S) [num, den] = [num + w(u) * c, den + w(u)];
    });
    for (let y = 0; y < 8; y++) t.true(Math.abs(map.data[y * 16 + x]! - num / den) <= 1e-6, `x ${x}: ${map.data[y * 16 + x]} vs ${num / den}`);
  }
  // In the middle, where two windows of stride S/2 overlap, the weights sum to 1 (sin² + cos²): x = 6 is u = 6 of window 0 and u = 2 of window 1.
  t.true(Math.abs(map.data[6]! - (w(6) * 0.2 + w(2) * 0.9)) <= 1e-6);
  t.true(Math.abs(w(6) + w(2) - 1) <= 1e-12);
});

test('on a slide, windows that are each one constant blend into exactly the weighted mean of the windows over each pixel', async (t) => {
  // Each window's constant is its own mean redness (as builtin:redness), so neighbours disagree.
  const S = 32, stride = 16, level = 1;
  const constant: SlidePredictorSpec = {
    name: 'window-mean', inputSize: S, output: 'pixels',
    predict: async (batch) => {
      const tiles = await rednessPredictor(S).predict(batch, { tta: false });
      const out = new Float32Array(batch.n * S * S);
      tiles.forEach((c, i) => out.fill(c, i * S * S, (i + 1) * S * S));
      return out;
    },
  };
  const out = outDir();
  await predictSlide(SLIDE, constant, { out, level, stride, mapDownsample: 1, minTissue: 0 });
  const { header, data } = readMap(out);
  const image = await levelImage(level);
  const W = image.width, H = image.height;
  // Windows every stride px until they cover the level; beyond it the slide reads white.
  const starts = (L: number) => Array.from({ length: Math.ceil(Math.max(0, L - S) / stride) + 1 }, (_, k) => k * stride);
  const xs = starts(W), ys = starts(H);
  t.true(xs.at(-1)! + S > W && (W - S) % stride !== 0, 'the last column reaches past the edge');
  const mean = new Map<string, number>();
  for (const y0 of ys) {
    for (const x0 of xs) {
      let s = 0;
      for (let v = 0; v < S; v++) {
        for (let u = 0; u < S; u++) {
          const x = x0 + u, y = y0 + v;
          s += x < W && y < H ? image.data[3 * (y * W + x)]! - (image.data[3 * (y * W + x) + 1]! + image.data[3 * (y * W + x) + 2]!) / 2 : 0; // white: 0
        }
      }
      mean.set(`${x0},${y0}`, Math.min(1, Math.max(0, s / (S * S) / 255)));
    }
  }
  const w = (u: number) => Math.sin((Math.PI * (u + 0.5)) / S) ** 2;
  let worst = 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      let num = 0, den = 0;
      for (const y0 of ys.filter((v) => v <= y && y < v + S)) {
        for (const x0 of xs.filter((u) => u <= x && x < u + S)) {
          const wt = w(x - x0) * w(y - y0);
          num += wt * mean.get(`${x0},${y0}`)!;
          den += wt;
        }
      }
      worst = Math.max(worst, Math.abs(data[y * header.width + x]! - num / den));
    }
  }
  t.log(`${W}x${H} px, ${xs.length * ys.length} windows; worst |map − Σw·c/Σw| ${worst.toExponential(2)}`);
  t.true(worst <= 1e-5);
});

function randomTiles(count: number, size: number, seed: number): RgbBatch {
  let s = seed;
  const data = Uint8Array.from({ length: count * size * size * 3 }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 24));
  return { data, n: count, height: size, width: size };
}

test('dihedralSource says where each dihedral view of the augment kernel takes its pixels from', async (t) => {
  for (const size of [1, 6, 7]) {
    const tiles = randomTiles(2, size, size);
    const views = await dihedralViews(tiles);
    const plane = size * size;
    for (let i = 0; i < 2; i++) {
      for (let d = 0; d < 8; d++) {
        const source = dihedralSource(d, size);
        t.deepEqual([...source].sort((a, b) => a - b), Array.from({ length: plane }, (_, k) => k), `view ${d} is a permutation`);
        for (let p = 0; p < plane; p++) {
          for (let c = 0; c < 3; c++) {
            if (views.data[((8 * i + d) * plane + p) * 3 + c] !== tiles.data[(i * plane + source[p]!) * 3 + c]) {
              t.fail(`size ${size}, tile ${i}, view ${d}, pixel ${p}`);
              return;
            }
          }
        }
      }
    }
  }
});

test('pixel TTA maps each view\'s output back: a per-pixel predictor gives the same map with and without TTA', async (t) => {
  const predictor = rednessPixelsPredictor(9);
  const tiles = randomTiles(3, 9, 11);
  const plain = await predictor.predict(tiles, { tta: false });
  const tta = await withDihedralPixelTta(predictor.predict, 9)(tiles, { tta: true });
  t.true(plain.every((p, k) => Math.abs(p - tta[k]!) <= 1e-6));
  // Not mapping back would average 8 rotated maps: on random tiles that is far from the plain one.
  const views = await predictor.predict(await dihedralViews(tiles), { tta: false });
  const unmapped = plain.map((_, k) => {
    const i = Math.floor(k / 81), p = k % 81;
    let s = 0;
    for (let d = 0; d < 8; d++) s += views[(8 * i + d) * 81 + p]!;
    return s / 8;
  });
  t.true(plain.some((p, k) => Math.abs(p - unmapped[k]!) > 0.05));

  // A position-dependent predictor (each pixel's row, 0..1): TTA averages the 8 orientations of that ramp, 0.5 everywhere.
  const rows = (batch: RgbBatch) => Promise.resolve(Float32Array.from({ length: batch.n * 81 }, (_, k) => Math.floor((k % 81) / 9) / 8));
  const averaged = await withDihedralPixelTta(rows, 9)(tiles, { tta: true });
  t.true(averaged.every((p) => Math.abs(p - 0.5) <= 1e-6));
});

test('predictSlide with TTA on a pixel predictor reproduces the map without TTA (views mapped back, no seam)', async (t) => {
  const a = outDir(), b = outDir();
  await predictSlide(SLIDE, rednessPixelsPredictor(48), { out: a, level: 1, mapDownsample: 1, minTissue: 0 });
  const r = await predictSlide(SLIDE, rednessPixelsPredictor(48), { out: b, level: 1, mapDownsample: 1, minTissue: 0, tta: true });
  t.true(r.tta);
  const plain = readMap(a).data, tta = readMap(b).data;
  let worst = 0;
  plain.forEach((p, k) => (worst = Math.max(worst, Math.abs(p - tta[k]!))));
  t.log(`worst |TTA − plain| ${worst.toExponential(2)}`);
  t.true(worst <= 1e-5);
});

test('an ensemble of pixel predictors is their mean per pixel; mixing a classifier in is an error naming --model', async (t) => {
  const double: SlidePredictorSpec = {
    name: 'double', inputSize: 8, output: 'pixels',
    predict: async (batch, o) => (await rednessPixelsPredictor(8).predict(batch, o)).map((p) => Math.min(1, 2 * p)),
  };
  const ensemble = ensembleSlidePredictor([rednessPixelsPredictor(8), double]);
  t.is(ensemble.output, 'pixels');
  const tiles = randomTiles(2, 8, 5);
  const a = await rednessPixelsPredictor(8).predict(tiles, { tta: false }), b = await double.predict(tiles, { tta: false });
  const e = await ensemble.predict(tiles, { tta: false });
  t.is(e.length, 2 * 64);
  t.true(e.every((p, k) => Math.abs(p - (a[k]! + b[k]!) / 2) <= 1e-6));
  t.throws(() => ensembleSlidePredictor([rednessPixelsPredictor(8), rednessPredictor(8)]), { instanceOf: RangeError, message: /--model.*pixel map.*per tile/ });
});

test('a TF.js model with a map output [null, S, S, 1], saved by saveModel, loads as a pixel predictor and maps the slide', async (t) => {
  // A 1x1 convolution and a sigmoid: p = σ(0.5 r − g + 2 b + 0.1) on [0, 1] colours, computed here without TF.js.
  const S = 16;
  const model = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [S, S, 3], filters: 1, kernelSize: 1, activation: 'sigmoid' })] });
  model.layers[0]!.setWeights([tf.tensor4d([0.5, -1, 2], [1, 1, 3, 1]), tf.tensor1d([0.1])]);
  const dir = join(root, 'segmenter');
  await saveModel(model, dir, { card: { inputSize: S, architecture: 'custom', preprocess: {} } });
  model.dispose();
  // The plain TF.js CPU backend: what is checked here is the loading, not a backend.
  const predictor = await loadSlidePredictor(dir, { backend: 'tfjs-cpu' });
  t.like(predictor, { inputSize: S, output: 'pixels' });
  t.regex(predictor.name, /segmenter .*pixel map/);
  const tiles = randomTiles(3, S, 2);
  const p = await predictor.predict(tiles, { tta: false });
  const expected = (k: number) => 1 / (1 + Math.exp(-(0.5 * tiles.data[3 * k]! / 255 - tiles.data[3 * k + 1]! / 255 + 2 * tiles.data[3 * k + 2]! / 255 + 0.1)));
  t.is(p.length, 3 * S * S);
  let worst = 0;
  p.forEach((v, k) => (worst = Math.max(worst, Math.abs(v - expected(k)))));
  t.true(worst <= 1e-5, `worst ${worst}`);
  const out = outDir();
  const r = await predictSlide(SLIDE, predictor, { out, level: 2, tta: true });
  t.like(r, { mapKind: 'pixels', tileSize: S, stride: S / 2, tta: true });
  const { data } = readMap(out);
  t.true(data.some((v) => v >= 0 && v <= 1) && data.some((v) => Number.isNaN(v)));
});

test('bad options for a pixel map are TypeErrors and RangeErrors naming the option, and write nothing', async (t) => {
  const out = outDir();
  const m = rednessPixelsPredictor(32);
  await t.throwsAsync(predictSlide(SLIDE, m, { out, stride: 0 }), { instanceOf: RangeError, message: /options\.stride/ });
  await t.throwsAsync(predictSlide(SLIDE, m, { out, stride: 33 }), { instanceOf: RangeError, message: /between 1 and 32 for options\.stride .*leaves pixels no window covers/ });
  await t.throwsAsync(predictSlide(SLIDE, m, { out, mapDownsample: 0 }), { instanceOf: RangeError, message: /options\.mapDownsample/ });
  await t.throwsAsync(predictSlide(SLIDE, m, { out, mapDownsample: 1.5 }), { instanceOf: RangeError, message: /options\.mapDownsample/ });
  await t.throwsAsync(predictSlide(SLIDE, m, { out, mapDownsample: '2' as unknown as number }), { instanceOf: TypeError, message: /options\.mapDownsample/ });
  await t.throwsAsync(predictSlide(SLIDE, m, { out, detections: true }), { instanceOf: RangeError, message: /options\.detections/ });
  await t.throwsAsync(predictSlide(SLIDE, rednessPredictor(32), { out, mapDownsample: 2 }), { instanceOf: RangeError, message: /options\.mapDownsample.*one probability per tile/ });
  await t.throwsAsync(predictSlide(SLIDE, { ...m, output: 'voxels' as never }, { out }), { instanceOf: RangeError, message: /predictor\.output/ });
  await t.throwsAsync(predictSlide(SLIDE, m, { out, mapDownsample: 1, maxMemory: 24 << 20 }), { instanceOf: RangeError, message: /pixel map .*map downsample 1.*--max-memory/ });
  const wrong: SlidePredictorSpec = { ...m, predict: async (batch) => new Float32Array(batch.n) };
  await t.throwsAsync(predictSlide(SLIDE, wrong, { out, level: 2, batchSize: 4 }), { instanceOf: RangeError, message: /one per pixel of 4 tiles of 32x32 px.*predictions of model/ });
  t.is(files(out), null);
});

test('windows resampled to the model\'s size (options.mpp between levels) leave no map pixel without data; a map downsample finer than their output pixels is a RangeError naming it', async (t) => {
  const out = outDir();
  // Level 0 is 0.5 µm/px: at 0.9 µm/px a 32 px window is read at about 58 level px, an output pixel every 1.8 of them.
  const r = await predictSlide(SLIDE, rednessPixelsPredictor(32), { out, mpp: 0.9, minTissue: 0 });
  t.like(r, { mapKind: 'pixels', level: 0, mapDownsample: 2 });
  const { data } = readMap(out);
  t.is(data.filter((v) => Number.isNaN(v)).length, 0);
  const bad = outDir();
  await t.throwsAsync(predictSlide(SLIDE, rednessPixelsPredictor(32), { out: bad, mpp: 0.9, mapDownsample: 1 }), {
    instanceOf: RangeError, message: /an integer ≥ 2 for options\.mapDownsample but received 1 of type number: .*resampled/,
  });
  t.is(files(bad), null);
});

test('histoflow predict-slide --model builtin:redness-pixels --map-downsample writes a pixel map and says so; a bad --map-downsample exits 1 naming it', (t) => {
  const out = outDir();
  const ok = spawnSync(process.execPath, [CLI, 'predict-slide', SLIDE, '--model', 'builtin:redness-pixels', '--level', '1', '--map-downsample', '4', '--out', out, '--json'], { encoding: 'utf8' });
  t.is(ok.status, 0, ok.stderr);
  t.is(ok.stderr, '', 'quiet with --json');
  const summary = JSON.parse(ok.stdout.trim().split('\n').at(-1)!);
  t.like(summary, { model: 'builtin:redness-pixels', mapKind: 'pixels', mapDownsample: 4, tileSize: 128, stride: 64 });
  t.true(Math.abs(summary.mapMpp - 4) < 0.04, `map µm/px ${summary.mapMpp}`); // 4 level-1 px of about 1 µm
  t.deepEqual(files(out), ['overlay.png', 'overlay.tif', 'probability.f32', 'probability.json', 'probability.npy', 'probability.png', 'regions.geojson', 'regions.xml', 'report.html', 'report_files', 'summary.json', 'thumbnail.png', 'tiles.csv']);
  t.regex(readFileSync(join(out, 'report.html'), 'utf8'), /pixel map of probabilities \(one map pixel per 4 × 4 pixels of level 1, 4\.00\d µm\/px\)/);
  t.is(readFileSync(join(out, 'tiles.csv'), 'utf8').split('\n')[0], 'x,y,level,size,tissue_fraction,mean_probability');
  for (const value of ['0', '1.5']) {
    const bad = outDir();
    const r = spawnSync(process.execPath, [CLI, 'predict-slide', SLIDE, '--model', 'builtin:redness-pixels', '--map-downsample', value, '--out', bad], { encoding: 'utf8' });
    t.is(r.status, 1);
    t.regex(r.stderr, /--map-downsample/);
    t.is(files(bad), null);
  }
});
