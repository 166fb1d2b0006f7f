/**
 * PackedWriter: streams RgbBatch tiles, labels and metadata into a packed
 * dataset (packed_format.ts), atomically and resumably.
 *
 *   const w = await PackedWriter.create('out.hfpack', { height: 96, width: 96, labels: 'int32', info: { slide: 'CMU-1' } });
 *   await w.append(batch, { labels: [0, 1, …], meta: [{ slide, level, x, y, tissueFraction }, …] });
 *   await w.finish();   // out.hfpack appears, complete, in one rename
 *
 * While writing, two files exist beside FILE:
 *   FILE.partial          the header (complete flag clear) and the pixel records
 *                         appended so far, at their final offsets;
 *   FILE.partial.journal  newline-delimited JSON: a first line with the
 *                         settings, then one line per record (label, metadata);
 * and with `masks`, a third:
 *   FILE.partial.masks    the records' label masks (height·width bytes each),
 *                         appended so far.
 * Records are buffered `chunkRecords` at a time; a flush writes the chunk's
 * pixels (and masks) and fsyncs them, then appends the chunk's journal lines and fsyncs
 * those. A record is complete when its journal line is (its pixels are then
 * on disk too), so the durable record count is the number of complete journal
 * lines: the journal is the writer's record count and metadata store.
 *
 * finish() writes the labels (and masks, copied from FILE.partial.masks: a
 * version 2 file) and metadata blocks after the pixels, then the
 * header with the complete flag, fsyncs, renames FILE.partial to FILE and
 * removes the journal. A crash at any point leaves no FILE (or the previous
 * one, with `overwrite`), only the .partial pair; FILE.partial never passes
 * PackedDataset.open (complete flag clear, wrong name).
 *
 * Resume (the default): create() on a path whose .partial pair exists checks
 * the settings match, keeps the complete journal lines whose pixels are all
 * on disk, truncates anything after them (a torn record, a half-written
 * tail, labels of a finish() that did not rename) and appends from there:
 * `resumed` says how many records were kept, `has(meta)` which tiles. The
 * dataset-level `info` is the one given to the create() that finishes.
 * One writer per file at a time.
 */
