/**
 * The tiler: slide → tissue mask → tile grid → tiles (→ stain normalization)
 * → a TileSink (a folder of PNG/JPEG tiles with manifests, or a packed file),
 * or an async iterator of batches.
 *
 *   const plan = await planSlideTiles(slide, { size: 96, mpp: 0.5, minTissue: 0.5 });
 *   await tileSlide('slide.svs', 'out', { size: 96, format: 'png' });
 *   for await (const { batch, tiles } of slideBatches(slide, { size: 96, batchSize: 64 })) { … }
 *
 * Order of work. Everything that can be wrong with the input (options, the
 * slide file, the annotations, the stain target, an empty tissue mask) is
 * checked before the output folder is touched, so a bad run leaves nothing
 * behind. Then the grid is read in batches of `batchSize` tiles: the reads of
 * batch k+1 (OpenSlide or libvips on the libuv pool, through the slide's
 * tile cache) run while batch k is normalized and encoded (native batched
 * PNG encoder), so reading, normalizing and encoding overlap on every core.
 *
 * Resuming. The sinks journal every finished tile; a rerun with the same
 * arguments skips their reads as well as their writes (`sink.has`) and ends
 * with the same outputs as an uninterrupted run. An error mid-run aborts the
 * sink, keeping that state; mask.png and overview.png are written last.
 *
 * Label masks (`masks: true`, with annotations): every tile gets its label
 * mask, rasterized over the tile's level-0 rectangle at the tile's size
 * (so at its level and µm/px) by src/tiling/masks.ts, with the labels of
 * maskLabels (background first, every annotation label, exclusion = 255).
 * The sink stores them beside the tiles (STEM.mask.png + masks.json) or in
 * the packed file (a version 2 file's masks block).
 */
import { readFile, rm } from 'node:fs/promises';
import { makeDirectory, pathExists } from '../output.js';
import { basename, extname, join } from 'node:path';

import sharp from 'sharp';

import type { PngOptions } from '../codec/png.js';
import { PackedWriter } from '../dataset/packed_writer.js';
import { TileFolderWriter } from '../dataset/tile_folder.js';
import type { TileMeta, TileSink, TileSinkResult } from '../dataset/tile_sink.js';
import {
  checkBoolean,
  checkInteger,
  checkKnownKeys,
  checkNumber,
  checkObject,
  checkOneOf,
  invalidRange,
  invalidType,
} from '../errors.js';
import { poolPixels, readImage, readImageHeader, stackImages, writeFileAtomic, writeGrey, writeImage, type RgbBatch } from '../image.js';
import { openSlide, type OpenSlideOptions, type Slide } from '../slide/slide.js';
import {
  STAIN_METHODS,
  checkStainTarget,
  fitStainTarget,
  fitStains,
  normalizeStain,
  type StainMethod,
  type StainTarget,
} from '../stain/normalize.js';
import type { StainFit } from '../kernels/types.js';
import { detectTissue, type TissueMask } from '../tissue/detect.js';
import type { TissueOptions } from '../tissue/options.js';
import { AnnotationIndex, labelTile, parseAnnotations, type AnnotationPolygon, type TileLabelOptions } from './annotations.js';
import { MASK_IGNORE, maskLabels, rasterizeLabels } from './masks.js';
import { looksLikeXml, parseAsapXml } from './asap.js';
import { gridPositions, planTiling, tileGrid, type GridTile, type Rect, type TilingPlan } from './grid.js';
import { checkMemory, formatBytes, memoryLimit, type MemoryLimit } from '../memory_budget.js';

export const TILE_PNG_DEFAULTS: PngOptions = { level: 1, filter: 'adaptive' };

export const TILE_OUTPUT_FORMATS = ['png', 'jpeg', 'packed'] as const;
export type TileOutputFormat = (typeof TILE_OUTPUT_FORMATS)[number];

