/**
 * PackedDataset: the reader of the packed format (packed_format.ts).
 *
 *   const ds = await PackedDataset.open('tiles.hfpack');
 *   ds.mapped;                       // true: memory-mapped through the addon
 *   const b = ds.batch(0, 64);       // RgbBatch viewing the mapping (no copy)
 *   const g = ds.gather([5, 2, 9]);  // RgbBatch copy
 *   for await (const { batch, labels } of ds.batches({ batchSize: 64, shuffle: true, seed: 1 })) …
 *   new BatchLoader(ds, pipeline, { … })   // ds is a BatchSource: augmented batches
 *
 * Storage: with the addon, the file is mapped privately (bindings/dataset.cc,
 * native/dataset/mapped_file.h): pages are read on first touch and shared with
 * the page cache, so opening a 10 GB file costs nothing and batches are views.
 * Without it (or with `{ mmap: false }`) the file is read into one ArrayBuffer
 * and everything else behaves the same; `mapped` and `storage` say which.
 *
 * Copies: `batch()`, `labels` and sequential `batches()` are views; `gather()`,
 * shuffled `batches()` and `read()` of non-consecutive indices copy. Views
 * are writable (an ArrayBuffer cannot be read-only) but writes never reach
 * the file: the mapping is copy-on-write.
 *
 * `close()` unmaps at once: the buffer is detached, so every view handed out
 * becomes empty (length 0) rather than dangling, and a native worker still
 * reading it reads zeros (see mapped_file.h). Without close() the mapping is
 * released when the dataset and all its views are garbage collected.
 */
import { open as openFile } from 'node:fs/promises';

import { loadAddon } from '../../bindings/loader.js';
import type { NativeMappingHandle } from '../../bindings/binding.js';
import { epochOrder, type BatchSource, type SourceChunk } from '../augment/loader.js';
import { checkBoolean, checkInteger, checkKnownKeys, checkObject, invalidRange, invalidType } from '../errors.js';
import type { RgbBatch } from '../kernels/types.js';
import {
  PACKED_HEADER_BYTES,
  PackedFormatError,
  decodeHeader,
  type LabelDtype,
  type PackedHeader,
  type PackedRecordMeta,
} from './packed_format.js';

export interface PackedOpenOptions {
  /** Map the file through the addon (default true); false reads it into memory. */
  mmap?: boolean;
}

export interface PackedMetadata {
  format: 'histoflow-packed';
  version: number;
  info: Record<string, unknown>;
  records: PackedRecordMeta[];
}

export interface PackedBatchesOptions {
  /** Records per batch, ≥ 1. Default 32. */
  batchSize?: number;
  /** A seeded order (augment/loader.ts's `epochOrder`). Default false. */
  shuffle?: boolean;
  seed?: number;
  epoch?: number;
  /** Leave out a last batch smaller than batchSize. Default false. */
  dropLast?: boolean;
}

export interface PackedBatch {
  batch: RgbBatch;
  /** The batch's labels (a view when the batch is), absent when the dataset has none. */
  labels?: Int32Array | Uint8Array;
  /** Dataset index of each record. */
  indices: number[];
}

const BATCHES_KEYS = ['batchSize', 'shuffle', 'seed', 'epoch', 'dropLast'];

/** Reads a whole file into one fresh (so 8-byte aligned) ArrayBuffer. */
async function readWhole(path: string): Promise<ArrayBuffer> {
  const fh = await openFile(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const bytes = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await fh.read(bytes, done, Math.min(size - done, 1 << 30), done);
      if (bytesRead === 0) throw new Error(`cannot read ${path}: it shrank to ${done} bytes while being read`);
      done += bytesRead;
    }
    return bytes.buffer;
  } finally {
    await fh.close();
  }
}

export class PackedDataset implements BatchSource {
  readonly path: string;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  readonly labelDtype: LabelDtype;
  /** True when the file is memory-mapped, false when it was read into memory. */
  readonly mapped: boolean;
  /** How the file is held, and why it is not mapped when it is not. */
  readonly storage: string;
  readonly header: PackedHeader;
  #buffer: ArrayBuffer;
  #handle: NativeMappingHandle | undefined;
  #pixels: Uint8Array;
  #labels: Int32Array | Uint8Array | undefined;
  #metadata: PackedMetadata | undefined;
  #closed = false;

