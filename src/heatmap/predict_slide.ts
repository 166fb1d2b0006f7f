/**
 * predictSlide: slide → tissue mask → tile grid (with a stride) → batches
 * through a predictor → probability map (one cell per stride, see
 * probability_map.ts) → the outputs in DIR:
 *
 *   probability.png   8-bit grey + alpha, one pixel per cell (grey = round(255·p), alpha 0 = no data)
 *   probability.f32   the map as little-endian float32, row major, NaN = no data
 *   probability.json  its header: width, height, stride, level, downsample, mpp, tile size, …
 *   probability.npy   the same floats as NumPy .npy v1.0 ('<f4', shape (height, width)), npy.ts
 *   overlay.tif       the map in viridis as a tiled pyramidal RGBA TIFF over the slide at a stated downsample, overlay_tiff.ts
 *   overlay.png       thumbnail + map in viridis + colour bar
 *   thumbnail.png     the thumbnail the tissue mask was computed on
 *   regions.geojson   cells ≥ threshold as QuPath annotations (polygons in level-0 px) with their scores, regions.ts
 *   regions.xml       the same polygons as ASAP XML (holes as Exclusion annotations), asap_regions.ts
 *   detections.geojson  with options.detections: one QuPath detection per tile with its probability, detections.ts
 *   tiles.csv         x, y (level 0), level, size, tissue_fraction, probability per tile
 *   report.html       all of it on one page, with a zoomable viewer over report_files/ (deep_zoom.ts)
 *   report_files/     OpenSeadragon and the Deep Zoom tiles of the slide and the map
 *   summary.json      the report's figures
 *
 * With a pixel predictor (a segmentation model, `output: 'pixels'`) the map
 * is a pixel map instead (pixel_map.ts): windows of the model's size every
 * `stride` px (default half the size) over the whole level, each window's
 * per-pixel probabilities blended with a sin² weight, one map pixel per
 * `mapDownsample` level px (default: the finest power of two within the
 * memory bound), NaN where the tissue fraction of a map pixel is below
 * minTissue; the outputs are the same, made from that map (tiles.csv lists
 * the windows and their mean probability; detections.geojson, a detection
 * per tile, is for patch classifiers only).
 *
 * All or nothing: every input (options, the model's input size, the slide,
 * its tissue) is checked before DIR is touched; the outputs are written to a
 * hidden staging folder inside DIR and renamed into place only once all of
 * them exist. On any error the staging folder goes, and DIR too if this call
 * created it: nothing half-written, no new file left behind.
 */
import { stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';

import sharp from 'sharp';

import { checkBoolean, checkInteger, checkKnownKeys, checkNumber, checkObject, describeValue, invalidRange, invalidType } from '../errors.js';
import { stackImages, writeFileAtomic, type RgbBatch } from '../image.js';
import { openSlide, type OpenSlideOptions, type Slide } from '../slide/slide.js';
import type { TissueOptions } from '../tissue/options.js';
import { planBatches, planSlideTiles, type SlideTilePlan, type TilePlanOptions } from '../tiling/tile.js';
import { VIEWER_FOLDER, writeViewerFiles } from './deep_zoom.js';
import { tileDetections, type DetectionCollection } from './detections.js';
import { encodeNpyFloat32 } from './npy.js';
import { blendMap, withColourBar } from './overlay.js';
import { overlayGeometry, writeOverlayTiff, type OverlayGeometry } from './overlay_tiff.js';
import { checkPixelPredictions, checkPredictions, checkPredictor, withDihedralPixelTta, withDihedralTta, type SlidePredictorSpec, type TilePredictor } from './predictor.js';
import { defaultMapDownsample, MAP_BYTES_PER_PIXEL, PixelMapAccumulator, tissuePixels, windowStarts, type PixelMapGeometry } from './pixel_map.js';
import { checkMemory, memoryLimit, type MemoryLimit } from '../memory_budget.js';
import { integralImage, tissueFraction } from '../tiling/grid.js';
import { encodeProbabilityF32, encodeProbabilityPng, probabilityMap, type PlacedProbability, type ProbabilityMap } from './probability_map.js';
import { regionsAsapXml } from './asap_regions.js';
import { tumourRegions, type RegionCollection } from './regions.js';
import { reportHtml, type HeatmapSummary } from './report.js';
import { StagedFolder } from './staged_folder.js';

export interface PredictSlideOptions {
  /** Output folder (created if missing). */
  out: string;
  /** Pyramid level (default 0), or a target µm/px (see planTiling). */
  level?: number;
  mpp?: number;
  /** Tile size: must equal the model's input size (the default). */
  size?: number;
  /** Step between tiles and cell side of the map, in output px (default size; a pixel model's windows: half the size). */
  stride?: number;
  /** Pixel models only: level px per map pixel side (default: the smallest power of two keeping the map within the memory bound; 1 = full resolution). */
  mapDownsample?: number;
  /** Average the 8 dihedral views of each tile (default false). */
  tta?: boolean;
  /** Tiles per predictor call (default 64). */
  batchSize?: number;
  /** Predict tiles whose tissue fraction is ≥ this (default 0.5); the others are no data. */
  minTissue?: number;
  /** Probability at which a cell counts as tumour (default 0.5). */
  threshold?: number;
  /** Tissue detection options, and `maxSize`: the thumbnail's longer side (default 1024). */
  tissue?: TissueOptions & { maxSize?: number };
  reader?: OpenSlideOptions['reader'];
  /** Refuse a tile plan that needs more memory (bytes, or a memoryLimit(); default $HISTOFLOW_MAX_MEMORY, else 2 GiB). */
  maxMemory?: TilePlanOptions['maxMemory'];
  /** Also write detections.geojson: one QuPath detection per tile (default false). */
  detections?: boolean;
  /** overlay.tif's level-0 px per px (default: see overlay_tiff.ts; at most MAX_OVERLAY_PIXELS px). */
  overlayDownsample?: number;
  /** Longer side of the report viewer's slide image, px (default 8192; the slide downsampled to it). */
  reportSize?: number;
  /** Called after every batch: tiles predicted of the total. */
  onProgress?: (done: number, total: number) => void;
  /** Called as the outputs are written: steps done of the total, and the one starting next (or 'done'). */
  onWrite?: (done: number, total: number, next: string) => void;
}

export interface PredictSlideResult extends HeatmapSummary {
  /** Paths of the files written, by name (probability, probabilityRaw, …). */
  outputs: Record<string, string>;
}

const KEYS = ['out', 'level', 'mpp', 'size', 'stride', 'mapDownsample', 'tta', 'batchSize', 'minTissue', 'threshold', 'tissue', 'reader', 'maxMemory', 'detections', 'overlayDownsample', 'reportSize', 'onProgress', 'onWrite'];

/** The report viewer's default image size (longer side): up to 7 bytes a pixel (slide RGB + map RGBA) while it is written, about 350 MB at 8192 x 6144. */
export const DEFAULT_REPORT_SIZE = 8192;

const FILES = {
  probability: 'probability.png',
  probabilityRaw: 'probability.f32',
  probabilityHeader: 'probability.json',
  probabilityNpy: 'probability.npy',
  overlayTiff: 'overlay.tif',
  overlay: 'overlay.png',
  thumbnail: 'thumbnail.png',
  regions: 'regions.geojson',
  regionsXml: 'regions.xml',
  tiles: 'tiles.csv',
  report: 'report.html',
  reportFiles: VIEWER_FOLDER,
  summary: 'summary.json',
} as const;
const DETECTIONS_FILE = 'detections.geojson';

function pngOf(image: RgbBatch): Promise<Buffer> {
  return sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: 3 },
  }).png().toBuffer();
}

