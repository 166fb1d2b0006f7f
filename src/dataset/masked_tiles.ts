/**
 * Tiles with their label masks, for segmentation training: one reader for
 * both outputs of `histoflow tile --annotations A --masks`.
 *
 *   const { images, masks, labels } = await readMaskedTiles('out');          // a tile folder
 *   const { images, masks, labels } = await readMaskedTiles('out/tiles.hfpack');
 *   // masks[k·H·W + p]: class index of pixel p of tile k (labels[v]; 255 = ignore)
 *
 * A tile folder: manifest.json rows with a `mask` column and DIR/masks.json;
 * tiles and masks are decoded (sharp, several at a time) in manifest order.
 * A packed file: a version 2 file (packed_format.ts); records in file order,
 * pixels and masks copied out of the mapping. Everything is held in memory.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import sharp from 'sharp';

import { invalidType } from '../errors.js';
import { readImage, stackImages, type RgbBatch } from '../image.js';
import { checkMaskLabels, MASK_IGNORE } from '../tiling/masks.js';
import { mapLimit } from './pack.js';
import { PackedDataset } from './packed.js';
import { MASKS_FILE } from './tile_folder.js';

export interface MaskedTiles {
  /** n tiles, H x W x 3. */
  images: RgbBatch;
  /** n·H·W class indices into labels; MASK_IGNORE (255) where training ignores the pixel. */
  masks: Uint8Array;
  /** labels[0] is 'background'. */
  labels: string[];
  /** One per tile: SLIDE_L<level>_x<x>_y<y> (or the record's id). */
  ids: string[];
  /** One per tile: its slide's name ('' when unknown). */
  slides: string[];
}

const NO_MASKS = 'tile it again with --masks (histoflow tile SLIDE --annotations A --masks)';

function tileId(r: { slide?: unknown; level?: unknown; x?: unknown; y?: unknown; id?: unknown }, k: number): string {
  if (typeof r.slide === 'string' && Number.isInteger(r.level) && Number.isInteger(r.x) && Number.isInteger(r.y)) {
    return `${r.slide}_L${String(r.level)}_x${String(r.x)}_y${String(r.y)}`;
  }
  return typeof r.id === 'string' ? r.id : String(k);
}

