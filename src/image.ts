/**
 * Image batches (N x H x W x 3 uint8, NHWC) and their files. Decoding and
 * encoding go through sharp (libvips); writes are atomic (temporary file +
 * rename), so an interrupted run never leaves a half-written image.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { OutputPathError, makeDirectory } from './output.js';
import { dirname, join, basename } from 'node:path';

import sharp, { type OutputInfo } from 'sharp';

import { checkInteger, checkObject, invalidRange, invalidType } from './errors.js';
import type { RgbBatch } from './kernels/types.js';

export type { RgbBatch } from './kernels/types.js';

/** Validates a batch: a Uint8Array of exactly n·height·width·3 bytes. */
export function checkBatch(name: string, value: unknown): RgbBatch {
  const b = checkObject(name, value);
  const n = checkInteger(`${name}.n`, b.n, 1);
  const height = checkInteger(`${name}.height`, b.height, 1);
  const width = checkInteger(`${name}.width`, b.width, 1);
  if (!(b.data instanceof Uint8Array) || b.data instanceof Uint8ClampedArray) {
    throw invalidType(`${name}.data`, 'a Uint8Array (RGB, NHWC)', b.data);
  }
  const expected = n * height * width * 3;
  if (b.data.length !== expected) {
    throw invalidRange(`${name}.data`, `${expected} bytes (n ${n} × height ${height} × width ${width} × 3)`, b.data);
  }
  return { data: b.data, n, height, width };
}

/** The i-th image of a batch as a batch of one, over the same memory. */
export function imageAt(batch: RgbBatch, i: number): RgbBatch {
  const size = batch.height * batch.width * 3;
  return { data: batch.data.subarray(i * size, (i + 1) * size), n: 1, height: batch.height, width: batch.width };
}

/** Stacks images of one size into a batch (one copy). */
export function stackImages(images: RgbBatch[]): RgbBatch {
  if (images.length === 0) throw new RangeError('Expected at least one image to stack');
  const { height, width } = images[0]!;
  const n = images.reduce((s, im) => s + im.n, 0);
  const data = new Uint8Array(n * height * width * 3);
  let offset = 0;
  for (const im of images) {
    if (im.height !== height || im.width !== width) {
      throw new RangeError(`Expected images of one size ${width}x${height} to stack but received ${im.width}x${im.height}`);
    }
    data.set(im.data, offset);
    offset += im.data.length;
  }
  return { data, n, height, width };
}

/**
 * All pixels of several images (of any sizes) as one 1 x P image: the stain
 * fits are pixel statistics, so fitting on this is fitting on their union.
 */
export function poolPixels(images: RgbBatch[]): RgbBatch {
  const total = images.reduce((s, im) => s + im.data.length, 0);
  const data = new Uint8Array(total);
  let offset = 0;
  for (const im of images) {
    data.set(im.data, offset);
    offset += im.data.length;
  }
  return { data, n: 1, height: 1, width: total / 3 };
}

/** An image file's size and channels from its header alone (nothing is decoded). */
export interface ImageHeader {
  width: number;
  height: number;
  channels: number;
  hasAlpha: boolean;
}

/**
 * Reads an image's header (sharp's metadata(): no pixel is decoded), so that a
 * command can check what decoding it would cost before it does.
 */
export async function readImageHeader(path: string): Promise<ImageHeader> {
  try {
    const m = await sharp(path, { limitInputPixels: false }).metadata();
    if (!m.width || !m.height) throw new Error('its header gives no width and height');
    return { width: m.width, height: m.height, channels: m.channels ?? 3, hasAlpha: m.hasAlpha === true };
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`cannot read image ${path}: ${why}`);
  }
}

/**
 * The pixels of image i of a batch whose `mask` byte is nonzero (mask: one
 * byte per pixel of the batch), as a 1 x P image; the image itself, uncopied,
 * when every byte is nonzero. P may be 0.
 */
export function pixelsWhere(batch: RgbBatch, mask: Uint8Array, i = 0): RgbBatch {
  const ppi = batch.height * batch.width;
  const m = mask.subarray(i * ppi, (i + 1) * ppi);
  let count = 0;
  for (let k = 0; k < ppi; k++) if (m[k]) count++;
  const image = imageAt(batch, i).data;
  if (count === ppi) return { data: image, n: 1, height: 1, width: ppi };
  const data = new Uint8Array(count * 3);
  let o = 0;
  for (let k = 0; k < ppi; k++) {
    if (!m[k]) continue;
    data[o++] = image[k * 3]!;
    data[o++] = image[k * 3 + 1]!;
    data[o++] = image[k * 3 + 2]!;
  }
  return { data, n: 1, height: 1, width: count };
}

/**
 * The rule for transparency: a pixel at least half opaque (alpha ≥ 128) is
 * image content; one more transparent is not (e.g. the background of a
 * tissue cut-out), and stays out of statistics such as stain fits.
 */
export const OPAQUE_ALPHA = 128;