  private constructor(path: string, buffer: ArrayBuffer, handle: NativeMappingHandle | undefined, storage: string) {
    this.path = path;
    this.mapped = handle !== undefined;
    this.storage = storage;
    const header = decodeHeader(path, new Uint8Array(buffer, 0, Math.min(buffer.byteLength, PACKED_HEADER_BYTES)), buffer.byteLength);
    this.header = header;
    this.count = header.count;
    this.height = header.height;
    this.width = header.width;
    this.labelDtype = header.labelDtype;
    this.#buffer = buffer;
    this.#handle = handle;
    this.#pixels = new Uint8Array(buffer, header.pixelOffset, header.pixelBytes);
    if (header.labelDtype === 'int32') this.#labels = new Int32Array(buffer, header.labelsOffset, header.count);
    else if (header.labelDtype === 'uint8') this.#labels = new Uint8Array(buffer, header.labelsOffset, header.count);
  }

  /** Opens and validates a packed file (see packed_format.ts for what is checked). */
  static async open(path: string, options: PackedOpenOptions = {}): Promise<PackedDataset> {
    if (typeof path !== 'string' || path.length === 0) throw invalidType('path', 'a file path', path);
    const o = checkObject('options', options);
    checkKnownKeys('options', o, ['mmap']);
    const wantMap = o.mmap === undefined ? true : checkBoolean('options.mmap', o.mmap);
    let why = 'read into memory: mmap was not asked for';
    if (wantMap) {
      const addon = loadAddon();
      if (addon.ok) {
        let mapping: { buffer: ArrayBuffer; handle: NativeMappingHandle } | undefined;
        try {
          mapping = addon.addon.mapFile(path);
        } catch (e) {
          const err = e as Error & { code?: string };
          // A missing or unreadable file is the caller's error; only "cannot map here" falls back.
          if (err.code !== 'HISTOFLOW_UNAVAILABLE' && !/external/i.test(err.message)) throw new Error(`cannot open packed dataset: ${err.message}`);
          why = `read into memory: ${err.message}`;
        }
        if (mapping) {
          try {
            return new PackedDataset(path, mapping.buffer, mapping.handle, 'memory-mapped (histoflow.node mapFile)');
          } catch (e) {
            addon.addon.releaseMapping(mapping.handle, mapping.buffer);
            throw e;
          }
        }
      } else {
        why = `read into memory: ${addon.reason}`;
      }
    }
    let buffer: ArrayBuffer;
    try {
      buffer = await readWhole(path);
    } catch (e) {
      throw new Error(`cannot open packed dataset: ${(e as Error).message}`);
    }
    return new PackedDataset(path, buffer, undefined, why);
  }

  /** BatchSource: number of records. */
  get size(): number {
    return this.count;
  }

  /** BatchSource: one label per record (as a float), none without labels. */
  get labelSize(): number {
    return this.#labels ? 1 : 0;
  }

  /** All pixels, count·height·width·3 (a view). */
  get pixels(): Uint8Array {
    this.#checkOpen();
    return this.#pixels;
  }

  /** All labels (a view): Int32Array (−1 = unlabelled) or Uint8Array; undefined when the file has none. */
  get labels(): Int32Array | Uint8Array | undefined {
    this.#checkOpen();
    return this.#labels;
  }