import { open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

import { checkBoolean, checkInteger, checkKnownKeys, checkObject, checkOneOf, invalidRange, invalidType } from '../errors.js';
import { checkBatch, writeFileAtomic } from '../image.js';
import type { RgbBatch } from '../kernels/types.js';
import { MASK_IGNORE, checkMaskLabels } from '../tiling/masks.js';
import {
  LABEL_DTYPES,
  PACKED_HEADER_BYTES,
  UNLABELLED,
  decodeHeader,
  encodeHeader,
  packedLayout,
  type LabelDtype,
  type PackedRecordMeta,
} from './packed_format.js';
import { tileKey, tileMetas, type TileMeta, type TileSink, type TileSinkResult } from './tile_sink.js';
import { makeDirectory, pathExists } from '../output.js';

export interface PackedWriterOptions {
  height: number;
  width: number;
  /** Label storage: 'int32' (default; −1 = unlabelled), 'uint8' (every record labelled 0..255) or 'none'. */
  labels?: LabelDtype;
  /** Dataset-level metadata (JSON-serializable), stored in the metadata block. */
  info?: Record<string, unknown>;
  /** Continue FILE.partial when it exists (default true); false starts over. */
  resume?: boolean;
  /** Replace an existing FILE on finish (default false: an existing FILE is an error at create). */
  overwrite?: boolean;
  /** Records per durable flush. Default: 8 MiB of pixels, at least 1. */
  chunkRecords?: number;
  /**
   * Store a label mask per record (a version 2 file): height·width class
   * indices into `labels` ('background' first; src/tiling/masks.ts), 255 = ignore.
   */
  masks?: { labels: readonly string[] };
}

export interface PackedRecords {
  /** One label per record (null = unlabelled, int32 only). */
  labels?: ArrayLike<number | null>;
  /** One metadata object per record. */
  meta?: readonly PackedRecordMeta[];
  /** The records' label masks, n·height·width bytes (writers created with `masks` only, and then required). */
  masks?: Uint8Array;
}

const OPTION_KEYS = ['height', 'width', 'labels', 'info', 'resume', 'overwrite', 'chunkRecords', 'masks'];
const META_KEYS = ['id', 'source', 'slide', 'level', 'x', 'y', 'tissueFraction', 'labelCoverage'];
const JOURNAL_KIND = 'histoflow-packed-journal';

interface JournalSettings {
  kind: string;
  version: number;
  height: number;
  width: number;
  labels: LabelDtype;
  info: Record<string, unknown>;
  /** The mask labels; absent without masks. */
  masks?: string[];
}

function checkRecordMeta(name: string, value: unknown): PackedRecordMeta {
  const m = checkObject(name, value);
  checkKnownKeys(name, m, META_KEYS);
  const out: PackedRecordMeta = {};
  for (const k of ['id', 'source', 'slide'] as const) {
    if (m[k] !== undefined) {
      if (typeof m[k] !== 'string') throw invalidType(`${name}.${k}`, 'a string', m[k]);
      out[k] = m[k] as string;
    }
  }
  for (const k of ['level', 'x', 'y'] as const) if (m[k] !== undefined) out[k] = checkInteger(`${name}.${k}`, m[k], 0);
  for (const k of ['tissueFraction', 'labelCoverage'] as const) {
    const t = m[k];
    if (t === undefined) continue;
    if (typeof t !== 'number') throw invalidType(`${name}.${k}`, 'a number', t);
    if (!(t >= 0 && t <= 1)) throw invalidRange(`${name}.${k}`, 'a number between 0 and 1', t);
    out[k] = t;
  }
  return out;
}

/**
 * A journal line as the writer writes it, {"label": L, "meta": {…}}, with its
 * metadata re-serialized; null when the line is torn, corrupt, or holds what
 * append() would have refused (a label outside the dtype, metadata that is
 * not a flat record: `null`, a 5000-deep array, an unknown key). Recovery
 * keeps the records before the first such line, as it does for a torn tail.
 */
function journalEntry(line: string, labels: LabelDtype): { label: number; meta: string } | null {
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return null;
  }
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return null;
  const { label, meta } = entry as { label?: unknown; meta?: unknown };
  const [min, max] = labels === 'none' ? [0, 0] : labels === 'uint8' ? [0, 255] : [UNLABELLED, 2 ** 31 - 1];
  if (typeof label !== 'number' || !Number.isInteger(label) || label < min || label > max) return null;
  try {
    return { label, meta: JSON.stringify(checkRecordMeta('meta', meta)) };
  } catch {
    return null;
  }
}

/** The key `has` looks up: slide/level/x/y when the record has them, else its id. */
function recordKey(m: PackedRecordMeta): string | undefined {
  if (m.slide !== undefined && m.level !== undefined && m.x !== undefined && m.y !== undefined) {
    return tileKey({ slide: m.slide, level: m.level, x: m.x, y: m.y });
  }
  return m.id === undefined ? undefined : `id\u0000${m.id}`;
}

export class PackedWriter implements TileSink {
  readonly path: string;
  readonly partialPath: string;
  readonly journalPath: string;
  /** FILE.partial.masks (used only with masks). */
  readonly masksPath: string;
  /** The mask labels, or null when the writer stores no masks. */
  readonly maskLabels: string[] | null;
  readonly height: number;
  readonly width: number;
  readonly labelDtype: LabelDtype;
  readonly chunkRecords: number;
  /** Records kept from an interrupted run when this writer resumed. */
  readonly resumed: number;
  readonly #info: Record<string, unknown>;
  readonly #recordBytes: number;
  #fh: FileHandle | undefined;
  #journal: FileHandle | undefined;
  #masksFh: FileHandle | undefined;
  #pendingMasks: Uint8Array;
  /** Records on disk (pixels and journal line). */
  #committed: number;
  #pending: Uint8Array;
  #pendingCount = 0;
  #pendingLines: string[] = [];
  /** Label and metadata JSON of every record, committed and pending. */
  #labels: number[] = [];
  #records: string[] = [];
  #keys = new Set<string>();
  #written = 0;
  #skipped = 0;
  #state: 'open' | 'finished' | 'aborted' | 'failed' = 'open';
  #tail: Promise<unknown> = Promise.resolve();