export interface TilePlanOptions {
  /** Output tile size in pixels (default 96, PCam's). */
  size?: number;
  /** Step between tiles in output pixels (default size; < size overlaps). */
  stride?: number;
  /** Pyramid level to tile (default 0), or… */
  level?: number;
  /** …a target µm/px: the coarsest level at least that fine, resampled. */
  mpp?: number;
  /** Keep tiles whose tissue fraction is at least this (0..1, default 0.5). */
  minTissue?: number;
  /** Only tiles inside this rectangle (level-0 px). */
  roi?: Rect;
  /** Annotations (a GeoJSON or ASAP XML file, or parsed GeoJSON), coordinates in level-0 px: gives each tile a label and its coverage. */
  annotations?: string | Record<string, unknown>;
  /** How annotations label tiles (minCoverage 0.5, background null). */
  labelOptions?: TileLabelOptions;
  /** Tissue detection options, and `maxSize`: the thumbnail's longer side (default 1024). */
  tissue?: TissueOptions & { maxSize?: number };
  /**
   * Refuse a plan that needs more memory, in bytes (or a MemoryLimit): default
   * HISTOFLOW_MAX_MEMORY, else 2 GiB (src/memory_budget.ts).
   */
  maxMemory?: number | MemoryLimit;
}

export interface TileReadOptions extends TilePlanOptions {
  /** Normalize every tile's stain to one target, with the source stains fitted once per slide. */
  normalize?: StainMethod | null;
  /** The stain target: an image path, a fitted target (histoflow stain --json), or omitted for the method's reference (not Reinhard). */
  target?: string | StainTarget;
  /** Tiles per batch (default 64). */
  batchSize?: number;
  /** Slide reader and tile-cache budget. */
  reader?: OpenSlideOptions['reader'];
  cacheBytes?: number;
  /**
   * Each tile's label mask from the annotations (required with it): written
   * beside the tiles (STEM.mask.png, DIR/masks.json) or into the packed
   * file by tileSlide, in each SlideBatch by slideBatches.
   */
  masks?: boolean;
}

