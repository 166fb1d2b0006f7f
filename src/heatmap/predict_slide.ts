/**
 * predictSlide: slide → tissue mask → tile grid (with a stride) → batches
 * through a predictor → probability map (one cell per stride, see
 * probability_map.ts) → the outputs in DIR:
 *
 *   probability.png   8-bit grey + alpha, one pixel per cell (grey = round(255·p), alpha 0 = no data)
 *   probability.f32   the map as little-endian float32, row major, NaN = no data
 *   probability.json  its header: width, height, stride, level, downsample, mpp, tile size, …
 *   overlay.png       thumbnail + map in viridis + colour bar
 *   thumbnail.png     the thumbnail the tissue mask was computed on
 *   regions.geojson   cells ≥ threshold as polygons in level-0 px, with area and probabilities
 *   tiles.csv         x, y (level 0), level, size, tissue_fraction, probability per tile
 *   report.html       all of it on one self-contained page
 *   summary.json      the report's figures
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

import { checkBoolean, checkInteger, checkKnownKeys, checkNumber, checkObject, invalidRange, invalidType } from '../errors.js';
import { writeFileAtomic, type RgbBatch } from '../image.js';
import { openSlide, type OpenSlideOptions, type Slide } from '../slide/slide.js';
import type { TissueOptions } from '../tissue/options.js';
import { planBatches, planSlideTiles, type SlideTilePlan, type TilePlanOptions } from '../tiling/tile.js';
import { blendMap, withColourBar } from './overlay.js';
import { checkPredictions, checkPredictor, withDihedralTta, type SlidePredictorSpec, type TilePredictor } from './predictor.js';
import { encodeProbabilityF32, encodeProbabilityPng, probabilityMap, type PlacedProbability, type ProbabilityMap } from './probability_map.js';
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
  /** Step between tiles and cell side of the map, in output px (default size). */
  stride?: number;
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
  /** Called after every batch: tiles predicted of the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface PredictSlideResult extends HeatmapSummary {
  /** Paths of the files written, by name (probability, probabilityRaw, …). */
  outputs: Record<string, string>;
}

const KEYS = ['out', 'level', 'mpp', 'size', 'stride', 'tta', 'batchSize', 'minTissue', 'threshold', 'tissue', 'reader', 'maxMemory', 'onProgress'];

const FILES = {
  probability: 'probability.png',
  probabilityRaw: 'probability.f32',
  probabilityHeader: 'probability.json',
  overlay: 'overlay.png',
  thumbnail: 'thumbnail.png',
  regions: 'regions.geojson',
  tiles: 'tiles.csv',
  report: 'report.html',
  summary: 'summary.json',
} as const;

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
    const plan = await planTissueTiles(slide, slidePath, request);
    const stage = await folder.open('.predict-slide-');
    const placed = await predictTiles(plan, request);
    const heatmap = heatmapOf(slide, plan, placed, request.threshold);
    const summary = summarize(slidePath, slide, plan, placed, heatmap, request);
    const header = probabilityHeader(plan, heatmap, request);
    const csv = tilesCsv(plan, placed);
    const overlayPng = await pngOf(withColourBar(blendMap(plan.thumbnail.image, plan.thumbnail.downsample, heatmap.map, heatmap.cellSize0)));
    const thumbnailPng = await pngOf(plan.thumbnail.image);
    summary.seconds = (performance.now() - started) / 1000;
    await writeStaged(stage, { heatmap, header, csv, overlayPng, thumbnailPng, summary });
    // Every output exists: move them into place.
    const outputs = await folder.commit(FILES);
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
  progress: PredictSlideOptions['onProgress'];
  /** The predictor's name and input size. */
  model: SlidePredictorSpec;
  /** The predictor, with dihedral TTA added when it does not handle it. */
  predict: TilePredictor;
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
  const existing = await stat(out).catch(() => null);
  if (existing && !existing.isDirectory()) throw invalidRange('options.out', 'a folder (or a path to create one at)', out);
  const predict = model.handlesTta ? model.predict : withDihedralTta(model.predict);
  return {
    out, outExists: existing !== null, size, tta, batchSize, minTissue, threshold,
    stride: o.stride, level: o.level, mpp: o.mpp, maxMemory: o.maxMemory, tissue: o.tissue, reader: o.reader as OpenSlideOptions['reader'],
    progress, model, predict,
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

/** Writes every output of FILES into the staging folder. */
async function writeStaged(stage: string, o: { heatmap: Heatmap; header: Record<string, unknown>; csv: string; overlayPng: Buffer; thumbnailPng: Buffer; summary: HeatmapSummary }): Promise<void> {
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  await Promise.all([
    writeFileAtomic(join(stage, FILES.probability), await encodeProbabilityPng(o.heatmap.map)),
    writeFileAtomic(join(stage, FILES.probabilityRaw), encodeProbabilityF32(o.heatmap.map)),
    writeFileAtomic(join(stage, FILES.probabilityHeader), json(o.header)),
    writeFileAtomic(join(stage, FILES.overlay), o.overlayPng),
    writeFileAtomic(join(stage, FILES.thumbnail), o.thumbnailPng),
    writeFileAtomic(join(stage, FILES.regions), json(o.heatmap.regions)),
    writeFileAtomic(join(stage, FILES.tiles), o.csv),
    writeFileAtomic(join(stage, FILES.report), reportHtml(o.summary, o.heatmap.regions.features, o.overlayPng, o.thumbnailPng)),
    writeFileAtomic(join(stage, FILES.summary), json(o.summary)),
  ]);
}
