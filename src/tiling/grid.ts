/**
 * Tile planning, pure arithmetic: which level to read and how much (planTiling),
 * and which tiles of that level to keep (tileGrid), with each tile's tissue
 * fraction computed exactly from the mask's footprint.
 */
import { checkInteger, checkNumber, checkObject, invalidRange, invalidType } from '../errors.js';

export interface LevelSize {
  width: number;
  height: number;
  /** Level-0 pixels per pixel of this level (1 for level 0). */
  downsample: number;
}

export interface TilingPlan {
  level: number;
  /** The chosen level's downsample (level-0 px per level px). */
  downsample: number;
  /** Pixels read per tile at the chosen level (size × resample, rounded). */
  readSize: number;
  /** Step between tiles at the chosen level, in its pixels. */
  readStride: number;
  /** Output tile size in pixels. */
  size: number;
  /** Output stride in pixels (= size: no overlap; < size: overlap). */
  stride: number;
  /** readSize / size: > 1 when no level is at the target µm/px and tiles are downscaled after reading. */
  resample: number;
  /** µm per output pixel, when the slide's µm/px is known. */
  mpp: number | null;
}

export interface TilingRequest {
  size: number;
  stride?: number;
  level?: number;
  mpp?: number;
}

/**
 * A level (default 0) or a target µm/px: then the coarsest level that is at
 * least as fine as the target, read at readSize = round(size × target/level µm/px)
 * and resampled down to `size`. `slideMpp` is level 0's µm/px (null when unknown).
 */
export function planTiling(levels: readonly LevelSize[], slideMpp: number | null | undefined, request: TilingRequest): TilingPlan {
  if (!Array.isArray(levels) || levels.length === 0) throw invalidType('levels', 'a non-empty array of { width, height, downsample }', levels);
  levels.forEach((l, i) => {
    checkObject(`levels[${i}]`, l);
    checkInteger(`levels[${i}].width`, l.width, 1);
    checkInteger(`levels[${i}].height`, l.height, 1);
    checkNumber(`levels[${i}].downsample`, l.downsample, 1);
  });
  const mpp0 = slideMpp === null || slideMpp === undefined ? null : checkNumber('mpp', slideMpp, Number.MIN_VALUE);
  const r = checkObject('options', request);
  const size = checkInteger('options.size', r.size, 1, 1 << 16);
  const stride = r.stride === undefined ? size : checkInteger('options.stride', r.stride, 1, 1 << 16);
  if (r.level !== undefined && r.mpp !== undefined) throw new RangeError('Expected options.level or options.mpp, not both');

  if (r.mpp === undefined) {
    const level = r.level === undefined ? 0 : checkInteger('options.level', r.level, 0, levels.length - 1);
    const downsample = levels[level]!.downsample;
    return { level, downsample, readSize: size, readStride: stride, size, stride, resample: 1, mpp: mpp0 === null ? null : mpp0 * downsample };
  }
  const target = checkNumber('options.mpp', r.mpp, Number.MIN_VALUE);
  if (mpp0 === null) throw new RangeError(`Expected a slide with a known µm/px for options.mpp ${target}, but this slide does not record one; use options.level`);
  const wanted = target / mpp0; // downsample from level 0 to the target
  if (wanted < 1 - 1e-6) throw invalidRange('options.mpp', `a µm/px ≥ the slide's finest, ${mpp0}`, target);
  let level = 0;
  levels.forEach((l, i) => {
    if (l.downsample <= wanted * (1 + 1e-6) && l.downsample > levels[level]!.downsample) level = i;
  });
  const downsample = levels[level]!.downsample;
  const factor = wanted / downsample;
  const resample = Math.abs(factor - 1) < 1e-6 ? 1 : factor;
  return {
    level,
    downsample,
    readSize: Math.round(size * resample),
    readStride: Math.max(1, Math.round(stride * resample)),
    size,
    stride,
    resample,
    mpp: target,
  };
}

/** A tissue mask and its scale (e.g. detectTissue's result). */
export interface GridMask {
  mask: Uint8Array;
  width: number;
  height: number;
  /** Level-0 px per mask px. */
  downsample: number;
}

/** A rectangle in level-0 pixels. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface GridRequest {
  levelWidth: number;
  levelHeight: number;
  /** Level-0 px per level px (default 1). */
  downsample?: number;
  readSize: number;
  /** Default readSize. */
  stride?: number;
  /** Only tiles fully inside this rectangle (level-0 px); the grid starts at its corner. */
  roi?: Rect;
  mask?: GridMask;
  /** Keep tiles with tissue fraction ≥ this (0..1); default 0. */
  minTissue?: number;
}

export interface GridTile {
  /** Column and row in the grid. */
  col: number;
  row: number;
  /** Top-left at the level, in its pixels. */
  x: number;
  y: number;
  /** Top-left in level-0 pixels. */
  x0: number;
  y0: number;
  /** Fraction of the tile's footprint covered by mask tissue (1 without a mask). */
  tissue: number;
}

export interface TileGrid {
  tiles: GridTile[];
  columns: number;
  rows: number;
  /** All grid positions, kept or not. */
  total: number;
}

/** Summed-area table of a 0/255 mask: (W+1)·(H+1), tissue pixel counts. */
export function integralImage(mask: Uint8Array, width: number, height: number): Float64Array {
  const s = new Float64Array((width + 1) * (height + 1));
  for (let y = 0; y < height; y++) {
    let row = 0;
    for (let x = 0; x < width; x++) {
      row += mask[y * width + x] ? 1 : 0;
      s[(y + 1) * (width + 1) + x + 1] = s[y * (width + 1) + x + 1]! + row;
    }
  }
  return s;
}

