/**
 * The Kaggle "Histopathologic Cancer Detection" layout, and PatchCamelyon
 * converted to it (../shared/data/pcam):
 *
 *   DIR/train/<id>.tif, DIR/train_labels.csv (id,label)
 *   DIR/valid/<id>.tif, DIR/valid_labels.csv (id,label)         (optional: the validation split)
 *   DIR/test/<id>.tif,  DIR/sample_submission.csv (id,label)   (optional)
 *
 * Images are TIFF, JPEG or PNG (one id, one file). When valid/ and its CSV
 * exist they are the validation split (PCam keeps slides apart across its
 * splits; a random split of train/ would not); ids may repeat across splits
 * (different images). CSVs are read with csv-parse (RFC 4180 quoting, a BOM,
 * CRLF, extra columns in any order).
 *
 * readKaggleLayout lists it without decoding anything: every training id
 * with an image and a 0/1 label is an entry; a row with a missing or non-0/1
 * label, a duplicate id, an id without an image and an image without a label
 * are reported in `skipped` with the reason (never fatal). What cannot be a
 * dataset at all (no folder, no train/ or test/, train/ without its CSV, a
 * CSV without id and label columns, no usable training image) is an Error
 * naming the path. Corrupt images are found where they are decoded
 * (pack.ts), and reported there the same way.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';

import { parse } from 'csv-parse/sync';

import { invalidType } from '../errors.js';

export interface DatasetEntry {
  id: string;
  /** The image file. */
  path: string;
  /** 0 or 1; null for unlabelled (test) images. */
  label: 0 | 1 | null;
}

/** A record left out, and why. */
export interface DatasetSkip {
  id?: string;
  path?: string;
  reason: string;
}

export interface KaggleLayout {
  dir: string;
  train: DatasetEntry[];
  /** valid/ with valid_labels.csv, when both exist (else null: split train/ yourself). */
  valid: DatasetEntry[] | null;
  /** In sample_submission.csv's order when it exists, else sorted by id. */
  test: DatasetEntry[];
  skipped: DatasetSkip[];
}

const IMAGE_EXT = /\.(tiff?|jpe?g|png)$/i;

async function isDir(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false);
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isFile(), () => false);
}

/** Image ids (file name without its extension) of a folder, by id; a second file of one id is skipped. */
async function listImages(dir: string, skipped: DatasetSkip[]): Promise<Map<string, string>> {
  const files = await readdir(dir);
  const out = new Map<string, string>();
  for (const f of files.sort()) {
    if (f.startsWith('.') || !IMAGE_EXT.test(f)) continue;
    const id = f.replace(IMAGE_EXT, '');
    const first = out.get(id);
    if (first !== undefined) skipped.push({ id, path: join(dir, f), reason: `a second image of id ${id} (${basename(first)} is used)` });
    else out.set(id, join(dir, f));
  }
  return out;
}

/**
 * Reads an id,label CSV (header required; columns in any order, matched
 * without case; extra columns ignored) with csv-parse. Rows come back with
 * their raw label text and the line they end on. A CSV that does not parse
 * (an unclosed quote) is an Error naming the file and the line.
 */
export async function readLabelCsv(path: string): Promise<Array<{ id: string; label: string; line: number }>> {
  const text = await readFile(path, 'utf8');
  let records: Array<{ record: Record<string, string>; info: { lines: number } }>;
  try {
    records = parse(text, {
      bom: true,
      trim: true,
      skip_empty_lines: true,
      relax_column_count: true,
      info: true,
      columns: (header: string[]) => {
        const names = header.map((h) => h.trim().toLowerCase());
        if (!names.includes('id') || !names.includes('label')) {
          throw new Error(`expected a header with 'id' and 'label' columns but found '${header.join(',')}'`);
        }
        return names;
      },
    });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    throw new Error(`${path}: ${message.startsWith('expected a header') ? message : `not a readable CSV (${message})`}`);
  }
  if (records.length === 0 && !/\S/.test(text.replace(/^\uFEFF/, ''))) {
    throw new Error(`${path}: expected a header with 'id' and 'label' columns but the file is empty`);
  }
  return records.map(({ record, info }) => ({ id: record.id ?? '', label: record.label ?? '', line: info.lines }));
}

