/**
 * A small TIFF directory reader (classic and BigTIFF): the IFD chain and
 * SubIFDs, with only the tags a slide reader needs to tell levels from
 * associated images and to find the resolution. Pixel data is never read here
 * (sharp/libvips decodes it); the tile/strip offsets are checked against the
 * file size so that a truncated file is reported at open time, not as a
 * failed tile halfway through a run.
 */
import { open, type FileHandle } from 'node:fs/promises';

/** One image file directory. */
export interface TiffDirectory {
  /** Position in the main IFD chain (sharp's `page`); for a SubIFD, its parent's page. */
  page: number;
  /** Index among its parent's SubIFDs (sharp's `subifd`), or -1 for a main-chain IFD. */
  subifd: number;
  width: number;
  height: number;
  /** 0 when the image is stored in strips. */
  tileWidth: number;
  tileHeight: number;
  /** NewSubfileType (bit 0: reduced resolution, bit 2: transparency mask). */
  subfileType: number;
  compression: number;
  samplesPerPixel: number;
  description: string;
  /** Pixels per resolution unit, 0 when absent. */
  xResolution: number;
  yResolution: number;
  /** 1 none, 2 inch, 3 centimetre (TIFF default 2). */
  resolutionUnit: number;
  /** One past the last byte of pixel data this directory references. */
  dataEnd: number;
  /** Where each tile's compressed bytes lie (tiled directories; empty for strips). */
  tileOffsets: number[];
  tileByteCounts: number[];
  /** The JPEGTables tag (tables shared by the JPEG tiles), or null. */
  jpegTables: Buffer | null;
  subifds: TiffDirectory[];
}

export interface TiffFile {
  bigTiff: boolean;
  fileSize: number;
  /** The main IFD chain, in file order (page 0 first). */
  pages: TiffDirectory[];
}

const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8 };
/** Guards against cycles and hostile files: no real slide has more. */
const MAX_PAGES = 4096;
const MAX_ENTRIES = 4096;
/** Offsets arrays larger than this are not read (a 1M-tile level is ~8 MB of offsets). */
const MAX_ARRAY_BYTES = 64 << 20;
/**
 * Geometry no slide has: the largest scanners write ~250,000 px a side, tiles
 * of 240..4096 px. Past these, OpenSlide sizes buffers from the tags as they
 * are (a 2^30 px tile is 2^62 bytes of ARGB) and GLib aborts the process, so
 * such a file is refused before a reader sees it.
 */
export const MAX_LEVEL_SIDE = 2 ** 24;
/** One decoded tile, at OpenSlide's 4 bytes a pixel (or more for wide samples): 256 MiB, an 8192² ARGB tile. */
export const MAX_TILE_BYTES = 2 ** 28;

export class TiffFormatError extends Error {}
/** A directory whose sizes or counts no real image has (see MAX_LEVEL_SIDE); reported before any reader opens the file. */
export class TiffGeometryError extends TiffFormatError {}

class Reader {
  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    readonly little: boolean,
    readonly big: boolean,
  ) {}

  async bytes(offset: number, length: number): Promise<Buffer> {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new TiffFormatError(`a directory points to bytes ${offset}..${offset + length} past the end of the file (${this.size} bytes): the file is truncated or corrupt`);
    }
    const buf = Buffer.alloc(length);
    const { bytesRead } = await this.fh.read(buf, 0, length, offset);
    if (bytesRead !== length) throw new TiffFormatError('the file ended early: it is truncated');
    return buf;
  }

  uint(buf: Buffer, at: number, size: number): number {
    switch (size) {
      case 1: return buf.readUInt8(at);
      case 2: return this.little ? buf.readUInt16LE(at) : buf.readUInt16BE(at);
      case 4: return this.little ? buf.readUInt32LE(at) : buf.readUInt32BE(at);
      default: return Number(this.little ? buf.readBigUInt64LE(at) : buf.readBigUInt64BE(at));
    }
  }
}

interface Entry {
  type: number;
  count: number;
  /** The value bytes (inline or fetched). */
  value: Buffer;
}

