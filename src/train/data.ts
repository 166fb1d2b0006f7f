/**
 * What the trainer reads: any labelled patch dataset histoflow knows, as two
 * BatchSources (train, validation) of 0/1 labels, with the ids of each side
 * and every record left out.
 *
 *   a Kaggle-layout folder  train/<id>.tif|jpg|png + train_labels.csv: decoded
 *                           into memory once (sharp, in parallel); rows without
 *                           an image, missing or non-0/1 labels (kaggle.ts) and
 *                           unreadable or odd-sized images are skipped; its
 *                           valid/ + valid_labels.csv, when present, validates
 *   a tile folder           manifest.json from `histoflow tile`: the same
 *   a packed file           `histoflow pack` / `tile --format packed`: memory-
 *                           mapped, read per batch; records without a 0/1 label skipped
 *   a PatchCamelyon folder  camelyonpatch_level_2_split_{train,valid}_{x,y}.h5:
 *                           read per batch from the HDF5 files (never whole);
 *                           PCam's own valid split validates
 *
 * Without a valid split (PCam's, or a Kaggle folder's valid/), validation is a stratified split of the
 * records by seed (split.ts), grouped by a key (`groupBy`: a manifest or
 * packed metadata field such as `slide`, or a train_labels.csv column) so
 * that no group straddles the split. A folder that is no dataset, or has
 * no usable record, is an Error naming it (pack.ts / kaggle.ts).
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import type { BatchSource, SourceChunk } from '../augment/loader.js';
import { InMemorySource } from '../augment/loader.js';
import type { DatasetSkip } from '../dataset/kaggle.js';
import { mapLimit, openPatchSource } from '../dataset/pack.js';
import { PackedDataset } from '../dataset/packed.js';
import { PCAM_X_FILE, PcamReader, pcamFiles } from '../dataset/pcam.js';
import { stratifiedSplit } from '../dataset/split.js';
import { invalidRange } from '../errors.js';
import type { RgbBatch } from '../image.js';

export type TrainingDataKind = 'kaggle' | 'tiles' | 'packed' | 'pcam';

export interface TrainingDataOptions {
  /** Validation fraction of a stratified split, in (0, 1) (default 0.2; unused with PCam's valid split). */
  validation?: number;
  /** Split seed (default 0). */
  seed?: number;
  /** Group key: no group straddles the split. */
  groupBy?: string;
  /** Images decoded at once (Kaggle / tile folders). */
  concurrency?: number;
  /** Decoding progress (Kaggle / tile folders). */
  onProgress?: (done: number, total: number) => void;
  /** Keep one record of each group of identical images (the first); the others are skipped. */
  dedupe?: boolean;
}

export interface TrainingData {
  kind: TrainingDataKind;
  /** How validation was chosen. */
  split: 'stratified' | 'pcam-valid' | 'kaggle-valid';
  train: BatchSource;
  validation: BatchSource;
  trainIds: string[];
  validationIds: string[];
  height: number;
  width: number;
  /** Records left out, with the reason. */
  skipped: DatasetSkip[];
  close(): void;
}

/** The records of `base` at `indices`, as a BatchSource of their own. */
export class SubsetSource implements BatchSource {
  readonly size: number;
  readonly height: number;
  readonly width: number;
  readonly labelSize: number;

  constructor(readonly base: BatchSource, readonly indices: readonly number[]) {
    this.size = indices.length;
    this.height = base.height;
    this.width = base.width;
    this.labelSize = base.labelSize;
  }

  read(indices: readonly number[]): SourceChunk | Promise<SourceChunk> {
    return this.base.read(indices.map((i) => this.indices[i]!));
  }
}

/** PatchCamelyon HDF5 records, read per consecutive run of indices (a shuffled batch is many small slices). */
class PcamSource implements BatchSource {
  readonly size: number;
  readonly height: number;
  readonly width: number;
  readonly labelSize = 1;

