/**
 * The sharp/libvips reader, always available: tiled and pyramidal TIFF
 * (generic, Aperio SVS with JPEG tiles, OME-TIFF with SubIFD levels), plain
 * TIFF/PNG/JPEG/WebP as one-level slides.
 *
 * Levels come from tiff.ts's directory listing: sharp opens one directory at
 * a time (`page`, `subifd`) and `extract` on a tiled directory decodes only the
 * tiles the rectangle touches (libvips reads tiles on demand), so a region of
 * a 40,000² level costs a few tiles, not the page.
 *
 * Which directory is what:
 *   - Aperio SVS (ImageDescription starts with "Aperio"): page 0 is level 0,
 *     page 1 the thumbnail (when stripped), tiled pages are levels, stripped pages
 *     after them are 'label' / 'macro' (named by their description, else in
 *     that order). MPP from the description's "MPP = ".
 *   - OME-TIFF (ImageDescription holds "<OME"): page 0 is level 0 and its
 *     SubIFDs are the reduced levels.
 *   - Other TIFF: page 0 is level 0; reduced-resolution pages (NewSubfileType
 *     bit 0, or smaller with the same aspect ratio) and page 0's SubIFDs are
 *     levels. MPP from X/YResolution (tiff.ts micronsPerPixel).
 */
import { open as openFile } from 'node:fs/promises';

import sharp, { type Sharp } from 'sharp';

import type { RgbBatch } from '../kernels/types.js';
import type { DetectedFormat } from './format.js';
import { omeMpp, statedMpp } from './mpp.js';
import { micronsPerPixel, readTiffDirectories, type TiffDirectory } from './tiff.js';
import type { SlideLevel, SlideSource } from './types.js';

/** Levels stored in strips (and plain images) are read on this grid. */
const UNTILED_GRID = 512;

interface SharpLevel extends SlideLevel {
  page: number;
  subifd: number;
  /** The directory, when its tiles are JPEG (compression 7): they are checked before libvips decodes them. */
  jpeg: TiffDirectory | null;
}

interface Layout {
  format: string;
  levels: SharpLevel[];
  associated: Map<string, { page: number }>;
  mpp: { x: number; y: number } | null;
  properties: Record<string, string>;
  warnings: string[];
}

function level(dir: TiffDirectory, base: TiffDirectory): SharpLevel {
  return {
    width: dir.width,
    height: dir.height,
    downsample: (base.width / dir.width + base.height / dir.height) / 2,
    tileWidth: dir.tileWidth || UNTILED_GRID,
    tileHeight: dir.tileHeight || UNTILED_GRID,
    page: dir.page,
    subifd: dir.subifd,
    jpeg: dir.compression === 7 && dir.tileWidth > 0 && dir.tileOffsets?.length ? dir : null,
  };
}

/** A reduced copy of `base`: smaller, with the same aspect ratio within a pixel of rounding. */
function isReduction(dir: TiffDirectory, base: TiffDirectory): boolean {
  if (dir.width >= base.width || dir.height >= base.height || dir.subfileType & 4) return false;
  const fx = base.width / dir.width, fy = base.height / dir.height;
  return Math.abs(fx - fy) <= Math.max(fx, fy) * (1 / Math.min(dir.width, dir.height) + 0.01);
}

function tiffProperties(base: TiffDirectory): Record<string, string> {
  const props: Record<string, string> = {};
  if (base.description) props['tiff.ImageDescription'] = base.description;
  if (base.xResolution) props['tiff.XResolution'] = String(base.xResolution);
  if (base.yResolution) props['tiff.YResolution'] = String(base.yResolution);
  props['tiff.ResolutionUnit'] = ({ 1: 'none', 2: 'inch', 3: 'centimeter' } as Record<number, string>)[base.resolutionUnit] ?? String(base.resolutionUnit);
  return props;
}