/** One byte per pixel: 1 where alpha ≥ OPAQUE_ALPHA, else 0. */
export function opaqueMask(alpha: Uint8Array): Uint8Array {
  const mask = new Uint8Array(alpha.length);
  for (let k = 0; k < alpha.length; k++) mask[k] = alpha[k]! >= OPAQUE_ALPHA ? 1 : 0;
  return mask;
}

/** An image's RGB and, when the file has one, its alpha channel (height·width bytes). */
export interface ImageWithAlpha {
  image: RgbBatch;
  alpha: Uint8Array | null;
}

/** Decodes any image sharp reads to RGB plus its alpha channel (null when it has none). */
export async function readImageWithAlpha(path: string): Promise<ImageWithAlpha> {
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await sharp(path, { limitInputPixels: false }).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (decoded.info.channels !== 3 && decoded.info.channels !== 4) throw new Error(`decoded ${decoded.info.channels} channels, expected 3 or 4`);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`cannot read image ${path}: ${why}`);
  }
  const { data, info } = decoded;
  const size = { n: 1, height: info.height, width: info.width };
  if (info.channels === 3) return { image: { data: new Uint8Array(data.buffer, data.byteOffset, data.length), ...size }, alpha: null };
  const pixels = info.width * info.height;
  const rgb = new Uint8Array(pixels * 3);
  const alpha = new Uint8Array(pixels);
  for (let k = 0; k < pixels; k++) {
    rgb[k * 3] = data[k * 4]!;
    rgb[k * 3 + 1] = data[k * 4 + 1]!;
    rgb[k * 3 + 2] = data[k * 4 + 2]!;
    alpha[k] = data[k * 4 + 3]!;
  }
  return { image: { data: rgb, ...size }, alpha };
}

/** Decodes any image sharp reads (PNG, JPEG, TIFF, …) to RGB, dropping alpha. */
export async function readImage(path: string): Promise<RgbBatch> {
  try {
    const { data, info } = await sharp(path, { limitInputPixels: false })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded ${info.channels} channels, expected 3`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), n: 1, height: info.height, width: info.width };
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`cannot read image ${path}: ${why}`);
  }
}

/** A rename over a folder (EISDIR) said in words; other errors as they are. */
function writeError(path: string, e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') return new OutputPathError('file', path, 'it is a folder, not a file');
  return e;
}

/**
 * Writes the i-th image of a batch as PNG (or JPEG by extension, `quality`
 * 1..100, default 92), with `alpha` (height·width bytes) as an RGBA PNG, atomically: a temporary `.NAME.RANDOM.tmp` beside it,
 * then a rename. Resolves to the file's size in bytes.
 */
export async function writeImage(
  path: string,
  batch: RgbBatch,
  index = 0,
  options: { quality?: number; alpha?: Uint8Array | null } = {},
): Promise<number> {
  const img = imageAt(batch, index);
  const jpeg = /\.jpe?g$/i.test(path);
  let pixels = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.length);
  let channels: 3 | 4 = 3;
  if (options.alpha) {
    const count = img.height * img.width;
    if (options.alpha.length !== count) throw invalidRange('alpha', `a Uint8Array of ${count} bytes (height × width)`, options.alpha);
    if (jpeg) throw new RangeError(`Expected a PNG path to write an image with alpha but received ${path} (JPEG has no alpha channel)`);
    pixels = Buffer.alloc(count * 4);
    for (let k = 0; k < count; k++) {
      pixels[k * 4] = img.data[k * 3]!;
      pixels[k * 4 + 1] = img.data[k * 3 + 1]!;
      pixels[k * 4 + 2] = img.data[k * 3 + 2]!;
      pixels[k * 4 + 3] = options.alpha[k]!;
    }
    channels = 4;
  }
  await makeDirectory(dirname(path));
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  const pipeline = sharp(pixels, { raw: { width: img.width, height: img.height, channels } });
  try {
    const written = jpeg
      ? await pipeline.jpeg({ quality: options.quality ?? 92 }).toFile(tmp)
      : await pipeline.png().toFile(tmp);
    await rename(tmp, path);
    return written.size;
  } catch (e) {
    await rm(tmp, { force: true });
    throw writeError(path, e);
  }
}

/**
 * Writes bytes or text atomically: a temporary beside the file, then a rename,
 * so readers see the old file or the whole new one. With `sync`, the data is
 * flushed to disk before the rename (manifests and journals that a resumed
 * run trusts). Creates the folder.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, options: { sync?: boolean } = {}): Promise<void> {
  await makeDirectory(dirname(path));
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(data);
      if (options.sync) await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw writeError(path, e);
  }
}

/** Writes a single-channel (grey) image as PNG, atomically. */
export async function writeGrey(path: string, data: Uint8Array, width: number, height: number): Promise<void> {
  await makeDirectory(dirname(path));
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await sharp(Buffer.from(data.buffer, data.byteOffset, data.length), { raw: { width, height, channels: 1 } })
      .png()
      .toFile(tmp);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw writeError(path, e);
  }
}