export interface TileSlideOptions extends TileReadOptions {
  /** 'png' (default), 'jpeg' or 'packed' (DIR/tiles.hfpack). */
  format?: TileOutputFormat;
  /** JPEG quality 1..100 (default 90). */
  quality?: number;
  /**
   * PNG level / filter / encoder. Default { level: 1, filter: 'adaptive' }: on
   * H&E tissue tiles libdeflate's level 1 after adaptive filtering gives files
   * as small as level 6 (35 CMU tiles of 256 px: 4.58 MB vs 4.69 MB; PIL at
   * level 6: 4.55 MB) in less time, because tissue has few long matches.
   */
  png?: PngOptions;
  /** Continue an interrupted run in DIR (default true). */
  resume?: boolean;
  /** Called after every batch: tiles done (including resumed ones) of the total. */
  onProgress?: (done: number, total: number) => void;
  /** Stops between batches: the sink keeps its finished tiles and journal, and the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** One kept tile of the plan. */
export interface PlannedTile extends GridTile {
  /** Label index into plan.labels (annotations), or null. */
  label: number | null;
  /** Coverage of that label. */
  coverage: number;
}

export interface SlideTilePlan {
  slide: Slide;
  /** The slide's name in manifests (file name without extension). */
  name: string;
  tiling: TilingPlan;
  tissue: TissueMask;
  /** The thumbnail the mask was computed on (for overview.png). */
  thumbnail: { image: RgbBatch; downsample: number };
  /** Grid positions considered, and the tiles kept (tissue ≥ minTissue). */
  total: number;
  tiles: PlannedTile[];
  /** Label names (annotations), index = the tiles' label. */
  labels: string[];
  /** The annotations, indexed (null without): label masks are rasterized from them. */
  annotations: AnnotationIndex | null;
}

const PLAN_KEYS = ['size', 'stride', 'level', 'mpp', 'minTissue', 'roi', 'annotations', 'labelOptions', 'tissue', 'maxMemory'];

/**
 * Bytes one grid position may cost while planning and writing: its grid
 * tile, planned tile, label and to-do entries (measured: 685 bytes per kept
 * tile with all four alive). Positions are counted before the tissue mask
 * decides which are kept, so this is the worst case: all tissue.
 */
export const PLAN_BYTES_PER_POSITION = 700;

function checkLimitOption(value: unknown): MemoryLimit {
  if (value !== null && typeof value === 'object') {
    const l = checkObject('options.maxMemory', value);
    return { bytes: checkInteger('options.maxMemory.bytes', l.bytes, 1), source: String(l.source ?? 'options.maxMemory') };
  }
  return memoryLimit(value as number | undefined, 'options.maxMemory');
}

/**
 * What planning and tiling hold at once, before the thumbnail is read: the
 * thumbnail with its mask, integral image and overview (15 bytes a pixel),
 * every grid position (PLAN_BYTES_PER_POSITION), and two batches of tiles in
 * flight (read, resampled, stacked). Over the limit, a MemoryLimitError.
 */
function checkPlanMemory(
  slide: Slide, tiling: TilingPlan, maxSize: number, batchSize: number, roi: Rect | undefined, limit: MemoryLimit,
): void {
  const level = slide.levels[tiling.level]!;
  const base = slide.levels[0]!;
  const scale = Math.min(1, maxSize / Math.max(base.width, base.height));
  const thumbnailBytes = Math.max(1, Math.round(base.width * scale)) * Math.max(1, Math.round(base.height * scale)) * 15;
  const positions = gridPositions({
    levelWidth: level.width, levelHeight: level.height, downsample: tiling.downsample,
    readSize: tiling.readSize, stride: tiling.readStride, ...(roi ? { roi } : {}),
  });
  const planBytes = positions * PLAN_BYTES_PER_POSITION;
  const batchBytes = 2 * Math.min(batchSize, Math.max(positions, 1)) * (tiling.readSize ** 2 * 2 + tiling.size ** 2 * 2) * 3;
  checkMemory(
    `tiling level ${tiling.level} (${level.width}x${level.height}) at size ${tiling.size}, stride ${tiling.stride} ` +
      `(${positions} grid positions ${formatBytes(planBytes)}, thumbnail ${formatBytes(thumbnailBytes)}, tile batches ${formatBytes(batchBytes)})`,
    planBytes + thumbnailBytes + batchBytes,
    limit,
  );
}
const READ_KEYS = [...PLAN_KEYS, 'normalize', 'target', 'batchSize', 'reader', 'cacheBytes', 'masks'];
const SLIDE_KEYS = [...READ_KEYS, 'format', 'quality', 'png', 'resume', 'onProgress', 'signal'];

/**
 * The polygons of an annotations document: GeoJSON, or the S.json that
 * `histoflow synth slide` writes beside its slide (its tumourRegions).
 */
function annotationsOf(json: unknown): AnnotationPolygon[] {
  const o = json as { generator?: unknown; tumourRegions?: unknown } | null;
  if (o !== null && typeof o === 'object' && !Array.isArray(o) && o.generator === 'histoflow synth slide' && o.tumourRegions !== undefined) {
    return parseAnnotations(o.tumourRegions);
  }
  return parseAnnotations(json);
}

export async function loadAnnotations(value: unknown): Promise<AnnotationPolygon[]> {
  if (typeof value === 'string') {
    let text: string;
    try {
      text = await readFile(value, 'utf8');
    } catch (e) {
      throw new Error(`Cannot read the annotations file ${value}: ${(e as Error).message}`);
    }
    if (looksLikeXml(text)) return parseAsapXml(text, value);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new RangeError(`Expected GeoJSON or ASAP XML in ${value} but it is neither: ${(e as Error).message}`);
    }
    return annotationsOf(json);
  }
  return annotationsOf(checkObject('options.annotations', value));
}

