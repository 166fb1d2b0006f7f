/**
 * mapAgreement and predict-slide --truth: a map scored against annotation
 * polygons on its own grid. The reference counts cells here, independently,
 * with a point-in-rectangle test at each cell's centre (the polygons are
 * axis-aligned rectangles), and the Dice/IoU formulas.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { mapAgreement } from '../../src/heatmap/agreement.js';
import { encodeProbabilityF32 } from '../../src/heatmap/probability_map.js';
import { polygonOf, type AnnotationPolygon } from '../../src/tiling/annotations.js';
import { synthSlide } from '../../src/synth/slide.js';
import { CLI } from '../support/helpers.js';

const root = mkdtempSync(join(tmpdir(), 'histoflow-agreement-'));
let n = 0;

type Box = [number, number, number, number]; // x0, y0, x1, y1 in level-0 px
const rect = (label: string, [x0, y0, x1, y1]: Box): AnnotationPolygon => polygonOf(label, [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]);
const inside = ([x0, y0, x1, y1]: Box, x: number, y: number) => x >= x0 && x < x1 && y >= y0 && y < y1;

/** A predict-slide-like folder: probability.f32 + probability.json. */
function mapFolder(width: number, height: number, cell: number, data: Float32Array, threshold = 0.5): string {
  const dir = join(root, `map-${n++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'probability.f32'), encodeProbabilityF32({ data, width, height, stride: 1, tileSize: 1 }));
  writeFileSync(join(dir, 'probability.json'), JSON.stringify({ width, height, cellSizeLevel0: cell, threshold }));
  return dir;
}

test('Dice and IoU of a map against rectangles count the cells whose centre is inside, exclusion left out, no data negative', async (t) => {
  const W = 37, H = 23, cell = 12; // 444 x 276 level-0 px
  const tumour: Box[] = [[30.5, 20, 200, 131], [150, 100, 260.2, 190]], other: Box = [300, 10, 420, 80], exclusion: Box = [100, 40, 140, 70];
  const polygons = [rect('tumour', tumour[0]!), rect('tumour', tumour[1]!), rect('stroma', other), rect('exclusion', exclusion)];
  // A map that is a shifted, partly wrong copy of the truth, with no-data cells.
  const data = new Float32Array(W * H);
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) data[i * W + j] = (i * 7 + j * 3) % 11 === 0 ? NaN : inside([20, 30, 230, 160], (j + 0.5) * cell, (i + 0.5) * cell) ? 0.9 : 0.1;
  }
  const count = (labels: 'tumour' | 'all', threshold: number) => {
    let both = 0, p = 0, tt = 0, cells = 0, excluded = 0;
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        const x = (j + 0.5) * cell, y = (i + 0.5) * cell;
        if (inside(exclusion, x, y)) {
          excluded++;
          continue;
        }
        cells++;
        const ti = tumour.some((b) => inside(b, x, y)) || (labels === 'all' && inside(other, x, y));
        const pi = data[i * W + j]! >= threshold;
        both += +(pi && ti);
        p += +pi;
        tt += +ti;
      }
    }
    return { dice: (2 * both) / (p + tt), iou: both / (p + tt - both), both, p, tt, cells, excluded };
  };
  const dir = mapFolder(W, H, cell, data);
  for (const [labels, threshold] of [['all', 0.5], ['tumour', 0.5], ['tumour', 0.95]] as const) {
    const got = await mapAgreement(dir, polygons, { ...(labels === 'tumour' ? { labels: ['tumour'] } : {}), ...(threshold === 0.5 ? {} : { threshold }) });
    const want = count(labels, threshold);
    t.like(got, { bothCells: want.both, predictedCells: want.p, truthCells: want.tt, cells: want.cells, excludedCells: want.excluded, threshold, cellSizeLevel0: cell });
    t.true(want.excluded > 0 && want.both > 0 || threshold > 0.9);
    t.true(Math.abs(got.dice - (want.p + want.tt === 0 ? 1 : want.dice)) < 1e-12, `${labels} ${threshold}: Dice ${got.dice} vs ${want.dice}`);
    t.true(Math.abs(got.iou - (want.p + want.tt === 0 ? 1 : want.iou)) < 1e-12);
  }
  await t.throwsAsync(mapAgreement(dir, polygons, { labels: ['necrosis'] }), { instanceOf: RangeError, message: /stroma, tumour.*options\.labels/ });
  await t.throwsAsync(mapAgreement(dir, polygons, { threshold: 2 }), { instanceOf: RangeError, message: /options\.threshold/ });
  await t.throwsAsync(mapAgreement(join(root, 'nowhere'), polygons), { message: /probability\.json.*predict-slide output folder/ });
  const short = mapFolder(W, H, cell, data.subarray(0, 10));
  await t.throwsAsync(mapAgreement(short, polygons), { instanceOf: RangeError, message: /expected 37x23 float32 values but it holds 10/ });
});

test('a perfect map has Dice 1, its complement Dice 0; an empty truth and an empty map agree (Dice 1)', async (t) => {
  const W = 16, H = 16, cell = 8, box: Box = [16, 24, 80, 100];
  const truth = Float32Array.from({ length: W * H }, (_, k) => +inside(box, ((k % W) + 0.5) * cell, (Math.floor(k / W) + 0.5) * cell));
  t.like(await mapAgreement(mapFolder(W, H, cell, truth), [rect('tumour', box)]), { dice: 1, iou: 1 });
  t.like(await mapAgreement(mapFolder(W, H, cell, truth.map((v) => 1 - v)), [rect('tumour', box)]), { dice: 0, iou: 0 });
  t.like(await mapAgreement(mapFolder(W, H, cell, new Float32Array(W * H)), []), { dice: 1, truthCells: 0, predictedCells: 0 });
});

test('a map header whose threshold is not a probability is a RangeError naming the file and the field, not a Dice', async (t) => {
  const box: Box = [0, 0, 16, 16];
  for (const threshold of [7, -1]) {
    await t.throwsAsync(mapAgreement(mapFolder(4, 4, 8, new Float32Array(16).fill(0.9), threshold), [rect('tumour', box)]), {
      instanceOf: RangeError, message: /probability\.json: expected a number between 0 and 1 for threshold but it has -?\d/,
    });
  }
});

test('histoflow predict-slide --truth S.json prints the Dice of the map; an unreadable --truth exits 1 naming it before any output', async (t) => {
  const slide = join(root, 'slide.tif');
  await synthSlide(slide, { width: 1024, height: 768, seed: 3, compression: 'deflate', workers: 0 });
  const out = join(root, 'heat');
  const ok = spawnSync(process.execPath, [CLI, 'predict-slide', slide, '--model', 'builtin:redness-pixels', '--level', '1', '--map-downsample', '4',
    '--truth', slide.replace(/\.tif$/, '.json'), '--out', out, '--json'], { encoding: 'utf8' });
  t.is(ok.status, 0, ok.stderr);
  const summary = JSON.parse(ok.stdout.trim().split('\n').at(-1)!);
  // The same figures as mapAgreement on the folder written.
  t.deepEqual(summary.truth, await mapAgreement(out, slide.replace(/\.tif$/, '.json')));
  t.is(summary.truth.cellSizeLevel0, 8);
  t.true(summary.truth.truthCells > 0, 'the synthetic slide has tumour');
  const text = spawnSync(process.execPath, [CLI, 'predict-slide', slide, '--model', 'builtin:redness-pixels', '--level', '1',
    '--truth', slide.replace(/\.tif$/, '.json'), '--out', join(root, 'heat-text')], { encoding: 'utf8' });
  t.is(text.status, 0, text.stderr);
  t.regex(text.stderr + text.stdout, /against .*slide\.json: Dice 0\.\d{4}, IoU 0\.\d{4} at p ≥ 0\.5/);
  const bad = join(root, 'heat-bad');
  for (const truth of [join(root, 'missing.geojson'), slide]) {
    const r = spawnSync(process.execPath, [CLI, 'predict-slide', slide, '--model', 'builtin:redness-pixels', '--truth', truth, '--out', bad], { encoding: 'utf8' });
    t.is(r.status, 1);
    t.regex(r.stderr, /--truth/);
    t.false(existsSync(bad));
  }
  t.true(readFileSync(join(out, 'summary.json'), 'utf8').length > 0);
});
