/**
 * The Kaggle layout as PCam ships in ../shared/data/pcam (issue 15): images in
 * TIFF, JPEG or PNG; valid/ + valid_labels.csv as the validation split; ids
 * that repeat across splits; label CSVs read with csv-parse (BOM, CRLF,
 * quoted fields, extra columns in any order), unreadable ones named.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { readKaggleLayout, readLabelCsv } from '../../src/dataset/kaggle.js';
import { openScoringData } from '../../src/inference/data.js';
import { readRunValidation } from '../../src/inference/run.js';
import { openTrainingData } from '../../src/train/data.js';
import { dataFile } from '../support/helpers.js';

const PCAM = dataFile('pcam');

async function patch(path: string, v: number): Promise<void> {
  const img = sharp({ create: { width: 8, height: 8, channels: 3, background: { r: v, g: 100, b: 150 } } });
  await (path.endsWith('.png') ? img.png() : path.endsWith('.jpg') ? img.jpeg() : img.tiff()).toFile(path);
}

test('the real PCam folder: 20,000 train and 3,000 valid patches, balanced, nothing skipped', async (t) => {
  const layout = await readKaggleLayout(PCAM);
  t.is(layout.train.length, 20_000);
  t.is(layout.valid?.length, 3_000);
  t.deepEqual(layout.skipped, []);
  t.is(layout.train.filter((e) => e.label === 1).length, 10_000);
  t.is(layout.valid!.filter((e) => e.label === 1).length, 1_500);
  t.true(layout.train.every((e) => e.path.endsWith('.jpg')) && layout.valid!.every((e) => e.path.includes(`${join(PCAM, 'valid')}`)));
});

test('TIFF, JPEG and PNG images; valid/ is the validation split and may reuse train ids', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'histoflow-kaggle-'));
  mkdirSync(join(dir, 'train'));
  mkdirSync(join(dir, 'valid'));
  await patch(join(dir, 'train', 'a.tif'), 10);
  await patch(join(dir, 'train', 'b.jpg'), 20);
  await patch(join(dir, 'train', 'c.png'), 30);
  await patch(join(dir, 'train', 'c.tif'), 31);
  await patch(join(dir, 'valid', 'a.png'), 40);
  writeFileSync(join(dir, 'train_labels.csv'), 'id,label\na,0\nb,1\nc,1\n');
  writeFileSync(join(dir, 'valid_labels.csv'), 'label,id\r\n1,a\r\n');
  const layout = await readKaggleLayout(dir);
  t.deepEqual(layout.train.map((e) => [e.id, e.label, e.path.slice(dir.length)]), [['a', 0, '/train/a.tif'], ['b', 1, '/train/b.jpg'], ['c', 1, '/train/c.png']]);
  t.deepEqual(layout.valid?.map((e) => [e.id, e.label, e.path.slice(dir.length)]), [['a', 1, '/valid/a.png']]);
  t.deepEqual(layout.skipped.map((s) => s.reason), ['a second image of id c (c.png is used)']);

  const noCsv = mkdtempSync(join(tmpdir(), 'histoflow-kaggle-'));
  mkdirSync(join(noCsv, 'train'));
  mkdirSync(join(noCsv, 'valid'));
  await patch(join(noCsv, 'train', 'a.png'), 1);
  writeFileSync(join(noCsv, 'train_labels.csv'), 'id,label\na,0\n');
  await t.throwsAsync(readKaggleLayout(noCsv), { message: /has valid\/ but no valid_labels\.csv/ });
  await t.throwsAsync(readKaggleLayout(mkdtempSync(join(tmpdir(), 'histoflow-empty-'))), { message: /neither train\/ nor test\// });
});

test('label CSVs: BOM, CRLF, quotes, extra columns in any order; an unclosed quote or a missing column names the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'histoflow-csv-'));
  const csv = join(dir, 'labels.csv');
  writeFileSync(csv, '\uFEFFslide,Label,ID\r\n"s,1",1,"x,y"\r\n"s2",0,"q""uote"\r\n\r\nlast,1,z');
  t.deepEqual(await readLabelCsv(csv), [
    { id: 'x,y', label: '1', line: 2 },
    { id: 'q"uote', label: '0', line: 3 },
    { id: 'z', label: '1', line: 5 },
  ]);
  writeFileSync(csv, 'id,label\na,1\n"b,0\n');
  await t.throwsAsync(readLabelCsv(csv), { message: new RegExp(`${csv}: not a readable CSV .*(quote|Quote)`) });
  writeFileSync(csv, 'name,label\na,1\n');
  await t.throwsAsync(readLabelCsv(csv), { message: new RegExp(`${csv}: expected a header with 'id' and 'label' columns but found 'name,label'`) });
  writeFileSync(csv, '');
  await t.throwsAsync(readLabelCsv(csv), { message: /the file is empty/ });
});

test('training data from a Kaggle folder with valid/: valid/ validates, no split is drawn, the skips are listed once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'histoflow-kaggle-train-'));
  mkdirSync(join(dir, 'train'));
  mkdirSync(join(dir, 'valid'));
  for (const [id, v] of [['a', 10], ['b', 200], ['c', 30], ['d', 220]] as const) await patch(join(dir, 'train', `${id}.png`), v);
  for (const [id, v] of [['a', 50], ['e', 240]] as const) await patch(join(dir, 'valid', `${id}.jpg`), v);
  await patch(join(dir, 'train', 'orphan.png'), 1);
  writeFileSync(join(dir, 'train_labels.csv'), 'id,label\na,0\nb,1\nc,0\nd,1\n');
  writeFileSync(join(dir, 'valid_labels.csv'), 'id,label\na,0\ne,1\n');
  const data = await openTrainingData(dir, { validation: 0.5, seed: 1 });
  try {
    t.is(data.split, 'kaggle-valid');
    t.deepEqual(data.trainIds, ['a', 'b', 'c', 'd']);
    t.deepEqual(data.validationIds, ['a', 'e']);
    t.deepEqual(data.skipped.map((s) => s.reason), ['image without a row in train_labels.csv']);
    const chunk = await data.validation.read([1]);
    t.deepEqual(Array.from(chunk.labels!), [1]);
    const want = await sharp(join(dir, 'valid', 'e.jpg')).raw().toBuffer();
    t.deepEqual(Buffer.from(chunk.batch.data), want);
  } finally {
    data.close();
  }
  await t.throwsAsync(openTrainingData(dir, { groupBy: 'slide' }), { message: /own valid\/ split for groupBy/ });
});

test('predict/evaluate read a Kaggle folder\'s valid/ (split valid), and a run validated on it is evaluated there', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'histoflow-kaggle-score-'));
  mkdirSync(join(dir, 'train'));
  mkdirSync(join(dir, 'valid'));
  await patch(join(dir, 'train', 'a.png'), 10);
  for (const [id, v] of [['a', 50], ['e', 240]] as const) await patch(join(dir, 'valid', `${id}.jpg`), v);
  writeFileSync(join(dir, 'train_labels.csv'), 'id,label\na,0\n');
  writeFileSync(join(dir, 'valid_labels.csv'), 'id,label\ne,1\na,0\n');
  const data = await openScoringData(dir, { split: 'valid' });
  try {
    t.deepEqual(data.ids, ['e', 'a']);
    t.deepEqual(Array.from(data.labels), [1, 0]);
    const chunk = await data.read(0, 2);
    t.deepEqual(Buffer.from(chunk.batch!.data.subarray(0, 192)), await sharp(join(dir, 'valid', 'e.jpg')).raw().toBuffer());
  } finally {
    data.close();
  }
  const run = mkdtempSync(join(tmpdir(), 'histoflow-run-'));
  writeFileSync(join(run, 'split.json'), JSON.stringify({ kind: 'kaggle', split: 'kaggle-valid', train: ['a'], validation: ['e', 'a'] }));
  t.like(await readRunValidation(run), { split: 'valid', ids: ['e', 'a'] });
  writeFileSync(join(run, 'split.json'), JSON.stringify({ kind: 'pcam', split: 'pcam-valid', train: ['train-0'], validation: ['valid-0', 'valid-7'] }));
  t.like(await readRunValidation(run), { split: 'valid', ids: ['0', '7'] });
  writeFileSync(join(run, 'split.json'), JSON.stringify({ kind: 'kaggle', split: 'stratified', train: ['b'], validation: ['a'] }));
  t.like(await readRunValidation(run), { split: 'train', ids: ['a'] });
});
