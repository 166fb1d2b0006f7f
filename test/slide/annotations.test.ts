import test from 'ava';

import { labelTile, parseAnnotations, polygonRectArea, tileCoverage } from '../../src/index.js';

const square = (x: number, y: number, s: number): number[][] => [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]];

function collection(features: Array<{ coordinates: unknown; type?: string; properties?: unknown }>): unknown {
  return {
    type: 'FeatureCollection',
    features: features.map((f) => ({ type: 'Feature', properties: f.properties ?? {}, geometry: { type: f.type ?? 'Polygon', coordinates: f.coordinates } })),
  };
}

test('a triangle inside a tile covers its analytic area', (t) => {
  const [p] = parseAnnotations(collection([{ coordinates: [[[10, 10], [50, 10], [10, 40], [10, 10]]], properties: { name: 'tumor' } }]));
  t.is(p!.label, 'tumor');
  t.is(polygonRectArea(p!, { x: 0, y: 0, width: 100, height: 100 }), 600);
  // Cut by the tile's right edge at x = 30: the part left of it is the triangle minus
  // the triangle (30..50): 600 − ½·20·15 = 450.
  t.is(polygonRectArea(p!, { x: 0, y: 0, width: 30, height: 100 }), 450);
});

test('a square with a hole covers its area minus the hole, also when the tile cuts both', (t) => {
  const [p] = parseAnnotations(collection([{ coordinates: [square(0, 0, 100), square(25, 25, 50)], properties: { classification: { name: 'Stroma' } } }]));
  t.is(p!.label, 'Stroma');
  t.is(polygonRectArea(p!, { x: 0, y: 0, width: 100, height: 100 }), 10000 - 2500);
  // Tile [50,150)×[0,100): half of the square (5000) minus half of the hole (1250).
  t.is(polygonRectArea(p!, { x: 50, y: 0, width: 100, height: 100 }), 3750);
});

test('a polygon straddling four tiles splits its area among them exactly', (t) => {
  const polygons = parseAnnotations(collection([{ coordinates: [[[30, 40], [170, 60], [120, 180], [40, 150], [30, 40]]], properties: { label: 'a' } }]));
  const total = polygonRectArea(polygons[0]!, { x: 0, y: 0, width: 1000, height: 1000 });
  let sum = 0;
  for (const x of [0, 100]) for (const y of [0, 100]) sum += polygonRectArea(polygons[0]!, { x, y, width: 100, height: 100 });
  t.true(Math.abs(sum - total) < 1e-9);
  // Shoelace by hand: (1800 − 6800) + (30600 − 7200) + (18000 − 7200) + (1600 − 4500) = 26300 → 13150.
  t.true(Math.abs(total - 13150) < 1e-9);
});

test('a concave polygon is clipped exactly (an L shape across a tile edge)', (t) => {
  const L = [[0, 0], [100, 0], [100, 20], [20, 20], [20, 100], [0, 100], [0, 0]];
  const [p] = parseAnnotations(collection([{ coordinates: [L] }]));
  t.is(polygonRectArea(p!, { x: 0, y: 0, width: 200, height: 200 }), 100 * 20 + 20 * 80);
  t.is(polygonRectArea(p!, { x: 10, y: 10, width: 50, height: 50 }), 50 * 50 - 40 * 40);
});

test('a tile takes the label covering most of it, or background below minCoverage', (t) => {
  const polygons = parseAnnotations(collection([
    { coordinates: [square(0, 0, 60)], properties: { classification: { name: 'Tumor' } } },
    { type: 'MultiPolygon', coordinates: [[square(60, 0, 40)], [square(0, 60, 40)]], properties: { name: 'Stroma' } },
  ]));
  const r = labelTile(polygons, { x: 0, y: 0, width: 100, height: 100 });
  t.is(r.label, null); // tumour 36%, stroma 32%
  t.is(labelTile(polygons, { x: 0, y: 0, width: 100, height: 100 }, { minCoverage: 0.3 }).label, 'Tumor');
  t.true(Math.abs(r.coverages.Stroma! - 0.32) < 1e-12);
  t.is(labelTile(polygons, { x: 500, y: 500, width: 10, height: 10 }, { background: 'background' }).label, 'background');
  t.deepEqual(Object.fromEntries(tileCoverage(polygons, { x: 0, y: 0, width: 30, height: 30 })), { Tumor: 1 });
});