  constructor(readonly reader: PcamReader) {
    this.size = reader.count;
    this.height = reader.height;
    this.width = reader.width;
  }

  read(indices: readonly number[]): SourceChunk {
    const image = this.height * this.width * 3;
    const data = new Uint8Array(indices.length * image);
    const labels = new Float32Array(indices.length);
    for (let k = 0; k < indices.length;) {
      let run = 1;
      while (k + run < indices.length && indices[k + run] === indices[k]! + run) run++;
      const r = this.reader.read(indices[k]!, run);
      data.set(r.batch.data, k * image);
      for (let j = 0; j < run; j++) labels[k + j] = r.labels![j]!;
      k += run;
    }
    return { batch: { data, n: indices.length, height: this.height, width: this.width }, labels };
  }
}

/** All usable records of a dataset, before the split. */
interface LabelledPool {
  kind: TrainingDataKind;
  source: BatchSource;
  labels: Uint8Array;
  ids: string[];
  /** The groupBy value of each record, when asked for. */
  groups?: string[];
  /** SHA-1 of each record's pixels (Kaggle and tile folders, packed files): identical images. */
  hashes?: string[];
  skipped: DatasetSkip[];
  close(): void;
}

const sha1 = (data: Uint8Array) => createHash('sha1').update(data).digest('hex');

/**
 * Identical images (same hash) never straddle the split: with `dedupe` all
 * but the first of each are dropped (skipped, naming the kept one); else they
 * are grouped, together with the groupBy groups, for stratifiedSplit.
 */
function withDuplicatesHandled(pool: LabelledPool, dedupe: boolean): LabelledPool {
  const hashes = pool.hashes;
  if (!hashes) return pool;
  const first = new Map<string, number>();
  const repeats: number[] = [];
  hashes.forEach((h, i) => (first.has(h) ? repeats.push(i) : first.set(h, i)));
  if (repeats.length === 0) return pool;
  if (dedupe) {
    const drop = new Set(repeats);
    const keep = pool.ids.map((_, i) => i).filter((i) => !drop.has(i));
    const skipped = repeats.map((i) => ({ id: pool.ids[i]!, reason: `same pixels as ${pool.ids[first.get(hashes[i]!)!]} (dedupe)` }));
    return {
      ...pool, source: new SubsetSource(pool.source, keep), labels: Uint8Array.from(keep, (i) => pool.labels[i]!),
      ids: keep.map((i) => pool.ids[i]!), hashes: keep.map((i) => hashes[i]!),
      ...(pool.groups ? { groups: keep.map((i) => pool.groups![i]!) } : {}), skipped: [...pool.skipped, ...skipped],
    };
  }
  // Union of the groupBy groups and the duplicate groups: a record's group is its component's first record.
  const parent = pool.ids.map((_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i]!)));
  const union = (a: number, b: number) => { parent[find(b)] = find(a); };
  hashes.forEach((h, i) => union(first.get(h)!, i));
  if (pool.groups) {
    const byGroup = new Map<string, number>();
    pool.groups.forEach((g, i) => (byGroup.has(g) ? union(byGroup.get(g)!, i) : byGroup.set(g, i)));
  }
  return { ...pool, groups: pool.ids.map((_, i) => String(find(i))) };
}

/**
 * A fixed validation split (PCam's, a Kaggle folder's valid/) keeps no image
 * identical to a training one: those are left out of validation, skipped with
 * the training id they repeat.
 */
function validationWithoutTrainCopies(train: LabelledPool, valid: LabelledPool): LabelledPool {
  if (!train.hashes || !valid.hashes) return valid;
  const inTrain = new Map<string, string>();
  train.hashes.forEach((h, i) => { if (!inTrain.has(h)) inTrain.set(h, train.ids[i]!); });
  const keep = valid.ids.map((_, i) => i).filter((i) => !inTrain.has(valid.hashes![i]!));
  if (keep.length === valid.ids.length) return valid;
  const skipped = valid.ids.flatMap((id, i) => (inTrain.has(valid.hashes![i]!) ? [{ id, reason: `validation image with the same pixels as training image ${inTrain.get(valid.hashes![i]!)}: left out of validation` }] : []));
  return {
    ...valid, source: new SubsetSource(valid.source, keep), labels: Uint8Array.from(keep, (i) => valid.labels[i]!),
    ids: keep.map((i) => valid.ids[i]!), hashes: keep.map((i) => valid.hashes![i]!), skipped: [...valid.skipped, ...skipped],
  };
}