/** Runs the model over a slide's tissue and writes the heatmap outputs into options.out. */
export async function predictSlide(slidePath: string, predictor: SlidePredictorSpec, options: PredictSlideOptions): Promise<PredictSlideResult> {
  const started = performance.now();
  const request = await checkRequest(slidePath, predictor, options);
  const slide = await openSlide(slidePath, request.reader === undefined ? {} : { reader: request.reader });
  const folder = new StagedFolder(request.out, request.outExists);
  try {
    if (request.pixels) return await predictPixelSlide(slidePath, slide, folder, request, started);
    const plan = await planTissueTiles(slide, slidePath, request);
    const { width, height } = slide.levels[0]!;
    // Checked before the folder is touched: an explicit overlayDownsample may be too fine.
    const overlay = overlayGeometry(width, height, request.overlayDownsample);
    const stage = await folder.open('.predict-slide-');
    const placed = await predictTiles(plan, request);
    const heatmap = heatmapOf(slide, plan, placed, request.threshold);
    const detections = request.detections ? detectionsOf(plan, placed, request.threshold) : null;
    const summary = summarize(slidePath, slide, plan, placed, heatmap, request);
    Object.assign(summary, { overlayDownsample: overlay.downsample, overlayWidth: overlay.width, overlayHeight: overlay.height, detections: detections?.features.length ?? null });
    const header = probabilityHeader(plan, heatmap, request);
    const csv = tilesCsv(plan, placed);
    const overlayPng = await pngOf(withColourBar(blendMap(plan.thumbnail.image, plan.thumbnail.downsample, heatmap.map, heatmap.cellSize0)));
    const thumbnailPng = await pngOf(plan.thumbnail.image);
    await writeStaged(stage, slide, { heatmap, header, csv, overlayPng, thumbnailPng, summary, overlay, detections, reportSize: request.reportSize, started, onWrite: request.onWrite });
    // Every output exists: move them into place.
    const outputs = await folder.commit(detections ? { ...FILES, detections: DETECTIONS_FILE } : FILES);
    return { ...summary, outputs };
  } catch (e) {
    await folder.abandon();
    throw e;
  } finally {
    await slide.close();
  }
}

/** The options checked and defaulted; stride, level, mpp, tissue and reader are checked by planSlideTiles and openSlide. */
interface SlideRequest {
  out: string;
  /** Whether out existed (as a folder) before the call. */
  outExists: boolean;
  size: number;
  tta: boolean;
  batchSize: number;
  minTissue: number;
  threshold: number;
  stride: unknown;
  level: unknown;
  mpp: unknown;
  maxMemory: unknown;
  tissue: unknown;
  reader: OpenSlideOptions['reader'];
  detections: boolean;
  overlayDownsample: number | undefined;
  reportSize: number;
  progress: PredictSlideOptions['onProgress'];
  onWrite: PredictSlideOptions['onWrite'];
  /** The predictor's name and input size. */
  model: SlidePredictorSpec;
  /** The predictor, with dihedral TTA added when it does not handle it. */
  predict: TilePredictor;
  /** A pixel predictor (a segmentation model): the map is stitched per pixel. */
  pixels: boolean;
  /** Pixel predictors: options.mapDownsample, when given. */
  mapDownsample: number | undefined;
}

/** Validates every argument (and that out is a folder or free) before anything is opened or written. */
async function checkRequest(slidePath: string, predictor: SlidePredictorSpec, options: PredictSlideOptions): Promise<SlideRequest> {
  if (typeof slidePath !== 'string' || slidePath.length === 0) throw invalidType('slide', 'a slide file path', slidePath);
  const model = checkPredictor('predictor', predictor);
  const o = checkObject('options', options);
  checkKnownKeys('options', o, KEYS);
  if (typeof o.out !== 'string' || o.out.length === 0) throw invalidType('options.out', 'an output folder path', o.out);
  const out = o.out;
  const size = o.size === undefined ? model.inputSize : checkInteger('options.size', o.size, 1, 1 << 14);
  if (size !== model.inputSize) {
    throw invalidRange('options.size', `the input size of model '${model.name}', ${model.inputSize} px (its tiles are ${model.inputSize}x${model.inputSize})`, size);
  }
  const tta = o.tta === undefined ? false : checkBoolean('options.tta', o.tta);
  const batchSize = o.batchSize === undefined ? 64 : checkInteger('options.batchSize', o.batchSize, 1, 4096);
  const minTissue = o.minTissue === undefined ? 0.5 : checkNumber('options.minTissue', o.minTissue, 0, 1);
  const threshold = o.threshold === undefined ? 0.5 : checkNumber('options.threshold', o.threshold, 0, 1);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw invalidType('options.onProgress', 'a function', o.onProgress);
  const progress = o.onProgress as PredictSlideOptions['onProgress'];
  if (o.onWrite !== undefined && typeof o.onWrite !== 'function') throw invalidType('options.onWrite', 'a function', o.onWrite);
  const detections = o.detections === undefined ? false : checkBoolean('options.detections', o.detections);
  const overlayDownsample = o.overlayDownsample === undefined ? undefined : checkInteger('options.overlayDownsample', o.overlayDownsample, 1, 1 << 20);
  const reportSize = o.reportSize === undefined ? DEFAULT_REPORT_SIZE : checkInteger('options.reportSize', o.reportSize, 64, 1 << 15);
  const pixels = model.output === 'pixels';
  let stride = o.stride, mapDownsample: number | undefined;
  if (pixels) {
    stride = o.stride === undefined ? Math.max(1, Math.floor(size / 2)) : checkInteger('options.stride', o.stride, 1, 1 << 16);
    if ((stride as number) > size) {
      throw new RangeError(`Expected an integer between 1 and ${size} for options.stride but received ${describeValue(stride)}: ` +
        `the windows of the pixel model '${model.name}' are ${size} px, and a longer step leaves pixels no window covers`);
    }
    if (o.mapDownsample !== undefined) mapDownsample = checkInteger('options.mapDownsample', o.mapDownsample, 1, 1 << 16);
    if (detections) {
      throw new RangeError(`Expected no options.detections for the pixel model '${model.name}' but received true: detections.geojson holds one detection ` +
        'per tile of a patch classifier; a pixel map\'s regions are in regions.geojson');
    }
  } else if (o.mapDownsample !== undefined) {
    throw new RangeError(`Expected no options.mapDownsample for model '${model.name}' but received ${describeValue(o.mapDownsample)}: it gives one probability per tile, ` +
      'and its map has one cell per stride (options.stride); mapDownsample sets the pixel map of a segmentation model');
  }
  const existing = await stat(out).catch(() => null);
  if (existing && !existing.isDirectory()) throw invalidRange('options.out', 'a folder (or a path to create one at)', out);
  const predict = model.handlesTta ? model.predict : pixels ? withDihedralPixelTta(model.predict, model.inputSize) : withDihedralTta(model.predict);
  return {
    out, outExists: existing !== null, size, tta, batchSize, minTissue, threshold, detections, overlayDownsample, reportSize, onWrite: o.onWrite as PredictSlideOptions['onWrite'],
    stride, level: o.level, mpp: o.mpp, maxMemory: o.maxMemory, tissue: o.tissue, reader: o.reader as OpenSlideOptions['reader'],
    progress, model, predict, pixels, mapDownsample,
  };
}

