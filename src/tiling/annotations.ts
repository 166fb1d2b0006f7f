/**
 * Annotations → labelled polygons, one parsed form for every source: GeoJSON
 * (QuPath's FeatureCollection or array of features, `classification.name`,
 * MultiPolygon with holes; hand-written) here, ASAP XML in asap.ts.
 * Coordinates are level-0 pixels. The label 'exclusion' (ASAP's Camelyon
 * exclusion groups, QuPath's "Ignore*" or "Exclusion" class) marks regions
 * subtracted from every label. A tile's coverage by a label is the exact area
 * of (its polygons ∩ the tile) / tile area (annotation_index.ts): each ring is
 * clipped against the tile rectangle (Sutherland–Hodgman; exact for any simple
 * ring since the clip window is convex) and holes are subtracted.
 */
import Flatbush from 'flatbush';
import polygonClipping, { type MultiPolygon, type Polygon as ClipPolygon } from 'polygon-clipping';

import { checkNumber, checkObject, invalidRange, invalidType } from '../errors.js';
import type { Rect } from './grid.js';

export type Point = readonly [number, number];
/** One polygon: rings[0] the outline, rings[1..] its holes. */
export interface AnnotationPolygon {
  label: string;
  rings: Point[][];
  /** Bounding box of the outline, for quick rejection. */
  bbox: { minX: number; minY: number; maxX: number; maxY: number };
}

/** The label given to a feature without classification.name, label or name. */
export const UNNAMED_LABEL = 'annotation';

/** The label of exclusion regions: subtracted from every other label's coverage, never a tile's label. */
export const EXCLUSION_LABEL = 'exclusion';

/** Class names that QuPath and ASAP users give exclusion regions. */
const EXCLUSION_NAMES = new Set(['exclusion', 'ignore', 'ignore*']);

/** A label as parsed: exclusion names become EXCLUSION_LABEL. */
export function normalizeLabel(name: string): string {
  return EXCLUSION_NAMES.has(name.trim().toLowerCase()) ? EXCLUSION_LABEL : name;
}

/**
 * GeometryCollections nested deeper than this are refused: RFC 7946 §3.1.8
 * advises against nesting them at all, and no annotation tool writes more
 * than a level or two, so a deeper one is a broken or hostile file.
 */
export const MAX_GEOMETRY_DEPTH = 64;

/**
 * Coordinates are level-0 pixels, and no slide is wider than 2^24 px: a
 * position beyond ±2^40 is a broken file. The bound also keeps the coverage
 * arithmetic finite (a shoelace term of 1e300-px coordinates overflows to
 * Infinity and a coverage became NaN).
 */
export const MAX_COORDINATE = 2 ** 40;

function checkRing(path: string, value: unknown): Point[] {
  if (!Array.isArray(value)) throw invalidType(path, 'an array of [x, y] positions', value);
  if (value.length < 4) throw invalidRange(path, 'a closed ring of at least 4 positions', value);
  const ring = value.map((p, i): Point => {
    if (!Array.isArray(p) || p.length < 2) throw invalidType(`${path}[${i}]`, 'an [x, y] position', p);
    return [
      checkNumber(`${path}[${i}][0]`, p[0], -MAX_COORDINATE, MAX_COORDINATE),
      checkNumber(`${path}[${i}][1]`, p[1], -MAX_COORDINATE, MAX_COORDINATE),
    ];
  });
  const first = ring[0]!, last = ring[ring.length - 1]!;
  if (first[0] !== last[0] || first[1] !== last[1]) throw invalidRange(path, 'a closed ring (last position = first)', value);
  return ring.slice(0, -1);
}

function polygon(path: string, coordinates: unknown, label: string): AnnotationPolygon {
  if (!Array.isArray(coordinates) || coordinates.length === 0) throw invalidType(path, 'an array of linear rings', coordinates);
  return polygonOf(label, coordinates.map((r, i) => checkRing(`${path}[${i}]`, r)));
}

/** A labelled polygon from open rings (rings[0] the outline, the others holes), with its bounding box. */
export function polygonOf(label: string, rings: Point[][]): AnnotationPolygon {
  // A loop, not Math.min(...xs): spreading a ring of ~10^5 positions overflows the call stack.
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const [x, y] of rings[0]!) {
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  return { label, rings, bbox: { minX, minY, maxX, maxY } };
}

