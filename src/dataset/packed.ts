/**
 * PackedDataset: the reader of the packed format (packed_format.ts).
 *
 *   const ds = await PackedDataset.open('tiles.hfpack');
 *   ds.mapped;                       // true: memory-mapped through the addon
 *   const b = ds.batch(0, 64);       // RgbBatch viewing the mapping (no copy)
 *   const g = ds.gather([5, 2, 9]);  // RgbBatch copy
 *   ds.maskLabels; ds.readMasks([5, 2, 9]);   // label masks (version 2 files, `tile --masks`)
 *   for await (const { batch, labels } of ds.batches({ batchSize: 64, shuffle: true, seed: 1 })) …
 *   new BatchLoader(ds, pipeline, { … })   // ds is a BatchSource: augmented batches
 *
 * Storage: with the addon, the pixel and label blocks are mapped privately
 * (bindings/dataset.cc, native/dataset/mapped_file.h): pages are read on
 * first touch and shared with the page cache, so opening a 10 GB file costs
 * nothing and batches are views. One mapping holds at most 4 GiB (Node 20's
 * limit for an external ArrayBuffer or a typed array), so a larger pixel
 * block is held in segments of `segmentRecords` whole records; a batch that
 * straddles two segments is the one case where `batch()` copies. Without the
 * addon (or with `{ mmap: false }`) the same blocks are read into memory and
 * everything else behaves the same; `mapped` and `storage` say which. The
 * header is read and checked before anything is mapped; the metadata block
 * is read (it is parsed on first use).
 *
 * Copies: `batch()`, `labels` and sequential `batches()` are views (but see
 * segments above); `gather()`, shuffled `batches()` and `read()` of
 * non-consecutive indices copy. Views are writable (an ArrayBuffer cannot be
 * read-only) but writes never reach the file: the mapping is copy-on-write.
 *
 * `close()` unmaps at once: the buffers are detached, so every view handed out
 * becomes empty (length 0) rather than dangling, and a native worker still
 * reading it reads zeros (see mapped_file.h). Without close() the mapping is
 * released when the dataset and all its views are garbage collected.
 *
 * The file must not change in place while it is mapped (issue 14). A mapping
 * is the file's pages, so when another process truncates or rewrites the file
 * (`truncate`, `cp other.hfpack open.hfpack`), touching a page past its new end
 * raises SIGBUS, which kills the process; no check can catch a read that JS
 * makes through a view it already holds. What is guarded:
 *   - every call that hands out or reads memory (batch, gather, read,
 *     batches, pixels, labels, metadata, record) first compares the file at
 *     `path` with the one mapped at open (size, mtime, device, inode); on any
 *     difference it unmaps everything at once, as close() does (views handed
 *     out become empty), and throws an Error saying the file changed on disk,
 *     now and on every later call;
 *   - a file *replaced* (written elsewhere and renamed over, as histoflow's
 *     writers do with FILE.partial) or deleted is safe: the mapping keeps the
 *     old file, which is read unchanged.
 * What is not: a view obtained before the change and read after it, or a
 * change between the check and the reads of the batch just handed out. So:
 * never rewrite or truncate a packed file in place while a reader has it
 * open; for files other processes may rewrite, open with `{ mmap: false }`,
 * which reads the blocks into memory at open and is then immune to the file.
 */
import { statSync } from 'node:fs';
import { open as openFile, type FileHandle } from 'node:fs/promises';

import { loadAddon } from '../../bindings/loader.js';
import type { NativeAddon, NativeMappingHandle } from '../../bindings/binding.js';
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
  /**
   * The most bytes one mapping (or one in-memory piece) of the pixel block
   * holds; larger blocks are held in segments of whole records. Default and
   * maximum: 2^32, Node 20's limit for an external ArrayBuffer and a typed array.
   */
  maxSegmentBytes?: number;
}

