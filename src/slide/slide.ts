/**
 * Whole-slide images: `openSlide(path)` picks a reader (OpenSlide through the
 * addon, or sharp/libvips), and the Slide it returns reads regions as RGB
 * through a bounded, tile-aligned cache (tile_cache.ts).
 */
import { access, stat } from 'node:fs/promises';

import { loadAddon } from '../../bindings/loader.js';
import { checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, invalidRange, invalidType } from '../errors.js';
import type { RgbBatch } from '../kernels/types.js';
import { describeFormat, detectFormat, whatWouldRead, type DetectedFormat } from './format.js';
import { openWithOpenSlide, openslideVendor } from './openslide_source.js';
import { openWithSharp } from './sharp_source.js';
import { TileCache, type TileCacheStats } from './tile_cache.js';
import { TiffFormatError, TiffGeometryError, checkDataBounds, readTiffDirectories, type TiffFile } from './tiff.js';
import type { Slide, SlideSource } from './types.js';

export type { Slide, SlideLevel, SlideReaderName } from './types.js';
export type { TileCacheStats } from './tile_cache.js';

export const SLIDE_READERS = ['auto', 'openslide', 'sharp'] as const;
export type SlideReaderChoice = (typeof SLIDE_READERS)[number];

export interface OpenSlideOptions {
  /** 'auto' (default): OpenSlide when linked and it recognises the file, else sharp. */
  reader?: SlideReaderChoice;
  /** Budget of the decoded-tile cache in bytes (default 256 MiB; 0 disables caching). */
  cacheBytes?: number;
}

export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;
/** The largest region one readRegion call returns: 2^27 pixels (384 MiB of RGB). */
export const MAX_REGION_PIXELS = 2 ** 27;
/** Tiles decoded at once by one readRegion call (memory: this many tiles beyond the cache). */
const READ_CONCURRENCY = 8;
/** Rows of a level resampled at once by thumbnail(), bounding its memory. */
const THUMBNAIL_BAND_PIXELS = 2 ** 24;

class TiledSlide implements Slide {
  private readonly cache: TileCache;
  private closed = false;

  constructor(
    readonly path: string,
    private readonly source: SlideSource,
    cacheBytes: number,
  ) {
    this.cache = new TileCache(cacheBytes);
  }

  get reader() { return this.source.reader; }
  get format() { return this.source.format; }
  get levels() { return this.source.levels; }
  get mpp() { return this.source.mpp; }
  get associatedImages() { return this.source.associatedImages; }
  get properties() { return this.source.properties; }
  get warnings() { return this.source.warnings; }

  private checkOpen(): void {
    if (this.closed) throw new Error(`the slide ${this.path} is closed`);
  }

