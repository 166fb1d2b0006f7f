/**
 * The heatmap's pieces on their own: where a tile's probability lands in the
 * map (the centre-region convention), the traced regions against the cells
 * they come from (area by the shoelace formula, every cell centre inside
 * exactly its own region), holes and diagonal neighbours, and test-time
 * augmentation against its definition.
 */
import test from 'ava';

import { dihedralViews, withDihedralTta, type TilePredictor } from '../../src/heatmap/predictor.js';
import { probabilityMap, type ProbabilityMap } from '../../src/heatmap/probability_map.js';
import { tumourRegions, type RegionFeature } from '../../src/heatmap/regions.js';
import { fliplr, rot90, seededRandom } from '../support/helpers.js';

const same = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).map((v, i) => (Number.isNaN(v) ? Number.isNaN(b[i]!) : Math.abs(v - b[i]!) < 1e-6)).every(Boolean);

test('with stride = size each tile is exactly its own cell; uncovered cells are NaN', (t) => {
  const m = probabilityMap(100, 70, 32, 32, [{ x: 0, y: 0, probability: 0.25 }, { x: 64, y: 32, probability: 0.75 }]);
  t.deepEqual([m.width, m.height], [4, 3]);
  const want = [0.25, NaN, NaN, NaN, NaN, NaN, 0.75, NaN, NaN, NaN, NaN, NaN];
  t.true(same(m.data, want), String(Array.from(m.data)));
});

test('size / stride odd: a tile lights the one cell at its centre', (t) => {
  const m = probabilityMap(90, 90, 30, 10, [{ x: 20, y: 40, probability: 0.5 }]);
  const lit = Array.from(m.data).flatMap((v, k) => (Number.isNaN(v) ? [] : [[k % m.width, Math.floor(k / m.width), v]]));
  t.deepEqual(lit, [[3, 5, 0.5]]); // centre region [30, 40) x [50, 60)
});

test('size / stride even: a tile straddles 2 x 2 cells and a cell averages the tiles around it by area', (t) => {
  // Centre regions: tile A [1, 3)², tile B [3, 5) x [1, 3).
  const m = probabilityMap(8, 8, 4, 2, [{ x: 0, y: 0, probability: 0 }, { x: 2, y: 0, probability: 1 }]);
  const cell = (j: number, i: number) => m.data[i * m.width + j]!;
  t.is(cell(0, 0), 0);
  t.is(cell(1, 0), 0.5); // half from A, half from B
  t.is(cell(2, 0), 1);
  t.is(cell(1, 1), 0.5);
  t.true(Number.isNaN(cell(3, 0)) && Number.isNaN(cell(0, 2)));
});

function gridMap(cells: string[]): ProbabilityMap {
  const height = cells.length, width = cells[0]!.length;
  const data = Float32Array.from(cells.join(''), (c) => (c === '#' ? 0.9 : c === '.' ? 0.1 : NaN));
  return { data, width, height, stride: 1, tileSize: 1 };
}

function shoelace(ring: number[][]): number {
  let s = 0;
  for (let i = 0; i + 1 < ring.length; i++) s += ring[i]![0]! * ring[i + 1]![1]! - ring[i + 1]![0]! * ring[i]![1]!;
  return s / 2;
}

function polygons(f: RegionFeature): number[][][][] {
  return f.geometry.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry.coordinates;
}

/** Even-odd containment over all rings of a feature. */
function contains(f: RegionFeature, x: number, y: number): boolean {
  let inside = false;
  for (const ring of polygons(f).flat()) {
    for (let i = 0, j = ring.length - 2; i < ring.length - 1; j = i++) {
      const [xi, yi] = ring[i]!, [xj, yj] = ring[j]!;
      if (yi! > y !== yj! > y && x < ((xj! - xi!) * (y - yi!)) / (yj! - yi!) + xi!) inside = !inside;
    }
  }
  return inside;
}

test('a ring of cells is one polygon with a hole: exterior counter-clockwise (positive area), hole negative', (t) => {
  const { features } = tumourRegions(gridMap(['.....', '.###.', '.#.#.', '.###.', '.....']), { threshold: 0.5, cellSize0: 10, mpp0: 0.5 });
  t.is(features.length, 1);
  const g = features[0]!.geometry;
  t.is(g.type, 'Polygon');
  const rings = g.coordinates as number[][][];
  t.is(rings.length, 2);
  t.is(shoelace(rings[0]!), 900);
  t.is(shoelace(rings[1]!), -100);
  t.deepEqual(rings[0]!.length, 5, 'collinear vertices dropped: 4 corners + closing point');
  t.like(features[0]!.properties, { cells: 8, area_px: 800, area_um2: 200, bbox: [10, 10, 40, 40] });
  t.true(Math.abs(features[0]!.properties.mean_probability - 0.9) < 1e-6);
});

