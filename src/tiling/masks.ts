/**
 * Label masks from annotations: a tile's polygons rasterized to one class
 * index per pixel, for segmentation training.
 *
 *   const labels = maskLabels(polygons);   // ['background', 'stroma', 'tumour']
 *   const mask = rasterizeLabels(polygons, { x, y, width: side, height: side }, 96, 96, labels);
 *
 * Rule: a pixel takes the label of the polygons that contain its centre,
 * mapped to level 0 as rect.x + (j + 0.5)·rect.width/width (and so for y), so
 * a label's pixel count estimates its exact coverage (annotations.ts,
 * tileCoverage) to within the pixels its outline crosses. Each polygon is
 * filled even-odd over its own rings (outline and holes); polygons of one
 * label are OR'ed (their union, as tileCoverage counts it); where labels
 * overlap, the one later in `labels` wins; exclusion regions (annotations.ts,
 * EXCLUSION_LABEL) are MASK_IGNORE whatever lies beneath, so training can
 * leave them out, as coverage subtracts them. Polygons of a label not in
 * `labels` are left out (background); an annotation labelled 'background'
 * paints background.
 *
 * Scanline fill: for each polygon near the tile, each edge adds its crossings
 * with the rows of pixel centres it spans (half-open in y, so a vertex on a
 * row is counted once), each row's crossings are sorted and the pixels whose
 * centres lie between pairs are filled with one TypedArray.fill. A tile costs
 * the edges near it plus its filled spans, never a point-in-polygon test per
 * pixel. The edges of every polygon are bucketed by y once (cached per
 * annotations object), so an outline of 10^5 vertices costs a tile only the
 * edges in the tile's band of rows.
 */
import Flatbush from 'flatbush';

import { checkInteger, checkNumber, checkObject, invalidRange, invalidType } from '../errors.js';
import { AnnotationIndex, EXCLUSION_LABEL, type AnnotationPolygon, type Annotations } from './annotations.js';
import type { Rect } from './grid.js';

/** The mask value of excluded pixels (exclusion regions): a loss ignores them. */
export const MASK_IGNORE = 255;
/** labels[0] of every mask: value 0, no annotation. */
export const MASK_BACKGROUND = 'background';
/** Mask values 0..254 name labels (255 is MASK_IGNORE): background and at most 254 annotation labels. */
export const MAX_MASK_LABELS = 255;

function polygonsOf(annotations: Annotations): readonly AnnotationPolygon[] {
  if (annotations instanceof AnnotationIndex) return annotations.polygons;
  if (!Array.isArray(annotations)) throw invalidType('annotations', 'an array of annotation polygons or an AnnotationIndex', annotations);
  return annotations;
}

/**
 * The labels of masks for these annotations, in their fixed order:
 * ['background', ...the distinct labels sorted], exclusion left out (it is
 * MASK_IGNORE). More than 254 labels is a RangeError.
 */
export function maskLabels(annotations: Annotations): string[] {
  const names = new Set<string>();
  for (const p of polygonsOf(annotations)) if (p.label !== EXCLUSION_LABEL && p.label !== MASK_BACKGROUND) names.add(p.label);
  if (names.size > MAX_MASK_LABELS - 1) {
    throw new RangeError(
      `Expected at most ${MAX_MASK_LABELS - 1} annotation labels for label masks (values 1..${MAX_MASK_LABELS - 1}; ` +
        `0 is background, ${MASK_IGNORE} excluded) but received ${names.size}`,
    );
  }
  return [MASK_BACKGROUND, ...[...names].sort()];
}

/** Validates a mask label list: 'background' first, distinct non-empty strings, no exclusion, at most 255. */
export function checkMaskLabels(name: string, value: unknown): string[] {
  if (!Array.isArray(value)) throw invalidType(name, "an array of label names starting with 'background'", value);
  if (value.length === 0 || value[0] !== MASK_BACKGROUND) throw invalidRange(`${name}[0]`, `'${MASK_BACKGROUND}'`, value[0]);
  if (value.length > MAX_MASK_LABELS) {
    throw new RangeError(`Expected at most ${MAX_MASK_LABELS} labels for ${name} (mask values 0..${MAX_MASK_LABELS - 1}; ${MASK_IGNORE} is ignore) but received ${value.length}`);
  }
  const seen = new Set<string>();
  value.forEach((l, i) => {
    if (typeof l !== 'string' || l.length === 0) throw invalidType(`${name}[${i}]`, 'a non-empty string', l);
    if (l === EXCLUSION_LABEL) throw invalidRange(`${name}[${i}]`, `a label other than '${EXCLUSION_LABEL}' (exclusion regions are ${MASK_IGNORE})`, l);
    if (seen.has(l)) throw invalidRange(`${name}[${i}]`, 'distinct labels', l);
    seen.add(l);
  });
  return value as string[];
}

