/**
 * The images predict and evaluate score, from any dataset histoflow reads,
 * as one list of ids (with labels when known) read in chunks:
 *
 *   Kaggle folder  split 'test' (default): test/<id>.tif in sample_submission.csv's
 *                  order (every listed id, even one without an image: it is a
 *                  hole to report, not a row to drop); without that CSV, every
 *                  test image by id. Labels from test_labels.csv when present
 *                  (`histoflow synth patches --test` writes it).
 *                  split 'train': train/ with train_labels.csv; 'valid':
 *                  valid/ with valid_labels.csv.
 *   packed file    every record; id = the record's id (Kaggle id when packed from
 *                  a Kaggle folder), else slide@x,y, else its index; labels
 *                  from the file (−1 = unlabelled).
 *   PatchCamelyon  an ..._x.h5 file, or a folder with split train|valid|test;
 *                  id = the index; labels from the ..._y.h5 beside it
 *                  (each may be gzipped, ….h5.gz, as PCam is distributed).
 *
 * `only` keeps the ids of a list (a training run's validation ids), in that
 * list's order; ids of the list the data lacks are reported in `missing`.
 * Problems found before decoding (a CSV row without an image, a bad label)
 * are in `notes`; images that cannot be decoded, or are not of the data's
 * size, are reported per chunk by `read`.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { checkOneOf, invalidType } from '../errors.js';
import type { RgbBatch } from '../kernels/types.js';
import { decodeImages } from '../dataset/image_files.js';
import { isPackedFile } from '../dataset/inspect.js';
import { readKaggleLayout, readLabelCsv, type DatasetSkip } from '../dataset/kaggle.js';
import { PackedDataset } from '../dataset/packed.js';
import { PCAM_SPLITS, PCAM_X_FILE, PcamReader, pcamFiles, pcamLabelsBeside, type PcamSplit } from '../dataset/pcam.js';
import { stackImages } from '../image.js';

export const DATA_SPLITS = ['test', 'train', 'valid'] as const;
export type DataSplit = (typeof DATA_SPLITS)[number];

/** A chunk of the data: the images that could be read, and the ones that could not. */
export interface ScoringChunk {
  /** The readable images of the chunk, in order (absent when none was). */
  batch: RgbBatch | undefined;
  /** Position (index into `ids`) of each image of `batch`. */
  positions: number[];
  failed: Array<{ position: number; reason: string }>;
}

export interface ScoringData {
  kind: 'kaggle' | 'packed' | 'pcam';
  /** What is scored, in words. */
  description: string;
  ids: string[];
  /** Per id: 0, 1, or −1 when unlabelled (PatchCamelyon: filled in as chunks are read). */
  labels: Int8Array;
  /** Whether the data has labels at all. */
  hasLabels: boolean;
  /** Ids asked for (`only`) that the data does not hold. */
  missing: DatasetSkip[];
  /** What was found wrong before decoding (bad CSV rows, images left out), not fatal. */
  notes: DatasetSkip[];
  /** Images [from, to) of `ids`. */
  read(from: number, to: number): Promise<ScoringChunk>;
  close(): void;
}

export interface OpenScoringOptions {
  split?: DataSplit;
  /** Keep only these ids, in this order. */
  only?: readonly string[];
}

const isDir = (p: string) => stat(p).then((s) => s.isDirectory(), () => false);
const isFile = (p: string) => stat(p).then((s) => s.isFile(), () => false);

function label01(v: number | string | null | undefined): number {
  return v === 0 || v === '0' ? 0 : v === 1 || v === '1' ? 1 : -1;
}

/** Applies `only`: the listed ids in the list's order; the rest of the list reported missing. */
function select<T>(entries: T[], idOf: (e: T) => string, only: readonly string[] | undefined, where: string): { kept: T[]; missing: DatasetSkip[] } {
  if (!only) return { kept: entries, missing: [] };
  const byId = new Map(entries.map((e) => [idOf(e), e]));
  const kept: T[] = [], missing: DatasetSkip[] = [];
  for (const id of new Set(only)) {
    const e = byId.get(id);
    if (e === undefined) missing.push({ id, reason: `not in ${where}` });
    else kept.push(e);
  }
  return { kept, missing };
}