/**
 * The tiles of a slide, decided but not read: level and read size, the tissue
 * mask on a thumbnail, the grid with each tile's tissue fraction, and labels.
 */
export async function planSlideTiles(slide: Slide, options: TilePlanOptions = {}, extraKeys: readonly string[] = []): Promise<SlideTilePlan> {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, [...PLAN_KEYS, ...extraKeys]);
  const size = o.size === undefined ? 96 : checkInteger('options.size', o.size, 1, 1 << 14);
  const minTissue = o.minTissue === undefined ? 0.5 : checkNumber('options.minTissue', o.minTissue, 0, 1);
  const tissueOptions = o.tissue === undefined ? {} : checkObject('options.tissue', o.tissue);
  const maxSize = tissueOptions.maxSize === undefined ? 1024 : checkInteger('options.tissue.maxSize', tissueOptions.maxSize, 16, 16384);
  const polygons = o.annotations === undefined ? null : new AnnotationIndex(await loadAnnotations(o.annotations));
  const labelOptions = o.labelOptions === undefined ? {} : checkObject('options.labelOptions', o.labelOptions);
  const limit = checkLimitOption(o.maxMemory);

  const tiling = planTiling(slide.levels, slide.mpp?.x ?? null, {
    size,
    ...(o.stride === undefined ? {} : { stride: o.stride as number }),
    ...(o.level === undefined ? {} : { level: o.level as number }),
    ...(o.mpp === undefined ? {} : { mpp: o.mpp as number }),
  });
  const level = slide.levels[tiling.level]!;
  if (tiling.readSize > level.width || tiling.readSize > level.height) {
    throw invalidRange('options.size', `tiles that fit level ${tiling.level} (${level.width}x${level.height}) when read at ${tiling.readSize} px`, size);
  }
  // The batch size is a read option (checked by the caller); planning alone reads no batches beyond the default's.
  const batchSize = typeof o.batchSize === 'number' ? o.batchSize : 64;
  checkPlanMemory(slide, tiling, maxSize, batchSize, o.roi as Rect | undefined, limit);
  const thumbnail = await slide.thumbnail(maxSize);
  const { maxSize: _drop, ...rest } = tissueOptions as TissueOptions & { maxSize?: number };
  const tissue = await detectTissue(thumbnail.image, { ...rest, downsample: thumbnail.downsample });
  const grid = tileGrid({
    levelWidth: level.width,
    levelHeight: level.height,
    downsample: tiling.downsample,
    readSize: tiling.readSize,
    stride: tiling.readStride,
    mask: tissue,
    minTissue,
    ...(o.roi === undefined ? {} : { roi: o.roi as Rect }),
  });
  const names = new Map<string, number>();
  const labelled: Array<{ label: string | null; coverage: number }> = grid.tiles.map((t) => {
    if (!polygons) return { label: null, coverage: 0 };
    const side = tiling.readSize * tiling.downsample;
    const r = labelTile(polygons, { x: t.x0, y: t.y0, width: side, height: side }, labelOptions as TileLabelOptions);
    if (r.label !== null && !names.has(r.label)) names.set(r.label, 0);
    return { label: r.label, coverage: r.coverage };
  });
  // Label indices in name order, so they do not depend on the tiles' order.
  const labels = [...names.keys()].sort();
  labels.forEach((l, i) => names.set(l, i));
  const tiles = grid.tiles.map((t, i): PlannedTile => ({
    ...t,
    label: labelled[i]!.label === null ? null : names.get(labelled[i]!.label!)!,
    coverage: labelled[i]!.coverage,
  }));
  return { slide, name: basename(slide.path, extname(slide.path)), tiling, tissue, thumbnail, total: grid.total, tiles, labels, annotations: polygons };
}

