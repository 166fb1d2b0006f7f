/**
 * What a file is, from its first bytes (and, for formats whose index is a text
 * file, its extension), and what would read it: the words of the error a user
 * gets when neither reader opens a slide.
 */
import { open } from 'node:fs/promises';
import { extname } from 'node:path';

import { isTiffHeader } from './tiff.js';

export type DetectedFormat =
  | 'empty' | 'tiff' | 'bigtiff' | 'png' | 'jpeg' | 'jpeg2000' | 'gif' | 'webp' | 'bmp' | 'dicom' | 'zip'
  | 'mirax' | 'hamamatsu-vms' | 'olympus-vsi' | 'text' | 'unknown';

const HEAD_BYTES = 256;

/** Reads the first bytes of `path` and names the format they show. */
export async function detectFormat(path: string): Promise<{ format: DetectedFormat; size: number }> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(Math.min(HEAD_BYTES, size));
    await fh.read(head, 0, head.length, 0);
    return { format: formatFromBytes(head, extname(path).toLowerCase()), size };
  } finally {
    await fh.close();
  }
}

export function formatFromBytes(head: Buffer, ext: string): DetectedFormat {
  if (head.length === 0) return 'empty';
  const starts = (...bytes: number[]): boolean => bytes.every((b, i) => head[i] === b);
  // MIRAX and VMS slides are opened through a small text index file.
  if (ext === '.mrxs') return 'mirax';
  if (ext === '.vms' || ext === '.vmu') return 'hamamatsu-vms';
  if (ext === '.vsi') return 'olympus-vsi';
  if (isTiffHeader(head)) return head[2] === 43 || head[3] === 43 ? 'bigtiff' : 'tiff';
  if (starts(0x89, 0x50, 0x4e, 0x47)) return 'png';
  if (starts(0xff, 0xd8, 0xff)) return 'jpeg';
  if (starts(0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50) || starts(0xff, 0x4f, 0xff, 0x51)) return 'jpeg2000';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'gif';
  if (starts(0x52, 0x49, 0x46, 0x46) && head.subarray(8, 12).toString('latin1') === 'WEBP') return 'webp';
  if (starts(0x42, 0x4d)) return 'bmp';
  if (head.length >= 132 && head.subarray(128, 132).toString('latin1') === 'DICM') return 'dicom';
  if (starts(0x50, 0x4b, 0x03, 0x04)) return 'zip';
  if (isText(head)) return 'text';
  return 'unknown';
}

function isText(head: Buffer): boolean {
  for (const b of head) {
    if (b === 0 || (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d)) return false;
  }
  return true;
}

const DESCRIPTIONS: Record<DetectedFormat, string> = {
  empty: 'an empty file (0 bytes)',
  tiff: 'a TIFF file',
  bigtiff: 'a BigTIFF file',
  png: 'a PNG file',
  jpeg: 'a JPEG file',
  jpeg2000: 'a JPEG 2000 file',
  gif: 'a GIF file',
  webp: 'a WebP file',
  bmp: 'a BMP file',
  dicom: 'a DICOM file',
  zip: 'a ZIP archive',
  mirax: 'a MIRAX slide (.mrxs)',
  'hamamatsu-vms': 'a Hamamatsu VMS slide',
  'olympus-vsi': 'an Olympus VSI slide',
  text: 'a text file, not an image',
  unknown: 'an unrecognised binary format',
};

/** "a TIFF file", "a DICOM file", … for messages. */
export function describeFormat(format: DetectedFormat): string {
  return DESCRIPTIONS[format];
}

/** What would read a file of this format, for the end of an error message. */
export function whatWouldRead(format: DetectedFormat, openslideLinked: boolean): string {
  const openslide = openslideLinked
    ? 'OpenSlide (linked) did not recognise it either'
    : 'it needs OpenSlide: install libopenslide-dev (apt install libopenslide-dev) and rebuild histoflow (npm run build)';
  switch (format) {
    case 'empty':
    case 'text':
      return 'expected a whole-slide image (SVS, tiled TIFF, NDPI, MRXS, …) or a PNG/JPEG/TIFF image';
    case 'mirax':
    case 'hamamatsu-vms':
      return openslideLinked
        ? 'OpenSlide reads it from the index file together with its data folder of the same name: check that the folder is beside it and complete'
        : openslide;
    case 'dicom':
      return 'DICOM whole-slide images need OpenSlide ≥ 4.0: install it (libopenslide-dev ≥ 4.0) and rebuild histoflow (npm run build)';
    case 'olympus-vsi':
      return 'neither reader supports VSI: convert it to OME-TIFF (e.g. bfconvert from Bio-Formats)';
    case 'jpeg2000':
      return 'sharp/libvips has no JPEG 2000 decoder here; convert it to a tiled TIFF';
    case 'zip':
      return 'unzip it first (a DICOM or MIRAX slide folder must be extracted)';
    case 'unknown':
      return `sharp/libvips cannot read it and ${openslide}`;
    default:
      return `sharp/libvips could not decode it and ${openslide}`;
  }
}
