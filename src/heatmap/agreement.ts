/**
 * How well a predicted map (predict-slide's output folder) agrees with
 * annotated truth: the annotations' polygons (GeoJSON, ASAP XML or a
 * synthetic slide's S.json, level-0 px) rasterized on the map's own grid
 * (src/tiling/masks.ts: a cell takes the label of the polygons that contain
 * its centre) and compared cell by cell with the map thresholded at p ≥ the
 * threshold:
 *
 *   Dice = 2·|P ∩ T| / (|P| + |T|),   IoU = |P ∩ T| / |P ∪ T|
 *
 * T: cells inside a polygon of any of the annotation's labels (or of
 * `labels` when given); cells in an exclusion region are left out of both
 * sets; cells without data (NaN: glass, below the tissue threshold) count as
 * predicted negative. The same rule scores a patch classifier's grid (one cell
 * per stride) and a segmentation model's pixel map (one cell per map
 * downsample), so the two are compared on one footing, each at its own
 * resolution.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { checkNumber, invalidRange } from '../errors.js';
import { type AnnotationPolygon } from '../tiling/annotations.js';
import { MASK_BACKGROUND, MASK_IGNORE, maskLabels, rasterizeLabels } from '../tiling/masks.js';
import { loadAnnotations } from '../tiling/tile.js';
import { decodeProbabilityF32 } from './probability_map.js';

export interface MapAgreement {
  dice: number;
  iou: number;
  /** Cells called positive by the map, by the truth, by both; all cells scored (exclusion left out). */
  predictedCells: number;
  truthCells: number;
  bothCells: number;
  cells: number;
  /** Cells in exclusion regions, not scored. */
  excludedCells: number;
  threshold: number;
  /** Side of a map cell in level-0 px. */
  cellSizeLevel0: number;
  /** The annotation labels counted as positive. */
  labels: string[];
}

interface MapHeader {
  width: number;
  height: number;
  cellSizeLevel0: number;
  threshold: number;
}

async function readHeader(dir: string): Promise<MapHeader> {
  const path = join(dir, 'probability.json');
  let h: Partial<MapHeader>;
  try {
    h = JSON.parse(await readFile(path, 'utf8')) as Partial<MapHeader>;
  } catch (e) {
    throw new Error(`Cannot read the map header ${path} (a predict-slide output folder?): ${(e as Error).message}`);
  }
  for (const k of ['width', 'height', 'cellSizeLevel0', 'threshold'] as const) {
    if (typeof h[k] !== 'number' || !Number.isFinite(h[k]) || h[k]! <= 0 && k !== 'threshold') throw new RangeError(`${path}: expected a positive number for ${k} but it has ${JSON.stringify(h[k])}`);
  }
  if (h.threshold! > 1 || h.threshold! < 0) throw new RangeError(`${path}: expected a number between 0 and 1 for threshold but it has ${JSON.stringify(h.threshold)}`);
  return h as MapHeader;
}

/**
 * The agreement of the map in `dir` (predict-slide's output) with the
 * annotations (a file path, or polygons), at `threshold` (default the map's).
 */
export async function mapAgreement(
  dir: string, annotations: string | readonly AnnotationPolygon[], options: { threshold?: number; labels?: readonly string[] } = {},
): Promise<MapAgreement> {
  const header = await readHeader(dir);
  const threshold = options.threshold === undefined ? header.threshold : checkNumber('options.threshold', options.threshold, 0, 1);
  const map = decodeProbabilityF32(await readFile(join(dir, 'probability.f32')));
  const { width, height, cellSizeLevel0: cell } = header;
  if (map.length !== width * height) throw new RangeError(`${join(dir, 'probability.f32')}: expected ${width}x${height} float32 values but it holds ${map.length}`);
  const polygons = typeof annotations === 'string' ? await loadAnnotations(annotations) : [...annotations];
  const all = maskLabels(polygons);
  const wanted = options.labels === undefined ? all.slice(1) : [...options.labels];
  for (const l of wanted) {
    if (!all.includes(l)) throw invalidRange('options.labels', `labels of the annotations (${all.slice(1).join(', ') || 'none'})`, l);
  }
  const mask = rasterizeLabels(polygons, { x: 0, y: 0, width: width * cell, height: height * cell }, width, height, all);
  const positive = new Uint8Array(all.length);
  for (const l of wanted) if (l !== MASK_BACKGROUND) positive[all.indexOf(l)] = 1;
  let both = 0, p = 0, t = 0, cells = 0, excluded = 0;
  for (let i = 0; i < map.length; i++) {
    const v = mask[i]!;
    if (v === MASK_IGNORE) {
      excluded++;
      continue;
    }
    cells++;
    const pi = map[i]! >= threshold, ti = positive[v] === 1; // NaN ≥ threshold is false: no data is negative
    if (pi) p++;
    if (ti) t++;
    if (pi && ti) both++;
  }
  return {
    dice: p + t === 0 ? 1 : (2 * both) / (p + t),
    iou: p + t - both === 0 ? 1 : both / (p + t - both),
    predictedCells: p, truthCells: t, bothCells: both, cells, excludedCells: excluded, threshold, cellSizeLevel0: cell, labels: wanted,
  };
}