/** Reads one planned tile at its level, resampled to the output size when the plan says so. */
async function readTile(plan: SlideTilePlan, t: PlannedTile): Promise<RgbBatch> {
  const { level, readSize, size } = plan.tiling;
  const region = await plan.slide.readRegion(level, t.x, t.y, readSize, readSize);
  if (readSize === size) return region;
  const data = await sharp(Buffer.from(region.data.buffer, region.data.byteOffset, region.data.byteLength), {
    raw: { width: readSize, height: readSize, channels: 3 },
  }).resize(size, size, { kernel: 'lanczos3' }).raw().toBuffer();
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), n: 1, height: size, width: size };
}

async function readBatch(plan: SlideTilePlan, tiles: readonly PlannedTile[]): Promise<RgbBatch> {
  return stackImages(await Promise.all(tiles.map((t) => readTile(plan, t))));
}

interface Normalizer {
  method: StainMethod;
  /** Undefined: the method's canonical reference. */
  target?: StainTarget;
  /** The slide's stains, fitted once on a sample of its tissue tiles (stain-matrix methods). */
  sourceFit?: StainFit;
}

/** Up to `count` tiles spread evenly over the kept ones. */
function sample<T>(items: readonly T[], count: number): T[] {
  if (items.length <= count) return [...items];
  return Array.from({ length: count }, (_, i) => items[Math.floor(((i + 0.5) * items.length) / count)]!);
}

async function prepareNormalizer(plan: SlideTilePlan, method: StainMethod | null, target: unknown, limit: MemoryLimit): Promise<Normalizer | null> {
  if (method === null) return null;
  let fitted: StainTarget | undefined;
  if (typeof target === 'string') {
    // The target image decoded (3 bytes a pixel) and, for the stain-matrix methods, the fit's scratch (13).
    const header = await readImageHeader(target);
    checkMemory(`the stain target ${target} (${header.width}x${header.height})`, header.width * header.height * (method === 'reinhard' ? 3 : 16), limit);
    fitted = await fitStainTarget(await readImage(target), { method });
  } else if (target !== undefined) {
    fitted = checkStainTarget('options.target', target, method);
  } else if (method === 'reinhard') {
    throw new RangeError("Expected options.target for normalize 'reinhard' (an image or a fitted target): Reinhard has no reference");
  }
  // Without a target, the stain-matrix methods map to their canonical reference (normalizeStain's default).
  if (method === 'reinhard' || plan.tiles.length === 0) return { method, target: fitted };
  // The slide's own stains: one fit on the pooled pixels of up to 32 tissue tiles, reused for every tile.
  const tiles = await Promise.all(sample(plan.tiles, 32).map((t) => readTile(plan, t)));
  const { fits } = await fitStains(poolPixels(tiles), { method });
  const fit = fits[0]!;
  return fit.status === 0 ? { method, target: fitted, sourceFit: fit } : { method, target: fitted };
}

export interface SlideBatch {
  /** The tiles' pixels (normalized when asked), n x size x size x 3. */
  batch: RgbBatch;
  tiles: PlannedTile[];
  /** With options.masks: the tiles' label masks, n·size·size indices into maskLabels (255 = ignore). */
  masks?: Uint8Array;
  maskLabels?: string[];
}

function checkReadOptions(o: Record<string, unknown>): { normalize: StainMethod | null; batchSize: number; masks: boolean } {
  const normalize = o.normalize === undefined || o.normalize === null ? null : checkOneOf('options.normalize', o.normalize, STAIN_METHODS);
  const batchSize = o.batchSize === undefined ? 64 : checkInteger('options.batchSize', o.batchSize, 1, 4096);
  if (o.target !== undefined && normalize === null) throw new RangeError('Expected options.normalize with options.target');
  if (o.target !== undefined && typeof o.target !== 'string') checkObject('options.target', o.target);
  const masks = o.masks === undefined ? false : checkBoolean('options.masks', o.masks);
  if (masks && o.annotations === undefined) {
    throw new RangeError('Expected options.annotations with options.masks (--masks needs --annotations): masks are rasterized from the annotations');
  }
  return { normalize, batchSize, masks };
}

