/**
 * packDataset(SRC, FILE): any labelled patch source → a packed dataset
 * (packed_format.ts) through PackedWriter (atomic, resumable).
 *
 * SRC is one of
 *   a Kaggle layout folder   (train_labels.csv / train/ / test/; `split` train|test)
 *   PatchCamelyon HDF5       an ..._x.h5 file (its ..._y.h5 beside it gives labels),
 *                            or a folder holding camelyonpatch_level_2_split_<split>_{x,y}.h5
 *   a tile folder            manifest.json as the tiler writes it (labels and positions kept)
 *
 * Images decode in parallel (sharp, at most `concurrency` at a time) in
 * windows of records; records are appended in the source's order, so the
 * file does not depend on which decode finished first. An unreadable image,
 * one of another size than the first, and a duplicate (same pixels as an
 * earlier record: SHA-1 of the pixels) are left out and reported in
 * `skipped` with the reason, never fatal. Rerunning after an interruption
 * resumes: records already in FILE.partial are not appended again
 * (everything is still decoded, so duplicates are found across the restart).
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { checkBoolean, checkInteger, checkKnownKeys, checkObject, checkOneOf, invalidType } from '../errors.js';
import { readImage } from '../image.js';
import { pathExists } from '../output.js';
import type { RgbBatch } from '../kernels/types.js';
import { readKaggleLayout, type DatasetSkip } from './kaggle.js';
import type { PackedRecordMeta } from './packed_format.js';
import { checkMaskValues, readMaskPng, tileFolderMaskLabels } from './masked_tiles.js';
import { PackedWriter } from './packed_writer.js';
import { PCAM_SPLITS, PCAM_X_FILE, PcamReader, pcamFiles, pcamLabelsBeside, type PcamSplit } from './pcam.js';
import { MASKS_FILE } from './tile_folder.js';

export const PACK_SOURCES = ['kaggle', 'pcam', 'tiles'] as const;
export type PackSourceKind = (typeof PACK_SOURCES)[number];

export interface PackOptions {
  /** Which split: Kaggle train|test, PCam train|valid|test (default train). */
  split?: 'train' | 'test' | 'valid';
  /** Images decoded at once (default: 2 × cores, at most 16). */
  concurrency?: number;
  /** Continue FILE.partial when it exists (default true). */
  resume?: boolean;
  /** Replace an existing FILE (default false). */
  overwrite?: boolean;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface PackResult {
  out: string;
  source: PackSourceKind;
  split: string;
  /** Records in the file. */
  count: number;
  /** Records appended by this run (the rest were resumed). */
  written: number;
  resumed: number;
  height: number;
  width: number;
  /** Labelled 1, labelled 0, unlabelled. */
  labels: { positive: number; negative: number; unlabelled: number };
  duplicates: number;
  unreadable: number;
  skipped: DatasetSkip[];
}

/** One record of a source, before decoding. */
export interface SourceItem {
  meta: PackedRecordMeta;
  label: number | null;
  /** Name in reports. */
  name: string;
  load: () => Promise<RgbBatch>;
  /** The record's label mask (height·width class indices), for sources with masks. */
  loadMask?: (height: number, width: number) => Promise<Uint8Array>;
}

export interface PatchSource {
  kind: PackSourceKind;
  split: string;
  total: number;
  skipped: DatasetSkip[];
  /** The mask labels ('background' first) when every record has a label mask (a tile folder written with --masks). */
  maskLabels?: string[];
  /** Items [from, to). */
  items(from: number, to: number): SourceItem[];
  close(): void;
}

async function isDir(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isDirectory(), () => false);
}
async function isFile(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isFile(), () => false);
}

async function kaggleSource(dir: string, split: string): Promise<PatchSource> {
  if (split !== 'train' && split !== 'valid' && split !== 'test') {
    throw new RangeError(`Expected train, valid or test for options.split of a Kaggle layout but received '${split}'`);
  }
  const layout = await readKaggleLayout(dir);
  if (split === 'valid' && layout.valid === null) throw new Error(`${dir} has no valid/ split (valid/ + valid_labels.csv)`);
  const entries = split === 'train' ? layout.train : split === 'valid' ? layout.valid! : layout.test;
  if (entries.length === 0) throw new Error(`${dir}: no ${split} images to pack`);
  return {
    kind: 'kaggle', split, total: entries.length, skipped: layout.skipped,
    items: (from, to) => entries.slice(from, to).map((e) => ({ meta: { id: e.id, source: e.path }, label: e.label, name: e.path, load: () => readImage(e.path) })),
    close: () => undefined,
  };
}