  /** The metadata block, parsed on first use. */
  get metadata(): PackedMetadata {
    this.#checkOpen();
    if (!this.#metadata) {
      const h = this.header;
      const text = new TextDecoder('utf-8', { fatal: false }).decode(new Uint8Array(this.#buffer, h.metaOffset, h.metaBytes));
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new PackedFormatError(this.path, `the metadata block is not JSON (${(e as Error).message})`);
      }
      const m = parsed as Partial<PackedMetadata> | null;
      if (!m || m.format !== 'histoflow-packed' || !Array.isArray(m.records) || typeof m.info !== 'object' || m.info === null) {
        throw new PackedFormatError(this.path, 'the metadata block lacks format, info or records');
      }
      if (m.records.length !== this.count) {
        throw new PackedFormatError(this.path, `the metadata lists ${m.records.length} records but the header says ${this.count}`);
      }
      this.#metadata = m as PackedMetadata;
    }
    return this.#metadata;
  }

  /** Record i's metadata and label. */
  record(i: number): PackedRecordMeta & { index: number; label: number | null } {
    checkInteger('index', i, 0, this.count - 1);
    const label = this.labels ? this.labels[i]! : null;
    return { ...this.metadata.records[i], index: i, label: label === -1 && this.labelDtype === 'int32' ? null : label };
  }

  /** Records start … start+count−1 as a view of the file's memory (no copy). */
  batch(start: number, count: number): RgbBatch {
    this.#checkOpen();
    checkInteger('start', start, 0, Math.max(this.count - 1, 0));
    checkInteger('count', count, 1, this.count - start);
    const rb = this.height * this.width * 3;
    return { data: this.#pixels.subarray(start * rb, (start + count) * rb), n: count, height: this.height, width: this.width };
  }

  /**
   * The records at these indices, in this order, copied into a new batch, or
   * into `out` (indices.length·height·width·3 bytes) when given: reusing one
   * array saves the allocation and first-touch page faults of a new one.
   */
  gather(indices: ArrayLike<number>, out?: Uint8Array): RgbBatch {
    this.#checkOpen();
    if (typeof indices !== 'object' || indices === null || typeof indices.length !== 'number') {
      throw invalidType('indices', 'an array of record indices', indices);
    }
    checkInteger('indices.length', indices.length, 1);
    const rb = this.height * this.width * 3;
    if (out !== undefined && (!(out instanceof Uint8Array) || out.length !== indices.length * rb)) {
      throw (out instanceof Uint8Array ? invalidRange : invalidType)('out', `a Uint8Array of ${indices.length * rb} bytes`, out);
    }
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k];
      if (!(Number.isInteger(i) && i! >= 0 && i! < this.count)) checkInteger(`indices[${k}]`, i, 0, this.count - 1);
    }
    const data = out ?? new Uint8Array(indices.length * rb);
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k]!;
      data.set(this.#pixels.subarray(i * rb, (i + 1) * rb), k * rb);
    }
    return { data, n: indices.length, height: this.height, width: this.width };
  }

  /** BatchSource.read, for BatchLoader: consecutive indices are views, others copies. */
  read(indices: readonly number[]): SourceChunk {
    const first = indices[0];
    const consecutive = first !== undefined && indices.every((v, k) => v === first + k);
    const batch = consecutive ? this.batch(first, indices.length) : this.gather(indices);
    if (!this.#labels) return { batch };
    const all = this.#labels;
    return { batch, labels: Float32Array.from(indices, (i) => all[i]!) };
  }

  /**
   * Batches of records in order (views) or shuffled by seed and epoch (copies),
   * the same order BatchLoader uses for the same seed and epoch.
   */
  async *batches(options: PackedBatchesOptions = {}): AsyncGenerator<PackedBatch, void, undefined> {
    const o = checkObject('options', options);
    checkKnownKeys('options', o, BATCHES_KEYS);
    const batchSize = o.batchSize === undefined ? 32 : checkInteger('batchSize', o.batchSize, 1, 2 ** 31 - 1);
    const shuffle = o.shuffle === undefined ? false : checkBoolean('shuffle', o.shuffle);
    const seed = o.seed === undefined ? 0 : checkInteger('seed', o.seed, 0, Number.MAX_SAFE_INTEGER);
    const epoch = o.epoch === undefined ? 0 : checkInteger('epoch', o.epoch, 0, Number.MAX_SAFE_INTEGER);
    const dropLast = o.dropLast === undefined ? false : checkBoolean('dropLast', o.dropLast);
    this.#checkOpen();
    const order = shuffle ? epochOrder(this.count, seed, epoch) : undefined;
    for (let start = 0; start < this.count; start += batchSize) {
      const n = Math.min(batchSize, this.count - start);
      if (n < batchSize && dropLast) return;
      const indices = Array.from({ length: n }, (_, k) => (order ? order[start + k]! : start + k));
      let batch: RgbBatch;
      let labels: Int32Array | Uint8Array | undefined;
      if (order) {
        batch = this.gather(indices);
        if (this.#labels) {
          const all = this.#labels;
          labels = all instanceof Int32Array ? Int32Array.from(indices, (i) => all[i]!) : Uint8Array.from(indices, (i) => all[i]!);
        }
      } else {
        batch = this.batch(start, n);
        labels = this.#labels?.subarray(start, start + n);
      }
      yield labels ? { batch, labels, indices } : { batch, indices };
    }
  }

  /** True after close(). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Unmaps the file now (mapped) or drops the buffer (read); views handed out
   * become empty when mapped. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#handle) {
      const addon = loadAddon();
      if (addon.ok) addon.addon.releaseMapping(this.#handle, this.#buffer);
      this.#handle = undefined;
    }
    this.#buffer = new ArrayBuffer(0);
    this.#pixels = new Uint8Array(0);
    this.#labels = undefined;
    this.#metadata = undefined;
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error(`PackedDataset ${this.path} is closed`);
  }
}