/** Batches of a planned slide's tiles, read ahead by one batch, normalized when asked. */
async function* batchesOf(plan: SlideTilePlan, todo: readonly PlannedTile[], batchSize: number, norm: Normalizer | null): AsyncGenerator<SlideBatch> {
  const chunks: PlannedTile[][] = [];
  for (let i = 0; i < todo.length; i += batchSize) chunks.push(todo.slice(i, i + batchSize));
  let next = chunks.length ? readBatch(plan, chunks[0]!) : null;
  // A read that fails while the consumer is still busy must not be an unhandled rejection.
  next?.catch(() => undefined);
  for (let k = 0; k < chunks.length; k++) {
    let batch = await next!;
    next = k + 1 < chunks.length ? readBatch(plan, chunks[k + 1]!) : null;
    next?.catch(() => undefined);
    if (norm) {
      const r = await normalizeStain(batch, {
        method: norm.method,
        ...(norm.target ? { target: norm.target } : {}),
        ...(norm.sourceFit ? { sourceFit: norm.sourceFit } : {}),
      });
      batch = { ...batch, data: r.data };
    }
    yield { batch, tiles: chunks[k]! };
  }
}

/** Batches of an already planned slide's tiles (as planned, no stain normalization), read ahead by one batch. */
export function planBatches(plan: SlideTilePlan, batchSize = 64): AsyncGenerator<SlideBatch> {
  return batchesOf(plan, plan.tiles, checkInteger('batchSize', batchSize, 1, 4096), null);
}

/**
 * The tissue tiles of a slide as an async iterator of batches (no files):
 * `for await (const { batch, tiles } of slideBatches(slide, { size: 96 }))`.
 */
export async function* slideBatches(slide: Slide, options: TileReadOptions = {}): AsyncGenerator<SlideBatch> {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, READ_KEYS);
  const { normalize, batchSize, masks } = checkReadOptions(o);
  const plan = await planSlideTiles(slide, o as TilePlanOptions, READ_KEYS.filter((k) => !PLAN_KEYS.includes(k)));
  const norm = await prepareNormalizer(plan, normalize, o.target, checkLimitOption(o.maxMemory));
  if (!masks) {
    yield* batchesOf(plan, plan.tiles, batchSize, norm);
    return;
  }
  const labels = maskLabels(plan.annotations!);
  for await (const b of batchesOf(plan, plan.tiles, batchSize, norm)) yield { ...b, masks: batchMasks(plan, b.tiles, labels), maskLabels: labels };
}

export interface TileSlideResult {
  slide: string;
  reader: string;
  format: TileOutputFormat;
  level: number;
  /** Pixels read per tile at that level, and the output size. */
  readSize: number;
  size: number;
  mpp: number | null;
  /** Grid positions, tiles kept, tiles written by this run, tiles found complete from an earlier run. */
  total: number;
  kept: number;
  written: number;
  skipped: number;
  tissueFraction: number;
  labels: string[];
  normalize: StainMethod | null;
  /** Wall time: all of it, the per-slide setup (open, thumbnail, tissue mask, grid, stain fit), and the tiles (read, normalize, encode, write). */
  seconds: number;
  setupSeconds: number;
  tileSeconds: number;
  /** Tiles written per second of tileSeconds: the rate that scales with slide size. */
  tilesPerSecond: number;
  /** The output files: manifests or the packed file, mask.png, overview.png. */
  outputs: { sink: string[]; mask: string; overview: string; labels?: string };
  /**
   * With masks: what their values mean (labels[v], `ignore` excluded), how
   * many tiles have one, and where they are: DIR/masks.json beside STEM.mask.png
   * files (listed in the manifests' mask column), or the packed file.
   */
  masks?: { labels: string[]; ignore: number; count: number; level: number; downsample: number; mpp: number | null; files: string };
}