function featureLabel(path: string, properties: unknown): string {
  if (properties === undefined || properties === null) return UNNAMED_LABEL;
  const p = checkObject(`${path}.properties`, properties);
  const classification = p.classification;
  if (classification !== null && typeof classification === 'object' && typeof (classification as { name?: unknown }).name === 'string') {
    return normalizeLabel((classification as { name: string }).name);
  }
  if (typeof p.label === 'string') return normalizeLabel(p.label);
  if (typeof p.name === 'string') return normalizeLabel(p.name);
  return UNNAMED_LABEL;
}

/**
 * Appends the polygons of a geometry in document order. GeometryCollections
 * are walked with an explicit stack, not recursion, and refused beyond
 * MAX_GEOMETRY_DEPTH (the error names the feature's geometry, not the deep path).
 */
function geometry(path: string, value: unknown, label: string, out: AnnotationPolygon[]): void {
  const stack: Array<{ path: string; value: unknown; depth: number }> = [{ path, value, depth: 0 }];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const g = checkObject(item.path, item.value);
    switch (g.type) {
      case 'Polygon':
        out.push(polygon(`${item.path}.coordinates`, g.coordinates, label));
        break;
      case 'MultiPolygon':
        if (!Array.isArray(g.coordinates)) throw invalidType(`${item.path}.coordinates`, 'an array of polygons', g.coordinates);
        g.coordinates.forEach((c, i) => out.push(polygon(`${item!.path}.coordinates[${i}]`, c, label)));
        break;
      case 'GeometryCollection': {
        if (!Array.isArray(g.geometries)) throw invalidType(`${item.path}.geometries`, 'an array of geometries', g.geometries);
        if (item.depth >= MAX_GEOMETRY_DEPTH) {
          throw new RangeError(`Expected GeometryCollections nested at most ${MAX_GEOMETRY_DEPTH} deep for ${path} but received deeper nesting`);
        }
        for (let i = g.geometries.length - 1; i >= 0; i--) {
          stack.push({ path: `${item.path}.geometries[${i}]`, value: g.geometries[i], depth: item.depth + 1 });
        }
        break;
      }
      case 'Point': case 'MultiPoint': case 'LineString': case 'MultiLineString':
        break; // no area: cannot cover a tile
      default:
        throw invalidRange(`${item.path}.type`, 'a GeoJSON geometry type (Polygon, MultiPolygon, …)', g.type);
    }
  }
}

function feature(path: string, value: unknown, out: AnnotationPolygon[]): void {
  const f = checkObject(path, value);
  if (f.type !== 'Feature') throw invalidRange(`${path}.type`, "'Feature'", f.type);
  if (f.geometry === null) return;
  geometry(`${path}.geometry`, f.geometry, featureLabel(path, f.properties), out);
}

/** Validates GeoJSON (FeatureCollection, Feature, an array of Features, or a bare geometry) into labelled polygons. */
export function parseAnnotations(geojson: unknown): AnnotationPolygon[] {
  const out: AnnotationPolygon[] = [];
  if (Array.isArray(geojson)) {
    geojson.forEach((f, i) => feature(`features[${i}]`, f, out));
    return out;
  }
  const g = checkObject('geojson', geojson);
  if (g.type === 'FeatureCollection') {
    if (!Array.isArray(g.features)) throw invalidType('features', 'an array of Features', g.features);
    g.features.forEach((f, i) => feature(`features[${i}]`, f, out));
  } else if (g.type === 'Feature') {
    feature('feature', g, out);
  } else {
    geometry('geometry', g, UNNAMED_LABEL, out);
  }
  return out;
}

/** Shoelace area (absolute). */
export function ringArea(ring: readonly Point[]): number {
  let s = 0;
  for (let i = 0; i < ring.length; i++) {
    const [x1, y1] = ring[i]!, [x2, y2] = ring[(i + 1) % ring.length]!;
    s += x1 * y2 - x2 * y1;
  }
  return Math.abs(s) / 2;
}

