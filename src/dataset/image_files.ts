/**
 * Image files (one patch per file, e.g. a Kaggle folder's TIFFs) decoded in
 * parallel through sharp.
 *
 * decodeImages returns, per path, the image or the Error that says why it
 * could not be read, so a caller can report bad files instead of failing on
 * the first. ImageFileSource is a BatchSource over such files, for
 * BatchLoader: each batch decodes its files when asked for (the loader
 * prefetches, so decoding overlaps training); a file that cannot be read, or
 * is not of the source's size, fails its batch with the file named.
 */
import { availableParallelism } from 'node:os';

import type { BatchSource, SourceChunk } from '../augment/loader.js';
import { checkInteger, invalidRange, invalidType } from '../errors.js';
import { readImage, stackImages } from '../image.js';
import type { RgbBatch } from '../kernels/types.js';
import { mapLimit } from './pack.js';

/** Files decoded at once by default: decoding is I/O plus libvips work on its own threads. */
export function defaultDecodeConcurrency(): number {
  return Math.min(16, 2 * availableParallelism());
}

/** Decodes every path (at most `concurrency` at a time); an unreadable file gives its Error, in place. */
export async function decodeImages(paths: readonly string[], concurrency = defaultDecodeConcurrency()): Promise<Array<RgbBatch | Error>> {
  checkInteger('concurrency', concurrency, 1, 256);
  return mapLimit([...paths], concurrency, (p) => readImage(p).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))));
}

export interface ImageFile {
  path: string;
  /** 0/1 (or any number); null when unlabelled. */
  label: number | null;
}

export class ImageFileSource implements BatchSource {
  readonly size: number;
  readonly height: number;
  readonly width: number;
  readonly labelSize: number;
  readonly #files: readonly ImageFile[];
  readonly #concurrency: number;

  /**
   * `files` all of `height` x `width` (checked as they are decoded). Labels are
   * handed out when every file has one.
   */
  constructor(files: readonly ImageFile[], shape: { height: number; width: number }, options: { concurrency?: number } = {}) {
    if (!Array.isArray(files)) throw invalidType('files', 'an array of { path, label }', files);
    if (files.length === 0) throw invalidRange('files', 'at least one file', files);
    files.forEach((f, i) => {
      if (typeof f?.path !== 'string' || f.path === '') throw invalidType(`files[${i}].path`, 'a file path', f?.path);
    });
    this.#files = files;
    this.size = files.length;
    this.height = checkInteger('shape.height', shape.height, 1);
    this.width = checkInteger('shape.width', shape.width, 1);
    this.labelSize = files.every((f) => typeof f.label === 'number') ? 1 : 0;
    this.#concurrency = options.concurrency === undefined ? defaultDecodeConcurrency() : checkInteger('options.concurrency', options.concurrency, 1, 256);
  }

  /** A source whose size is that of the first file. */
  static async open(files: readonly ImageFile[], options: { concurrency?: number } = {}): Promise<ImageFileSource> {
    if (!Array.isArray(files) || files.length === 0) throw invalidRange('files', 'at least one file', files);
    const first = await readImage(files[0]!.path);
    return new ImageFileSource(files, first, options);
  }

  async read(indices: readonly number[]): Promise<SourceChunk> {
    const files = indices.map((i) => this.#files[checkInteger('index', i, 0, this.size - 1)]!);
    const images = await decodeImages(files.map((f) => f.path), this.#concurrency);
    images.forEach((img, k) => {
      if (img instanceof Error) throw img;
      if (img.height !== this.height || img.width !== this.width) {
        throw new Error(`${files[k]!.path} is ${img.width}x${img.height}, not ${this.width}x${this.height} like the rest of the source`);
      }
    });
    const batch = stackImages(images as RgbBatch[]);
    return this.labelSize ? { batch, labels: Float32Array.from(files, (f) => f.label!) } : { batch };
  }
}