/** The labelled images of one split (train/ or valid/ with its CSV); problems go to `skipped`. */
async function readSplit(dir: string, folder: string, csvName: string, skipped: DatasetSkip[]): Promise<DatasetEntry[]> {
  const images = await listImages(join(dir, folder), skipped);
  const entries: DatasetEntry[] = [];
  const seen = new Set<string>();
  for (const row of await readLabelCsv(join(dir, csvName))) {
    const where = `${csvName} line ${row.line}`;
    if (row.id === '') {
      skipped.push({ reason: `${where}: empty id` });
      continue;
    }
    if (seen.has(row.id)) {
      skipped.push({ id: row.id, reason: `${where}: duplicate id (the first row is kept)` });
      continue;
    }
    seen.add(row.id);
    if (row.label !== '0' && row.label !== '1') {
      skipped.push({ id: row.id, reason: `${where}: label '${row.label}' is not 0 or 1` });
      continue;
    }
    const path = images.get(row.id);
    if (path === undefined) {
      skipped.push({ id: row.id, reason: `${where}: no image ${folder}/${row.id}.(tif|jpg|png)` });
      continue;
    }
    entries.push({ id: row.id, path, label: row.label === '1' ? 1 : 0 });
  }
  for (const [id, path] of images) {
    if (!seen.has(id)) skipped.push({ id, path, reason: `image without a row in ${csvName}` });
  }
  if (entries.length === 0) {
    const what = folder === 'train' ? 'training' : 'validation';
    throw new Error(`${dir}: no labelled ${what} image (${images.size} images in ${folder}/, ${seen.size} ids in ${csvName}` +
      `${skipped.length ? `; first problem: ${skipped[0]!.reason}` : ''})`);
  }
  return entries;
}

/** Lists a Kaggle-layout folder (see the file comment). */
export async function readKaggleLayout(dir: string): Promise<KaggleLayout> {
  if (typeof dir !== 'string' || dir.length === 0) throw invalidType('dir', 'a directory path', dir);
  if (!(await isDir(dir))) throw new Error(`${dir} is not a directory (expected a Kaggle layout: train/, train_labels.csv)`);
  const trainDir = join(dir, 'train'), testDir = join(dir, 'test');
  const labelsCsv = join(dir, 'train_labels.csv'), submissionCsv = join(dir, 'sample_submission.csv');
  const haveTrain = await isDir(trainDir), haveTest = await isDir(testDir);
  if (!haveTrain && !haveTest) throw new Error(`${dir} holds neither train/ nor test/: not a Kaggle layout`);
  const skipped: DatasetSkip[] = [];
  let train: DatasetEntry[] = [];
  if (haveTrain) {
    if (!(await isFile(labelsCsv))) throw new Error(`${dir} has train/ but no train_labels.csv`);
    train = await readSplit(dir, 'train', 'train_labels.csv', skipped);
  }
  let valid: DatasetEntry[] | null = null;
  if (await isDir(join(dir, 'valid'))) {
    if (!(await isFile(join(dir, 'valid_labels.csv')))) throw new Error(`${dir} has valid/ but no valid_labels.csv`);
    valid = await readSplit(dir, 'valid', 'valid_labels.csv', skipped);
  }
  const test: DatasetEntry[] = [];
  if (haveTest) {
    const images = await listImages(testDir, skipped);
    const listed = new Set<string>();
    if (await isFile(submissionCsv)) {
      for (const row of await readLabelCsv(submissionCsv)) {
        if (row.id === '' || listed.has(row.id)) continue;
        listed.add(row.id);
        const path = images.get(row.id);
        if (path === undefined) skipped.push({ id: row.id, reason: `sample_submission.csv line ${row.line}: no image test/${row.id}.(tif|jpg|png)` });
        else test.push({ id: row.id, path, label: null });
      }
    }
    for (const [id, path] of images) if (!listed.has(id)) test.push({ id, path, label: null });
  }
  return { dir, train, valid, test, skipped };
}