interface FileEntry {
  id: string;
  path: string | undefined;
  label: number;
  /** Why there is no path. */
  why?: string;
}

async function kaggleData(dir: string, split: DataSplit, only: readonly string[] | undefined): Promise<ScoringData> {
  const layout = await readKaggleLayout(dir);
  let entries: FileEntry[];
  const notes: DatasetSkip[] = [];
  let description: string;
  if (split === 'train' || split === 'valid') {
    const listed = split === 'train' ? layout.train : layout.valid;
    if (listed === null) throw new RangeError(`Expected a Kaggle folder with valid/ and valid_labels.csv for split valid but ${dir} has none`);
    entries = listed.map((e) => ({ id: e.id, path: e.path, label: label01(e.label) }));
    notes.push(...layout.skipped.filter((s) => !s.reason.startsWith('sample_submission')));
    description = `${dir} ${split}/ (${split}_labels.csv)`;
  } else {
    if (layout.test.length === 0 && !(await isFile(join(dir, 'sample_submission.csv')))) {
      throw new Error(`${dir} has no test images (test/ is missing or empty); use split train to score train/`);
    }
    const truth = new Map<string, number>();
    const labelsCsv = join(dir, 'test_labels.csv');
    if (await isFile(labelsCsv)) {
      for (const row of await readLabelCsv(labelsCsv)) {
        const l = label01(row.label);
        if (l < 0) notes.push({ id: row.id, reason: `test_labels.csv line ${row.line}: label '${row.label}' is not 0 or 1` });
        else if (!truth.has(row.id)) truth.set(row.id, l);
      }
    }
    const paths = new Map(layout.test.map((e) => [e.id, e.path]));
    const submission = join(dir, 'sample_submission.csv');
    if (await isFile(submission)) {
      const listed = new Set<string>();
      entries = [];
      for (const row of await readLabelCsv(submission)) {
        if (row.id === '' || listed.has(row.id)) continue;
        listed.add(row.id);
        const path = paths.get(row.id);
        entries.push({ id: row.id, path, label: truth.get(row.id) ?? -1, ...(path ? {} : { why: `sample_submission.csv line ${row.line}: no image test/${row.id}.tif` }) });
      }
      for (const id of paths.keys()) if (!listed.has(id)) notes.push({ id, path: paths.get(id)!, reason: 'test image not in sample_submission.csv: not scored' });
      description = `${dir} test/ in sample_submission.csv order`;
    } else {
      entries = layout.test.map((e) => ({ id: e.id, path: e.path, label: truth.get(e.id) ?? -1 }));
      description = `${dir} test/ (every image, by id)`;
    }
  }
  const { kept, missing } = select(entries, (e) => e.id, only, description);
  let size: { height: number; width: number } | undefined;
  return {
    kind: 'kaggle', description, missing, notes,
    ids: kept.map((e) => e.id),
    labels: Int8Array.from(kept, (e) => e.label),
    hasLabels: kept.some((e) => e.label >= 0),
    async read(from, to) {
      const part = kept.slice(from, to);
      const readable = part.filter((e) => e.path !== undefined);
      const decoded = await decodeImages(readable.map((e) => e.path!));
      const images: RgbBatch[] = [], positions: number[] = [];
      const failed: ScoringChunk['failed'] = [];
      let r = 0;
      part.forEach((e, k) => {
        const position = from + k;
        if (e.path === undefined) {
          failed.push({ position, reason: e.why ?? 'no image' });
          return;
        }
        const img = decoded[r++]!;
        if (img instanceof Error) failed.push({ position, reason: img.message });
        else if (size && (img.height !== size.height || img.width !== size.width)) {
          failed.push({ position, reason: `${e.path} is ${img.width}x${img.height}, not ${size.width}x${size.height} like the first image` });
        } else {
          size ??= { height: img.height, width: img.width };
          images.push(img);
          positions.push(position);
        }
      });
      return { batch: images.length ? stackImages(images) : undefined, positions, failed };
    },
    close: () => undefined,
  };
}

/** A packed record's id (see the file comment). */
export function packedRecordId(ds: PackedDataset, i: number): string {
  const m = ds.metadata.records[i] ?? {};
  if (typeof m.id === 'string' && m.id !== '') return m.id;
  if (m.slide !== undefined && m.x !== undefined) return `${m.slide}@${m.x},${m.y ?? 0}`;
  return String(i);
}

