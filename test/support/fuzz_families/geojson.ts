/**
 * Fuzz family 'geojson': mutated annotation files (QuPath-style collections,
 * holes, MultiPolygons, nested GeometryCollections, and the tumour regions
 * `histoflow synth slide` writes) read as the tiler reads them, then used to
 * label a grid of tiles: every coverage must stay a number in [0, 1].
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { labelTile, parseAnnotations } from '../../../src/tiling/annotations.js';
import {
  RawJson, cloneJson, interestingJsonValue, mutateJsonText, mutateJsonTree, replaceAt, toJsonText, type FuzzRng,
} from '../fuzz.js';
import { apiVerdict, cliVerdict, WrongResult, type CaseContext, type FuzzCase, type FuzzFamily } from '../fuzz_verdict.js';
import { CLI } from '../helpers.js';

const exec = promisify(execFile);

const square = (x: number, y: number, s: number) => [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]];

const SEEDS: Record<string, unknown> = {
  qupath: {
    type: 'FeatureCollection',
    features: [
      { type: 'Feature', properties: { classification: { name: 'Tumor', color: [200, 0, 0] }, isLocked: false },
        geometry: { type: 'Polygon', coordinates: [square(100, 100, 400), square(200, 200, 50)] } },
      { type: 'Feature', properties: { classification: { name: 'Stroma' } },
        geometry: { type: 'Polygon', coordinates: [[[0, 0], [300, 20], [150, 350], [0, 0]]] } },
      { type: 'Feature', properties: null, geometry: null },
    ],
  },
  multi: {
    type: 'Feature', properties: { label: 'Necrosis' },
    geometry: { type: 'MultiPolygon', coordinates: [[square(0, 0, 128)], [square(256, 256, 64), square(270, 270, 8)]] },
  },
  collection: {
    type: 'GeometryCollection',
    geometries: [
      { type: 'Point', coordinates: [5, 5] },
      { type: 'GeometryCollection', geometries: [{ type: 'Polygon', coordinates: [square(10, 10, 90)] }] },
    ],
  },
  bare: { type: 'Polygon', coordinates: [[[0.5, 0.5], [511.5, 3], [400, 511.25], [0.5, 0.5]]] },
  list: [{ type: 'Feature', properties: { name: 'Lymphocytes' }, geometry: { type: 'Polygon', coordinates: [square(64, 0, 64)] } }],
};

async function prepare(seeds: string): Promise<void> {
  for (const [name, value] of Object.entries(SEEDS)) await writeFile(join(seeds, `${name}.geojson`), JSON.stringify(value));
  // The ground truth of a synthetic slide: tumour regions as GeoJSON polygons.
  await exec(process.execPath, [CLI, 'synth', 'slide', '--out', join(seeds, 'synth.tif'), '--size', '512', '--workers', '0', '--json']);
  const meta = JSON.parse(await readFile(join(seeds, 'synth.json'), 'utf8')) as Record<string, unknown>;
  const found = Object.values(meta).find((v) => v !== null && typeof v === 'object' && (v as { type?: unknown }).type === 'FeatureCollection');
  await writeFile(join(seeds, 'synth.geojson'), JSON.stringify(found ?? SEEDS.qupath));
}

/** Paths to every [x, y] position of a GeoJSON tree. */
function positions(value: unknown, path: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  if (out.length > 2000) return out;
  if (Array.isArray(value)) {
    if (value.length >= 2 && typeof value[0] === 'number' && typeof value[1] === 'number') out.push(path);
    else value.forEach((v, i) => positions(v, [...path, i], out));
  } else if (value !== null && typeof value === 'object' && !(value instanceof RawJson)) {
    for (const [k, v] of Object.entries(value)) positions(v, [...path, k], out);
  }
  return out;
}

/** Paths to every geometry object (a node with a `type` that is a geometry's). */
function geometries(value: unknown, path: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  if (Array.isArray(value)) value.forEach((v, i) => geometries(v, [...path, i], out));
  else if (value !== null && typeof value === 'object' && !(value instanceof RawJson)) {
    const type = (value as { type?: unknown }).type;
    if (typeof type === 'string' && type !== 'Feature' && type !== 'FeatureCollection') out.push(path);
    for (const [k, v] of Object.entries(value)) geometries(v, [...path, k], out);
  }
  return out;
}

const HOSTILE_NUMBERS = [1e308, -1e308, new RawJson('1e999'), new RawJson('-1e999'), 2 ** 53 + 1, -(2 ** 31), 5e-324, 'NaN', null, '12', true, [1, 2]];

/** A circle of n positions (closed), radius r. */
function circle(n: number, r: number, cx = 256, cy = 256): number[][] {
  const ring = Array.from({ length: n }, (_, i) => [cx + r * Math.cos((2 * Math.PI * i) / n), cy + r * Math.sin((2 * Math.PI * i) / n)]);
  ring.push([...ring[0]!]);
  return ring;
}