// ---- Edge tables ------------------------------------------------------------------

/** A polygon's non-horizontal edges, ya < yb, bucketed by y. */
interface EdgeTable {
  /** xa, ya, xb, yb per edge. */
  edges: Float64Array;
  minY: number;
  bucketHeight: number;
  buckets: number;
  /** CSR: the edges of bucket b are ids[start[b] .. start[b + 1]). */
  start: Int32Array;
  ids: Int32Array;
}

/** About this many edges per bucket. */
const EDGES_PER_BUCKET = 8;
const MAX_BUCKETS = 1 << 14;

function edgeTable(p: AnnotationPolygon): EdgeTable {
  let count = 0;
  for (const ring of p.rings) count += ring.length;
  const edges = new Float64Array(count * 4);
  let n = 0;
  for (const ring of p.rings) {
    for (let i = 0; i < ring.length; i++) {
      const a = ring[i]!, b = ring[(i + 1) % ring.length]!;
      if (a[1] === b[1]) continue; // horizontal: never crosses a row under the half-open rule
      const [lo, hi] = a[1] < b[1] ? [a, b] : [b, a];
      edges[n * 4] = lo[0];
      edges[n * 4 + 1] = lo[1];
      edges[n * 4 + 2] = hi[0];
      edges[n * 4 + 3] = hi[1];
      n++;
    }
  }
  const minY = p.bbox.minY, span = p.bbox.maxY - p.bbox.minY;
  const buckets = Math.max(1, Math.min(MAX_BUCKETS, Math.ceil(n / EDGES_PER_BUCKET)));
  const bucketHeight = span > 0 ? span / buckets : 1;
  const bucketOf = (y: number) => Math.min(buckets - 1, Math.max(0, Math.floor((y - minY) / bucketHeight)));
  const start = new Int32Array(buckets + 1);
  for (let e = 0; e < n; e++) for (let b = bucketOf(edges[e * 4 + 1]!); b <= bucketOf(edges[e * 4 + 3]!); b++) start[b + 1]!++;
  for (let b = 0; b < buckets; b++) start[b + 1]! += start[b]!;
  const fill = start.slice(0, buckets);
  const ids = new Int32Array(start[buckets]!);
  for (let e = 0; e < n; e++) for (let b = bucketOf(edges[e * 4 + 1]!); b <= bucketOf(edges[e * 4 + 3]!); b++) ids[fill[b]!++] = e;
  return { edges: edges.subarray(0, n * 4), minY, bucketHeight, buckets, start, ids };
}

/** What a set of annotations needs for rasterizing, built once per annotations object. */
interface MaskIndex {
  polygons: readonly AnnotationPolygon[];
  index: Flatbush | null;
  tables: Map<AnnotationPolygon, EdgeTable>;
}

const INDEXES = new WeakMap<object, MaskIndex>();

function maskIndex(annotations: Annotations): MaskIndex {
  let m = INDEXES.get(annotations);
  if (m) return m;
  const polygons = polygonsOf(annotations);
  let index: Flatbush | null = null;
  if (polygons.length > 0) {
    index = new Flatbush(polygons.length);
    for (const p of polygons) index.add(p.bbox.minX, p.bbox.minY, p.bbox.maxX, p.bbox.maxY);
    index.finish();
  }
  m = { polygons, index, tables: new Map() };
  INDEXES.set(annotations, m);
  return m;
}

function tableOf(m: MaskIndex, p: AnnotationPolygon): EdgeTable {
  let t = m.tables.get(p);
  if (!t) m.tables.set(p, (t = edgeTable(p)));
  return t;
}

// ---- Rasterizing ---------------------------------------------------------------------

/** The sampling grid of one call: pixel centres at x0 + (j + 0.5)·sx, y0 + (i + 0.5)·sy. */
interface Grid {
  x0: number;
  y0: number;
  sx: number;
  sy: number;
  width: number;
  height: number;
}

/** The first row whose centre is at or below y: the same y gives the same row for every edge, so shared vertices count once. */
function firstRowAtOrBelow(g: Grid, y: number): number {
  return Math.ceil((y - g.y0) / g.sy - 0.5);
}