async function packedData(path: string, only: readonly string[] | undefined): Promise<ScoringData> {
  const ds = await PackedDataset.open(path);
  try {
    const all = Array.from({ length: ds.count }, (_, i) => i);
    const description = `${path} (${ds.count} records)`;
    const { kept, missing } = select(all, (i) => packedRecordId(ds, i), only, description);
    const labels = ds.labels;
    const consecutive = kept.every((v, k) => v === k);
    return {
      kind: 'packed', description, missing, notes: [],
      ids: kept.map((i) => packedRecordId(ds, i)),
      labels: Int8Array.from(kept, (i) => (labels ? label01(labels[i]) : -1)),
      hasLabels: labels !== undefined && kept.some((i) => label01(labels[i]) >= 0),
      async read(from, to) {
        const batch = consecutive ? ds.batch(from, to - from) : ds.gather(kept.slice(from, to));
        return { batch, positions: Array.from({ length: to - from }, (_, k) => from + k), failed: [] };
      },
      close: () => ds.close(),
    };
  } catch (e) {
    ds.close();
    throw e;
  }
}

async function pcamData(xPath: string, split: string, only: readonly string[] | undefined): Promise<ScoringData> {
  const y = pcamLabelsBeside(xPath);
  const reader = await PcamReader.open(xPath, (await isFile(y)) ? y : undefined);
  const all = Array.from({ length: reader.count }, (_, i) => i);
  const description = `${xPath} (PatchCamelyon ${split}, ${reader.count} patches)`;
  const { kept, missing } = select(all, String, only, description);
  const consecutive = kept.every((v, k) => v === k);
  // Labels arrive with the pixels (one HDF5 slice read serves both): filled in as chunks are read.
  const labels = new Int8Array(kept.length).fill(-1);
  return {
    kind: 'pcam', description, missing, notes: [], labels, hasLabels: reader.hasLabels,
    ids: kept.map(String),
    async read(from, to) {
      const positions = Array.from({ length: to - from }, (_, k) => from + k);
      const parts = consecutive ? [reader.read(from, to - from)] : kept.slice(from, to).map((i) => reader.read(i, 1));
      let p = from;
      for (const part of parts) for (const l of part.labels ?? []) labels[p++] = label01(l);
      return { batch: parts.length === 1 ? parts[0]!.batch : stackImages(parts.map((x) => x.batch)), positions, failed: [] };
    },
    close: () => reader.close(),
  };
}

/** Opens DATA for scoring (see the file comment). Errors name `data` or `split`. */
export async function openScoringData(data: string, options: OpenScoringOptions = {}): Promise<ScoringData> {
  if (typeof data !== 'string' || data.length === 0) throw invalidType('data', 'a dataset path (Kaggle folder, packed file, PatchCamelyon HDF5)', data);
  const split = options.split === undefined ? 'test' : checkOneOf('split', options.split, DATA_SPLITS);
  const only = options.only;
  if (await isFile(data)) {
    if (await isPackedFile(data)) return packedData(data, only);
    if (PCAM_X_FILE.test(data)) return pcamData(data, /_split_([a-z]+)_x\.h5(\.gz)?$/i.exec(data)?.[1] ?? split, only);
    throw new RangeError(`Expected a Kaggle folder, a packed file or a PatchCamelyon ..._x.h5 (or .h5.gz) file for data but received the file ${data}`);
  }
  if (!(await isDir(data))) throw new Error(`data ${data} does not exist`);
  if ((await isDir(join(data, 'test'))) || (await isDir(join(data, 'train'))) || (await isFile(join(data, 'sample_submission.csv')))) {
    return kaggleData(data, split, only);
  }
  const pcamSplit: PcamSplit = checkOneOf('split', split, PCAM_SPLITS);
  const f = pcamFiles(data, pcamSplit);
  if (await isFile(f.x)) return pcamData(f.x, pcamSplit, only);
  throw new Error(`data ${data} is empty or not a dataset: expected test/ or train/ (Kaggle), a packed file, or ${f.x} (PatchCamelyon)`);
}

/** Reads a JSON file, naming it in the error. */
export async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch (e) {
    throw new Error(`cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