export interface PackedMetadata {
  format: 'histoflow-packed';
  version: number;
  info: Record<string, unknown>;
  records: PackedRecordMeta[];
  /** Version 2: what the mask values mean (labels[v]; `ignore` excluded). */
  masks?: { labels: string[]; ignore: number };
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
export const MAX_SEGMENT_BYTES = 2 ** 32;

/** What identifies the mapped file's contents: a change means it was rewritten in place. */
interface FileIdentity {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
}

/** A run of whole records (or the labels) in one ArrayBuffer: a mapping, or read. */
interface Segment {
  bytes: Uint8Array;
  handle: NativeMappingHandle | undefined;
}

/** How the blocks of a file are brought into memory: mapped, or read. */
interface BlockLoader {
  load(offset: number, length: number): Promise<Segment>;
  release(segment: Segment): void;
}

function mapper(addon: NativeAddon, path: string): BlockLoader {
  return {
    load: async (offset, length) => {
      if (length === 0) return { bytes: new Uint8Array(0), handle: undefined };
      const { buffer, handle } = addon.mapFile(path, offset, length);
      return { bytes: new Uint8Array(buffer), handle };
    },
    release: (segment) => {
      if (segment.handle) addon.releaseMapping(segment.handle, segment.bytes.buffer as ArrayBuffer);
    },
  };
}

function reader(fh: FileHandle, path: string): BlockLoader {
  return {
    load: async (offset, length) => {
      const bytes = new Uint8Array(length); // a fresh buffer: aligned for the label view
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(bytes, done, Math.min(length - done, 1 << 30), offset + done);
        if (bytesRead === 0) throw new PackedFormatError(path, `it shrank while being read (at byte ${offset + done})`);
        done += bytesRead;
      }
      return { bytes, handle: undefined };
    },
    release: () => undefined,
  };
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
  /** Records per segment of the pixel block (the last may hold fewer). */
  readonly segmentRecords: number;
  readonly #recordBytes: number;
  #segments: Segment[];
  #labelSegment: Segment | undefined;
  #labels: Int32Array | Uint8Array | undefined;
  /** The masks block in segments of `maskSegmentRecords` records; empty without masks. */
  #maskSegments: Segment[];
  readonly #maskSegmentRecords: number;
  #metaBytes: Uint8Array;
  #metadata: PackedMetadata | undefined;
  readonly #release: (segment: Segment) => void;
  #closed = false;
  /** The mapped file as opened; undefined when read into memory (nothing to guard). */
  readonly #identity: FileIdentity | undefined;
  /** Set once the mapped file was seen changed on disk: every later call throws it. */
  #changed: string | undefined;

  private constructor(
    path: string,
    header: PackedHeader,
    storage: { mapped: boolean; why: string; release: (s: Segment) => void; identity: FileIdentity },
    held: { segmentRecords: number; segments: Segment[]; labels: Segment | undefined; masks: Segment[]; maskSegmentRecords: number; meta: Uint8Array },
  ) {
    this.path = path;
    this.header = header;
    this.count = header.count;
    this.height = header.height;
    this.width = header.width;
    this.labelDtype = header.labelDtype;
    this.mapped = storage.mapped;
    this.storage = storage.why;
    this.#release = storage.release;
    this.#identity = storage.mapped ? storage.identity : undefined;
    this.segmentRecords = held.segmentRecords;
    this.#recordBytes = header.height * header.width * 3;
    this.#segments = held.segments;
    this.#labelSegment = held.labels;
    this.#maskSegments = held.masks;
    this.#maskSegmentRecords = held.maskSegmentRecords;
    this.#metaBytes = held.meta;
    const lb = held.labels?.bytes;
    if (lb && header.labelDtype === 'int32') this.#labels = new Int32Array(lb.buffer, lb.byteOffset, header.count);
    else if (lb && header.labelDtype === 'uint8') this.#labels = lb;
  }

