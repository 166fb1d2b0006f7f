/**
 * synthSlide: a synthetic whole-slide image with tumour regions of known shape,
 * for checking slide-level inference against a ground truth:
 *
 *   S.tif         pyramidal tiled TIFF (256-px JPEG or deflate tiles, levels
 *                 halving down to one tile, 0.5 µm/px at level 0 in the
 *                 resolution tags) — a "generic tiled TIFF" to OpenSlide
 *   S.tumour.png  tumour mask, one pixel per MASK_DOWNSAMPLE² level-0 pixels,
 *                 255 where the cell centre lies in a tumour region, else 0
 *   S.tissue.png  tissue mask on the same grid (the tissue pieces' outlines)
 *   S.json        seed, size, mpp, the mask grid, tissue and tumour area
 *                 fractions, and the tumour regions as GeoJSON polygons in
 *                 level-0 pixel coordinates
 *
 * The picture (slide_plan.ts, slide_render.ts): glass, one to three tissue
 * pieces of negative tissue (the patch generator's stroma, fat, glands,
 * lymphocytes) and two to four tumour regions filled with the patch
 * generator's tumour nuclei, so a classifier trained on `synth patches` sees
 * tumour exactly in the regions. Deterministic per (seed, size), whatever the
 * number of workers. Level 0 is painted in 512-px rectangles on worker
 * threads and assembled in memory (3 bytes per pixel: the size is capped at
 * 16384 px a side), then libvips writes the pyramid. Files are written to
 * temporary names and renamed, the slide last, so a slide on disk always has
 * its truth beside it.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';

import sharp, { type OutputInfo } from 'sharp';

import { checkInteger, checkKnownKeys, checkObject, checkOneOf, invalidRange, invalidType } from '../errors.js';
import { writeFileAtomic, writeGrey } from '../image.js';
import { blobPolygon, planSlide, tissueEnvelope, tumourAt, type SlidePlan } from './slide_plan.js';
import { renderSlideRect } from './slide_render.js';
import type { SlideDone, SlideJob } from './slide_worker.js';
import { makeDirectory } from '../output.js';

/** Level-0 microns per pixel written in the resolution tags (a 20x scan). */
export const SYNTH_SLIDE_MPP = 0.5;
/** Level-0 pixels per pixel of the truth masks. */
export const MASK_DOWNSAMPLE = 16;
export const SYNTH_SLIDE_TILE = 256;
export const SYNTH_SLIDE_MIN_SIZE = 512;
export const SYNTH_SLIDE_MAX_SIZE = 16384;
export const SYNTH_SLIDE_COMPRESSIONS = ['jpeg', 'deflate'] as const;
export type SynthSlideCompression = (typeof SYNTH_SLIDE_COMPRESSIONS)[number];
/** Side of the rectangles level 0 is painted in (one worker job each). */
const RECT = 512;