async function isFile(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isFile(), () => false);
}

/** One column of a CSV with an `id` column, by id (train_labels.csv's group column). */
async function csvColumn(path: string, column: string): Promise<Map<string, string>> {
  const lines = (await readFile(path, 'utf8')).split(/\r?\n/);
  const header = (lines[0] ?? '').replace(/^\uFEFF/, '').split(',').map((h) => h.trim());
  const idCol = header.findIndex((h) => h.toLowerCase() === 'id'), col = header.indexOf(column);
  if (col < 0) throw invalidRange('groupBy', `a column of ${path} (${header.join(', ')})`, column);
  const out = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line.trim() === '') continue;
    const cells = line.split(',');
    out.set((cells[idCol] ?? '').trim(), (cells[col] ?? '').trim());
  }
  return out;
}

/** Kaggle and tile folders: every image decoded into one in-memory batch. */
async function decodedPool(path: string, o: TrainingDataOptions, split: 'train' | 'valid' = 'train'): Promise<LabelledPool> {
  const src = await openPatchSource(path, split);
  try {
    const items = src.items(0, src.total);
    const skipped: DatasetSkip[] = [...src.skipped];
    const kind: TrainingDataKind = src.kind === 'tiles' ? 'tiles' : 'kaggle';
    const groupColumn = o.groupBy !== undefined && kind === 'kaggle' ? await csvColumn(join(path, `${split}_labels.csv`), o.groupBy) : undefined;
    let done = 0;
    const images = await mapLimit(items, o.concurrency ?? 8, async (it) => {
      const r = await it.load().then((img) => img, (e: unknown) => (e instanceof Error ? e : new Error(String(e))));
      o.onProgress?.(++done, items.length);
      return r;
    });
    const kept: { img: RgbBatch; label: 0 | 1; id: string; group?: string }[] = [];
    for (const [k, it] of items.entries()) {
      const img = images[k]!;
      const id = it.meta.id ?? (it.meta.slide !== undefined ? `${it.meta.slide}:${it.meta.level ?? 0}:${it.meta.x}:${it.meta.y}` : it.name);
      const where = { id, path: it.name };
      if (img instanceof Error) {
        skipped.push({ ...where, reason: `unreadable: ${img.message}` });
        continue;
      }
      const first = kept[0]?.img;
      if (first && (img.height !== first.height || img.width !== first.width)) {
        skipped.push({ ...where, reason: `${img.width}x${img.height}, not ${first.width}x${first.height} like the first image` });
        continue;
      }
      if (it.label !== 0 && it.label !== 1) {
        skipped.push({ ...where, reason: `label ${it.label === null ? 'missing' : `'${it.label}'`} is not 0 or 1` });
        continue;
      }
      let group: string | undefined;
      if (o.groupBy !== undefined) {
        const v = groupColumn ? groupColumn.get(it.meta.id ?? '') : (it.meta as Record<string, unknown>)[o.groupBy];
        if (v === undefined || v === '') {
          skipped.push({ ...where, reason: `no ${o.groupBy} to group by` });
          continue;
        }
        group = String(v);
      }
      kept.push({ img, label: it.label, id, ...(group === undefined ? {} : { group }) });
    }
    if (kept.length === 0) throw new Error(`${path}: no readable image with a 0/1 label (${skipped.length} skipped; first: ${skipped[0]?.reason ?? 'none'})`);
    const { height, width } = kept[0]!.img;
    const size = height * width * 3;
    const data = new Uint8Array(kept.length * size);
    kept.forEach((r, i) => data.set(r.img.data, i * size));
    const labels = Uint8Array.from(kept, (r) => r.label);
    return {
      kind, source: new InMemorySource({ data, n: kept.length, height, width }, Float32Array.from(labels)), labels,
      ids: kept.map((r) => r.id), ...(o.groupBy !== undefined ? { groups: kept.map((r) => r.group!) } : {}),
      hashes: kept.map((r) => sha1(r.img.data)), skipped, close: () => undefined,
    };
  } finally {
    src.close();
  }
}

