/**
 * GeoJSON annotations (QuPath, ASAP via conversion, hand-written) → tile labels.
 * Coordinates are level-0 pixels. A tile's coverage by a label is the exact area
 * of (its polygons ∩ the tile) / tile area: each ring is clipped against the tile
 * rectangle (Sutherland–Hodgman; exact for any simple ring since the clip window
 * is convex) and holes are subtracted.
 */
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

/**
 * GeometryCollections nested deeper than this are refused: RFC 7946 §3.1.8
 * advises against nesting them at all, and no annotation tool writes more
 * than a level or two, so a deeper one is a broken or hostile file.
 */
export const MAX_GEOMETRY_DEPTH = 64;

function checkRing(path: string, value: unknown): Point[] {
  if (!Array.isArray(value)) throw invalidType(path, 'an array of [x, y] positions', value);
  if (value.length < 4) throw invalidRange(path, 'a closed ring of at least 4 positions', value);
  const ring = value.map((p, i): Point => {
    if (!Array.isArray(p) || p.length < 2) throw invalidType(`${path}[${i}]`, 'an [x, y] position', p);
    return [checkNumber(`${path}[${i}][0]`, p[0]), checkNumber(`${path}[${i}][1]`, p[1])];
  });
  const first = ring[0]!, last = ring[ring.length - 1]!;
  if (first[0] !== last[0] || first[1] !== last[1]) throw invalidRange(path, 'a closed ring (last position = first)', value);
  return ring.slice(0, -1);
}

function polygon(path: string, coordinates: unknown, label: string): AnnotationPolygon {
  if (!Array.isArray(coordinates) || coordinates.length === 0) throw invalidType(path, 'an array of linear rings', coordinates);
  const rings = coordinates.map((r, i) => checkRing(`${path}[${i}]`, r));
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
    return (classification as { name: string }).name;
  }
  if (typeof p.label === 'string') return p.label;
  if (typeof p.name === 'string') return p.name;
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

/** Fraction of the rectangle covered by each label (capped at 1 where a label's polygons overlap). */
export function tileCoverage(polygons: readonly AnnotationPolygon[], r: Rect): Map<string, number> {
  const coverage = new Map<string, number>();
  const area = r.width * r.height;
  for (const p of polygons) {
    const a = polygonRectArea(p, r);
    if (a > 0) coverage.set(p.label, Math.min(1, (coverage.get(p.label) ?? 0) + a / area));
  }
  return coverage;
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
export function labelTile(polygons: readonly AnnotationPolygon[], r: Rect, options: TileLabelOptions = {}): TileLabel {
  const o = checkObject('options', options);
  const minCoverage = o.minCoverage === undefined ? 0.5 : checkNumber('options.minCoverage', o.minCoverage, 0, 1);
  const background = o.background === undefined ? null : o.background;
  if (background !== null && typeof background !== 'string') throw invalidType('options.background', 'a string or null', background);
  const coverage = tileCoverage(polygons, r);
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