/** The tissue mask and the tile grid over it; a RangeError when no tile has enough tissue. */
async function planTissueTiles(slide: Slide, slidePath: string, r: SlideRequest): Promise<SlideTilePlan> {
  const plan = await planSlideTiles(slide, {
    size: r.size,
    minTissue: r.minTissue,
    ...(r.stride === undefined ? {} : { stride: r.stride as number }),
    ...(r.level === undefined ? {} : { level: r.level as number }),
    ...(r.mpp === undefined ? {} : { mpp: r.mpp as number }),
    ...(r.maxMemory === undefined ? {} : { maxMemory: r.maxMemory as TilePlanOptions['maxMemory'] }),
    ...(r.tissue === undefined ? {} : { tissue: r.tissue as TissueOptions }),
  });
  if (plan.tissue.tissueFraction === 0 || plan.tiles.length === 0) {
    throw new RangeError(
      `No tissue to predict on ${slidePath}: ${plan.tissue.tissueFraction === 0 ? 'no tissue was found on the slide' : `no tile has a tissue fraction ≥ ${r.minTissue}`}` +
        ` (${plan.total} grid positions at level ${plan.tiling.level}); lower options.minTissue or check the slide`,
    );
  }
  return plan;
}

/** Every planned tile's probability, batch by batch, in plan order; progress after each batch. */
async function predictTiles(plan: SlideTilePlan, r: SlideRequest): Promise<PlacedProbability[]> {
  const placed: PlacedProbability[] = [];
  r.progress?.(0, plan.tiles.length);
  for await (const { batch, tiles } of planBatches(plan, r.batchSize)) {
    const p = checkPredictions(r.model.name, await r.predict(batch, { tta: r.tta }), batch.n);
    tiles.forEach((t, i) => placed.push({ x: t.x, y: t.y, probability: p[i]! }));
    r.progress?.(placed.length, plan.tiles.length);
  }
  return placed;
}

/** The probability map at the level read and its regions ≥ threshold. */
interface Heatmap {
  map: ProbabilityMap;
  regions: RegionCollection;
  /** A map cell's side in level-0 px. */
  cellSize0: number;
  /** Level-0 µm/px, or null when the slide does not say. */
  mpp0: number | null;
}

