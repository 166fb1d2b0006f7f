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
import { mkdir, mkdtemp, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';

import sharp from 'sharp';

import { checkBoolean, checkInteger, checkKnownKeys, checkNumber, checkObject, invalidRange, invalidType } from '../errors.js';
import { writeFileAtomic, type RgbBatch } from '../image.js';
import { openSlide, type OpenSlideOptions } from '../slide/slide.js';
import type { TissueOptions } from '../tissue/options.js';
import { planBatches, planSlideTiles } from '../tiling/tile.js';
import { blendMap, withColourBar } from './overlay.js';
import { checkPredictions, checkPredictor, withDihedralTta, type SlidePredictorSpec } from './predictor.js';
import { encodeProbabilityF32, encodeProbabilityPng, probabilityMap, type PlacedProbability } from './probability_map.js';
import { tumourRegions } from './regions.js';
import { reportHtml, type HeatmapSummary } from './report.js';

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
  /** Called after every batch: tiles predicted of the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface PredictSlideResult extends HeatmapSummary {
  /** Paths of the files written, by name (probability, probabilityRaw, …). */
  outputs: Record<string, string>;
}

const KEYS = ['out', 'level', 'mpp', 'size', 'stride', 'tta', 'batchSize', 'minTissue', 'threshold', 'tissue', 'reader', 'onProgress'];

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

  const slide = await openSlide(slidePath, o.reader === undefined ? {} : { reader: o.reader as OpenSlideOptions['reader'] });
  let createdDir = false, stage: string | undefined;
  const moved: string[] = [];
  try {
    const plan = await planSlideTiles(slide, {
      size,
      minTissue,
      ...(o.stride === undefined ? {} : { stride: o.stride as number }),
      ...(o.level === undefined ? {} : { level: o.level as number }),
      ...(o.mpp === undefined ? {} : { mpp: o.mpp as number }),
      ...(o.tissue === undefined ? {} : { tissue: o.tissue as TissueOptions }),
    });
    if (plan.tissue.tissueFraction === 0 || plan.tiles.length === 0) {
      throw new RangeError(
        `No tissue to predict on ${slidePath}: ${plan.tissue.tissueFraction === 0 ? 'no tissue was found on the slide' : `no tile has a tissue fraction ≥ ${minTissue}`}` +
          ` (${plan.total} grid positions at level ${plan.tiling.level}); lower options.minTissue or check the slide`,
      );
    }

    createdDir = !existing;
    await mkdir(out, { recursive: true });
    stage = await mkdtemp(join(out, '.predict-slide-'));

    // Tiles → probabilities, batch by batch.
    const placed: PlacedProbability[] = [];
    progress?.(0, plan.tiles.length);
    for await (const { batch, tiles } of planBatches(plan, batchSize)) {
      const p = checkPredictions(model.name, await predict(batch, { tta }), batch.n);
      tiles.forEach((t, i) => placed.push({ x: t.x, y: t.y, probability: p[i]! }));
      progress?.(placed.length, plan.tiles.length);
    }

    const { tiling, tissue, thumbnail } = plan;
    const level = slide.levels[tiling.level]!;
    const mpp0 = slide.mpp?.x ?? null;
    const cellSize0 = tiling.readStride * tiling.downsample;
    const map = probabilityMap(level.width, level.height, tiling.readSize, tiling.readStride, placed);
    const regions = tumourRegions(map, { threshold, cellSize0, mpp0 });

    let dataCells = 0, tumourCells = 0;
    for (const p of map.data) {
      if (Number.isNaN(p)) continue;
      dataCells++;
      if (p >= threshold) tumourCells++;
    }
    let maxProbability = 0, sumProbability = 0;
    for (const t of placed) {
      maxProbability = Math.max(maxProbability, t.probability);
      sumProbability += t.probability;
    }
    const mm2 = (px: number) => (mpp0 === null ? null : (px * mpp0 * mpp0) / 1e6);
    const tissueAreaPx = tissue.tissueFraction * tissue.width * tissue.height * tissue.downsample ** 2;
    const tumourAreaPx = tumourCells * cellSize0 ** 2;
    const summary: HeatmapSummary = {
      slide: basename(slidePath, extname(slidePath)),
      path: slidePath,
      reader: slide.reader,
      width: slide.levels[0]!.width,
      height: slide.levels[0]!.height,
      mpp: mpp0,
      level: tiling.level,
      downsample: tiling.downsample,
      tileMpp: tiling.mpp,
      tileSize: size,
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
      threshold,
      regions: regions.features.length,
      model: model.name,
      tta,
      seconds: 0,
    };

    const header = {
      width: map.width,
      height: map.height,
      dtype: 'float32',
      byteOrder: 'little-endian',
      layout: 'row-major, row 0 at the top',
      noData: 'NaN (probability.png: alpha 0)',
      pngEncoding: 'grey = round(255 * p), alpha 255 where the cell has data, 0 where not',
      cell: 'cell (i, j) covers level px [j*stride, (j+1)*stride) x [i*stride, (i+1)*stride); a tile gives its probability to its centre stride square',
      stride: map.stride,
      tileSizeAtLevel: map.tileSize,
      tileSize: size,
      strideOutput: tiling.stride,
      level: tiling.level,
      downsample: tiling.downsample,
      cellSizeLevel0: cellSize0,
      mpp: mpp0,
      tileMpp: tiling.mpp,
      threshold,
      model: model.name,
      tta,
    };
    const csv = ['x,y,level,size,tissue_fraction,probability', ...plan.tiles.map((t, i) =>
      `${Math.round(t.x0)},${Math.round(t.y0)},${tiling.level},${tiling.readSize},${t.tissue.toFixed(4)},${placed[i]!.probability.toFixed(6)}`)].join('\n') + '\n';
    const overlayPng = await pngOf(withColourBar(blendMap(thumbnail.image, thumbnail.downsample, map, cellSize0)));
    const thumbnailPng = await pngOf(thumbnail.image);
    summary.seconds = (performance.now() - started) / 1000;
    const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

    const s = stage;
    await Promise.all([
      writeFileAtomic(join(s, FILES.probability), await encodeProbabilityPng(map)),
      writeFileAtomic(join(s, FILES.probabilityRaw), encodeProbabilityF32(map)),
      writeFileAtomic(join(s, FILES.probabilityHeader), json(header)),
      writeFileAtomic(join(s, FILES.overlay), overlayPng),
      writeFileAtomic(join(s, FILES.thumbnail), thumbnailPng),
      writeFileAtomic(join(s, FILES.regions), json(regions)),
      writeFileAtomic(join(s, FILES.tiles), csv),
      writeFileAtomic(join(s, FILES.report), reportHtml(summary, regions.features, overlayPng, thumbnailPng)),
      writeFileAtomic(join(s, FILES.summary), json(summary)),
    ]);
    // Every output exists: move them into place (one rename each).
    const outputs: Record<string, string> = {};
    for (const [key, name] of Object.entries(FILES)) {
      await rename(join(s, name), join(out, name));
      moved.push(join(out, name));
      outputs[key] = join(out, name);
    }
    await rm(s, { recursive: true, force: true });
    return { ...summary, outputs };
  } catch (e) {
    if (stage) await rm(stage, { recursive: true, force: true }).catch(() => undefined);
    await Promise.all(moved.map((f) => rm(f, { force: true }).catch(() => undefined)));
    if (createdDir && (await readdir(out).catch(() => ['?'])).length === 0) await rmdir(out).catch(() => undefined);
    throw e;
  } finally {
    await slide.close();
  }
}
