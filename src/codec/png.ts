/**
 * PNG encoding of tile batches: the addon's batched encoder (native/codec/png.h,
 * every image of a batch on the core's threads) when it is built with
 * libdeflate, else sharp one image at a time. Both write 8-bit RGB PNGs that
 * decode to exactly the input pixels; the native one is what makes tiling at
 * PCam sizes (96 px) bound by reading rather than by per-image overhead.
 */
import sharp from 'sharp';

import { loadAddon } from '../../bindings/loader.js';
import { checkInteger, checkObject, checkKnownKeys, checkOneOf, withCallerStack } from '../errors.js';
import { checkBatch, imageAt, writeFileAtomic, type RgbBatch } from '../image.js';

export type PngFilter = 'adaptive' | 'sub' | 'none';
export const PNG_FILTERS: readonly PngFilter[] = ['adaptive', 'sub', 'none'];

export interface PngOptions {
  /** Compression level: 0 (store) .. 9; 6, zlib's default, unless given. */
  level?: number;
  /**
   * Row filter: 'adaptive' (libpng's per-row choice, smallest files, PIL's
   * default), 'sub' (most of the gain, cheaper) or 'none' (sharp's default).
   */
  filter?: PngFilter;
  /** 'auto' (native when built, else sharp), 'native' or 'sharp'. */
  encoder?: 'auto' | 'native' | 'sharp';
}

export interface ResolvedPngOptions {
  level: number;
  filter: PngFilter;
  encoder: 'native' | 'sharp';
}

export function checkPngOptions(value: unknown = {}): ResolvedPngOptions {
  const o = checkObject('png', value);
  checkKnownKeys('png', o, ['level', 'filter', 'encoder']);
  const level = o.level === undefined ? 6 : checkInteger('png.level', o.level, 0, 9);
  const filter = o.filter === undefined ? 'adaptive' : checkOneOf('png.filter', o.filter, PNG_FILTERS);
  const wanted = o.encoder === undefined ? 'auto' : checkOneOf('png.encoder', o.encoder, ['auto', 'native', 'sharp'] as const);
  const addon = loadAddon();
  const native = addon.ok && addon.addon.pngAvailable;
  if (wanted === 'native' && !native) {
    throw new Error(`The native PNG encoder is unavailable: ${addon.ok ? 'histoflow was built without libdeflate (apt install libdeflate-dev, then npm run build)' : addon.reason}`);
  }
  return { level, filter, encoder: wanted === 'sharp' || !native ? 'sharp' : 'native' };
}

/** One PNG file per image of the batch, in batch order. */
export async function encodePng(batch: RgbBatch, options: PngOptions = {}): Promise<Buffer[]> {
  const b = checkBatch('batch', batch);
  const o = checkPngOptions(options);
  if (o.encoder === 'native') {
    const addon = loadAddon();
    if (addon.ok) return withCallerStack(() => addon.addon.encodePng(b, o.level, o.filter));
  }
  const files: Buffer[] = [];
  for (let i = 0; i < b.n; i++) {
    const img = imageAt(b, i);
    const pixels = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
    files.push(await sharp(pixels, { raw: { width: b.width, height: b.height, channels: 3 } })
      .png({ compressionLevel: o.level, adaptiveFiltering: o.filter !== 'none' })
      .toBuffer());
  }
  return files;
}

/**
 * Encodes image i of the batch to paths[i], each written atomically (a
 * temporary beside it, then a rename); resolves to the files' sizes. Native:
 * one call encodes and writes the whole batch on the core's threads. The
 * folders must exist.
 */
export async function writePngFiles(batch: RgbBatch, paths: readonly string[], options: PngOptions = {}): Promise<number[]> {
  const b = checkBatch('batch', batch);
  if (!Array.isArray(paths) || paths.length !== b.n || paths.some((p) => typeof p !== 'string' || p.length === 0)) {
    throw new RangeError(`Expected ${b.n} file paths (one per image) for paths`);
  }
  const o = checkPngOptions(options);
  if (o.encoder === 'native') {
    const addon = loadAddon();
    if (addon.ok) return withCallerStack(() => addon.addon.writePngFiles(b, o.level, o.filter, [...paths]));
  }
  const files = await encodePng(b, o);
  await Promise.all(files.map((f, i) => writeFileAtomic(paths[i]!, f)));
  return files.map((f) => f.length);
}
