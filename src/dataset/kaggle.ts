/**
 * The Kaggle "Histopathologic Cancer Detection" layout:
 *
 *   DIR/train/<id>.tif, DIR/train_labels.csv (id,label)
 *   DIR/test/<id>.tif,  DIR/sample_submission.csv (id,label)   (optional)
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
import { join } from 'node:path';

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
  /** In sample_submission.csv's order when it exists, else sorted by id. */
  test: DatasetEntry[];
  skipped: DatasetSkip[];
}

const IMAGE_EXT = /\.tiff?$/i;

async function isDir(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false);
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isFile(), () => false);
}

/** Image ids (file name without .tif) of a folder, by id. */
async function listImages(dir: string): Promise<Map<string, string>> {
  const files = await readdir(dir);
  const out = new Map<string, string>();
  for (const f of files.sort()) {
    if (f.startsWith('.') || !IMAGE_EXT.test(f)) continue;
    out.set(f.replace(IMAGE_EXT, ''), join(dir, f));
  }
  return out;
}

/**
 * Parses a two-column id,label CSV (header required; columns in any order;
 * extra columns ignored). Rows come back with their raw label text and line.
 */
export async function readLabelCsv(path: string): Promise<Array<{ id: string; label: string; line: number }>> {
  const text = await readFile(path, 'utf8');
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').replace(/^\uFEFF/, '').split(',').map((h) => h.trim().toLowerCase());
  const idCol = header.indexOf('id'), labelCol = header.indexOf('label');
  if (idCol < 0 || labelCol < 0) {
    throw new Error(`${path}: expected a header with 'id' and 'label' columns but found '${lines[0] ?? ''}'`);
  }
  const rows: Array<{ id: string; label: string; line: number }> = [];
  lines.forEach((raw, k) => {
    if (k === 0 || raw.trim() === '') return;
    const cells = raw.split(',');
    rows.push({ id: (cells[idCol] ?? '').trim(), label: (cells[labelCol] ?? '').trim(), line: k + 1 });
  });
  return rows;
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
  const train: DatasetEntry[] = [];
  if (haveTrain) {
    if (!(await isFile(labelsCsv))) throw new Error(`${dir} has train/ but no train_labels.csv`);
    const images = await listImages(trainDir);
    const seen = new Set<string>();
    for (const row of await readLabelCsv(labelsCsv)) {
      const where = `train_labels.csv line ${row.line}`;
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
        skipped.push({ id: row.id, reason: `${where}: no image train/${row.id}.tif` });
        continue;
      }
      train.push({ id: row.id, path, label: row.label === '1' ? 1 : 0 });
    }
    for (const [id, path] of images) {
      if (!seen.has(id)) skipped.push({ id, path, reason: 'image without a row in train_labels.csv' });
    }
    if (train.length === 0) {
      throw new Error(`${dir}: no labelled training image (${images.size} images in train/, ${seen.size} ids in train_labels.csv` +
        `${skipped.length ? `; first problem: ${skipped[0]!.reason}` : ''})`);
    }
  }
  const test: DatasetEntry[] = [];
  if (haveTest) {
    const images = await listImages(testDir);
    const listed = new Set<string>();
    if (await isFile(submissionCsv)) {
      for (const row of await readLabelCsv(submissionCsv)) {
        if (row.id === '' || listed.has(row.id)) continue;
        listed.add(row.id);
        const path = images.get(row.id);
        if (path === undefined) skipped.push({ id: row.id, reason: `sample_submission.csv line ${row.line}: no image test/${row.id}.tif` });
        else test.push({ id: row.id, path, label: null });
      }
    }
    for (const [id, path] of images) if (!listed.has(id)) test.push({ id, path, label: null });
  }
  return { dir, train, test, skipped };
}