/** The tiles' probabilities as a map (one cell per stride) and its tumour regions. */
function heatmapOf(slide: Slide, plan: SlideTilePlan, placed: readonly PlacedProbability[], threshold: number): Heatmap {
  const { tiling } = plan;
  const level = slide.levels[tiling.level]!;
  const mpp0 = slide.mpp?.x ?? null;
  const cellSize0 = tiling.readStride * tiling.downsample;
  const map = probabilityMap(level.width, level.height, tiling.readSize, tiling.readStride, placed);
  const regions = tumourRegions(map, { threshold, cellSize0, mpp0 });
  return { map, regions, cellSize0, mpp0 };
}

/** The report's figures (summary.json); `seconds` is filled in just before writing. */
function summarize(slidePath: string, slide: Slide, plan: SlideTilePlan, placed: readonly PlacedProbability[], h: Heatmap, r: SlideRequest): HeatmapSummary {
  const { tiling, tissue } = plan;
  const { map, mpp0, cellSize0, regions } = h;
  let dataCells = 0, tumourCells = 0;
  for (const p of map.data) {
    if (Number.isNaN(p)) continue;
    dataCells++;
    if (p >= r.threshold) tumourCells++;
  }
  let maxProbability = 0, sumProbability = 0;
  for (const t of placed) {
    maxProbability = Math.max(maxProbability, t.probability);
    sumProbability += t.probability;
  }
  const mm2 = (px: number) => (mpp0 === null ? null : (px * mpp0 * mpp0) / 1e6);
  const tissueAreaPx = tissue.tissueFraction * tissue.width * tissue.height * tissue.downsample ** 2;
  const tumourAreaPx = tumourCells * cellSize0 ** 2;
  return {
    slide: basename(slidePath, extname(slidePath)),
    path: slidePath,
    reader: slide.reader,
    width: slide.levels[0]!.width,
    height: slide.levels[0]!.height,
    mpp: mpp0,
    level: tiling.level,
    downsample: tiling.downsample,
    tileMpp: tiling.mpp,
    tileSize: r.size,
    stride: tiling.stride,
    mapWidth: map.width,
    mapHeight: map.height,
    tiles: placed.length,
    gridPositions: plan.total,
    tissueAreaPx,
    tissueAreaMm2: mm2(tissueAreaPx),
    tumourAreaPx,
    tumourAreaMm2: mm2(tumourAreaPx),
    tumourFraction: dataCells ? tumourCells / dataCells : 0,
    maxProbability,
    meanProbability: sumProbability / placed.length,
    threshold: r.threshold,
    regions: regions.features.length,
    model: r.model.name,
    tta: r.tta,
    // Filled in by predictSlide and writeStaged.
    overlayDownsample: 0,
    overlayWidth: 0,
    overlayHeight: 0,
    reportWidth: 0,
    reportHeight: 0,
    reportDownsample: 0,
    detections: null,
    seconds: 0,
  };
}

/** probability.json: how to read probability.f32 and .png, and where the cells lie. */
function probabilityHeader(plan: SlideTilePlan, h: Heatmap, r: SlideRequest): Record<string, unknown> {
  const { tiling } = plan;
  return {
    width: h.map.width,
    height: h.map.height,
    dtype: 'float32',
    byteOrder: 'little-endian',
    layout: 'row-major, row 0 at the top',
    noData: 'NaN (probability.png: alpha 0)',
    pngEncoding: 'grey = round(255 * p), alpha 255 where the cell has data, 0 where not',
    cell: 'cell (i, j) covers level px [j*stride, (j+1)*stride) x [i*stride, (i+1)*stride); a tile gives its probability to its centre stride square',
    stride: h.map.stride,
    tileSizeAtLevel: h.map.tileSize,
    tileSize: r.size,
    strideOutput: tiling.stride,
    level: tiling.level,
    downsample: tiling.downsample,
    cellSizeLevel0: h.cellSize0,
    mpp: h.mpp0,
    tileMpp: tiling.mpp,
    threshold: r.threshold,
    model: r.model.name,
    tta: r.tta,
  };
}

/** tiles.csv: one row per tile predicted, level-0 top-left. */
function tilesCsv(plan: SlideTilePlan, placed: readonly PlacedProbability[]): string {
  const { tiling } = plan;
  return ['x,y,level,size,tissue_fraction,probability', ...plan.tiles.map((t, i) =>
    `${Math.round(t.x0)},${Math.round(t.y0)},${tiling.level},${tiling.readSize},${t.tissue.toFixed(4)},${placed[i]!.probability.toFixed(6)}`)].join('\n') + '\n';
}