/** Sutherland–Hodgman: the ring clipped to an axis-aligned rectangle. */
export function clipRing(ring: readonly Point[], r: Rect): Point[] {
  const edges: Array<[(p: Point) => boolean, (a: Point, b: Point) => Point]> = [
    [(p) => p[0] >= r.x, (a, b) => cutX(a, b, r.x)],
    [(p) => p[0] <= r.x + r.width, (a, b) => cutX(a, b, r.x + r.width)],
    [(p) => p[1] >= r.y, (a, b) => cutY(a, b, r.y)],
    [(p) => p[1] <= r.y + r.height, (a, b) => cutY(a, b, r.y + r.height)],
  ];
  let poly: Point[] = ring.slice();
  for (const [inside, cut] of edges) {
    if (poly.length === 0) break;
    const next: Point[] = [];
    for (let i = 0; i < poly.length; i++) {
      const cur = poly[i]!, prev = poly[(i + poly.length - 1) % poly.length]!;
      if (inside(cur)) {
        if (!inside(prev)) next.push(cut(prev, cur));
        next.push(cur);
      } else if (inside(prev)) {
        next.push(cut(prev, cur));
      }
    }
    poly = next;
  }
  return poly;
}

function cutX(a: Point, b: Point, x: number): Point {
  const t = (x - a[0]) / (b[0] - a[0]);
  return [x, a[1] + t * (b[1] - a[1])];
}
function cutY(a: Point, b: Point, y: number): Point {
  const t = (y - a[1]) / (b[1] - a[1]);
  return [a[0] + t * (b[0] - a[0]), y];
}

/** Area of polygon ∩ rectangle: the clipped outline minus the clipped holes. */
export function polygonRectArea(p: AnnotationPolygon, r: Rect): number {
  if (p.bbox.maxX <= r.x || p.bbox.minX >= r.x + r.width || p.bbox.maxY <= r.y || p.bbox.minY >= r.y + r.height) return 0;
  let area = ringArea(clipRing(p.rings[0]!, r));
  for (let i = 1; i < p.rings.length; i++) area -= ringArea(clipRing(p.rings[i]!, r));
  return Math.max(0, area);
}

// ---- Coverage -----------------------------------------------------------------------
// - A spatial index (flatbush, over each polygon's bounding box) gives each
//   tile only the polygons near it.
// - One polygon of a label in a tile: its clipped area minus its clipped
//   holes. Several polygons of one label, or an exclusion region in the tile:
//   the area of the union of the label's pieces minus the union of the
//   exclusion pieces (polygon-clipping), so overlapping polygons of one label
//   are not counted twice.
// - Outlines of many vertices (QuPath pixel-classifier exports reach 300,000)
//   are clipped once per block of tiles and each tile clips that block's
//   piece, so a tile costs the vertices near it, not the whole outline.

/** Outlines with more vertices than this are clipped per block first. */
const LARGE_RING = 4096;
/** A block is this many tiles on a side. */
const BLOCK_TILES = 16;

function overlaps(p: AnnotationPolygon, r: Rect): boolean {
  return p.bbox.maxX > r.x && p.bbox.minX < r.x + r.width && p.bbox.maxY > r.y && p.bbox.minY < r.y + r.height;
}

function multiPolygonArea(m: MultiPolygon): number {
  let area = 0;
  for (const polygon of m) {
    polygon.forEach((ring, i) => {
      const a = ringArea(ring as unknown as Point[]);
      area += i === 0 ? a : -a;
    });
  }
  return area;
}

export class AnnotationIndex {
  private readonly index: Flatbush | null;
  /** Per large polygon: block key → its rings clipped to that block. */
  private readonly blocks = new Map<AnnotationPolygon, Map<string, Point[][]>>();
  private blockSize = 0;

  /** The polygons, in the order given (rasterizers read them: src/tiling/masks.ts). */
  constructor(readonly polygons: readonly AnnotationPolygon[]) {
    if (polygons.length === 0) {
      this.index = null;
      return;
    }
    this.index = new Flatbush(polygons.length);
    for (const p of polygons) this.index.add(p.bbox.minX, p.bbox.minY, p.bbox.maxX, p.bbox.maxY);
    this.index.finish();
  }

