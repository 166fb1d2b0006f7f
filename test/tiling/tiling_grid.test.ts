import test from 'ava';

import { planTiling, tileGrid, type GridMask } from '../../src/index.js';
import { seededRandom } from '../support/helpers.js';

const LEVELS = [
  { width: 40000, height: 30000, downsample: 1 },
  { width: 10000, height: 7500, downsample: 4 },
  { width: 2500, height: 1875, downsample: 16 },
];

test('planTiling reads the given level at the tile size, stride defaulting to the size', (t) => {
  const p = planTiling(LEVELS, 0.25, { size: 256, level: 1 });
  t.like(p, { level: 1, downsample: 4, readSize: 256, readStride: 256, size: 256, stride: 256, resample: 1, mpp: 1 });
});

test('planTiling picks the coarsest level at least as fine as the target µm/px and resamples', (t) => {
  // 0.25 µm/px at level 0; 0.5 µm/px wants downsample 2 → level 0, read 2x.
  t.like(planTiling(LEVELS, 0.25, { size: 96, mpp: 0.5 }), { level: 0, readSize: 192, resample: 2, mpp: 0.5 });
  // exactly level 1.
  t.like(planTiling(LEVELS, 0.25, { size: 96, stride: 48, mpp: 1 }), { level: 1, readSize: 96, readStride: 48, resample: 1 });
  // 2 µm/px: downsample 8 → level 1 (4) read 2x.
  t.like(planTiling(LEVELS, 0.25, { size: 100, stride: 50, mpp: 2 }), { level: 1, readSize: 200, readStride: 100, resample: 2 });
  // beyond the coarsest level.
  t.like(planTiling(LEVELS, 0.25, { size: 10, mpp: 8 }), { level: 2, readSize: 20 });
});

test('planTiling refuses µm/px on a slide without it, and bad requests, naming the field', (t) => {
  t.throws(() => planTiling(LEVELS, null, { size: 96, mpp: 0.5 }), { instanceOf: RangeError, message: /µm\/px/ });
  t.throws(() => planTiling(LEVELS, 0.25, { size: 96, mpp: 0.1 }), { instanceOf: RangeError, message: /options\.mpp/ });
  t.throws(() => planTiling(LEVELS, 0.25, { size: 0 }), { instanceOf: RangeError, message: /options\.size/ });
  t.throws(() => planTiling(LEVELS, 0.25, { size: 96, level: 3 }), { instanceOf: RangeError, message: /options\.level/ });
  t.throws(() => planTiling(LEVELS, 0.25, { size: 96, level: 1, mpp: 1 }), { instanceOf: RangeError });
  t.throws(() => planTiling([], 0.25, { size: 96 }), { instanceOf: TypeError, message: /levels/ });
});

test('tileGrid lists the tiles fully inside the level, with overlap when stride < size', (t) => {
  const g = tileGrid({ levelWidth: 1000, levelHeight: 500, readSize: 256 });
  t.is(g.columns, 3);
  t.is(g.rows, 1);
  t.deepEqual(g.tiles.map((x) => x.x), [0, 256, 512]);
  const o = tileGrid({ levelWidth: 1000, levelHeight: 500, readSize: 256, stride: 128 });
  t.is(o.columns, 6); // 0..640 step 128: 640 + 256 ≤ 1000
  t.is(o.rows, 2);
  t.is(tileGrid({ levelWidth: 100, levelHeight: 100, readSize: 256 }).total, 0);
});

test('tileGrid keeps only tiles inside the ROI (level-0 px), anchored at its corner', (t) => {
  const g = tileGrid({ levelWidth: 1000, levelHeight: 1000, downsample: 4, readSize: 50, roi: { x: 400, y: 800, width: 1000, height: 400 } });
  // level px: x 100..350, y 200..300
  t.is(g.columns, 5);
  t.is(g.rows, 2);
  t.deepEqual([g.tiles[0]!.x, g.tiles[0]!.y, g.tiles[0]!.x0, g.tiles[0]!.y0], [100, 200, 400, 800]);
});

// Brute force: integrate the mask over the tile footprint with a fine supersampling
// of the exact per-pixel overlap (rectangles intersect exactly).
function bruteFraction(m: GridMask, x0: number, y0: number, size0: number): number {
  const x1 = x0 / m.downsample, y1 = y0 / m.downsample, x2 = (x0 + size0) / m.downsample, y2 = (y0 + size0) / m.downsample;
  let area = 0;
  for (let j = Math.max(0, Math.floor(y1)); j < Math.min(m.height, Math.ceil(y2)); j++) {
    for (let i = Math.max(0, Math.floor(x1)); i < Math.min(m.width, Math.ceil(x2)); i++) {
      if (!m.mask[j * m.width + i]) continue;
      const ox = Math.min(i + 1, x2) - Math.max(i, x1), oy = Math.min(j + 1, y2) - Math.max(j, y1);
      if (ox > 0 && oy > 0) area += ox * oy;
    }
  }
  return area / ((x2 - x1) * (y2 - y1));
}

test('tile tissue fractions equal a brute-force overlap sum on random masks', (t) => {
  const rand = seededRandom(3);
  for (let trial = 0; trial < 20; trial++) {
    const width = 5 + Math.floor(rand() * 60), height = 5 + Math.floor(rand() * 60);
    const density = rand();
    const mask: GridMask = {
      mask: Uint8Array.from({ length: width * height }, () => (rand() < density ? 255 : 0)),
      width,
      height,
      downsample: 1 + rand() * 30,
    };
    const levelDownsample = [1, 2, 4, 2.5][trial % 4]!;
    const levelWidth = Math.floor((width * mask.downsample) / levelDownsample), levelHeight = Math.floor((height * mask.downsample) / levelDownsample);
    const readSize = 3 + Math.floor(rand() * 40), stride = 1 + Math.floor(rand() * 40);
    const g = tileGrid({ levelWidth, levelHeight, downsample: levelDownsample, readSize, stride, mask, minTissue: 0 });
    t.is(g.tiles.length, g.total);
    for (const tile of g.tiles) {
      const expected = bruteFraction(mask, tile.x0, tile.y0, readSize * levelDownsample);
      t.true(Math.abs(tile.tissue - expected) < 1e-9, `trial ${trial} tile ${tile.col},${tile.row}: ${tile.tissue} vs ${expected}`);
    }
    const kept = tileGrid({ levelWidth, levelHeight, downsample: levelDownsample, readSize, stride, mask, minTissue: 0.5 });
    t.deepEqual(kept.tiles, g.tiles.filter((x) => x.tissue >= 0.5));
  }
});

test('tileGrid refuses a mask of the wrong length and a minTissue outside 0..1', (t) => {
  t.throws(() => tileGrid({ levelWidth: 10, levelHeight: 10, readSize: 2, mask: { mask: new Uint8Array(3), width: 2, height: 2, downsample: 1 } }), {
    instanceOf: TypeError,
    message: /grid\.mask\.mask/,
  });
  t.throws(() => tileGrid({ levelWidth: 10, levelHeight: 10, readSize: 2, minTissue: 2 }), { instanceOf: RangeError, message: /grid\.minTissue/ });
  t.throws(() => tileGrid({ levelWidth: 10, levelHeight: 10, readSize: 2, roi: { x: 0, y: 0, width: 0, height: 1 } }), { instanceOf: RangeError, message: /grid\.roi\.width/ });
});