async function readEntries(r: Reader, offset: number): Promise<{ entries: Map<number, Entry>; next: number }> {
  const countSize = r.big ? 8 : 2;
  const entrySize = r.big ? 20 : 12;
  const inline = r.big ? 8 : 4;
  const n = r.uint(await r.bytes(offset, countSize), 0, countSize);
  if (n === 0 || n > MAX_ENTRIES) throw new TiffFormatError(`a directory at byte ${offset} claims ${n} entries: the file is corrupt`);
  const block = await r.bytes(offset + countSize, n * entrySize + inline);
  const entries = new Map<number, Entry>();
  for (let i = 0; i < n; i++) {
    const at = i * entrySize;
    const tag = r.uint(block, at, 2);
    const type = r.uint(block, at + 2, 2);
    const count = r.uint(block, at + 4, r.big ? 8 : 4);
    const unit = TYPE_SIZE[type];
    if (!unit) continue; // unknown type: TIFF readers skip such entries
    const length = unit * count;
    const valueAt = at + (r.big ? 12 : 8);
    if (length <= inline) {
      entries.set(tag, { type, count, value: block.subarray(valueAt, valueAt + length) });
    } else if (length <= MAX_ARRAY_BYTES) {
      entries.set(tag, { type, count, value: await r.bytes(r.uint(block, valueAt, inline), length) });
    }
  }
  return { entries, next: r.uint(block, n * entrySize, inline) };
}

function numbers(r: Reader, e: Entry | undefined): number[] {
  if (!e) return [];
  const unit = TYPE_SIZE[e.type]!;
  const out: number[] = [];
  for (let i = 0; i < e.count; i++) {
    if (e.type === 5 || e.type === 10) {
      const num = r.uint(e.value, i * 8, 4), den = r.uint(e.value, i * 8 + 4, 4);
      out.push(den === 0 ? 0 : num / den);
    } else {
      out.push(r.uint(e.value, i * unit, unit));
    }
  }
  return out;
}

function text(e: Entry | undefined): string {
  return e ? e.value.toString('latin1').replace(/\0+$/, '') : '';
}

async function readDirectory(r: Reader, offset: number, page: number, subifd: number, depth: number): Promise<{ dir: TiffDirectory; next: number }> {
  const { entries, next } = await readEntries(r, offset);
  const one = (tag: number, fallback: number): number => numbers(r, entries.get(tag))[0] ?? fallback;
  const tiled = entries.has(322);
  const offsets = numbers(r, entries.get(tiled ? 324 : 273));
  const counts = numbers(r, entries.get(tiled ? 325 : 279));
  let dataEnd = 0;
  for (let i = 0; i < Math.min(offsets.length, counts.length); i++) {
    if (counts[i]! > 0) dataEnd = Math.max(dataEnd, offsets[i]! + counts[i]!);
  }
  const dir: TiffDirectory = {
    page,
    subifd,
    width: one(256, 0),
    height: one(257, 0),
    tileWidth: tiled ? one(322, 0) : 0,
    tileHeight: tiled ? one(323, 0) : 0,
    subfileType: one(254, 0),
    compression: one(259, 1),
    samplesPerPixel: one(277, 1),
    description: text(entries.get(270)),
    xResolution: one(282, 0),
    yResolution: one(283, 0),
    resolutionUnit: one(296, 2),
    dataEnd,
    tileOffsets: tiled ? offsets : [],
    tileByteCounts: tiled ? counts : [],
    jpegTables: entries.get(347)?.value ?? null,
    subifds: [],
  };
  if (dir.width < 1 || dir.height < 1) throw new TiffFormatError(`directory ${page} has no image size: the file is corrupt`);
  checkGeometry(dir, {
    bitsPerSample: one(258, 1),
    planar: one(284, 1),
    offsets: tiled && entries.has(324) ? offsets.length : -1,
    counts,
    fileSize: r.size,
  });
  if (depth === 0) {
    const subs = numbers(r, entries.get(330));
    for (let i = 0; i < subs.length && i < MAX_PAGES; i++) {
      dir.subifds.push((await readDirectory(r, subs[i]!, page, i, depth + 1)).dir);
    }
  }
  return { dir, next };
}

function directoryName(dir: TiffDirectory): string {
  return dir.subifd >= 0 ? `SubIFD ${dir.subifd} of directory ${dir.page}` : `directory ${dir.page}`;
}