  /** Opens and validates a packed file (see packed_format.ts for what is checked). */
  static async open(path: string, options: PackedOpenOptions = {}): Promise<PackedDataset> {
    if (typeof path !== 'string' || path.length === 0) throw invalidType('path', 'a file path', path);
    const o = checkObject('options', options);
    checkKnownKeys('options', o, ['mmap', 'maxSegmentBytes']);
    const wantMap = o.mmap === undefined ? true : checkBoolean('options.mmap', o.mmap);
    const maxSegment = o.maxSegmentBytes === undefined
      ? MAX_SEGMENT_BYTES
      : checkInteger('options.maxSegmentBytes', o.maxSegmentBytes, 1, MAX_SEGMENT_BYTES);
    let fh: FileHandle;
    try {
      fh = await openFile(path, 'r');
    } catch (e) {
      throw new Error(`cannot open packed dataset: ${(e as Error).message}`);
    }
    try {
      const stats = await fh.stat({ bigint: true });
      if (!stats.isFile()) throw new Error(`cannot open packed dataset ${path}: not a regular file`);
      const head = new Uint8Array(PACKED_HEADER_BYTES);
      const { bytesRead } = await fh.read(head, 0, PACKED_HEADER_BYTES, 0);
      const header = decodeHeader(path, head.subarray(0, bytesRead), Number(stats.size));
      const rb = header.height * header.width * 3;
      if (rb > maxSegment) throw new PackedFormatError(path, `records of ${rb} bytes exceed the ${maxSegment}-byte segment limit`);
      const segmentRecords = Math.floor(maxSegment / rb);
      const mb = header.height * header.width;
      const maskSegmentRecords = Math.floor(maxSegment / mb);

      const load = async (l: BlockLoader): Promise<{ segments: Segment[]; labels: Segment | undefined; masks: Segment[] }> => {
        const segments: Segment[] = [];
        const masks: Segment[] = [];
        try {
          for (let first = 0; first < header.count || segments.length === 0; first += segmentRecords) {
            const n = Math.min(segmentRecords, header.count - first);
            segments.push(await l.load(header.pixelOffset + first * rb, n * rb));
          }
          if (header.labelDtype !== 'none') segments.push(await l.load(header.labelsOffset, header.labelsBytes));
          if (header.maskDtype === 'uint8') {
            for (let first = 0; first < header.count; first += maskSegmentRecords) {
              const n = Math.min(maskSegmentRecords, header.count - first);
              masks.push(await l.load(header.masksOffset + first * mb, n * mb));
            }
          }
        } catch (e) {
          for (const s of [...segments, ...masks]) l.release(s);
          throw e;
        }
        const labels = header.labelDtype !== 'none' ? segments.pop() : undefined;
        return { segments, labels, masks };
      };

      let why = 'read into memory: mmap was not asked for';
      let mapping: BlockLoader | undefined;
      if (wantMap) {
        const addon = loadAddon();
        if (!addon.ok) why = `read into memory: ${addon.reason}`;
        else if (typeof addon.addon.mapFile !== 'function') why = 'read into memory: this histoflow.node predates mapFile (rebuild it)';
        else mapping = mapper(addon.addon, path);
      }
      let held: { segments: Segment[]; labels: Segment | undefined; masks: Segment[] } | undefined;
      if (mapping) {
        try {
          held = await load(mapping);
        } catch (e) {
          const err = e as Error & { code?: string };
          // Only "cannot map here" (no mmap, external buffers refused) falls back to reading.
          if (err.code !== 'HISTOFLOW_UNAVAILABLE') throw new Error(`cannot open packed dataset: ${err.message}`);
          why = `read into memory: ${err.message}`;
          mapping = undefined;
        }
      }
      const used = mapping ?? reader(fh, path);
      held ??= await load(used);
      const meta = (await reader(fh, path).load(header.metaOffset, header.metaBytes)).bytes;
      const n = held.segments.length;
      const storage = mapping
        ? { mapped: true, why: `memory-mapped (histoflow.node mapFile, ${n} segment${n > 1 ? 's' : ''})`, release: used.release }
        : { mapped: false, why, release: used.release };
      const identity = { dev: stats.dev, ino: stats.ino, size: stats.size, mtimeNs: stats.mtimeNs };
      return new PackedDataset(path, header, { ...storage, identity }, { segmentRecords, maskSegmentRecords, ...held, meta });
    } finally {
      await fh.close();
    }
  }

  /** BatchSource: number of records. */
  get size(): number {
    return this.count;
  }

  /** BatchSource: one label per record (as a float), none without labels. */
  get labelSize(): number {
    return this.#labels ? 1 : 0;
  }