/** detections.geojson: every tile predicted, in plan order. */
function detectionsOf(plan: SlideTilePlan, placed: readonly PlacedProbability[], threshold: number): DetectionCollection {
  const { readSize, readStride, downsample } = plan.tiling;
  const tiles = plan.tiles.map((t, i) => ({ x0: t.x0, y0: t.y0, tissue: t.tissue, probability: placed[i]!.probability }));
  return tileDetections(tiles, { readSize, readStride, downsample, threshold });
}

interface StagedOutputs {
  heatmap: Heatmap;
  header: Record<string, unknown>;
  csv: string;
  overlayPng: Buffer;
  thumbnailPng: Buffer;
  summary: HeatmapSummary;
  overlay: OverlayGeometry;
  detections: DetectionCollection | null;
  reportSize: number;
  /** performance.now() when the call began: summary.seconds counts up to the last output. */
  started: number;
  onWrite: PredictSlideOptions['onWrite'];
}

/**
 * Writes every output of FILES (and detections.geojson) into the staging
 * folder: the small files at once, then the slow ones one after the other
 * (overlay.tif, the viewer's Deep Zoom tiles), telling onWrite as it goes.
 */
async function writeStaged(stage: string, slide: Slide, o: StagedOutputs): Promise<void> {
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  const { map, cellSize0, mpp0 } = o.heatmap;
  const steps = ['maps and regions', FILES.overlayTiff, 'report slide image', 'report Deep Zoom tiles', FILES.report];
  let done = 0;
  const next = () => o.onWrite?.(done, steps.length, steps[done++] ?? 'done');
  next();
  await Promise.all([
    writeFileAtomic(join(stage, FILES.probability), await encodeProbabilityPng(map)),
    writeFileAtomic(join(stage, FILES.probabilityRaw), encodeProbabilityF32(map)),
    writeFileAtomic(join(stage, FILES.probabilityNpy), encodeNpyFloat32(map.data, map.height, map.width)),
    writeFileAtomic(join(stage, FILES.probabilityHeader), json(o.header)),
    writeFileAtomic(join(stage, FILES.overlay), o.overlayPng),
    writeFileAtomic(join(stage, FILES.thumbnail), o.thumbnailPng),
    writeFileAtomic(join(stage, FILES.regions), json(o.heatmap.regions)),
    writeFileAtomic(join(stage, FILES.regionsXml), regionsAsapXml(o.heatmap.regions)),
    writeFileAtomic(join(stage, FILES.tiles), o.csv),
    ...(o.detections ? [writeFileAtomic(join(stage, DETECTIONS_FILE), json(o.detections))] : []),
  ]);
  next();
  await writeOverlayTiff(join(stage, FILES.overlayTiff), map, cellSize0, o.overlay, mpp0);
  next();
  const image = await slide.thumbnail(o.reportSize);
  next();
  const { width, height } = slide.levels[0]!;
  const viewer = await writeViewerFiles(stage, image, map, cellSize0, width, height);
  Object.assign(o.summary, { reportWidth: viewer.width, reportHeight: viewer.height, reportDownsample: viewer.downsample });
  next();
  o.summary.seconds = (performance.now() - o.started) / 1000;
  await writeFileAtomic(join(stage, FILES.report), reportHtml(o.summary, o.heatmap.regions.features, o.overlayPng, o.thumbnailPng, viewer));
  await writeFileAtomic(join(stage, FILES.summary), json(o.summary));
  next();
}

/** The windows of a pixel map over the level, decided before anything is written. */
interface PixelWindowPlan {
  /** The tiling (level, read size and stride), the tissue mask and the thumbnail. */
  base: SlideTilePlan;
  geometry: PixelMapGeometry;
  accumulator: PixelMapAccumulator;
  /** Windows over map pixels with data, top-left at the level, with their tissue fraction; and all window positions. */
  windows: Array<{ x: number; y: number; tissue: number }>;
  total: number;
}

/** The limit options.maxMemory (already checked by planSlideTiles) stands for. */
function limitOf(value: unknown): MemoryLimit {
  if (value !== null && typeof value === 'object') {
    const l = value as { bytes: number; source?: string };
    return { bytes: l.bytes, source: String(l.source ?? 'options.maxMemory') };
  }
  return memoryLimit(value as number | undefined, 'options.maxMemory');
}

/**
 * Level, tissue and thumbnail (planSlideTiles: its grid of whole tiles is not
 * used), the map downsample within the memory limit, the map pixels with
 * tissue, and the windows over them; a RangeError when there are none.
 */