function aperioLayout(pages: TiffDirectory[]): Layout {
  const base = pages[0]!;
  const properties = tiffProperties(base);
  // "Aperio Image Library v11.2.1 \r\n46000x32914 [...] JPEG/RGB Q=30|AppMag = 20|...|MPP = 0.4990|..."
  for (const field of base.description.split('|').slice(1)) {
    const eq = field.indexOf('=');
    if (eq > 0) properties[`aperio.${field.slice(0, eq).trim()}`] = field.slice(eq + 1).trim();
  }
  const { mpp, warnings } = statedMpp(properties['aperio.MPP']) ?? { mpp: null, warnings: [] };
  const levels = [level(base, base)];
  const associated = new Map<string, { page: number }>();
  const unnamed = ['label', 'macro'];
  pages.slice(1).forEach((dir, i) => {
    if (dir.tileWidth > 0 && isReduction(dir, base)) levels.push(level(dir, base));
    else if (i === 0) associated.set('thumbnail', { page: dir.page });
    else {
      const named = /\b(label|macro)\b/i.exec(dir.description)?.[1]?.toLowerCase();
      const name = named ?? unnamed.find((n) => !associated.has(n)) ?? `associated-${dir.page}`;
      associated.set(name, { page: dir.page });
    }
  });
  return { format: 'aperio', levels, associated, mpp, properties, warnings };
}

function tiffLayout(pages: TiffDirectory[]): Layout {
  const base = pages[0]!;
  const properties = tiffProperties(base);
  const ome = base.description.includes('<OME');
  const candidates = ome ? base.subifds : [...base.subifds, ...pages.slice(1)];
  const levels = [level(base, base), ...candidates.filter((d) => isReduction(d, base)).map((d) => level(d, base))];
  levels.sort((a, b) => b.width - a.width);
  // OME-XML's PhysicalSizeX/Y first (what OME-TIFF writers state), else the resolution tags.
  const stated = ome ? omeMpp(base.description) : null;
  const mx = micronsPerPixel(base.xResolution, base.resolutionUnit);
  const my = micronsPerPixel(base.yResolution || base.xResolution, base.resolutionUnit);
  return {
    format: ome ? 'ome-tiff' : base.tileWidth > 0 ? 'generic-tiff' : 'tiff',
    levels,
    associated: new Map(),
    mpp: stated ? stated.mpp : mx && my ? { x: mx, y: my } : null,
    properties,
    warnings: stated?.warnings ?? [],
  };
}

async function imageLayout(path: string, format: DetectedFormat): Promise<Layout> {
  const meta = await sharp(path, { limitInputPixels: false }).metadata();
  if (!meta.width || !meta.height) throw new Error('sharp reports no image size');
  const dir = { width: meta.width, height: meta.height, tileWidth: 0, tileHeight: 0, page: 0, subifd: -1, compression: 1 } as TiffDirectory;
  return { format, levels: [level(dir, dir)], associated: new Map(), mpp: null, properties: {}, warnings: [] };
}

