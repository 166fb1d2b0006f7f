/**
 * Tumour regions: the map's cells with probability ≥ threshold, grouped into
 * 4-connected components, each traced as exact polygons along cell edges
 * (holes included) and written as GeoJSON in level-0 pixel coordinates.
 *
 * Tracing. Every component cell side that borders a cell outside the
 * component is a directed edge, oriented with the component on its right in
 * image coordinates (y down): top sides run +x, right sides +y, bottom −x,
 * left −y. Edges chain into closed rings; where two rings meet at a vertex
 * (cells touching only diagonally) the walk turns right, keeping to the cell
 * it is on, so that diagonal neighbours stay apart as 4-connectivity says.
 * In the file's raw (x, y) numbers an exterior ring then has positive
 * shoelace area (counter-clockwise, RFC 7946's right-hand rule) and a hole
 * negative. Collinear vertices are dropped.
 *
 * QuPath (0.4+) imports each feature as an annotation of its built-in class
 * Tumor: `objectType`, `classification: {name, color: [r, g, b]}` and
 * `measurements` (an object of name → number) are the keys its GeoJSON
 * reader looks for; it ignores the others, which histoflow's own tools read.
 */
import type { ProbabilityMap } from './probability_map.js';

/** QuPath's built-in Tumor class (name and colour as QuPath defines them), so imported regions join it. */
export const TUMOUR_CLASS: QuPathClassification = { name: 'Tumor', color: [200, 0, 0] };

export interface QuPathClassification {
  name: string;
  /** RGB 0..255 (QuPath 0.4+ reads `color` as this array). */
  color: [number, number, number];
}

export interface RegionProperties {
  objectType: 'annotation';
  /** Shown in QuPath's annotation list. */
  name: string;
  classification: QuPathClassification;
  isLocked: false;
  /** The region's scores as QuPath measurements (numbers only; area_um2 only when the µm/px is known). */
  measurements: Record<string, number>;
  /** 1-based, in order of the component's first cell (row-major). */
  id: number;
  cells: number;
  /** Area in level-0 px², and in µm² when the slide's µm/px is known. */
  area_px: number;
  area_um2: number | null;
  max_probability: number;
  mean_probability: number;
  /** [minX, minY, maxX, maxY] in level-0 px. */
  bbox: [number, number, number, number];
}

export interface RegionFeature {
  type: 'Feature';
  geometry: { type: 'Polygon'; coordinates: number[][][] } | { type: 'MultiPolygon'; coordinates: number[][][][] };
  properties: RegionProperties;
}

export interface RegionCollection {
  type: 'FeatureCollection';
  features: RegionFeature[];
}

type Ring = Array<[number, number]>;

/** 4-connected components of a binary grid: labels (0 = none, 1.. = component) and each component's cells. */
function components(on: Uint8Array, width: number, height: number): { labels: Int32Array; cells: number[][] } {
  const labels = new Int32Array(width * height);
  const cells: number[][] = [];
  for (let start = 0; start < on.length; start++) {
    if (!on[start] || labels[start]) continue;
    const id = cells.length + 1, list = [start];
    labels[start] = id;
    for (let q = 0; q < list.length; q++) {
      const k = list[q]!, x = k % width, y = (k - x) / width;
      const next = [x > 0 ? k - 1 : -1, x < width - 1 ? k + 1 : -1, y > 0 ? k - width : -1, y < height - 1 ? k + width : -1];
      for (const n of next) {
        if (n >= 0 && on[n] && !labels[n]) {
          labels[n] = id;
          list.push(n);
        }
      }
    }
    cells.push(list);
  }
  return { labels, cells };
}

/** The boundary rings of one component, in cell-corner coordinates. */
function traceRings(labels: Int32Array, width: number, height: number, id: number, cells: readonly number[]): Ring[] {
  const inside = (x: number, y: number) => x >= 0 && y >= 0 && x < width && y < height && labels[y * width + x] === id;
  // Outgoing edges per vertex key; an edge is its direction (dx, dy) from that vertex.
  const out = new Map<number, Array<[number, number]>>();
  const key = (x: number, y: number) => y * (width + 1) + x;
  const add = (x: number, y: number, dx: number, dy: number) => {
    const k = key(x, y);
    const list = out.get(k);
    if (list) list.push([dx, dy]);
    else out.set(k, [[dx, dy]]);
  };
  for (const c of cells) {
    const x = c % width, y = (c - x) / width;
    if (!inside(x, y - 1)) add(x, y, 1, 0);
    if (!inside(x + 1, y)) add(x + 1, y, 0, 1);
    if (!inside(x, y + 1)) add(x + 1, y + 1, -1, 0);
    if (!inside(x - 1, y)) add(x, y + 1, 0, -1);
  }
  // Start only at vertices with one outgoing edge: every ring has one (its
  // convex corners), and starting at a pinch could pair its edges the wrong way.
  const starts = [...out].filter(([, list]) => list.length === 1);
  const rings: Ring[] = [];
  for (const [startKey, list] of starts) {
    while (list.length) {
      const sx = startKey % (width + 1), sy = (startKey - sx) / (width + 1);
      let [dx, dy] = list.pop()!;
      const ring: Ring = [[sx, sy]];
      let x = sx + dx, y = sy + dy;
      while (x !== sx || y !== sy) {
        const here = out.get(key(x, y))!;
        // Prefer a right turn (y down: (dx, dy) → (−dy, dx)), then straight, then left.
        const order: Array<[number, number]> = [[-dy, dx], [dx, dy], [dy, -dx]];
        const pick = order.map(([a, b]) => here.findIndex(([u, v]) => u === a && v === b)).find((i) => i >= 0)!;
        const [ndx, ndy] = here.splice(pick, 1)[0]!;
        if (ndx !== dx || ndy !== dy) ring.push([x, y]);
        [dx, dy] = [ndx, ndy];
        x += dx;
        y += dy;
      }
      // The start vertex is a corner unless the walk arrives at it going straight on.
      const [fx, fy] = ring[1] ?? ring[0]!;
      const firstDir = [Math.sign(fx - sx), Math.sign(fy - sy)];
      if (firstDir[0] === dx && firstDir[1] === dy) ring.shift();
      rings.push(ring);
    }
  }
  return rings;
}