/**
 * Tissue area in [0, X] × [0, Y] for real X, Y (mask px). The mask is constant
 * per pixel, so this is the bilinear interpolation of the integral image.
 */
function areaTo(s: Float64Array, width: number, height: number, X: number, Y: number): number {
  X = Math.min(Math.max(X, 0), width);
  Y = Math.min(Math.max(Y, 0), height);
  const i = Math.min(Math.floor(X), width - 1), j = Math.min(Math.floor(Y), height - 1);
  const fx = X - i, fy = Y - j, w = width + 1;
  const a = s[j * w + i]!, b = s[j * w + i + 1]!, c = s[(j + 1) * w + i]!, d = s[(j + 1) * w + i + 1]!;
  return a * (1 - fx) * (1 - fy) + b * fx * (1 - fy) + c * (1 - fx) * fy + d * fx * fy;
}

/** Fraction of a level-0 rectangle covered by tissue (outside the mask counts as none). */
export function tissueFraction(s: Float64Array, m: GridMask, x0: number, y0: number, w0: number, h0: number): number {
  const x1 = x0 / m.downsample, y1 = y0 / m.downsample, x2 = (x0 + w0) / m.downsample, y2 = (y0 + h0) / m.downsample;
  const area = areaTo(s, m.width, m.height, x2, y2) - areaTo(s, m.width, m.height, x1, y2)
    - areaTo(s, m.width, m.height, x2, y1) + areaTo(s, m.width, m.height, x1, y1);
  return Math.min(1, Math.max(0, area / ((x2 - x1) * (y2 - y1))));
}

/** The area tiles may occupy (level px) and how many fit in it: pure arithmetic, nothing allocated. */
interface GridExtent {
  left: number;
  top: number;
  columns: number;
  rows: number;
  stride: number;
  readSize: number;
  downsample: number;
}

function gridExtent(r: Record<string, unknown>): GridExtent {
  const levelWidth = checkInteger('grid.levelWidth', r.levelWidth, 1);
  const levelHeight = checkInteger('grid.levelHeight', r.levelHeight, 1);
  const downsample = r.downsample === undefined ? 1 : checkNumber('grid.downsample', r.downsample, Number.MIN_VALUE);
  const readSize = checkInteger('grid.readSize', r.readSize, 1);
  const stride = r.stride === undefined ? readSize : checkInteger('grid.stride', r.stride, 1);
  let left = 0, top = 0, right = levelWidth, bottom = levelHeight;
  if (r.roi !== undefined) {
    const roi = checkObject('grid.roi', r.roi);
    const rx = checkNumber('grid.roi.x', roi.x, 0), ry = checkNumber('grid.roi.y', roi.y, 0);
    const rw = checkNumber('grid.roi.width', roi.width, Number.MIN_VALUE), rh = checkNumber('grid.roi.height', roi.height, Number.MIN_VALUE);
    left = Math.ceil(rx / downsample - 1e-9);
    top = Math.ceil(ry / downsample - 1e-9);
    right = Math.min(right, Math.floor((rx + rw) / downsample + 1e-9));
    bottom = Math.min(bottom, Math.floor((ry + rh) / downsample + 1e-9));
  }
  const columns = right - left >= readSize ? Math.floor((right - left - readSize) / stride) + 1 : 0;
  const rows = bottom - top >= readSize ? Math.floor((bottom - top - readSize) / stride) + 1 : 0;
  return { left, top, columns, rows, stride, readSize, downsample };
}

/** The number of grid positions tileGrid would consider (columns × rows), without building the grid. */
export function gridPositions(request: Omit<GridRequest, 'mask' | 'minTissue'>): number {
  const e = gridExtent(checkObject('grid', request));
  return e.columns * e.rows;
}

/** The tiles of one level: fully inside it (and the ROI), every `stride` px, with their tissue fraction. */
export function tileGrid(request: GridRequest): TileGrid {
  const r = checkObject('grid', request);
  const { left, top, columns, rows, stride, readSize, downsample } = gridExtent(r);
  const minTissue = r.minTissue === undefined ? 0 : checkNumber('grid.minTissue', r.minTissue, 0, 1);
  let mask: GridMask | undefined, sat: Float64Array | undefined;
  if (r.mask !== undefined) {
    const m = checkObject('grid.mask', r.mask);
    const width = checkInteger('grid.mask.width', m.width, 1), height = checkInteger('grid.mask.height', m.height, 1);
    if (!(m.mask instanceof Uint8Array) || m.mask.length !== width * height) {
      throw invalidType('grid.mask.mask', `a Uint8Array of width·height = ${width * height} bytes`, m.mask);
    }
    mask = { mask: m.mask, width, height, downsample: checkNumber('grid.mask.downsample', m.downsample, Number.MIN_VALUE) };
    sat = integralImage(mask.mask, width, height);
  }

  const tiles: GridTile[] = [];
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < columns; col++) {
      const x = left + col * stride, y = top + row * stride;
      const x0 = x * downsample, y0 = y * downsample;
      const tissue = mask ? tissueFraction(sat!, mask, x0, y0, readSize * downsample, readSize * downsample) : 1;
      if (tissue >= minTissue) tiles.push({ col, row, x, y, x0, y0, tissue });
    }
  }
  return { tiles, columns, rows, total: columns * rows };
}