/** RGB over white of a decoded sharp pipeline. */
async function toRgb(pipeline: Sharp, width: number, height: number): Promise<Uint8Array> {
  const { data, info } = await pipeline
    .flatten({ background: { r: 255, g: 255, b: 255 } })
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== width || info.height !== height) {
    throw new Error(`decoded ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x3`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

class SharpSource implements SlideSource {
  readonly reader = 'sharp' as const;
  readonly associatedImages: readonly string[];
  readonly levels: readonly SlideLevel[];
  /** The JPEG tiles already decoded on their own without a warning, per level: each is checked once. */
  private readonly checkedTiles = new Map<number, Set<number>>();

  constructor(
    private readonly path: string,
    private readonly layout: Layout,
  ) {
    this.associatedImages = Object.freeze([...layout.associated.keys()].sort());
    this.levels = Object.freeze(layout.levels.map(({ width, height, downsample, tileWidth, tileHeight }) =>
      Object.freeze({ width, height, downsample, tileWidth, tileHeight })));
  }

  get format() { return this.layout.format; }
  get mpp() { return this.layout.mpp; }
  get properties() { return this.layout.properties; }
  get warnings() { return this.layout.warnings; }

  private open(page: number, subifd: number): Sharp {
    return sharp(this.path, { limitInputPixels: false, page, ...(subifd >= 0 ? { subifd } : {}) });
  }

  async readRect(levelIndex: number, x: number, y: number, width: number, height: number): Promise<Uint8Array> {
    const lv = this.layout.levels[levelIndex]!;
    const pipeline = this.open(lv.page, lv.subifd);
    const whole = x === 0 && y === 0 && width === lv.width && height === lv.height;
    const [rgb] = await Promise.all([
      toRgb(whole ? pipeline : pipeline.extract({ left: x, top: y, width, height }), width, height),
      lv.jpeg ? this.checkJpegTiles(levelIndex, lv.jpeg, x, y, width, height) : null,
    ]);
    return rgb;
  }

  /**
   * libtiff passes libjpeg's warnings ("Corrupt JPEG data: premature end of data
   * segment") to libvips as warnings, so sharp returns a corrupt JPEG tile as
   * garbage pixels. Each tile the rectangle touches is decoded once more on
   * its own, as a JPEG, where libvips fails on those warnings (as OpenSlide does),
   * once per tile for the life of the slide.
   */
  private async checkJpegTiles(levelIndex: number, dir: TiffDirectory, x: number, y: number, width: number, height: number): Promise<void> {
    const tw = dir.tileWidth, th = dir.tileHeight, across = Math.ceil(dir.width / tw);
    let checked = this.checkedTiles.get(levelIndex);
    if (!checked) this.checkedTiles.set(levelIndex, (checked = new Set()));
    const pending: [number, number, number][] = [];
    for (let ty = Math.floor(y / th); ty * th < y + height; ty++) {
      for (let tx = Math.floor(x / tw); tx * tw < x + width; tx++) if (!checked.has(ty * across + tx)) pending.push([tx, ty, ty * across + tx]);
    }
    if (pending.length === 0) return;
    const fh = await openFile(this.path, 'r');
    try {
      for (const [tx, ty, index] of pending) {
        const at = dir.tileOffsets[index] ?? 0, length = dir.tileByteCounts[index] ?? 0;
        const where = `JPEG tile (${tx}, ${ty}) of level ${levelIndex} (bytes ${at}..${at + length})`;
        const data = Buffer.alloc(length);
        if (length < 4 || (await fh.read(data, 0, length, at)).bytesRead !== length || data[0] !== 0xff || data[1] !== 0xd8) {
          throw new Error(`${where} is not JPEG data: the file is corrupt`);
        }
        // A tile is an abbreviated JPEG: JPEGTables (SOI, tables, EOI) supply its tables.
        const tables = dir.jpegTables && dir.jpegTables.length > 4 ? dir.jpegTables.subarray(0, dir.jpegTables.length - 2) : null;
        const jpeg = tables ? Buffer.concat([tables, data.subarray(2)]) : data;
        await sharp(jpeg, { failOn: 'warning' }).raw().toBuffer().catch((e: unknown) => {
          throw new Error(`${where} is corrupt: ${e instanceof Error ? e.message.trim() : String(e)}`);
        });
        checked.add(index);
      }
    } finally {
      await fh.close();
    }
  }

  async readAssociated(name: string): Promise<RgbBatch> {
    const { page } = this.layout.associated.get(name)!;
    const meta = await this.open(page, -1).metadata();
    const width = meta.width ?? 0, height = meta.height ?? 0;
    return { data: await toRgb(this.open(page, -1), width, height), n: 1, height, width };
  }

  async close(): Promise<void> {}
}

export async function openWithSharp(path: string, format: DetectedFormat): Promise<SlideSource> {
  let layout: Layout;
  if (format === 'tiff' || format === 'bigtiff') {
    const { pages } = await readTiffDirectories(path);
    layout = pages[0]!.description.startsWith('Aperio') ? aperioLayout(pages) : tiffLayout(pages);
  } else {
    layout = await imageLayout(path, format);
  }
  const source = new SharpSource(path, layout);
  // Decode one pixel of the smallest level now, so that a file sharp cannot
  // decode fails at open rather than on the first tile.
  const last = layout.levels.length - 1;
  await source.readRect(last, 0, 0, 1, 1);
  return source;
}