test('cells touching only at a corner are separate regions (4-connectivity); no data is never a region', (t) => {
  const { features } = tumourRegions(gridMap(['#.', '.#', '  ']), { threshold: 0.5, cellSize0: 1, mpp0: null });
  t.is(features.length, 2);
  t.deepEqual(features.map((f) => f.properties.area_px), [1, 1]);
  t.is(features[0]!.properties.area_um2, null);
  t.is(tumourRegions(gridMap(['  ', '  ']), { threshold: 0, cellSize0: 1, mpp0: null }).features.length, 0);
});

test('on random grids every region has the area of its cells and holds exactly the cell centres it is made of', (t) => {
  const rand = seededRandom(7);
  for (let trial = 0; trial < 40; trial++) {
    const width = 3 + Math.floor(rand() * 12), height = 3 + Math.floor(rand() * 10);
    const rows = Array.from({ length: height }, () => Array.from({ length: width }, () => (rand() < 0.55 ? '#' : rand() < 0.8 ? '.' : ' ')).join(''));
    const map = gridMap(rows);
    const { features } = tumourRegions(map, { threshold: 0.5, cellSize0: 3, mpp0: null });
    for (const f of features) {
      const area = polygons(f).reduce((s, rings) => s + rings.reduce((a, r) => a + shoelace(r), 0), 0);
      t.is(area, f.properties.area_px, `grid ${rows.join('/')}`);
      for (const rings of polygons(f)) {
        t.true(shoelace(rings[0]!) > 0);
        rings.slice(1).forEach((h) => t.true(shoelace(h) < 0));
      }
    }
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const inside = features.filter((f) => contains(f, (x + 0.5) * 3, (y + 0.5) * 3)).length;
        if (inside !== (rows[y]![x] === '#' ? 1 : 0)) t.fail(`grid ${rows.join('/')}: cell (${x}, ${y}) is in ${inside} regions`);
      }
    }
  }
});

test('dihedralViews gives numpy rot90/fliplr of each tile, in d4 order', async (t) => {
  const size = 5, data = Uint8Array.from({ length: 2 * size * size * 3 }, (_, i) => (i * 37) % 256);
  const views = await dihedralViews({ data, n: 2, height: size, width: size });
  t.is(views.n, 16);
  for (let i = 0; i < 2; i++) {
    let img: Float32Array = Float32Array.from(data.subarray(i * 75, (i + 1) * 75));
    const want: Float32Array[] = [];
    for (let k = 0; k < 4; k++) {
      want.push(img);
      img = rot90(img, size, size);
    }
    for (let k = 0; k < 4; k++) want.push(fliplr(want[k]!, size, size));
    const got = Array.from({ length: 8 }, (_, d) => Array.from(views.data.subarray((8 * i + d) * 75, (8 * i + d + 1) * 75)));
    // The same 8 images, whatever the order of the flip and the turns.
    t.deepEqual(got.map(String).sort(), want.map((w) => Array.from(w).map(Math.round).map(String).join(',')).sort());
  }
});

test('TTA of a predictor that sees only the top-left quadrant equals the mean over all four quadrants', async (t) => {
  const size = 8, half = size / 2;
  const quadrantMean = (b: { data: Uint8Array; width: number }, i: number, qy: number, qx: number) => {
    let s = 0;
    for (let y = qy; y < qy + half; y++) for (let x = qx; x < qx + half; x++) s += b.data[(i * size * size + y * size + x) * 3]!;
    return s / (half * half * 255);
  };
  const topLeft: TilePredictor = async (b) => Float32Array.from({ length: b.n }, (_, i) => quadrantMean(b, i, 0, 0));
  const rand = seededRandom(3);
  const batch = { data: Uint8Array.from({ length: 3 * size * size * 3 }, () => Math.floor(rand() * 256)), n: 3, height: size, width: size };
  const tta = await withDihedralTta(topLeft)(batch, { tta: true });
  const plain = await withDihedralTta(topLeft)(batch, { tta: false });
  for (let i = 0; i < 3; i++) {
    const all = [[0, 0], [0, half], [half, 0], [half, half]].map(([y, x]) => quadrantMean(batch, i, y!, x!));
    t.true(Math.abs(tta[i]! - all.reduce((a, b) => a + b) / 4) < 1e-6);
    t.true(Math.abs(plain[i]! - all[0]!) < 1e-6);
  }
});