  private constructor(
    path: string,
    o: Required<Omit<PackedWriterOptions, 'resume' | 'overwrite' | 'masks'>> & { masks: string[] | null },
    resumed: { labels: number[]; records: string[] },
  ) {
    this.path = path;
    this.partialPath = `${path}.partial`;
    this.journalPath = `${path}.partial.journal`;
    this.masksPath = `${path}.partial.masks`;
    this.maskLabels = o.masks;
    this.#pendingMasks = new Uint8Array(o.masks ? o.chunkRecords * o.height * o.width : 0);
    this.height = o.height;
    this.width = o.width;
    this.labelDtype = o.labels;
    this.chunkRecords = o.chunkRecords;
    this.#info = o.info;
    this.#recordBytes = o.height * o.width * 3;
    this.#pending = new Uint8Array(o.chunkRecords * this.#recordBytes);
    this.#labels = resumed.labels;
    this.#records = resumed.records;
    this.#committed = resumed.labels.length;
    this.resumed = resumed.labels.length;
    for (const r of resumed.records) {
      const key = recordKey(JSON.parse(r) as PackedRecordMeta);
      if (key !== undefined) this.#keys.add(key);
    }
  }

  /** Opens a writer: a fresh FILE.partial, or (resume) the interrupted one. */
  static async create(path: string, options: PackedWriterOptions): Promise<PackedWriter> {
    if (typeof path !== 'string' || path.length === 0) throw invalidType('path', 'a file path', path);
    const o = checkObject('options', options);
    checkKnownKeys('options', o, OPTION_KEYS);
    const height = checkInteger('options.height', o.height, 1, 65535);
    const width = checkInteger('options.width', o.width, 1, 65535);
    const labels = o.labels === undefined ? 'int32' : checkOneOf('options.labels', o.labels, LABEL_DTYPES);
    const info = o.info === undefined ? {} : checkObject('options.info', o.info);
    const resume = o.resume === undefined ? true : checkBoolean('options.resume', o.resume);
    const overwrite = o.overwrite === undefined ? false : checkBoolean('options.overwrite', o.overwrite);
    const recordBytes = height * width * 3;
    const chunkRecords = o.chunkRecords === undefined
      ? Math.max(1, Math.floor((8 << 20) / recordBytes))
      : checkInteger('options.chunkRecords', o.chunkRecords, 1, 1 << 20);
    const masks = o.masks === undefined ? null : checkMaskLabels('options.masks.labels', checkObject('options.masks', o.masks).labels).slice();
    JSON.stringify(info); // throws on cycles / BigInt before any file exists
    if (!overwrite && (await pathExists(path))) {
      throw new Error(`${path} already exists; pass overwrite: true to replace it`);
    }
    await makeDirectory(dirname(path), 'path');
    const settings: JournalSettings = { kind: JOURNAL_KIND, version: 1, height, width, labels, info, ...(masks ? { masks } : {}) };
    const partial = `${path}.partial`, journal = `${path}.partial.journal`;
    const haveJournal = await pathExists(journal);
    const havePartial = await pathExists(partial);
    let kept = { labels: [] as number[], records: [] as string[] };
    if (resume && havePartial) {
      if (!haveJournal) {
        throw new Error(`cannot resume ${partial}: its journal ${journal} is missing; remove the .partial file or pass resume: false`);
      }
      kept = await PackedWriter.#recover(path, settings, recordBytes);
    } else {
      await rm(partial, { force: true });
      await rm(journal, { force: true });
      await rm(`${partial}.masks`, { force: true });
    }
    const writer = new PackedWriter(path, { height, width, labels, info, chunkRecords, masks }, kept);
    await writer.#openFiles(!(resume && havePartial), settings);
    return writer;
  }