/** Twice the signed area (shoelace) of a ring in raw coordinates. */
function signedArea2(ring: Ring): number {
  let s = 0;
  for (let i = 0; i < ring.length; i++) {
    const [x1, y1] = ring[i]!, [x2, y2] = ring[(i + 1) % ring.length]!;
    s += x1 * y2 - x2 * y1;
  }
  return s;
}

function containsPoint(ring: Ring, px: number, py: number): boolean {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i]!, [xj, yj] = ring[j]!;
    if (yi > py !== yj > py && px < ((xj - xi) * (py - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** A point strictly inside the cell on the right of a ring's first edge (the component's side). */
function pointBeside(ring: Ring): [number, number] {
  const [x1, y1] = ring[0]!, [x2, y2] = ring[1]!;
  const dx = Math.sign(x2 - x1), dy = Math.sign(y2 - y1);
  return [x1 + dx * 0.5 - dy * 0.5, y1 + dy * 0.5 + dx * 0.5];
}

export interface RegionOptions {
  threshold: number;
  /** Level-0 px per cell side. */
  cellSize0: number;
  /** µm per level-0 px, or null. */
  mpp0: number | null;
}

/** The map's regions at a threshold, as a GeoJSON FeatureCollection in level-0 px. */
export function tumourRegions(map: ProbabilityMap, options: RegionOptions): RegionCollection {
  const { threshold, cellSize0, mpp0 } = options;
  const on = new Uint8Array(map.data.length);
  map.data.forEach((p, k) => (on[k] = p >= threshold ? 1 : 0)); // NaN compares false: no data is never tumour
  const { labels, cells } = components(on, map.width, map.height);
  const scale = (ring: Ring): number[][] => {
    const pts = ring.map(([x, y]) => [x * cellSize0, y * cellSize0]);
    return [...pts, pts[0]!];
  };
  const features = cells.map((list, index): RegionFeature => {
    const rings = traceRings(labels, map.width, map.height, index + 1, list);
    const outers = rings.filter((r) => signedArea2(r) > 0), holes = rings.filter((r) => signedArea2(r) < 0);
    const polygons = outers.map((o) => [o]);
    for (const h of holes) {
      const [px, py] = pointBeside(h);
      (polygons.find(([o]) => containsPoint(o!, px, py)) ?? polygons[0]!).push(h);
    }
    let max = 0, sum = 0, minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const k of list) {
      const p = map.data[k]!, x = k % map.width, y = (k - x) / map.width;
      max = Math.max(max, p);
      sum += p;
      minX = Math.min(minX, x);
      minY = Math.min(minY, y);
      maxX = Math.max(maxX, x + 1);
      maxY = Math.max(maxY, y + 1);
    }
    const areaPx = list.length * cellSize0 * cellSize0;
    const areaUm2 = mpp0 === null ? null : areaPx * mpp0 * mpp0;
    const coordinates = polygons.map((rs) => rs.map(scale));
    return {
      type: 'Feature',
      geometry: coordinates.length === 1 ? { type: 'Polygon', coordinates: coordinates[0]! } : { type: 'MultiPolygon', coordinates },
      properties: {
        objectType: 'annotation',
        name: `${TUMOUR_CLASS.name} region ${index + 1}`,
        classification: { ...TUMOUR_CLASS, color: [...TUMOUR_CLASS.color] },
        isLocked: false,
        measurements: {
          max_probability: max,
          mean_probability: sum / list.length,
          cells: list.length,
          area_px: areaPx,
          ...(areaUm2 === null ? {} : { area_um2: areaUm2 }),
        },
        id: index + 1,
        cells: list.length,
        area_px: areaPx,
        area_um2: areaUm2,
        max_probability: max,
        mean_probability: sum / list.length,
        bbox: [minX * cellSize0, minY * cellSize0, maxX * cellSize0, maxY * cellSize0],
      },
    };
  });
  return { type: 'FeatureCollection', features };
}