function mutateGeoJson(rng: FuzzRng, doc: unknown): { value: unknown; what: string } {
  const root = cloneJson(doc);
  const kind = rng.int(8);
  const pos = positions(root);
  if (kind <= 1 && pos.length > 0) {
    const p = rng.pick(pos), axis = rng.int(2), v = rng.pick(HOSTILE_NUMBERS);
    replaceAt(root, p, (old) => (old as unknown[]).map((c, i) => (i === axis ? v : c)));
    return { value: root, what: `position ${p.join('.')}[${axis}] := ${toJsonText(v)}` };
  }
  const geos = geometries(root);
  if (geos.length === 0) return mutateJsonTree(rng, root);
  const g = rng.pick(geos);
  switch (kind) {
    case 2: {
      const n = rng.pick([3, 1000, 200_000]), r = rng.pick([1, 200, 1e12, 1e300]);
      replaceAt(root, g, () => ({ type: 'Polygon', coordinates: [circle(n, r)] }));
      return { value: root, what: `${g.join('.')} := a ${n}-gon of radius ${r}` };
    }
    case 3: {
      const depth = rng.pick([10, 63, 64, 65, 1000, 50_000]);
      let text = toJsonText({ type: 'Polygon', coordinates: [square(0, 0, 100)] });
      // Built as text: a tree this deep would overflow a recursive serializer.
      text = `${'{"type":"GeometryCollection","geometries":['.repeat(depth)}${text}${']}'.repeat(depth)}`;
      replaceAt(root, g, () => new RawJson(text));
      return { value: root, what: `${g.join('.')} := GeometryCollections nested ${depth} deep` };
    }
    case 4: {
      const type = rng.pick(['Polygon', 'MultiPolygon', 'GeometryCollection', 'Feature', 'FeatureCollection', 'LineString', 'Circle', '', 7]);
      replaceAt(root, g, (old) => ({ ...(old as object), type }));
      return { value: root, what: `${g.join('.')}.type := ${JSON.stringify(type)}` };
    }
    case 5: {
      const n = rng.pick([1000, 30_000]);
      const features = Array.from({ length: n }, (_, i) => ({ type: 'Feature', properties: { name: `f${i % 7}` }, geometry: { type: 'Polygon', coordinates: [square((i * 13) % 500, (i * 7) % 500, 9)] } }));
      return { value: { type: 'FeatureCollection', features }, what: `${n} features` };
    }
    case 6: {
      const v = rng.pick<unknown>([{ classification: { name: rng.pick(['__proto__', 'constructor', '', 42]) } }, { label: { toString: 1 } }, 'props', [], { name: 'x'.repeat(10_000) }]);
      const feature = rng.pick([...geos.map((p) => p.slice(0, -1)), []]);
      replaceAt(root, [...feature, 'properties'], () => v);
      return { value: root, what: `properties of ${feature.join('.') || '(root)'} := ${toJsonText(v).slice(0, 60)}` };
    }
    default: {
      const v = interestingJsonValue(rng);
      replaceAt(root, [...g, rng.pick(['coordinates', 'geometries'])], () => v);
      return { value: root, what: `${g.join('.')}'s coordinates/geometries := ${toJsonText(v).slice(0, 60)}` };
    }
  }
}

async function make({ rng, dir, seeds }: CaseContext): Promise<FuzzCase> {
  const name = rng.pick([...Object.keys(SEEDS), 'synth']);
  const doc = JSON.parse(await readFile(join(seeds, `${name}.geojson`), 'utf8')) as unknown;
  let text: string, what: string;
  const r = rng.float();
  if (r < 0.55) ({ value: text, what } = ((m) => ({ value: toJsonText(m.value), what: m.what }))(mutateGeoJson(rng, doc)));
  else if (r < 0.9) ({ value: text, what } = ((m) => ({ value: toJsonText(m.value), what: m.what }))(mutateJsonTree(rng, doc)));
  else ({ text, what } = mutateJsonText(rng, JSON.stringify(doc)));
  const path = join(dir, 'annotations.geojson');
  await writeFile(path, text);
  if (rng.chance(0.1)) {
    // The tiler with these annotations on a synthetic slide: a clear error or labelled tiles in out/.
    await writeFile(join(dir, 'slide.tif'), await readFile(join(seeds, 'synth.tif')));
    const args = ['tile', join(dir, 'slide.tif'), '--out', join(dir, 'out'), '--size', '128', '--min-tissue', '0', '--thumbnail', '128',
      '--annotations', path, '--format', 'jpeg', '--json'];
    return { what: `${name}: ${what}; CLI tile --annotations`, run: () => cliVerdict(args, dir, () => null, 30_000) };
  }
  const minCoverage = rng.pick([0, 0.5, 1]);
  return {
    what: `${name}: ${what}`,
    run: () => apiVerdict(async () => {
      // As the tiler reads an annotations file (src/tiling/tile.ts loadAnnotations).
      let json: unknown;
      try {
        json = JSON.parse(await readFile(path, 'utf8'));
      } catch (e) {
        throw new RangeError(`Expected GeoJSON in ${path} but it is not JSON: ${(e as Error).message}`);
      }
      const polygons = parseAnnotations(json);
      const rects = [{ x: 0, y: 0, width: 256, height: 256 }, { x: 256, y: 256, width: 256, height: 256 }, { x: 96, y: 96, width: 1, height: 1 }];
      for (const p of polygons.slice(0, 4)) {
        const { minX, minY, maxX, maxY } = p.bbox;
        if (Number.isFinite(minX) && Number.isFinite(maxX) && Number.isFinite(minY) && Number.isFinite(maxY)) {
          rects.push({ x: minX, y: minY, width: Math.max(1, (maxX - minX) / 2), height: Math.max(1, (maxY - minY) / 2) });
        }
      }
      for (const rect of rects) {
        const l = labelTile(polygons, rect, { minCoverage, background: 'background' });
        const all = [l.coverage, ...Object.values(l.coverages)];
        if (all.some((c) => !(c >= 0 && c <= 1))) {
          throw new WrongResult(`labelTile on ${JSON.stringify(rect)} gave coverages ${JSON.stringify(l.coverages)} (chosen ${l.coverage})`);
        }
        if (l.label !== null && typeof l.label !== 'string') throw new WrongResult(`labelTile gave label ${String(l.label)}`);
      }
    }),
  };
}

export const geojsonFamily: FuzzFamily = { prepare, make };