async function packedPool(path: string, o: TrainingDataOptions): Promise<LabelledPool> {
  const ds = await PackedDataset.open(path);
  try {
    const all = ds.labels;
    if (!all) throw new Error(`${path} holds no labels: training needs a labelled packed dataset`);
    const keep: number[] = [], ids: string[] = [], groups: string[] = [];
    const skipped: DatasetSkip[] = [];
    for (let i = 0; i < ds.count; i++) {
      const r = ds.record(i);
      const id = r.id ?? (r.slide !== undefined ? `${r.slide}:${r.level ?? 0}:${r.x}:${r.y}` : String(i));
      if (r.label !== 0 && r.label !== 1) {
        skipped.push({ id, reason: `record ${i}: label ${r.label === null ? 'missing' : `'${r.label}'`} is not 0 or 1` });
        continue;
      }
      if (o.groupBy !== undefined) {
        const v = (r as unknown as Record<string, unknown>)[o.groupBy];
        if (v === undefined || v === null || v === '') {
          skipped.push({ id, reason: `record ${i}: no ${o.groupBy} to group by` });
          continue;
        }
        groups.push(String(v));
      }
      keep.push(i);
      ids.push(id);
    }
    if (keep.length === 0) throw new Error(`${path}: no record with a 0/1 label (${skipped.length} skipped; first: ${skipped[0]?.reason ?? 'none'})`);
    const labels = Uint8Array.from(keep, (i) => all[i]!);
    const source = keep.length === ds.count ? ds : new SubsetSource(ds, keep);
    // Hashed from the mapping (no decode): a view per record.
    const hashes = keep.map((i) => sha1(ds.batch(i, 1).data));
    return { kind: 'packed', source, labels, ids, ...(o.groupBy !== undefined ? { groups } : {}), hashes, skipped, close: () => ds.close() };
  } catch (e) {
    ds.close();
    throw e;
  }
}

/** Every label of a PCam split, read in slices (PcamReader reads x and y together). */
function pcamLabels(reader: PcamReader): Uint8Array {
  const out = new Uint8Array(reader.count);
  for (let s = 0; s < reader.count; s += 4096) {
    const n = Math.min(4096, reader.count - s);
    out.set(reader.read(s, n).labels!, s);
  }
  return out;
}

async function openPcam(dir: string, o: TrainingDataOptions): Promise<TrainingData> {
  if (o.groupBy !== undefined) throw invalidRange('groupBy', 'no group key for PatchCamelyon (it has no per-record metadata)', o.groupBy);
  const t = pcamFiles(dir, 'train'), v = pcamFiles(dir, 'valid');
  if (!(await isFile(t.y))) throw new Error(`${dir}: ${t.y} is missing: training needs PatchCamelyon's labels`);
  const train = await PcamReader.open(t.x, t.y);
  const readers = [train];
  const close = () => readers.forEach((r) => r.close());
  try {
    const ids = (split: string, n: number) => Array.from({ length: n }, (_, i) => `${split}-${i}`);
    if ((await isFile(v.x)) && (await isFile(v.y))) {
      const valid = await PcamReader.open(v.x, v.y);
      readers.push(valid);
      if (valid.height !== train.height || valid.width !== train.width) throw new Error(`${v.x}: ${valid.width}x${valid.height} patches, but the train split's are ${train.width}x${train.height}`);
      return {
        kind: 'pcam', split: 'pcam-valid', train: new PcamSource(train), validation: new PcamSource(valid),
        trainIds: ids('train', train.count), validationIds: ids('valid', valid.count),
        height: train.height, width: train.width, skipped: [], close,
      };
    }
    const pool: LabelledPool = {
      kind: 'pcam', source: new PcamSource(train), labels: pcamLabels(train), ids: ids('train', train.count), skipped: [], close,
    };
    return splitPool(pool, o);
  } catch (e) {
    close();
    throw e;
  }
}