/** Throws TiffGeometryError, naming the directory and the value, for sizes and counts no real image has. */
function checkGeometry(
  dir: TiffDirectory,
  more: { bitsPerSample: number; planar: number; offsets: number; counts: number[]; fileSize: number },
): void {
  const fail = (what: string): never => {
    throw new TiffGeometryError(`${directoryName(dir)} ${what}`);
  };
  if (dir.width > MAX_LEVEL_SIDE) fail(`is ${dir.width} px wide, more than any slide (at most ${MAX_LEVEL_SIDE})`);
  if (dir.height > MAX_LEVEL_SIDE) fail(`is ${dir.height} px high, more than any slide (at most ${MAX_LEVEL_SIDE})`);
  if (more.offsets >= 0) {
    const tw = dir.tileWidth, th = dir.tileHeight;
    if (tw < 1 || tw > MAX_LEVEL_SIDE) fail(`has a tile width of ${tw} px (expected 1 to ${MAX_LEVEL_SIDE})`);
    if (th < 1 || th > MAX_LEVEL_SIDE) fail(`has a tile length of ${th} px (expected 1 to ${MAX_LEVEL_SIDE})`);
    const pixelBytes = Math.max(4, Math.ceil((dir.samplesPerPixel * more.bitsPerSample) / 8));
    if (tw * th * pixelBytes > MAX_TILE_BYTES) {
      fail(`has ${tw}x${th} px tiles: ${tw * th * pixelBytes} bytes decoded, more than the ${MAX_TILE_BYTES} bytes a tile may take`);
    }
    const tiles = Math.ceil(dir.width / tw) * Math.ceil(dir.height / th) * (more.planar === 2 ? dir.samplesPerPixel : 1);
    if (more.offsets < tiles) fail(`has ${more.offsets} tile offsets but its ${dir.width}x${dir.height} px image in ${tw}x${th} px tiles has ${tiles} tiles`);
  }
  const over = more.counts.findIndex((c) => c > more.fileSize);
  if (over >= 0) fail(`says its ${dir.tileWidth > 0 ? 'tile' : 'strip'} ${over} holds ${more.counts[over]} bytes, more than the whole file (${more.fileSize} bytes)`);
}

/** True when the first bytes are a TIFF or BigTIFF header. */
export function isTiffHeader(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  const ii = head[0] === 0x49 && head[1] === 0x49, mm = head[0] === 0x4d && head[1] === 0x4d;
  if (!ii && !mm) return false;
  const magic = ii ? head[2]! | (head[3]! << 8) : (head[2]! << 8) | head[3]!;
  return magic === 42 || magic === 43;
}

/**
 * Reads every directory of a TIFF file. Throws TiffFormatError when the header
 * or a directory is malformed, TiffGeometryError when a directory's sizes or
 * counts are absurd, and (unless `dataBounds` is false) TiffFormatError when
 * pixel data lies past the end of the file (a truncated copy).
 */
export async function readTiffDirectories(path: string, { dataBounds = true } = {}): Promise<TiffFile> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(16);
    await fh.read(head, 0, 16, 0);
    if (size < 8 || !isTiffHeader(head)) throw new TiffFormatError('not a TIFF file (no II*/MM* header)');
    const little = head[0] === 0x49;
    const big = (little ? head.readUInt16LE(2) : head.readUInt16BE(2)) === 43;
    const r = new Reader(fh, size, little, big);
    let offset = big ? r.uint(head, 8, 8) : r.uint(head, 4, 4);
    const pages: TiffDirectory[] = [];
    const seen = new Set<number>();
    while (offset !== 0) {
      if (seen.has(offset) || pages.length >= MAX_PAGES) throw new TiffFormatError('the directory chain loops: the file is corrupt');
      seen.add(offset);
      const { dir, next } = await readDirectory(r, offset, pages.length, -1, 0);
      pages.push(dir);
      offset = next;
    }
    if (pages.length === 0) throw new TiffFormatError('the file has no image directory');
    const file = { bigTiff: big, fileSize: size, pages };
    if (dataBounds) checkDataBounds(file);
    return file;
  } finally {
    await fh.close();
  }
}

/** Throws TiffFormatError when a directory's pixel data lies past the end of the file (a truncated copy). */
export function checkDataBounds(file: TiffFile): void {
  for (const dir of file.pages.flatMap((p) => [p, ...p.subifds])) {
    if (dir.dataEnd > file.fileSize) {
      throw new TiffFormatError(`image data of directory ${dir.page} extends to byte ${dir.dataEnd} but the file has ${file.fileSize} bytes: it is truncated`);
    }
  }
}

/**
 * µm per pixel from a TIFF resolution, or null when unknown. Centimetres are
 * trusted; inches only when finer than 10 µm/px (≥ 2540 dpi), because 72, 96
 * and 300 dpi are writers' defaults for images that were never measured.
 */
export function micronsPerPixel(resolution: number, unit: number): number | null {
  if (!(resolution > 0) || !Number.isFinite(resolution)) return null;
  if (unit === 3) return 10_000 / resolution;
  if (unit === 2 && 25_400 / resolution < 10) return 25_400 / resolution;
  return null;
}