test('invalid GeoJSON is refused, naming the path', (t) => {
  t.throws(() => parseAnnotations({ type: 'FeatureCollection', features: {} }), { instanceOf: TypeError, message: /features/ });
  t.throws(() => parseAnnotations(collection([{ coordinates: [square(0, 0, 1)] }, { coordinates: [[[0, 0], [1, 0], [0, 0]]] }])), {
    instanceOf: RangeError,
    message: /features\[1\]\.geometry\.coordinates\[0\]/,
  });
  t.throws(() => parseAnnotations(collection([{ coordinates: [[[0, 0], [1, 0], [1, 'a'], [0, 0]]] }])), {
    instanceOf: TypeError,
    message: /features\[0\]\.geometry\.coordinates\[0\]\[2\]\[1\]/,
  });
  t.throws(() => parseAnnotations(collection([{ coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1]]] }])), { instanceOf: RangeError, message: /closed ring/ });
  t.throws(() => parseAnnotations(collection([{ type: 'Circle', coordinates: [] }])), { instanceOf: RangeError, message: /features\[0\]\.geometry\.type/ });
  t.throws(() => parseAnnotations({ type: 'Feature', geometry: { type: 'Polygon', coordinates: 3 } }), { instanceOf: TypeError, message: /feature\.geometry\.coordinates/ });
});

test('points and lines are skipped; a bare Polygon is one unnamed annotation', (t) => {
  t.is(parseAnnotations(collection([{ type: 'Point', coordinates: [1, 2] }])).length, 0);
  const [p] = parseAnnotations({ type: 'Polygon', coordinates: [square(0, 0, 10)] });
  t.is(p!.label, 'annotation');
});

test('a polygon of 200,000 vertices is parsed and its area is exact (no call-stack overflow)', (t) => {
  // A regular 200,000-gon inscribed in a circle of radius 1000 around (2000, 2000).
  const n = 200_000, ring: number[][] = [];
  for (let i = 0; i < n; i++) ring.push([2000 + 1000 * Math.cos((2 * Math.PI * i) / n), 2000 + 1000 * Math.sin((2 * Math.PI * i) / n)]);
  ring.push(ring[0]!);
  const [p] = parseAnnotations(collection([{ coordinates: [ring] }]));
  const { minX, minY, maxX, maxY } = p!.bbox;
  t.true([minX - 1000, minY - 1000, maxX - 3000, maxY - 3000].every((d) => Math.abs(d) < 1e-9), JSON.stringify(p!.bbox));
  const expected = (n / 2) * 1000 ** 2 * Math.sin((2 * Math.PI) / n);
  t.true(Math.abs(polygonRectArea(p!, { x: 0, y: 0, width: 4000, height: 4000 }) - expected) < 1e-3);
});

test('GeometryCollections nested 100,000 deep are refused with a RangeError naming the feature', (t) => {
  let g: unknown = { type: 'Polygon', coordinates: [square(0, 0, 10)] };
  for (let i = 0; i < 100_000; i++) g = { type: 'GeometryCollection', geometries: [g] };
  const features = [
    { type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [square(0, 0, 10)] } },
    { type: 'Feature', properties: {}, geometry: g },
  ];
  t.throws(() => parseAnnotations({ type: 'FeatureCollection', features }), {
    instanceOf: RangeError,
    message: /nested at most 64 deep for features\[1\]\.geometry/,
  });
});

test('GeometryCollections nested a few deep keep their polygons in document order', (t) => {
  const inner = { type: 'GeometryCollection', geometries: [{ type: 'Polygon', coordinates: [square(0, 0, 10)] }, { type: 'Polygon', coordinates: [square(20, 0, 5)] }] };
  const polygons = parseAnnotations({ type: 'GeometryCollection', geometries: [inner, { type: 'Polygon', coordinates: [square(40, 0, 2)] }] });
  t.deepEqual(polygons.map((p) => p.bbox.minX), [0, 20, 40]);
});