export interface SynthSlideOptions {
  seed?: number;
  /** Level-0 width and height in pixels (default 4096 each; 512 to 16384). */
  width?: number;
  height?: number;
  /** Tile compression (default 'jpeg', quality 90). */
  compression?: SynthSlideCompression;
  /** Worker threads (default: available cores, at most 8; 0 paints on this thread). */
  workers?: number;
  /** Called as level-0 rectangles are painted, then once the files are written: (done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** S.json. */
export interface SynthSlideMeta {
  generator: 'histoflow synth slide';
  seed: number;
  width: number;
  height: number;
  mpp: number;
  tileSize: number;
  compression: SynthSlideCompression;
  mask: { downsample: number; width: number; height: number; tumour: string; tissue: string };
  /** Tissue cells / all cells of the mask grid. */
  tissueAreaFraction: number;
  /** Tumour cells / tissue cells of the mask grid. */
  tumourAreaFraction: number;
  /** GeoJSON FeatureCollection of the tumour regions (Polygons, level-0 pixels). */
  tumourRegions: { type: 'FeatureCollection'; features: Array<{ type: 'Feature'; properties: { label: 'tumour'; id: number }; geometry: { type: 'Polygon'; coordinates: Array<Array<[number, number]>> } }> };
}

export interface SynthSlideResult {
  slide: string;
  tumourMask: string;
  tissueMask: string;
  meta: string;
  width: number;
  height: number;
  seed: number;
  mpp: number;
  regions: number;
  tumourAreaFraction: number;
  workers: number;
  seconds: number;
}

/** A binary mask on a grid of `downsample` level-0 pixels per cell; 255 = inside, 0 = outside. */
export interface TruthMask {
  data: Uint8Array;
  width: number;
  height: number;
  downsample: number;
}

/** The truth files beside slide `path` (S.tif → S.tumour.png, S.tissue.png, S.json). */
export function slideTruthPaths(path: string): { tumour: string; tissue: string; meta: string } {
  const base = path.replace(/\.tiff?$/i, '');
  return { tumour: `${base}.tumour.png`, tissue: `${base}.tissue.png`, meta: `${base}.json` };
}

/** Tumour and tissue masks: a cell is inside when its centre is. */
export function truthMasks(plan: SlidePlan): { tumour: TruthMask; tissue: TruthMask } {
  const width = Math.ceil(plan.width / MASK_DOWNSAMPLE), height = Math.ceil(plan.height / MASK_DOWNSAMPLE);
  const tumour = new Uint8Array(width * height), tissue = new Uint8Array(width * height);
  for (let j = 0; j < height; j++) for (let i = 0; i < width; i++) {
    const x = (i + 0.5) * MASK_DOWNSAMPLE, y = (j + 0.5) * MASK_DOWNSAMPLE;
    if (tissueEnvelope(plan, x, y) >= 0.5) tissue[j * width + i] = 255;
    if (tumourAt(plan, x, y) >= 0) tumour[j * width + i] = 255;
  }
  return { tumour: { data: tumour, width, height, downsample: MASK_DOWNSAMPLE }, tissue: { data: tissue, width, height, downsample: MASK_DOWNSAMPLE } };
}

function checkSlidePath(name: string, path: unknown): string {
  if (typeof path !== 'string' || path.length === 0) throw invalidType(name, 'a file path ending in .tif or .tiff', path);
  if (!/\.tiff?$/i.test(path)) throw invalidRange(name, 'a file path ending in .tif or .tiff', path);
  return path;
}

/** Paints level 0 (rectangles on workers, or in-process) into one RGB buffer. */
async function paintLevel0(plan: SlidePlan, workers: number, onRect: () => void): Promise<Uint8Array> {
  const { width, height } = plan;
  const full = new Uint8Array(width * height * 3);
  const rects: Array<SlideJob['rect']> = [];
  for (let y = 0; y < height; y += RECT) for (let x = 0; x < width; x += RECT) {
    rects.push({ x, y, w: Math.min(RECT, width - x), h: Math.min(RECT, height - y) });
  }
  const place = ({ rect, pixels }: SlideDone): void => {
    for (let r = 0; r < rect.h; r++) full.set(pixels.subarray(r * rect.w * 3, (r + 1) * rect.w * 3), ((rect.y + r) * width + rect.x) * 3);
    onRect();
  };
  if (workers === 0) {
    for (const rect of rects) place({ rect, pixels: renderSlideRect(plan, rect.x, rect.y, rect.w, rect.h) });
    return full;
  }
  const url = new URL('./slide_worker.js', import.meta.url);
  const pool = Array.from({ length: Math.min(workers, rects.length) }, () => new Worker(url));
  let next = 0;
  try {
    await Promise.all(pool.map((w) => new Promise<void>((resolve, reject) => {
      const give = (): void => {
        if (next >= rects.length) return resolve();
        w.postMessage({ seed: plan.seed, width, height, rect: rects[next++]! } satisfies SlideJob);
      };
      w.on('message', (done: SlideDone) => {
        place(done);
        give();
      });
      w.on('error', reject);
      w.on('exit', (code) => {
        if (code !== 0) reject(new Error(`synth slide worker exited with code ${code}`));
      });
      give();
    })));
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return full;
}

/** Writes a synthetic slide and its ground truth (see the file comment). */
export async function synthSlide(path: string, options: SynthSlideOptions = {}): Promise<SynthSlideResult> {
  checkSlidePath('path', path);
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['seed', 'width', 'height', 'compression', 'workers', 'onProgress']);
  const seed = o.seed === undefined ? 0 : checkInteger('options.seed', o.seed, 0, Number.MAX_SAFE_INTEGER);
  const width = o.width === undefined ? 4096 : checkInteger('options.width', o.width, SYNTH_SLIDE_MIN_SIZE, SYNTH_SLIDE_MAX_SIZE);
  const height = o.height === undefined ? width : checkInteger('options.height', o.height, SYNTH_SLIDE_MIN_SIZE, SYNTH_SLIDE_MAX_SIZE);
  const compression = checkOneOf('options.compression', o.compression ?? 'jpeg', SYNTH_SLIDE_COMPRESSIONS);
  const workers = o.workers === undefined ? Math.min(8, availableParallelism()) : checkInteger('options.workers', o.workers, 0, 64);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw invalidType('options.onProgress', 'a function', o.onProgress);
  const onProgress = o.onProgress as SynthSlideOptions['onProgress'];

  const started = Date.now();
  const plan = planSlide(seed, width, height);
  const total = Math.ceil(width / RECT) * Math.ceil(height / RECT) + 1;
  let done = 0;
  const full = await paintLevel0(plan, workers, () => onProgress?.(++done, total));

  const paths = slideTruthPaths(path);
  await makeDirectory(dirname(path), 'path');
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await sharp(full, { raw: { width, height, channels: 3 }, limitInputPixels: false })
      .tiff({
        compression, quality: 90, tile: true, tileWidth: SYNTH_SLIDE_TILE, tileHeight: SYNTH_SLIDE_TILE, pyramid: true,
        // sharp takes pixels per mm; the tag says pixels per cm.
        xres: 1000 / SYNTH_SLIDE_MPP, yres: 1000 / SYNTH_SLIDE_MPP, resolutionUnit: 'cm',
      })
      .toFile(tmp);
    const masks = truthMasks(plan);
    let tissueCells = 0, tumourCells = 0;
    for (let i = 0; i < masks.tissue.data.length; i++) {
      if (masks.tissue.data[i]) tissueCells++;
      if (masks.tumour.data[i]) tumourCells++;
    }
    const round = (v: number): number => Math.round(v * 100) / 100;
    const meta: SynthSlideMeta = {
      generator: 'histoflow synth slide',
      seed, width, height, mpp: SYNTH_SLIDE_MPP, tileSize: SYNTH_SLIDE_TILE, compression,
      mask: { downsample: MASK_DOWNSAMPLE, width: masks.tumour.width, height: masks.tumour.height, tumour: basename(paths.tumour), tissue: basename(paths.tissue) },
      tissueAreaFraction: tissueCells / masks.tissue.data.length,
      tumourAreaFraction: tissueCells ? tumourCells / tissueCells : 0,
      tumourRegions: {
        type: 'FeatureCollection',
        features: plan.tumours.map((t, id) => ({
          type: 'Feature',
          properties: { label: 'tumour', id },
          geometry: { type: 'Polygon', coordinates: [blobPolygon(t, 96).map(([x, y]) => [round(x), round(y)] as [number, number])] },
        })),
      },
    };
    await writeGrey(paths.tumour, masks.tumour.data, masks.tumour.width, masks.tumour.height);
    await writeGrey(paths.tissue, masks.tissue.data, masks.tissue.width, masks.tissue.height);
    await writeFileAtomic(paths.meta, `${JSON.stringify(meta, null, 2)}\n`);
    await rename(tmp, path);
    onProgress?.(total, total);
    return {
      slide: path, tumourMask: paths.tumour, tissueMask: paths.tissue, meta: paths.meta,
      width, height, seed, mpp: SYNTH_SLIDE_MPP, regions: plan.tumours.length, tumourAreaFraction: meta.tumourAreaFraction,
      workers, seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await rm(tmp, { force: true });
  }
}

/** The ground truth written beside a synthetic slide: its metadata and both masks. */
export interface SlideTruth {
  meta: SynthSlideMeta;
  tumour: TruthMask;
  tissue: TruthMask;
}

async function readMask(path: string, meta: SynthSlideMeta): Promise<TruthMask> {
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await sharp(path).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new Error(`cannot read the truth mask ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const { data, info } = decoded;
  if (info.width !== meta.mask.width || info.height !== meta.mask.height) {
    throw new Error(`the truth mask ${path} is ${info.width}x${info.height}, but its JSON says ${meta.mask.width}x${meta.mask.height}`);
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, downsample: meta.mask.downsample };
}

/** Reads the truth beside synthetic slide `path` (S.tif → S.json, S.tumour.png, S.tissue.png). */
export async function readSlideTruth(path: string): Promise<SlideTruth> {
  checkSlidePath('path', path);
  const paths = slideTruthPaths(path);
  let meta: SynthSlideMeta;
  try {
    meta = JSON.parse(await readFile(paths.meta, 'utf8')) as SynthSlideMeta;
  } catch (e) {
    throw new Error(`cannot read the ground truth of ${path}: ${paths.meta}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (meta.generator !== 'histoflow synth slide' || !meta.mask) throw new Error(`${paths.meta} is not the ground truth of a histoflow synthetic slide`);
  return { meta, tumour: await readMask(paths.tumour, meta), tissue: await readMask(paths.tissue, meta) };
}