  /**
   * All pixels, count·height·width·3 (a view), when the pixel block is one
   * segment (files under 4 GiB); otherwise use batch() / gather().
   */
  get pixels(): Uint8Array {
    this.#checkOpen();
    if (this.#segments.length > 1) {
      throw new Error(`${this.path}: the pixel block is held in ${this.#segments.length} segments; read it with batch() or gather()`);
    }
    return this.#segments[0]!.bytes;
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
      const text = new TextDecoder('utf-8', { fatal: false }).decode(this.#metaBytes);
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

  /** True when the file holds a label mask per record (version 2). */
  get hasMasks(): boolean {
    return this.header.maskDtype === 'uint8';
  }

  /** The mask values' labels (mask value v is maskLabels[v]; 255 = ignore), null without masks. */
  get maskLabels(): string[] | null {
    if (!this.hasMasks) return null;
    const m = this.metadata.masks;
    if (!m || !Array.isArray(m.labels) || m.labels.some((l) => typeof l !== 'string')) {
      throw new PackedFormatError(this.path, 'a version 2 file whose metadata lacks masks.labels');
    }
    return m.labels;
  }

  /**
   * The label masks of the records at these indices, in this order, copied:
   * indices.length·height·width class indices (255 = ignore), into `out` when given.
   */
  readMasks(indices: ArrayLike<number>, out?: Uint8Array): Uint8Array {
    this.#checkOpen();
    if (!this.hasMasks) throw new Error(`${this.path} holds no label masks (tile it again with --masks)`);
    if (typeof indices !== 'object' || indices === null || typeof indices.length !== 'number') {
      throw invalidType('indices', 'an array of record indices', indices);
    }
    const mb = this.height * this.width;
    if (out !== undefined && (!(out instanceof Uint8Array) || out.length !== indices.length * mb)) {
      throw (out instanceof Uint8Array ? invalidRange : invalidType)('out', `a Uint8Array of ${indices.length * mb} bytes`, out);
    }
    const data = out ?? new Uint8Array(indices.length * mb);
    const per = this.#maskSegmentRecords;
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k];
      if (!(Number.isInteger(i) && i! >= 0 && i! < this.count)) checkInteger(`indices[${k}]`, i, 0, this.count - 1);
      const s = Math.floor(i! / per), r = i! - s * per;
      data.set(this.#maskSegments[s]!.bytes.subarray(r * mb, (r + 1) * mb), k * mb);
    }
    return data;
  }

  /** Record i's metadata and label. */
  record(i: number): PackedRecordMeta & { index: number; label: number | null } {
    checkInteger('index', i, 0, this.count - 1);
    const label = this.labels ? this.labels[i]! : null;
    return { ...this.metadata.records[i], index: i, label: label === -1 && this.labelDtype === 'int32' ? null : label };
  }

  /**
   * Records start … start+count−1 as a view of the file's memory (no copy),
   * unless they straddle two segments (files over 4 GiB, every
   * `segmentRecords` records): then a copy.
   */
  batch(start: number, count: number): RgbBatch {
    this.#checkOpen();
    checkInteger('start', start, 0, Math.max(this.count - 1, 0));
    checkInteger('count', count, 1, this.count - start);
    const rb = this.#recordBytes, per = this.segmentRecords;
    const s = Math.floor(start / per);
    if (Math.floor((start + count - 1) / per) !== s) return this.gather(Array.from({ length: count }, (_, k) => start + k));
    const first = (start - s * per) * rb;
    return { data: this.#segments[s]!.bytes.subarray(first, first + count * rb), n: count, height: this.height, width: this.width };
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
    const per = this.segmentRecords;
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k]!;
      const s = Math.floor(i / per), r = i - s * per;
      data.set(this.#segments[s]!.bytes.subarray(r * rb, (r + 1) * rb), k * rb);
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
    for (const s of this.#segments) this.#release(s);
    for (const s of this.#maskSegments) this.#release(s);
    if (this.#labelSegment) this.#release(this.#labelSegment);
    this.#segments = [];
    this.#maskSegments = [];
    this.#labelSegment = undefined;
    this.#labels = undefined;
    this.#metaBytes = new Uint8Array(0);
    this.#metadata = undefined;
  }

  #checkOpen(): void {
    if (this.#changed) throw new Error(this.#changed);
    if (this.#closed) throw new Error(`PackedDataset ${this.path} is closed`);
    const why = this.#identity && this.#changedOnDisk(this.#identity);
    if (why) {
      this.#changed = `${this.path} changed on disk while memory-mapped (${why}): its mapping was released and ` +
        'its views emptied; reopen it, and do not rewrite or truncate a packed file in place while it is open ' +
        '(or open it with { mmap: false })';
      this.close();
      throw new Error(this.#changed);
    }
  }

  /** Why the file at path is no longer the one mapped, or undefined (also when it was replaced or deleted: the mapping keeps the old file). */
  #changedOnDisk(was: FileIdentity): string | undefined {
    let now;
    try {
      now = statSync(this.path, { bigint: true });
    } catch {
      return undefined;
    }
    if (now.dev !== was.dev || now.ino !== was.ino) return undefined;
    if (now.size !== was.size) return `its size went from ${was.size} to ${now.size} bytes`;
    if (now.mtimeNs !== was.mtimeNs) return 'it was modified in place';
    return undefined;
  }
}