  /**
   * Reads an interrupted run's journal, keeps the records that are complete in
   * both files, and cuts both back to exactly those.
   */
  static async #recover(path: string, settings: JournalSettings, recordBytes: number): Promise<{ labels: number[]; records: string[] }> {
    const partial = `${path}.partial`, journal = `${path}.partial.journal`;
    const text = await readFile(journal, 'utf8');
    const lines = text.split('\n');
    lines.pop(); // the text after the last newline: empty, or a torn line
    let first: Partial<JournalSettings> | undefined;
    try {
      first = JSON.parse(lines[0] ?? '') as Partial<JournalSettings>;
    } catch {
      first = undefined;
    }
    if (!first || first.kind !== JOURNAL_KIND) {
      throw new Error(`cannot resume ${partial}: ${journal} is not a histoflow packed journal; remove both or pass resume: false`);
    }
    for (const k of ['height', 'width', 'labels'] as const) {
      if (first[k] !== settings[k]) {
        throw new Error(`cannot resume ${partial}: it was started with ${k} ${String(first[k])}, not ${String(settings[k])}; ` +
          'pass the same options, or resume: false to start over');
      }
    }
    const wasMasks = JSON.stringify(first.masks ?? null), isMasks = JSON.stringify(settings.masks ?? null);
    if (wasMasks !== isMasks) {
      throw new Error(`cannot resume ${partial}: it was started with masks ${wasMasks === 'null' ? 'off' : wasMasks}, not ${isMasks === 'null' ? 'off' : isMasks}; ` +
        'pass the same options, or resume: false to start over');
    }
    const maskBytes = settings.masks ? settings.height * settings.width : 0;
    const masksFh = settings.masks ? await open(`${partial}.masks`, 'a+') : undefined;
    const fh = await open(partial, 'r+');
    try {
      const size = (await fh.stat()).size;
      // Shorter than a header: killed between creating the file and its first fsync; nothing to keep.
      if (size >= PACKED_HEADER_BYTES) {
        const headerBytes = new Uint8Array(PACKED_HEADER_BYTES);
        await fh.read(headerBytes, 0, PACKED_HEADER_BYTES, 0);
        const h = decodeHeader(partial, headerBytes, size, false);
        if (h.height !== settings.height || h.width !== settings.width || h.labelDtype !== settings.labels || (h.maskDtype === 'uint8') !== !!settings.masks) {
          throw new Error(`cannot resume ${partial}: its header (${h.width}x${h.height}, ${h.labelDtype}) disagrees with its journal`);
        }
      }
      let onDisk = Math.max(0, Math.floor((size - PACKED_HEADER_BYTES) / recordBytes));
      if (masksFh) onDisk = Math.min(onDisk, Math.floor((await masksFh.stat()).size / maskBytes));
      const labels: number[] = [];
      const records: string[] = [];
      for (const line of lines.slice(1)) {
        if (labels.length >= onDisk) break;
        const entry = journalEntry(line, settings.labels);
        if (!entry) break;
        labels.push(entry.label);
        records.push(entry.meta);
      }
      const count = labels.length;
      await fh.truncate(PACKED_HEADER_BYTES + count * recordBytes);
      // The complete flag may be set if a finish() did not reach its rename.
      const layout = packedLayout(0, settings.height, settings.width, settings.labels, 0, settings.masks ? 'uint8' : 'none');
      await fh.write(encodeHeader({ ...layout, complete: false }), 0, PACKED_HEADER_BYTES, 0);
      await fh.datasync();
      if (masksFh) {
        await masksFh.truncate(count * maskBytes);
        await masksFh.datasync();
      }
      if (count !== lines.length - 1 || !text.endsWith('\n')) {
        const kept = [lines[0]!, ...lines.slice(1, 1 + count)].join('\n') + '\n';
        await writeFileAtomic(journal, kept, { sync: true });
      }
      return { labels, records };
    } finally {
      await fh.close();
      await masksFh?.close();
    }
  }

  async #openFiles(fresh: boolean, settings: JournalSettings): Promise<void> {
    if (fresh) {
      // Journal first: a .partial never exists without its journal.
      const jh = await open(this.journalPath, 'w');
      await jh.writeFile(`${JSON.stringify(settings)}\n`);
      await jh.datasync();
      await jh.close();
      if (this.maskLabels) await (await open(this.masksPath, 'w')).close();
      const fh = await open(this.partialPath, 'w');
      const layout = packedLayout(0, this.height, this.width, this.labelDtype, 0, this.maskLabels ? 'uint8' : 'none');
      const header = encodeHeader({ ...layout, complete: false });
      await fh.write(header, 0, header.length, 0);
      await fh.datasync();
      await fh.close();
    }
    this.#fh = await open(this.partialPath, 'r+');
    this.#journal = await open(this.journalPath, 'a');
    if (this.maskLabels) this.#masksFh = await open(this.masksPath, 'r+');
  }

  /** Records complete or buffered (TileSink). */
  get completed(): number {
    return this.#labels.length;
  }

  /** TileSink: the tile (by slide, level, x, y) is already in the file. */
  has(meta: TileMeta): boolean {
    return this.#keys.has(tileKey(meta));
  }

  /** The record (by slide/level/x/y when it has them, else by id) is already in the file: resume skips it. */
  hasRecord(meta: PackedRecordMeta): boolean {
    const key = recordKey(meta);
    return key !== undefined && this.#keys.has(key);
  }

  /** Appends every image of `batch`, with one label and one metadata object per image when given. */
  append(batch: RgbBatch, records: PackedRecords = {}): Promise<void> {
    this.#checkOpen();
    const b = checkBatch('batch', batch);
    if (b.height !== this.height || b.width !== this.width) {
      throw invalidRange('batch', `tiles of ${this.width}x${this.height}`, `${b.width}x${b.height}`);
    }
    const r = checkObject('records', records);
    checkKnownKeys('records', r, ['labels', 'meta', 'masks']);
    const labels = this.#checkLabels(b.n, r.labels);
    const masks = this.#checkMasks('records.masks', b.n, r.masks);
    let metas: PackedRecordMeta[] = [];
    if (r.meta !== undefined) {
      if (!Array.isArray(r.meta)) throw invalidType('records.meta', 'an array of metadata objects', r.meta);
      if (r.meta.length !== b.n) throw invalidRange('records.meta', `${b.n} entries (one per image)`, r.meta);
      metas = r.meta.map((m, i) => checkRecordMeta(`records.meta[${i}]`, m));
    }
    return this.#enqueue(() => this.#appendChecked(b, labels, metas, masks));
  }

  /** TileSink.add: appends the tiles not already in the file, in order (with their masks when the writer stores masks). */
  add(tiles: RgbBatch, meta: TileMeta | readonly TileMeta[], masks?: Uint8Array): Promise<void> {
    this.#checkOpen();
    const b = checkBatch('tiles', tiles);
    if (b.height !== this.height || b.width !== this.width) {
      throw invalidRange('tiles', `tiles of ${this.width}x${this.height}`, `${b.width}x${b.height}`);
    }
    const metas = tileMetas(b.n, meta);
    const checkedMasks = this.#checkMasks('masks', b.n, masks);
    if (this.labelDtype === 'none' && metas.some((m) => m.label !== undefined)) {
      throw invalidRange('meta.label', "no label (the writer was created with labels: 'none')", metas.find((m) => m.label !== undefined)!.label);
    }
    if (this.labelDtype === 'uint8') {
      const bad = metas.find((m) => m.label === undefined || m.label === null || m.label > 255);
      if (bad) throw invalidRange('meta.label', "an integer between 0 and 255 for every tile (labels: 'uint8')", bad.label);
    }
    const labels = this.#checkLabels(b.n, metas.map((m) => m.label ?? null));
    const records = metas.map(({ slide, level, x, y, tissueFraction, labelCoverage }): PackedRecordMeta => ({
      slide, level, x, y,
      ...(tissueFraction === undefined ? {} : { tissueFraction }),
      ...(labelCoverage === undefined ? {} : { labelCoverage }),
    }));
    return this.#enqueue(() => this.#appendChecked(b, labels, records, checkedMasks, true));
  }

  /** n masks of height·width values < the label count or 255, when the writer stores masks; none otherwise. */
  #checkMasks(name: string, n: number, value: unknown): Uint8Array | undefined {
    if (!this.maskLabels) {
      if (value !== undefined) throw invalidRange(name, 'no masks (the writer was created without options.masks)', value);
      return undefined;
    }
    const bytes = n * this.height * this.width;
    if (!(value instanceof Uint8Array)) throw invalidType(name, `a Uint8Array of ${bytes} mask bytes (n·height·width)`, value);
    if (value.length !== bytes) throw invalidRange(name, `a Uint8Array of ${bytes} mask bytes (n·height·width)`, value);
    const k = this.maskLabels.length;
    for (let i = 0; i < value.length; i++) {
      const v = value[i]!;
      if (v >= k && v !== MASK_IGNORE) throw invalidRange(`${name}[${i}]`, `a label index below ${k} or ${MASK_IGNORE} (ignore)`, v);
    }
    return value;
  }

  #checkLabels(n: number, value: unknown): number[] {
    if (this.labelDtype === 'none') {
      if (value !== undefined && !(Array.isArray(value) && value.every((v) => v === null))) {
        throw invalidRange('records.labels', "no labels (the writer was created with labels: 'none')", value);
      }
      return new Array<number>(n).fill(0);
    }
    if (value === undefined) {
      if (this.labelDtype === 'uint8') throw invalidType('records.labels', "one label per image (labels: 'uint8')", value);
      return new Array<number>(n).fill(UNLABELLED);
    }
    if (typeof value !== 'object' || value === null || typeof (value as ArrayLike<unknown>).length !== 'number') {
      throw invalidType('records.labels', 'an array of labels', value);
    }
    const arr = Array.from(value as ArrayLike<unknown>);
    if (arr.length !== n) throw invalidRange('records.labels', `${n} labels (one per image)`, value);
    return arr.map((v, i) => {
      if (v === null && this.labelDtype === 'int32') return UNLABELLED;
      return checkInteger(`records.labels[${i}]`, v, 0, this.labelDtype === 'uint8' ? 255 : 2 ** 31 - 1);
    });
  }

  async #appendChecked(b: RgbBatch, labels: number[], metas: PackedRecordMeta[], masks: Uint8Array | undefined, skipKnown = false): Promise<void> {
    const rb = this.#recordBytes, mb = this.height * this.width;
    for (let i = 0; i < b.n; i++) {
      const meta = metas[i] ?? {};
      const key = recordKey(meta);
      if (skipKnown && key !== undefined && this.#keys.has(key)) {
        this.#skipped++;
        continue;
      }
      if (key !== undefined) this.#keys.add(key);
      this.#pending.set(b.data.subarray(i * rb, (i + 1) * rb), this.#pendingCount * rb);
      if (masks) this.#pendingMasks.set(masks.subarray(i * mb, (i + 1) * mb), this.#pendingCount * mb);
      const metaJson = JSON.stringify(meta);
      this.#pendingLines.push(`{"label":${labels[i]!},"meta":${metaJson}}\n`);
      this.#labels.push(labels[i]!);
      this.#records.push(metaJson);
      this.#pendingCount++;
      this.#written++;
      if (this.#pendingCount === this.chunkRecords) await this.#flush();
    }
  }

  /** Makes every record appended so far durable (pixels, then journal). */
  flush(): Promise<void> {
    this.#checkOpen();
    return this.#enqueue(() => this.#flush());
  }

  async #flush(): Promise<void> {
    if (this.#pendingCount === 0) return;
    const fh = this.#fh!, jh = this.#journal!;
    const bytes = this.#pendingCount * this.#recordBytes;
    await fh.write(this.#pending, 0, bytes, PACKED_HEADER_BYTES + this.#committed * this.#recordBytes);
    await fh.datasync();
    if (this.#masksFh) {
      const mb = this.height * this.width;
      await this.#masksFh.write(this.#pendingMasks, 0, this.#pendingCount * mb, this.#committed * mb);
      await this.#masksFh.datasync();
    }
    await jh.write(this.#pendingLines.join(''));
    await jh.datasync();
    this.#committed += this.#pendingCount;
    this.#pendingCount = 0;
    this.#pendingLines = [];
  }

  /** Writes labels, metadata and the complete header, then renames FILE.partial to FILE. */
  finish(): Promise<TileSinkResult & { path: string; bytes: number }> {
    this.#checkOpen();
    return this.#enqueue(async () => {
      await this.#flush();
      const fh = this.#fh!;
      const count = this.#committed;
      const masks = this.maskLabels ? `,"masks":${JSON.stringify({ labels: this.maskLabels, ignore: MASK_IGNORE })}` : '';
      const meta = Buffer.from(
        `{"format":"histoflow-packed","version":${this.maskLabels ? 2 : 1},"info":${JSON.stringify(this.#info)},"records":[${this.#records.join(',')}]${masks}}`,
        'utf8',
      );
      const layout = packedLayout(count, this.height, this.width, this.labelDtype, meta.length, this.maskLabels ? 'uint8' : 'none');
      if (this.labelDtype !== 'none') {
        const labels = Buffer.alloc(layout.labelsBytes);
        this.#labels.forEach((l, i) => (this.labelDtype === 'int32' ? labels.writeInt32LE(l, i * 4) : labels.writeUInt8(l, i)));
        await fh.write(labels, 0, labels.length, layout.labelsOffset);
      }
      if (this.#masksFh) await this.#copyMasks(fh, layout.masksOffset, layout.masksBytes);
      await fh.write(meta, 0, meta.length, layout.metaOffset);
      await fh.truncate(layout.metaOffset + layout.metaBytes);
      const header = encodeHeader(layout);
      await fh.write(header, 0, header.length, 0);
      await fh.datasync();
      await this.#closeFiles();
      await rename(this.partialPath, this.path);
      await rm(this.journalPath, { force: true });
      if (this.maskLabels) await rm(this.masksPath, { force: true });
      this.#state = 'finished';
      return {
        count, written: this.#written, skipped: this.#skipped, files: [this.path], path: this.path,
        bytes: layout.metaOffset + layout.metaBytes,
      };
    });
  }

  /**
   * Stops writing. By default flushes what was appended and keeps the
   * .partial pair, so that create() resumes it; with discard, removes both.
   */
  async abort(options: { discard?: boolean } = {}): Promise<void> {
    const o = checkObject('options', options);
    checkKnownKeys('options', o, ['discard']);
    const discard = o.discard === undefined ? false : checkBoolean('options.discard', o.discard);
    if (this.#state === 'finished' || this.#state === 'aborted') return;
    await this.#tail.catch(() => undefined);
    if (!discard && this.#state === 'open') await this.#flush().catch(() => undefined);
    this.#state = 'aborted';
    await this.#closeFiles();
    if (discard) {
      await rm(this.partialPath, { force: true });
      await rm(this.journalPath, { force: true });
      await rm(this.masksPath, { force: true });
    }
  }

  /** Copies FILE.partial.masks into the masks block, 16 MiB at a time. */
  async #copyMasks(fh: FileHandle, offset: number, length: number): Promise<void> {
    const chunk = Buffer.alloc(Math.min(length, 16 << 20));
    for (let done = 0; done < length;) {
      const { bytesRead } = await this.#masksFh!.read(chunk, 0, Math.min(chunk.length, length - done), done);
      if (bytesRead === 0) throw new Error(`${this.masksPath} holds ${done} bytes, fewer than the ${length} of its records' masks`);
      await fh.write(chunk, 0, bytesRead, offset + done);
      done += bytesRead;
    }
  }

  async #closeFiles(): Promise<void> {
    const fh = this.#fh, jh = this.#journal, mh = this.#masksFh;
    this.#fh = this.#journal = this.#masksFh = undefined;
    await fh?.close().catch(() => undefined);
    await jh?.close().catch(() => undefined);
    await mh?.close().catch(() => undefined);
  }

  /** Operations run one after another; the first failure fails the writer (abort() still cleans up). */
  #enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(() => {
      if (this.#state !== 'open') throw new Error(`PackedWriter ${this.path} is ${this.#state}`);
      return op();
    });
    this.#tail = run.catch((e) => {
      if (this.#state === 'open') this.#state = 'failed';
      throw e;
    }).catch(() => undefined);
    return run;
  }

  #checkOpen(): void {
    if (this.#state !== 'open') throw new Error(`PackedWriter ${this.path} is ${this.#state}`);
  }
}