async function planPixelWindows(slide: Slide, slidePath: string, r: SlideRequest): Promise<PixelWindowPlan> {
  const base = await planSlideTiles(slide, {
    size: r.size,
    stride: r.stride as number,
    // Only the tiles wholly in tissue are listed: the windows are placed below.
    minTissue: 1,
    ...(r.level === undefined ? {} : { level: r.level as number }),
    ...(r.mpp === undefined ? {} : { mpp: r.mpp as number }),
    ...(r.maxMemory === undefined ? {} : { maxMemory: r.maxMemory as TilePlanOptions['maxMemory'] }),
    ...(r.tissue === undefined ? {} : { tissue: r.tissue as TissueOptions }),
  });
  const { tiling, tissue } = base;
  const level = slide.levels[tiling.level]!;
  const limit = limitOf(r.maxMemory);
  // A window read at readSize px and resampled to the model's size has an output pixel every readSize/size level px:
  // a finer map pixel may hold none of them (no data amid tissue).
  const pitch = Math.ceil(tiling.readSize / tiling.size);
  if (r.mapDownsample !== undefined && r.mapDownsample < pitch) {
    throw new RangeError(`Expected an integer ≥ ${pitch} for options.mapDownsample but received ${describeValue(r.mapDownsample)}: the windows are read at ` +
      `${tiling.readSize} level px and resampled to the model's ${tiling.size} px, so a finer map pixel may hold no output pixel`);
  }
  let mapDownsample = r.mapDownsample ?? defaultMapDownsample(level.width, level.height, limit.bytes);
  while (mapDownsample < pitch) mapDownsample *= 2;
  const geometry: PixelMapGeometry = { levelWidth: level.width, levelHeight: level.height, mapDownsample, windowSize: tiling.readSize, outputSize: tiling.size };
  const mapWidth = Math.ceil(level.width / mapDownsample), mapHeight = Math.ceil(level.height / mapDownsample);
  checkMemory(
    `a pixel map of level ${tiling.level} (${level.width}x${level.height}) at map downsample ${mapDownsample} (${mapWidth}x${mapHeight} px, ` +
      `${MAP_BYTES_PER_PIXEL} bytes each; a larger options.mapDownsample / --map-downsample makes it smaller)`,
    mapWidth * mapHeight * MAP_BYTES_PER_PIXEL,
    limit,
  );
  if (tissue.tissueFraction === 0) {
    throw new RangeError(`No tissue to predict on ${slidePath}: no tissue was found on the slide (level ${tiling.level}); check the slide`);
  }
  const data = tissuePixels(geometry, tiling.downsample, tissue, r.minTissue);
  const accumulator = new PixelMapAccumulator(geometry, data);
  const xs = windowStarts(level.width, tiling.readSize, tiling.readStride), ys = windowStarts(level.height, tiling.readSize, tiling.readStride);
  const sat = integralImage(tissue.mask, tissue.width, tissue.height);
  const d = tiling.downsample;
  const windows: PixelWindowPlan['windows'] = [];
  for (const y of ys) {
    for (const x of xs) {
      if (!accumulator.touchesData(x, y)) continue;
      const w = Math.min(level.width, x + tiling.readSize) - x, h = Math.min(level.height, y + tiling.readSize) - y;
      windows.push({ x, y, tissue: tissueFraction(sat, tissue, x * d, y * d, w * d, h * d) });
    }
  }
  if (windows.length === 0) {
    throw new RangeError(`No tissue to predict on ${slidePath}: no map pixel has a tissue fraction ≥ ${r.minTissue} ` +
      `(${mapWidth}x${mapHeight} map pixels at level ${tiling.level}); lower options.minTissue or check the slide`);
  }
  return { base, geometry, accumulator, windows, total: xs.length * ys.length };
}

/** One window read at the level (white beyond its edges), resampled to the model's size when the plan says so. */
async function readWindow(plan: PixelWindowPlan, x: number, y: number): Promise<RgbBatch> {
  const { level, readSize, size } = plan.base.tiling;
  const region = await plan.base.slide.readRegion(level, x, y, readSize, readSize);
  if (readSize === size) return region;
  const data = await sharp(Buffer.from(region.data.buffer, region.data.byteOffset, region.data.byteLength), {
    raw: { width: readSize, height: readSize, channels: 3 },
  }).resize(size, size, { kernel: 'lanczos3' }).raw().toBuffer();
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), n: 1, height: size, width: size };
}