function splitPool(pool: LabelledPool, o: TrainingDataOptions): TrainingData {
  const s = stratifiedSplit(pool.labels, {
    validation: o.validation ?? 0.2, seed: o.seed ?? 0, ...(pool.groups ? { groups: pool.groups } : {}),
  });
  if (s.train.length === 0 || s.validation.length === 0) {
    throw invalidRange('validation', `a split leaving records on both sides (${pool.labels.length} records)`, o.validation ?? 0.2);
  }
  return {
    kind: pool.kind, split: 'stratified',
    train: new SubsetSource(pool.source, s.train), validation: new SubsetSource(pool.source, s.validation),
    trainIds: s.train.map((i) => pool.ids[i]!), validationIds: s.validation.map((i) => pool.ids[i]!),
    height: pool.source.height, width: pool.source.width, skipped: pool.skipped, close: pool.close,
  };
}

async function isKaggleWithValid(dir: string): Promise<boolean> {
  return (await isFile(join(dir, 'train_labels.csv'))) && (await isFile(join(dir, 'valid_labels.csv')));
}

/** Skips listed once (both splits of a Kaggle folder report the layout's own). */
function unique(skips: DatasetSkip[]): DatasetSkip[] {
  const seen = new Set<string>();
  return skips.filter((s) => {
    const key = JSON.stringify([s.id, s.path, s.reason]);
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

/** A Kaggle folder with its own valid/ split: both decoded, no split drawn. */
async function openKaggleWithValid(dir: string, o: TrainingDataOptions): Promise<TrainingData> {
  if (o.groupBy !== undefined) throw invalidRange('groupBy', `no grouping: ${dir} has its own valid/ split`, o.groupBy);
  const train = withDuplicatesHandled(await decodedPool(dir, o, 'train'), o.dedupe === true);
  const valid = validationWithoutTrainCopies(train, await decodedPool(dir, o, 'valid'));
  const t = train.source, v = valid.source;
  if (t.height !== v.height || t.width !== v.width) throw new Error(`${dir}: valid/ holds ${v.width}x${v.height} patches, train/ ${t.width}x${t.height}`);
  return {
    kind: 'kaggle', split: 'kaggle-valid', train: t, validation: v, trainIds: train.ids, validationIds: valid.ids,
    height: t.height, width: t.width, skipped: unique([...train.skipped, ...valid.skipped]),
    close: () => {
      train.close();
      valid.close();
    },
  };
}

/** Opens `path` for training (see the file comment). */
export async function openTrainingData(path: string, options: TrainingDataOptions = {}): Promise<TrainingData> {
  const s = await stat(path).catch(() => undefined);
  if (!s) throw new Error(`${path} does not exist`);
  if (s.isDirectory() && (await isFile(pcamFiles(path, 'train').x))) return openPcam(path, options);
  let pool: LabelledPool;
  if (s.isFile()) {
    if (PCAM_X_FILE.test(path)) throw invalidRange('data', 'a PatchCamelyon folder (with its train and valid splits), not one .h5 file', path);
    pool = await packedPool(path, options);
  } else if (await isKaggleWithValid(path)) {
    return openKaggleWithValid(path, options);
  } else {
    pool = await decodedPool(path, options);
  }
  try {
    return splitPool(withDuplicatesHandled(pool, options.dedupe === true), options);
  } catch (e) {
    pool.close();
    throw e;
  }
}