/** Fills the pixels whose centres lie inside polygon p (even-odd over its rings) with value. */
function fillPolygon(out: Uint8Array, g: Grid, t: EdgeTable, value: number, rows: number[][]): void {
  const { edges, minY, bucketHeight, buckets, start, ids } = t;
  const bucketOf = (y: number) => Math.min(buckets - 1, Math.max(0, Math.floor((y - minY) / bucketHeight)));
  const top = g.y0 + 0.5 * g.sy, bottom = g.y0 + (g.height - 0.5) * g.sy;
  const b0 = bucketOf(top), b1 = bucketOf(bottom);
  let rowLo = g.height, rowHi = 0;
  for (let b = b0; b <= b1; b++) {
    for (let k = start[b]!; k < start[b + 1]!; k++) {
      const e = ids[k]! * 4;
      const ya = edges[e + 1]!, yb = edges[e + 3]!;
      // An edge listed in several buckets is taken in the first one the query visits.
      if (Math.max(bucketOf(ya), b0) !== b) continue;
      const i0 = Math.max(0, firstRowAtOrBelow(g, ya)), i1 = Math.min(g.height, firstRowAtOrBelow(g, yb));
      if (i0 >= i1) continue;
      const xa = edges[e]!, slope = (edges[e + 2]! - xa) / (yb - ya);
      for (let i = i0; i < i1; i++) rows[i]!.push(xa + (g.y0 + (i + 0.5) * g.sy - ya) * slope);
      if (i0 < rowLo) rowLo = i0;
      if (i1 > rowHi) rowHi = i1;
    }
  }
  for (let i = rowLo; i < rowHi; i++) {
    const xs = rows[i]!;
    if (xs.length === 0) continue;
    if (xs.length > 2) xs.sort((a, b) => a - b);
    else if (xs.length === 2 && xs[0]! > xs[1]!) xs.reverse();
    const row = i * g.width;
    for (let k = 0; k + 1 < xs.length; k += 2) {
      // Centre j is inside when xs[k] ≤ x0 + (j + 0.5)·sx < xs[k + 1].
      const j0 = Math.max(0, Math.ceil((xs[k]! - g.x0) / g.sx - 0.5));
      const j1 = Math.min(g.width, Math.ceil((xs[k + 1]! - g.x0) / g.sx - 0.5));
      if (j1 > j0) out.fill(value, row + j0, row + j1);
    }
    xs.length = 0;
  }
}

/**
 * The label mask of a rectangle (level-0 px) sampled on a width x height
 * grid: row-major, value = index into `labels` (labels[0] 'background'),
 * MASK_IGNORE in exclusion regions. See the file comment for the rule.
 */
export function rasterizeLabels(annotations: Annotations, rect: Rect, width: number, height: number, labels: readonly string[]): Uint8Array {
  const r = checkObject('rect', rect);
  const x0 = checkNumber('rect.x', r.x, -Number.MAX_VALUE, Number.MAX_VALUE);
  const y0 = checkNumber('rect.y', r.y, -Number.MAX_VALUE, Number.MAX_VALUE);
  const rw = checkNumber('rect.width', r.width, 0, Number.MAX_VALUE);
  const rh = checkNumber('rect.height', r.height, 0, Number.MAX_VALUE);
  if (rw === 0 || rh === 0) throw invalidRange('rect', 'a rectangle of positive width and height', rect);
  const w = checkInteger('width', width, 1, 65535);
  const h = checkInteger('height', height, 1, 65535);
  const names = checkMaskLabels('labels', labels);
  const m = maskIndex(annotations);
  const out = new Uint8Array(w * h);
  if (!m.index) return out;
  const value = new Map(names.map((l, i) => [l, i]));
  value.set(EXCLUSION_LABEL, MASK_IGNORE);
  // Later labels paint over earlier ones, exclusion over all (background paints nothing).
  const rank = (v: number) => (v === MASK_IGNORE ? MAX_MASK_LABELS : v);
  const near = m.index.search(x0, y0, x0 + rw, y0 + rh)
    .map((i) => m.polygons[i]!)
    .filter((p) => (value.get(p.label) ?? 0) !== 0)
    .map((p) => ({ p, v: value.get(p.label)! }))
    .sort((a, b) => rank(a.v) - rank(b.v));
  if (near.length === 0) return out;
  const g: Grid = { x0, y0, sx: rw / w, sy: rh / h, width: w, height: h };
  const rows = Array.from({ length: h }, () => [] as number[]);
  for (const { p, v } of near) fillPolygon(out, g, tableOf(m, p), v, rows);
  return out;
}