/** The label masks of a batch of planned tiles: n·size·size class indices. */
function batchMasks(plan: SlideTilePlan, tiles: readonly PlannedTile[], labels: readonly string[]): Uint8Array {
  const { size, readSize, downsample } = plan.tiling;
  const side = readSize * downsample;
  const out = new Uint8Array(tiles.length * size * size);
  tiles.forEach((t, k) => {
    out.set(rasterizeLabels(plan.annotations!, { x: t.x0, y: t.y0, width: side, height: side }, size, size, labels), k * size * size);
  });
  return out;
}

/** Outlines each kept tile (1 px, green) on a copy of the thumbnail. */
export function drawOverview(plan: SlideTilePlan): RgbBatch {
  const { image, downsample } = plan.thumbnail;
  const data = image.data.slice();
  const { width, height } = image;
  const side = (plan.tiling.readSize * plan.tiling.downsample) / downsample;
  const put = (x: number, y: number) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const p = (y * width + x) * 3;
    data[p] = 0;
    data[p + 1] = 200;
    data[p + 2] = 0;
  };
  for (const t of plan.tiles) {
    const x0 = Math.round(t.x0 / downsample), y0 = Math.round(t.y0 / downsample);
    const x1 = Math.max(x0, Math.round(t.x0 / downsample + side) - 1), y1 = Math.max(y0, Math.round(t.y0 / downsample + side) - 1);
    for (let x = x0; x <= x1; x++) {
      put(x, y0);
      put(x, y1);
    }
    for (let y = y0; y <= y1; y++) {
      put(x0, y);
      put(x1, y);
    }
  }
  return { data, n: 1, height, width };
}

/**
 * Tiles a slide into DIR: tiles (folder or packed), manifests, DIR/mask.png
 * (the tissue mask, white = tissue, at the thumbnail's scale) and
 * DIR/overview.png (the thumbnail with kept tiles outlined).
 */