  async readRegion(level: number, x: number, y: number, width: number, height: number): Promise<RgbBatch> {
    this.checkOpen();
    checkInteger('level', level, 0, this.levels.length - 1);
    checkInteger('x', x, 0);
    checkInteger('y', y, 0);
    checkInteger('width', width, 1);
    checkInteger('height', height, 1);
    if (width * height > MAX_REGION_PIXELS) {
      throw invalidRange('width * height', `at most ${MAX_REGION_PIXELS} pixels (read large regions in pieces)`, width * height);
    }
    const out = new Uint8Array(width * height * 3).fill(255);
    const lv = this.levels[level]!;
    const right = Math.min(x + width, lv.width), bottom = Math.min(y + height, lv.height);
    if (right <= x || bottom <= y) return { data: out, n: 1, height, width };
    const tw = lv.tileWidth, th = lv.tileHeight;
    const tiles: Array<[number, number]> = [];
    for (let ty = Math.floor(y / th); ty * th < bottom; ty++) {
      for (let tx = Math.floor(x / tw); tx * tw < right; tx++) tiles.push([tx, ty]);
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < tiles.length) {
        const [tx, ty] = tiles[next++]!;
        const left = tx * tw, top = ty * th;
        const w = Math.min(tw, lv.width - left), h = Math.min(th, lv.height - top);
        const tile = await this.cache.get(`${level}/${tx}/${ty}`, () => this.source.readRect(level, left, top, w, h)).catch((e: unknown) => {
          // The reader's message names neither file nor tile ("Warning treated as error due to failOn setting").
          throw new Error(`cannot read ${this.path}, level ${level}, tile (${tx}, ${ty}) at level pixels (${left}, ${top}) ${w}x${h} ` +
            `with ${this.reader === 'sharp' ? 'sharp/libvips' : 'OpenSlide'}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        });
        this.checkOpen();
        // Copy the overlap of the tile [left, left+w) x [top, top+h) and the region.
        const x0 = Math.max(x, left), x1 = Math.min(right, left + w);
        const y0 = Math.max(y, top), y1 = Math.min(bottom, top + h);
        const rowBytes = (x1 - x0) * 3;
        for (let row = y0; row < y1; row++) {
          const src = ((row - top) * w + (x0 - left)) * 3;
          out.set(tile.subarray(src, src + rowBytes), ((row - y) * width + (x0 - x)) * 3);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, tiles.length) }, worker));
    return { data: out, n: 1, height, width };
  }

  async readAssociated(name: string): Promise<RgbBatch> {
    this.checkOpen();
    if (typeof name !== 'string') throw invalidType('name', 'a string', name);
    if (!this.associatedImages.includes(name)) {
      throw invalidRange('name', this.associatedImages.length ? `one of ${this.associatedImages.join(', ')}` : 'an associated image (this slide has none)', name);
    }
    return this.source.readAssociated(name);
  }

  bestLevelForDownsample(d: number): number {
    checkNumber('downsample', d, 0);
    let best = 0;
    this.levels.forEach((l, i) => {
      if (l.downsample <= d + 1e-9 && l.downsample > this.levels[best]!.downsample) best = i;
    });
    return best;
  }

  /**
   * Reads the level whose downsample is the largest ≤ the one needed, in
   * horizontal bands, and resamples each band with sharp (Lanczos) into its
   * rows of the output: memory stays bounded by one band however large the
   * level. Band edges fall on whole output rows, so there are no gaps.
   */
  async thumbnail(maxSize: number): Promise<{ image: RgbBatch; downsample: number }> {
    this.checkOpen();
    checkInteger('maxSize', maxSize, 1);
    const base = this.levels[0]!;
    const scale = Math.min(1, maxSize / Math.max(base.width, base.height));
    const outW = Math.max(1, Math.round(base.width * scale)), outH = Math.max(1, Math.round(base.height * scale));
    const downsample = (base.width / outW + base.height / outH) / 2;
    const level = this.bestLevelForDownsample(downsample);
    const lv = this.levels[level]!;
    const out = new Uint8Array(outW * outH * 3);
    // Output rows per band, so that a band reads at most THUMBNAIL_BAND_PIXELS of the level.
    const bandRows = Math.max(1, Math.floor(((THUMBNAIL_BAND_PIXELS / lv.width) * outH) / lv.height));
    // One output row needs up to ceil(lv.height / outH) + 1 rows of the level (bands are rounded
    // outwards): with no level coarse enough, that band passes the region limit, which the caller
    // of thumbnail() never asked about, so the error names maxSize instead.
    const rowsPerOutputRow = Math.ceil(lv.height / outH) + 1;
    if (lv.width * rowsPerOutputRow > MAX_REGION_PIXELS) {
      throw new RangeError(`Expected a larger maxSize for the thumbnail of ${this.path}, which has no level coarse enough, but received ${maxSize}: ` +
        `one thumbnail row spans ${lv.width}x${rowsPerOutputRow} px of level ${level}, more than the ${MAX_REGION_PIXELS} pixels read at once`);
    }
    const { default: sharp } = await import('sharp');
    for (let oy = 0; oy < outH; oy += bandRows) {
      const oy1 = Math.min(outH, oy + bandRows);
      const ly = Math.floor((oy * lv.height) / outH), ly1 = Math.min(lv.height, Math.ceil((oy1 * lv.height) / outH));
      const band = await this.readRegion(level, 0, ly, lv.width, Math.max(1, ly1 - ly));
      const resized = await sharp(band.data, { raw: { width: band.width, height: band.height, channels: 3 } })
        .resize(outW, oy1 - oy, { fit: 'fill', kernel: 'lanczos3' })
        .raw()
        .toBuffer();
      out.set(resized, oy * outW * 3);
    }
    return { image: { data: out, n: 1, height: outH, width: outW }, downsample };
  }

  cacheStats(): TileCacheStats {
    return this.cache.stats();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cache.clear();
    await this.source.close();
  }
}

/**
 * Opens a whole-slide image (or a plain image as a one-level slide).
 * Errors: TypeError/RangeError for bad options; Error naming the detected
 * format and what would read it when neither reader can (empty, text,
 * truncated, corrupt, unsupported files).
 */
export async function openSlide(path: string, options: OpenSlideOptions = {}): Promise<Slide> {
  if (typeof path !== 'string' || path.length === 0) throw invalidType('path', 'a non-empty string', path);
  const opts = checkObject('options', options);
  checkKnownKeys('options', opts, ['reader', 'cacheBytes']);
  const reader = checkOneOf('options.reader', opts.reader ?? 'auto', SLIDE_READERS);
  const cacheBytes = checkInteger('options.cacheBytes', opts.cacheBytes ?? DEFAULT_CACHE_BYTES, 0);
  try {
    await access(path);
  } catch {
    throw new Error(`cannot open slide ${path}: no such file or it is not readable`);
  }
  if (!(await stat(path)).isFile()) {
    throw new Error(`cannot open slide ${path}: it is a directory; pass the slide file itself (for MIRAX, the .mrxs beside its data folder)`);
  }
  const { format } = await detectFormat(path);
  const addon = loadAddon();
  const openslideLinked = addon.ok && addon.addon.buildInfo().openslide;
  const fail = (why: string): Error =>
    new Error(`cannot open slide ${path}: ${describeFormat(format)}${why ? ` (${why})` : ''}. ${capitalize(whatWouldRead(format, openslideLinked))}.`);
  if (format === 'empty' || format === 'text') throw fail('');

  let source: SlideSource;
  try {
    source = await openSource(path, reader, format, openslideLinked);
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError) throw e;
    const structure = e instanceof TiffFormatError ? e : reader === 'openslide' ? await tiffStructureError(path, format) : null;
    if (structure instanceof TiffGeometryError) {
      throw new Error(`cannot open slide ${path}: ${describeFormat(format)} with impossible geometry (${structure.message}); it was refused before any reader decoded it. The file is corrupt or not a slide.`);
    }
    if (structure) {
      throw new Error(`cannot open slide ${path}: ${describeFormat(format)} whose structure is broken (${structure.message}). Copy the file again from its source.`);
    }
    const why = e instanceof Error ? e.message : String(e);
    if (reader === 'openslide') throw new Error(`cannot open slide ${path} with OpenSlide: ${describeFormat(format)} (${why})`);
    if (reader === 'sharp') {
      // OpenSlide was not asked: the message must not say it failed too.
      throw new Error(`cannot open slide ${path} with sharp/libvips (reader 'sharp'): ${describeFormat(format)} (${why})` +
        `${openslideLinked ? ". OpenSlide was not tried: reader 'auto' or 'openslide' may read it" : ''}.`);
    }
    throw fail(why);
  }
  return new TiledSlide(path, source, cacheBytes);
}

/** 'auto': OpenSlide when linked and it recognises the file, else sharp (see the exceptions for generic and OME/SubIFD TIFF below). */
async function openSource(path: string, reader: SlideReaderChoice, format: DetectedFormat, openslideLinked: boolean): Promise<SlideSource> {
  const useOpenSlide = reader !== 'sharp' && openslideLinked;
  // OpenSlide sizes its buffers from the tile tags as they are, and GLib aborts the
  // process when that fails: a TIFF with absurd geometry is refused before OpenSlide
  // sees it. Other structure errors are left to OpenSlide here (NDPI & co. are not plain TIFF).
  let tiff: TiffFile | null = null;
  if (useOpenSlide && (format === 'tiff' || format === 'bigtiff')) {
    tiff = await readTiffDirectories(path, { dataBounds: false }).catch((e: unknown) => {
      if (e instanceof TiffGeometryError) throw e;
      return null;
    });
  }
  let vendor = useOpenSlide ? await openslideVendor(path) : '';
  if (vendor === 'aperio' || vendor === 'generic-tiff') {
    // OpenSlide opens a truncated SVS/TIFF and fails tile by tile later; the
    // directory check finds it now. (Not for NDPI & co., whose offsets are not plain TIFF.)
    tiff ??= await readTiffDirectories(path, { dataBounds: false });
    checkDataBounds(tiff);
    const base = tiff.pages[0]!;
    // OpenSlide 3.4 sees only the first level of an OME-TIFF / SubIFD pyramid: auto leaves those to sharp.
    if (reader === 'auto' && (base.subifds.length > 0 || base.description.includes('<OME'))) vendor = '';
    // A generic tiled TIFF is plain TIFF, which libvips reads pixel-exactly at every level; OpenSlide 3.4
    // positions a level whose downsample is not a whole number up to 1/8 px off and interpolates
    // (mean |diff| ~3 grey levels on the derived CMU pyramid's level 2), so auto leaves it to sharp.
    if (reader === 'auto' && vendor === 'generic-tiff') vendor = '';
  }
  return reader === 'openslide' || vendor ? openWithOpenSlide(path) : openWithSharp(path, format);
}

/** OpenSlide says only "not recognised": the TIFF directory check says why when the structure is the cause. */
async function tiffStructureError(path: string, format: DetectedFormat): Promise<TiffFormatError | null> {
  if (format !== 'tiff' && format !== 'bigtiff') return null;
  return readTiffDirectories(path).then(() => null, (e: unknown) => (e instanceof TiffFormatError ? e : null));
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export type { DetectedFormat };