/** Every window through the predictor, read ahead by one batch, into the map; each window's mean probability (tiles.csv). */
async function predictWindows(plan: PixelWindowPlan, r: SlideRequest): Promise<Float64Array> {
  const { windows } = plan;
  const S = r.size;
  const means = new Float64Array(windows.length);
  const read = (start: number) => {
    const batch = Promise.all(windows.slice(start, start + r.batchSize).map((w) => readWindow(plan, w.x, w.y))).then(stackImages);
    // A read that fails while the model is still busy must not be an unhandled rejection.
    batch.catch(() => undefined);
    return batch;
  };
  r.progress?.(0, windows.length);
  let next = read(0);
  for (let start = 0; start < windows.length; start += r.batchSize) {
    const batch = await next;
    if (start + r.batchSize < windows.length) next = read(start + r.batchSize);
    const p = checkPixelPredictions(r.model.name, await r.predict(batch, { tta: r.tta }), batch.n, S);
    for (let i = 0; i < batch.n; i++) means[start + i] = plan.accumulator.add(windows[start + i]!.x, windows[start + i]!.y, p, i * S * S);
    r.progress?.(start + batch.n, windows.length);
  }
  return means;
}

/** predictSlide for a pixel predictor: the windows, the stitched map, the same outputs. */
async function predictPixelSlide(slidePath: string, slide: Slide, folder: StagedFolder, r: SlideRequest, started: number): Promise<PredictSlideResult> {
  const plan = await planPixelWindows(slide, slidePath, r);
  const { width, height } = slide.levels[0]!;
  const overlay = overlayGeometry(width, height, r.overlayDownsample);
  const stage = await folder.open('.predict-slide-');
  const means = await predictWindows(plan, r);
  const { tiling } = plan.base;
  const map = plan.accumulator.finish();
  const mpp0 = slide.mpp?.x ?? null;
  const cellSize0 = plan.geometry.mapDownsample * tiling.downsample;
  const heatmap: Heatmap = { map, regions: tumourRegions(map, { threshold: r.threshold, cellSize0, mpp0 }), cellSize0, mpp0 };
  const placed = plan.windows.map((w, i) => ({ x: w.x, y: w.y, probability: means[i]! }));
  const summary = summarize(slidePath, slide, plan.base, placed, heatmap, r);
  let max = 0, sum = 0, count = 0;
  for (const p of map.data) {
    if (Number.isNaN(p)) continue;
    max = Math.max(max, p);
    sum += p;
    count++;
  }
  Object.assign(summary, {
    gridPositions: plan.total, maxProbability: max, meanProbability: count ? sum / count : 0,
    mapKind: 'pixels', mapDownsample: plan.geometry.mapDownsample, mapMpp: mpp0 === null ? null : cellSize0 * mpp0,
    overlayDownsample: overlay.downsample, overlayWidth: overlay.width, overlayHeight: overlay.height,
  });
  const header = {
    ...probabilityHeader(plan.base, heatmap, r),
    kind: 'pixels',
    stride: tiling.readStride,
    cell: 'pixel (i, j) covers level px [j*mapDownsample, (j+1)*mapDownsample) x [i*mapDownsample, (i+1)*mapDownsample); ' +
      'the blend of the windows over it, each weighted by sin^2(pi*(u+0.5)/size) * sin^2(pi*(v+0.5)/size) at its pixel (u, v)',
    mapDownsample: plan.geometry.mapDownsample,
    mapMpp: summary.mapMpp,
    windows: plan.windows.length,
  };
  const csv = ['x,y,level,size,tissue_fraction,mean_probability', ...plan.windows.map((w, i) =>
    `${Math.round(w.x * tiling.downsample)},${Math.round(w.y * tiling.downsample)},${tiling.level},${tiling.readSize},${w.tissue.toFixed(4)},${means[i]!.toFixed(6)}`)].join('\n') + '\n';
  const overlayPng = await pngOf(withColourBar(blendMap(plan.base.thumbnail.image, plan.base.thumbnail.downsample, map, cellSize0)));
  const thumbnailPng = await pngOf(plan.base.thumbnail.image);
  await writeStaged(stage, slide, { heatmap, header, csv, overlayPng, thumbnailPng, summary, overlay, detections: null, reportSize: r.reportSize, started, onWrite: r.onWrite });
  const outputs = await folder.commit(FILES);
  return { ...summary, outputs };
}