  /** The labels touching the rectangle, each with the fraction of it covered (0..1, exclusions subtracted). */
  coverage(r: Rect): Map<string, number> {
    const coverage = new Map<string, number>();
    if (!this.index || r.width <= 0 || r.height <= 0) return coverage;
    const byLabel = new Map<string, AnnotationPolygon[]>();
    for (const i of this.index.search(r.x, r.y, r.x + r.width, r.y + r.height)) {
      const p = this.polygons[i]!;
      if (!overlaps(p, r)) continue;
      const list = byLabel.get(p.label);
      if (list) list.push(p);
      else byLabel.set(p.label, [p]);
    }
    const exclusions = byLabel.get(EXCLUSION_LABEL) ?? [];
    byLabel.delete(EXCLUSION_LABEL);
    const excluded = exclusions.map((p) => this.clipped(p, r)).filter((g) => g.length > 0);
    const tileArea = r.width * r.height;
    for (const [label, list] of byLabel) {
      const pieces = list.map((p) => this.clipped(p, r)).filter((g) => g.length > 0);
      let area: number;
      if (pieces.length === 0) continue;
      if (pieces.length === 1 && excluded.length === 0) {
        const [outline, ...holes] = pieces[0]!;
        area = ringArea(outline as unknown as Point[]) - holes.reduce((s, h) => s + ringArea(h as unknown as Point[]), 0);
      } else {
        const union = polygonClipping.union(pieces[0]!, ...pieces.slice(1));
        area = multiPolygonArea(excluded.length === 0 ? union : polygonClipping.difference(union, ...excluded));
      }
      if (area > 0) coverage.set(label, Math.min(1, area / tileArea));
    }
    return coverage;
  }

  /** The polygon ∩ the rectangle as polygon-clipping's form: [outline, ...holes], empty when nothing is left. */
  private clipped(p: AnnotationPolygon, r: Rect): ClipPolygon {
    const rings = this.near(p, r);
    const out: ClipPolygon = [];
    for (let i = 0; i < rings.length; i++) {
      const ring = clipRing(rings[i]!, r);
      if (ring.length < 3 || ringArea(ring) === 0) {
        if (i === 0) return [];
        continue;
      }
      out.push(ring.map(([x, y]) => [x, y] as [number, number]));
    }
    return out;
  }

  /** The polygon's rings, or for a large outline its rings clipped to the block that holds r (when one does). */
  private near(p: AnnotationPolygon, r: Rect): readonly (readonly Point[])[] {
    if (p.rings[0]!.length <= LARGE_RING) return p.rings;
    if (this.blockSize === 0) this.blockSize = BLOCK_TILES * Math.max(r.width, r.height);
    const b = this.blockSize;
    const bx = Math.floor(r.x / b), by = Math.floor(r.y / b);
    if (r.x + r.width > (bx + 1) * b || r.y + r.height > (by + 1) * b) return p.rings;
    let cache = this.blocks.get(p);
    if (!cache) this.blocks.set(p, (cache = new Map()));
    const key = `${bx},${by}`;
    let rings = cache.get(key);
    if (!rings) {
      const block: Rect = { x: bx * b, y: by * b, width: b, height: b };
      rings = p.rings.map((ring) => clipRing(ring, block));
      cache.set(key, rings);
    }
    return rings;
  }
}

/** Polygons, or their index (build it once: new AnnotationIndex(polygons), for many tiles). */
export type Annotations = readonly AnnotationPolygon[] | AnnotationIndex;

function indexOf(annotations: Annotations): AnnotationIndex {
  return annotations instanceof AnnotationIndex ? annotations : new AnnotationIndex(annotations);
}

/** Fraction of the rectangle covered by each label: overlapping polygons of a label counted once, exclusions subtracted. */
export function tileCoverage(annotations: Annotations, r: Rect): Map<string, number> {
  return indexOf(annotations).coverage(r);
}

export interface TileLabelOptions {
  /** A label needs at least this coverage (0..1) to name the tile. Default 0.5. */
  minCoverage?: number;
  /** The label of a tile no label covers enough. Default null. */
  background?: string | null;
}

export interface TileLabel {
  label: string | null;
  /** Coverage of the chosen label (0 for background). */
  coverage: number;
  /** Coverage by every label that touches the tile. */
  coverages: Record<string, number>;
}

/** The tile's label: the label covering most of it, if it covers ≥ minCoverage. */
export function labelTile(annotations: Annotations, r: Rect, options: TileLabelOptions = {}): TileLabel {
  const o = checkObject('options', options);
  const minCoverage = o.minCoverage === undefined ? 0.5 : checkNumber('options.minCoverage', o.minCoverage, 0, 1);
  const background = o.background === undefined ? null : o.background;
  if (background !== null && typeof background !== 'string') throw invalidType('options.background', 'a string or null', background);
  const coverage = tileCoverage(annotations, r);
  let label: string | null = null, best = 0;
  for (const [name, c] of coverage) {
    if (c > best) {
      best = c;
      label = name;
    }
  }
  const coverages = Object.fromEntries(coverage);
  if (label === null || best < minCoverage || best === 0) return { label: background, coverage: 0, coverages };
  return { label, coverage: best, coverages };
}