async function pcamSource(xPath: string, yPath: string | undefined, split: string): Promise<PatchSource> {
  const reader = await PcamReader.open(xPath, yPath);
  return {
    kind: 'pcam', split, total: reader.count, skipped: [],
    items: (from, to) => {
      // One slice read serves a whole window of items.
      const w = reader.read(from, to - from);
      const rb = reader.height * reader.width * 3;
      return Array.from({ length: to - from }, (_, k) => ({
        meta: { id: `${split}-${from + k}` },
        label: w.labels ? w.labels[k]! : null,
        name: `${xPath}[${from + k}]`,
        load: async () => ({ data: w.batch.data.subarray(k * rb, (k + 1) * rb), n: 1, height: reader.height, width: reader.width }),
      }));
    },
    close: () => reader.close(),
  };
}

async function tileFolderSource(dir: string): Promise<PatchSource> {
  const path = join(dir, 'manifest.json');
  let m: { tiles?: unknown };
  try {
    m = JSON.parse(await readFile(path, 'utf8')) as { tiles?: unknown };
  } catch (e) {
    throw new Error(`cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!Array.isArray(m.tiles)) throw new Error(`${path} has no "tiles" array (is it a histoflow tile manifest?)`);
  const rows = m.tiles as Array<Record<string, unknown>>;
  // Masks travel when the folder was tiled with --masks: masks.json and a mask per row.
  const maskLabels = rows.length > 0 && rows.every((r) => typeof r.mask === 'string') ? await tileFolderMaskLabels(dir) : null;
  return {
    kind: 'tiles', split: 'all', total: rows.length, skipped: [], ...(maskLabels ? { maskLabels } : {}),
    items: (from, to) => rows.slice(from, to).map((r, k) => {
      const file = join(dir, String(r.file));
      const meta: PackedRecordMeta = { source: file };
      if (typeof r.slide === 'string') meta.slide = r.slide;
      for (const key of ['level', 'x', 'y'] as const) if (Number.isInteger(r[key]) && (r[key] as number) >= 0) meta[key] = r[key] as number;
      if (typeof r.tissue_fraction === 'number' && r.tissue_fraction >= 0 && r.tissue_fraction <= 1) meta.tissueFraction = r.tissue_fraction;
      if (typeof r.label_coverage === 'number' && r.label_coverage >= 0 && r.label_coverage <= 1) meta.labelCoverage = r.label_coverage;
      if (meta.slide === undefined || meta.x === undefined) meta.id = `${from + k}`;
      const label = Number.isInteger(r.label) && (r.label as number) >= 0 ? (r.label as number) : null;
      const mask = maskLabels ? join(dir, String(r.mask)) : null;
      return {
        meta, label, name: file, load: () => readImage(file),
        ...(mask ? {
          loadMask: async (height: number, width: number) => {
            // Checked here, so a bad value skips its record, named, instead of failing the writer.
            const m = await readMaskPng(mask, width, height);
            checkMaskValues(mask, m, maskLabels!, join(dir, MASKS_FILE));
            return m;
          },
        } : {}),
      };
    }),
    close: () => undefined,
  };
}

/** Recognizes SRC (see the file comment) and lists its records; `pack` and `inspect` read through it. */
export async function openPatchSource(src: string, split: string): Promise<PatchSource> {
  if (await isFile(src)) {
    if (!PCAM_X_FILE.test(src)) throw new RangeError(`Expected a PatchCamelyon ..._x.h5 (or .h5.gz) file, a Kaggle folder or a tile folder for SRC but received the file ${src}`);
    const y = pcamLabelsBeside(src);
    // The split is in PCam's file name; options.split only names it for other files.
    const named = /_split_([a-z]+)_x\.h5(\.gz)?$/i.exec(src)?.[1];
    return pcamSource(src, (await isFile(y)) ? y : undefined, named ?? split);
  }
  if (!(await isDir(src))) throw new Error(`${src} does not exist`);
  if ((await isFile(join(src, 'train_labels.csv'))) || (await isDir(join(src, 'train'))) || (await isDir(join(src, 'test')))) return kaggleSource(src, split);
  if (await isFile(join(src, 'manifest.json'))) return tileFolderSource(src);
  const pcamSplit = checkOneOf('options.split', split, PCAM_SPLITS) as PcamSplit;
  const f = pcamFiles(src, pcamSplit);
  if (await isFile(f.x)) return pcamSource(f.x, (await isFile(f.y)) ? f.y : undefined, pcamSplit);
  throw new Error(`${src} is empty or not a dataset: expected train_labels.csv + train/ (Kaggle), manifest.json (tiles) or ${f.x} (PatchCamelyon)`);
}

/** Runs `fn` over items with at most `limit` in flight; results in order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}

export async function packDataset(src: string, out: string, options: PackOptions = {}): Promise<PackResult> {
  if (typeof src !== 'string' || src.length === 0) throw invalidType('src', 'a dataset path', src);
  if (typeof out !== 'string' || out.length === 0) throw invalidType('out', 'a file path', out);
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['split', 'concurrency', 'resume', 'overwrite', 'onProgress', 'signal']);
  const split = o.split === undefined ? 'train' : checkOneOf('options.split', o.split, ['train', 'test', 'valid'] as const);
  const concurrency = o.concurrency === undefined ? Math.min(16, 2 * availableParallelism()) : checkInteger('options.concurrency', o.concurrency, 1, 256);
  const resume = o.resume === undefined ? true : checkBoolean('options.resume', o.resume);
  const overwrite = o.overwrite === undefined ? false : checkBoolean('options.overwrite', o.overwrite);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw invalidType('options.onProgress', 'a function', o.onProgress);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalidType('options.signal', 'an AbortSignal', o.signal);
  const onProgress = o.onProgress as PackOptions['onProgress'];
  const signal = o.signal as AbortSignal | undefined;
  if (!overwrite && (await pathExists(out))) throw new Error(`${out} already exists; pass overwrite (--overwrite) to replace it`);

  const source = await openPatchSource(src, split);
  const skipped: DatasetSkip[] = [...source.skipped];
  const seen = new Map<string, string>();
  const labels = { positive: 0, negative: 0, unlabelled: 0 };
  let writer: PackedWriter | undefined;
  let duplicates = 0, unreadable = 0, written = 0;
  const window = Math.max(64, 4 * concurrency);
  try {
    for (let from = 0; from < source.total; from += window) {
      signal?.throwIfAborted();
      const items = source.items(from, Math.min(source.total, from + window));
      const decoded = await mapLimit(items, concurrency, async (it) => {
        try {
          const img = await it.load();
          return { img, mask: it.loadMask ? await it.loadMask(img.height, img.width) : undefined };
        } catch (e) {
          return e as Error;
        }
      });
      for (const [k, it] of items.entries()) {
        const got = decoded[k]!;
        if (got instanceof Error) {
          unreadable++;
          skipped.push({ ...(it.meta.id ? { id: it.meta.id } : {}), path: it.name, reason: `unreadable: ${got.message}` });
          continue;
        }
        const { img, mask } = got;
        writer ??= await PackedWriter.create(out, {
          height: img.height, width: img.width, labels: 'int32', resume, overwrite,
          info: { source: source.kind, src, split: source.split },
          ...(source.maskLabels ? { masks: { labels: source.maskLabels } } : {}),
        });
        if (img.height !== writer.height || img.width !== writer.width) {
          skipped.push({ path: it.name, reason: `${img.width}x${img.height}, not ${writer.width}x${writer.height} like the first image` });
          continue;
        }
        const hash = createHash('sha1').update(img.data).digest('hex');
        const first = seen.get(hash);
        if (first !== undefined) {
          duplicates++;
          skipped.push({ ...(it.meta.id ? { id: it.meta.id } : {}), path: it.name, reason: `duplicate of ${first} (same pixels)` });
          continue;
        }
        seen.set(hash, it.meta.id ?? it.name);
        if (it.label === null) labels.unlabelled++;
        else if (it.label > 0) labels.positive++;
        else labels.negative++;
        if (writer.hasRecord(it.meta)) continue;
        await writer.append(img, { labels: [it.label], meta: [it.meta], ...(mask ? { masks: mask } : {}) });
        written++;
      }
      onProgress?.(Math.min(source.total, from + window), source.total);
    }
    if (!writer) throw new Error(`${src}: no readable image to pack (${skipped.length} skipped; first: ${skipped[0]?.reason ?? 'none'})`);
    const r = await writer.finish();
    return {
      out, source: source.kind, split: source.split, count: r.count, written, resumed: writer.resumed,
      height: writer.height, width: writer.width, labels, duplicates, unreadable, skipped,
    };
  } catch (e) {
    await writer?.abort();
    throw e;
  } finally {
    source.close();
  }
}