export async function tileSlide(path: string, dir: string, options: TileSlideOptions = {}): Promise<TileSlideResult> {
  const started = performance.now();
  if (typeof path !== 'string' || path.length === 0) throw invalidType('slide', 'a slide file path', path);
  if (typeof dir !== 'string' || dir.length === 0) throw invalidType('out', 'an output folder path', dir);
  const o = checkObject('options', options);
  checkKnownKeys('options', o, SLIDE_KEYS);
  const format = o.format === undefined ? 'png' : checkOneOf('options.format', o.format, TILE_OUTPUT_FORMATS);
  const quality = o.quality === undefined ? 90 : checkInteger('options.quality', o.quality, 1, 100);
  const resume = o.resume === undefined ? true : checkBoolean('options.resume', o.resume);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw invalidType('options.onProgress', 'a function', o.onProgress);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', o.signal);
  const signal = o.signal as AbortSignal | undefined;
  const { normalize, batchSize, masks: withMasks } = checkReadOptions(o);

  // Everything that can fail on bad input happens before DIR is created.
  const slide = await openSlide(path, {
    ...(o.reader === undefined ? {} : { reader: o.reader as OpenSlideOptions['reader'] }),
    ...(o.cacheBytes === undefined ? {} : { cacheBytes: o.cacheBytes as number }),
  });
  const createdDir = !(await pathExists(dir));
  let sink: TileSink | undefined;
  let sinkOpened = false;
  try {
    const plan = await planSlideTiles(slide, o as TilePlanOptions, SLIDE_KEYS.filter((k) => !PLAN_KEYS.includes(k)));
    if (plan.tissue.tissueFraction === 0 || plan.tiles.length === 0) {
      throw new RangeError(
        `No tiles to write: ${plan.tissue.tissueFraction === 0 ? 'no tissue was found on the slide' : `no tile has a tissue fraction ≥ ${o.minTissue ?? 0.5}`}` +
          ` (${plan.total} grid positions at level ${plan.tiling.level}); lower options.minTissue or check the slide`,
      );
    }
    const norm = await prepareNormalizer(plan, normalize, o.target, checkLimitOption(o.maxMemory));
    const masks = withMasks ? maskLabels(plan.annotations!) : null;
    const maskInfo = {
      slide: plan.name, level: plan.tiling.level, downsample: plan.tiling.downsample, size: plan.tiling.size,
      readSize: plan.tiling.readSize, mpp: plan.tiling.mpp,
    };

    await makeDirectory(dir, 'dir');
    const setupDone = performance.now();
    const size = plan.tiling.size;
    const meta = (t: PlannedTile): TileMeta => ({
      slide: plan.name, level: plan.tiling.level, x: t.x, y: t.y, tissueFraction: t.tissue, label: t.label,
      ...(t.label === null ? {} : { labelCoverage: t.coverage }),
    });
    sink = format === 'packed'
      ? await PackedWriter.create(join(dir, 'tiles.hfpack'), {
          height: size, width: size, labels: 'int32', resume, overwrite: true,
          info: { slide: plan.name, level: plan.tiling.level, size, mpp: plan.tiling.mpp, labels: plan.labels, normalize, ...(masks ? { masks: maskInfo } : {}) },
          ...(masks ? { masks: { labels: masks } } : {}),
        })
      : await TileFolderWriter.open(dir, {
          format, quality, resume, png: { ...TILE_PNG_DEFAULTS, ...(o.png as PngOptions | undefined) },
          ...(masks ? { masks: { labels: masks, info: maskInfo } } : {}),
        });
    sinkOpened = true;
    const todo = plan.tiles.filter((t) => !sink!.has(meta(t)));
    const progress = o.onProgress as TileSlideOptions['onProgress'];
    let done = plan.tiles.length - todo.length;
    progress?.(done, plan.tiles.length);
    for await (const { batch, tiles } of batchesOf(plan, todo, batchSize, norm)) {
      signal?.throwIfAborted();
      await sink.add(batch, tiles.map(meta), masks ? batchMasks(plan, tiles, masks) : undefined);
      done += tiles.length;
      progress?.(done, plan.tiles.length);
    }
    const result: TileSinkResult = await sink.finish();
    sink = undefined;
    const tilesDone = performance.now();
    const mask = join(dir, 'mask.png'), overview = join(dir, 'overview.png');
    await writeGrey(mask, plan.tissue.mask, plan.tissue.width, plan.tissue.height);
    await writeImage(overview, drawOverview(plan));
    let labelsFile: string | undefined;
    if (plan.labels.length) {
      labelsFile = join(dir, 'labels.json');
      await writeFileAtomic(labelsFile, new TextEncoder().encode(`${JSON.stringify({ labels: plan.labels }, null, 2)}\n`));
    }
    const seconds = (performance.now() - started) / 1000;
    const tileSeconds = (tilesDone - setupDone) / 1000;
    return {
      slide: plan.name,
      reader: slide.reader,
      format,
      level: plan.tiling.level,
      readSize: plan.tiling.readSize,
      size,
      mpp: plan.tiling.mpp,
      total: plan.total,
      kept: plan.tiles.length,
      written: result.written,
      skipped: result.skipped + (plan.tiles.length - todo.length),
      tissueFraction: plan.tissue.tissueFraction,
      labels: plan.labels,
      normalize,
      seconds,
      setupSeconds: (setupDone - started) / 1000,
      tileSeconds,
      tilesPerSecond: result.written / tileSeconds,
      outputs: { sink: result.files, mask, overview, ...(labelsFile ? { labels: labelsFile } : {}) },
      ...(masks
        ? {
            masks: {
              labels: masks, ignore: MASK_IGNORE, count: result.count, level: plan.tiling.level, downsample: plan.tiling.downsample,
              mpp: plan.tiling.mpp, files: format === 'packed' ? result.files[0]! : join(dir, 'masks.json'),
            },
          }
        : {}),
    };
  } catch (e) {
    // Keep what a rerun resumes from; remove a folder this call created and never filled.
    await sink?.abort().catch(() => undefined);
    if (createdDir && !sinkOpened) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  } finally {
    await slide.close();
  }
}