/** A tile's label mask PNG (8-bit grey) as class indices; an Error when its size is not the tile's. */
export async function readMaskPng(path: string, width: number, height: number): Promise<Uint8Array> {
  // The first channel, exactly (sharp's raw output of a grey PNG is otherwise RGB).
  const { data, info } = await sharp(path).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  if (info.width !== width || info.height !== height) {
    throw new Error(`${path} is ${info.width}x${info.height}, but its tile is ${width}x${height}`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** An Error naming the mask file when a value of `mask` names no label of `labels` (and is not MASK_IGNORE). */
export function checkMaskValues(path: string, mask: Uint8Array, labels: readonly string[], labelsPath: string): void {
  for (let p = 0; p < mask.length; p++) {
    if (mask[p]! >= labels.length && mask[p] !== MASK_IGNORE) {
      throw new Error(`${path} holds the value ${mask[p]}, which names no label of ${labelsPath}`);
    }
  }
}

/**
 * The mask labels of a tile folder written with --masks (DIR/masks.json,
 * 'background' first), or null when it has no masks.json; an Error naming
 * the file when it is malformed.
 */
export async function tileFolderMaskLabels(dir: string): Promise<string[] | null> {
  const masksPath = join(dir, MASKS_FILE);
  const masksText = await readFile(masksPath, 'utf8').catch(() => undefined);
  if (masksText === undefined) return null;
  let info: { labels?: unknown; ignore?: unknown };
  try {
    info = JSON.parse(masksText) as typeof info;
  } catch (e) {
    throw new Error(`${masksPath} is not JSON: ${(e as Error).message}`);
  }
  if (info === null || typeof info !== 'object' || !Array.isArray(info.labels) || info.labels.some((l) => typeof l !== 'string') || info.labels[0] !== 'background') {
    throw new Error(`${masksPath} lacks its labels (an array of names, 'background' first)`);
  }
  try {
    checkMaskLabels('labels', info.labels);
  } catch (e) {
    throw new Error(`${masksPath}: ${(e as Error).message}`);
  }
  if (info.ignore !== undefined && info.ignore !== MASK_IGNORE) throw new Error(`${masksPath} says ignore ${String(info.ignore)}, not ${MASK_IGNORE}`);
  return info.labels as string[];
}

async function readFolder(dir: string): Promise<MaskedTiles> {
  const manifestPath = join(dir, 'manifest.json'), masksPath = join(dir, MASKS_FILE);
  let manifest: { tiles?: unknown; columns?: unknown };
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as typeof manifest;
  } catch (e) {
    throw new Error(`${dir} is not a tile folder: cannot read ${manifestPath} (${(e as Error).message})`);
  }
  if (!Array.isArray(manifest.tiles)) throw new Error(`${manifestPath} has no "tiles" array (is it a histoflow tile manifest?)`);
  const rows = manifest.tiles as Array<Record<string, unknown>>;
  const hasColumn = Array.isArray(manifest.columns) && manifest.columns.includes('mask');
  const found = hasColumn ? await tileFolderMaskLabels(dir) : null;
  if (!found) throw new Error(`${dir} holds tiles without label masks (no mask column or ${MASKS_FILE}): ${NO_MASKS}`);
  if (rows.length === 0) throw new Error(`${manifestPath} lists no tiles`);
  const labels = found;
  const pairs = await mapLimit(rows.map((r, k) => ({ r, k })), 8, async ({ r, k }) => {
    if (typeof r.file !== 'string' || typeof r.mask !== 'string') throw new Error(`${manifestPath}: tile ${k} has no file or mask`);
    const image = await readImage(join(dir, r.file));
    const mask = await readMaskPng(join(dir, r.mask), image.width, image.height);
    checkMaskValues(join(dir, r.mask), mask, labels, masksPath);
    return { image, mask };
  });
  const images = stackImages(pairs.map((p) => p.image));
  const masks = new Uint8Array(images.n * images.height * images.width);
  pairs.forEach((p, k) => masks.set(p.mask, k * p.mask.length));
  return {
    images, masks, labels,
    ids: rows.map((r, k) => tileId(r, k)),
    slides: rows.map((r) => (typeof r.slide === 'string' ? r.slide : '')),
  };
}

async function readPacked(path: string): Promise<MaskedTiles> {
  const ds = await PackedDataset.open(path);
  try {
    if (!ds.hasMasks) throw new Error(`${path} holds tiles without label masks (a version ${ds.header.version} packed file): ${NO_MASKS}`);
    if (ds.count === 0) throw new Error(`${path} holds no records`);
    const all = Array.from({ length: ds.count }, (_, i) => i);
    const records = ds.metadata.records;
    return {
      images: ds.gather(all),
      masks: ds.readMasks(all),
      labels: ds.maskLabels!.slice(),
      ids: records.map((r, k) => tileId(r, k)),
      slides: records.map((r) => r.slide ?? ''),
    };
  } finally {
    ds.close();
  }
}

/**
 * The tiles and label masks of a tile folder or packed file written by
 * `histoflow tile --annotations A --masks`; an Error naming the path when it
 * holds no masks.
 */
export async function readMaskedTiles(path: string): Promise<MaskedTiles> {
  if (typeof path !== 'string' || path.length === 0) throw invalidType('path', 'a tile folder or packed file path', path);
  const s = await stat(path).catch(() => undefined);
  if (!s) throw new Error(`${path} does not exist (expected a tile folder or a packed file written by histoflow tile --masks)`);
  return s.isDirectory() ? readFolder(path) : readPacked(path);
}
