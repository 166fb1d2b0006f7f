/**
 * Dataset readers and `pack`: the Kaggle layout (corrupt images, missing and
 * non-0/1 labels, empty folders, ids without images, images without labels
 * → an Error or a reported skip, never a crash), PatchCamelyon HDF5 read in
 * slices (files written here with h5wasm's writer from synthPatch pixels, the
 * independent reference), and pack from each source: pixels and labels equal
 * the source's, unreadable and duplicate images reported, resume after an
 * interruption gives the same file as an uninterrupted run.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { readKaggleLayout } from '../../src/dataset/kaggle.js';
import { packDataset } from '../../src/dataset/pack.js';
import { PackedDataset } from '../../src/dataset/packed.js';
import { PcamReader } from '../../src/dataset/pcam.js';
import { TileFolderWriter } from '../../src/dataset/tile_folder.js';
import { readImage } from '../../src/image.js';
import { synthId, synthPatches } from '../../src/synth/dataset.js';
import { synthPatch } from '../../src/synth/patches.js';
import { writePcam } from '../support/pcam_support.js';
import { CLI } from '../support/helpers.js';


function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'histoflow-data-'));
}

/** A small synthetic Kaggle folder (built once per test that needs one). */
async function kaggle(n = 12, test = 0, seed = 9): Promise<string> {
  const dir = tmp();
  await synthPatches(dir, { n, test, seed, workers: 0 });
  return dir;
}

test('Kaggle layout: entries and labels as written', async (t) => {
  const dir = await kaggle(12, 3);
  const k = await readKaggleLayout(dir);
  t.is(k.train.length, 12);
  t.is(k.test.length, 3);
  t.deepEqual(k.skipped, []);
  for (const [i, e] of k.train.entries()) {
    t.is(e.id, synthId(9, i));
    t.is(e.label, synthPatch(9, i).label);
  }
  t.true(k.test.every((e) => e.label === null));
});

test('Kaggle layout: bad rows and orphan images are reported skips, not crashes', async (t) => {
  const dir = await kaggle(8);
  const csv = readFileSync(join(dir, 'train_labels.csv'), 'utf8').trim().split('\n');
  const ids = csv.slice(1).map((r) => r.split(',')[0]!);
  // row 1: label 2; row 2: empty label; row 3: duplicate of row 0; a row for a missing image; image 7 unlisted.
  const rows = ['id,label', csv[1]!, `${ids[1]},2`, `${ids[2]},`, `${ids[0]},1`, 'deadbeef,1', ...csv.slice(4, 8)];
  writeFileSync(join(dir, 'train_labels.csv'), `${rows.join('\n')}\n`);
  const k = await readKaggleLayout(dir);
  t.deepEqual(k.train.map((e) => e.id), [ids[0], ids[3], ids[4], ids[5], ids[6]]);
  const reasons = k.skipped.map((s) => `${s.id}: ${s.reason}`).join('\n');
  t.regex(reasons, new RegExp(`${ids[1]}: .*label '2' is not 0 or 1`));
  t.regex(reasons, new RegExp(`${ids[2]}: .*label '' is not 0 or 1`));
  t.regex(reasons, new RegExp(`${ids[0]}: .*duplicate id`));
  t.regex(reasons, /deadbeef: .*no image train\/deadbeef\.\(tif\|jpg\|png\)/);
  t.regex(reasons, new RegExp(`${ids[7]}: image without a row`));
});

test('Kaggle layout: what is not a dataset is a clear Error', async (t) => {
  const empty = tmp();
  await t.throwsAsync(readKaggleLayout(empty), { message: /neither train\/ nor test\// });
  await t.throwsAsync(readKaggleLayout(join(empty, 'nope')), { message: /is not a directory/ });
  mkdirSync(join(empty, 'train'));
  await t.throwsAsync(readKaggleLayout(empty), { message: /no train_labels.csv/ });
  writeFileSync(join(empty, 'train_labels.csv'), 'id,label\n');
  await t.throwsAsync(readKaggleLayout(empty), { message: /no labelled training image/ });
  writeFileSync(join(empty, 'train_labels.csv'), 'name,class\na,1\n');
  await t.throwsAsync(readKaggleLayout(empty), { message: /'id' and 'label' columns/ });
  await t.throwsAsync(readKaggleLayout('' as string), { instanceOf: TypeError, message: /dir/ });
  await t.throwsAsync(packDataset(empty, join(empty, 'o.hfpack')), { message: /'id' and 'label' columns/ });
  const none = tmp();
  await t.throwsAsync(packDataset(none, join(tmp(), 'o.hfpack')), { message: /empty or not a dataset/ });
});

test('PatchCamelyon: slices equal the pixels and labels written', async (t) => {
  const dir = tmp();
  const f = await writePcam(dir, 'valid', 10, 4);
  const r = await PcamReader.open(f.x, f.y);
  t.is(r.count, 10);
  t.is(r.height, 96);
  const { batch, labels } = r.read(3, 4);
  t.is(batch.n, 4);
  for (let k = 0; k < 4; k++) {
    const p = synthPatch(4, 3 + k);
    t.deepEqual(batch.data.subarray(k * 96 * 96 * 3, (k + 1) * 96 * 96 * 3), p.image.data);
    t.is(labels![k], p.label);
  }
  t.throws(() => r.read(8, 3), { instanceOf: RangeError, message: /\bn\b/ });
  t.throws(() => r.read(10, 1), { instanceOf: RangeError, message: /start/ });
  r.close();
  t.throws(() => r.read(0, 1), { message: /closed/ });
  const unlabelled = await PcamReader.open(f.x);
  t.is(unlabelled.read(0, 1).labels, undefined);
  unlabelled.close();
});

test('PatchCamelyon: a label that is not 0 or 1 (7, 255, 0.5, NaN) is an Error naming the file, the image and the value, never cast', async (t) => {
  const cases: [string, Uint8Array | Float32Array, '<B' | '<f4', RegExp][] = [
    ['7', Uint8Array.from([0, 1, 7, 0]), '<B', /label of image 2 is 7, expected 0 or 1/],
    ['255', Uint8Array.from([255, 1, 0, 0]), '<B', /label of image 0 is 255/],
    ['0.5', Float32Array.from([0, 1, 1, 0.5]), '<f4', /label of image 3 is 0\.5/],
    ['NaN', Float32Array.from([0, NaN, 1, 0]), '<f4', /label of image 1 is NaN/],
  ];
  for (const [label, data, dtype, message] of cases) {
    const dir = tmp();
    const f = await writePcam(dir, 'train', 4, 1, { labels: { data, dtype } });
    const r = await PcamReader.open(f.x, f.y);
    const err = t.throws(() => r.read(0, 4), undefined, label);
    t.regex(err!.message, message, label);
    t.true(err!.message.includes(f.y), label);
    r.close();
  }
  // Float labels that are exactly 0 and 1 are fine.
  const dir = tmp();
  const ok = await writePcam(dir, 'train', 4, 1, { labels: { data: Float32Array.from([0, 1, 1, 0]), dtype: '<f4' } });
  const r = await PcamReader.open(ok.x, ok.y);
  t.deepEqual(Array.from(r.read(0, 4).labels!), [0, 1, 1, 0]);
  r.close();
});

test('PatchCamelyon: wrong files are clear Errors', async (t) => {
  const dir = tmp();
  const good = await writePcam(dir, 'train', 4, 1);
  const bad = tmp();
  const mismatched = await writePcam(bad, 'valid', 4, 1, { yShape: [2, 2, 1, 1] });
  await t.throwsAsync(PcamReader.open(mismatched.x, mismatched.y), { message: /'y' has shape \[2, 2, 1, 1\]/ });
  const notH5 = join(bad, 'camelyonpatch_level_2_split_test_x.h5');
  writeFileSync(notH5, 'not an hdf5 file');
  await t.throwsAsync(PcamReader.open(notH5), { message: /cannot open .* as HDF5/ });
  await t.throwsAsync(PcamReader.open(good.y), { message: /no dataset 'x'/ });
  await t.throwsAsync(PcamReader.open(join(bad, 'missing_x.h5')), { message: /does not exist/ });
  const flat = tmp();
  const f3 = await writePcam(flat, 'test', 2, 1, { xShape: [2, 96, 288] });
  await t.throwsAsync(PcamReader.open(f3.x), { message: /'x' has shape \[2, 96, 288\]/ });
});

test('pack: Kaggle folder → packed file equal to the images, labels and ids', async (t) => {
  const dir = await kaggle(20);
  const out = join(tmp(), 'k.hfpack');
  const r = await packDataset(dir, out, { concurrency: 3 });
  t.is(r.count, 20);
  t.is(r.source, 'kaggle');
  const ds = await PackedDataset.open(out);
  t.is(ds.count, 20);
  const layout = await readKaggleLayout(dir);
  for (let i = 0; i < 20; i++) {
    const rec = ds.record(i);
    t.is(rec.id, layout.train[i]!.id);
    t.is(rec.label, layout.train[i]!.label);
    t.deepEqual(ds.batch(i, 1).data, (await readImage(layout.train[i]!.path)).data);
  }
  t.is(r.labels.positive + r.labels.negative, 20);
  ds.close();
});

test('pack: corrupt and duplicate images are reported and left out', async (t) => {
  const dir = await kaggle(10);
  const { train } = await readKaggleLayout(dir);
  writeFileSync(train[2]!.path, 'II*\0 truncated');
  copyFileSync(train[0]!.path, train[5]!.path); // same pixels as 0
  const out = join(tmp(), 'c.hfpack');
  const r = await packDataset(dir, out);
  t.is(r.count, 8);
  t.is(r.unreadable, 1);
  t.is(r.duplicates, 1);
  t.regex(r.skipped.find((s) => s.id === train[2]!.id)!.reason, /^unreadable: cannot read image/);
  t.is(r.skipped.find((s) => s.id === train[5]!.id)!.reason, `duplicate of ${train[0]!.id} (same pixels)`);
  const ds = await PackedDataset.open(out);
  t.false(Array.from({ length: ds.count }, (_, i) => ds.record(i).id).includes(train[5]!.id));
  ds.close();
  // A folder whose every image is unreadable: an Error, and no output file.
  for (const e of train) writeFileSync(e.path, 'garbage');
  const out2 = join(tmp(), 'none.hfpack');
  await t.throwsAsync(packDataset(dir, out2), { message: /no readable image/ });
});

test('pack: PatchCamelyon pair and folder', async (t) => {
  const dir = tmp();
  const f = await writePcam(dir, 'valid', 70, 6);
  const out = join(tmp(), 'p.hfpack');
  const r = await packDataset(f.x, out, { concurrency: 2 });
  t.is(r.source, 'pcam');
  t.is(r.split, 'valid');
  t.is(r.count, 70);
  const ds = await PackedDataset.open(out);
  for (const i of [0, 33, 69]) {
    const p = synthPatch(6, i);
    t.deepEqual(ds.batch(i, 1).data, p.image.data);
    t.is(ds.record(i).label, p.label);
  }
  ds.close();
  const r2 = await packDataset(dir, join(tmp(), 'q.hfpack'), { split: 'valid' });
  t.is(r2.count, 70);
  await t.throwsAsync(packDataset(dir, join(tmp(), 'q.hfpack'), { split: 'test' }), { message: /not a dataset/ });
});

test('pack: tile folder with manifest keeps positions and labels', async (t) => {
  const dir = tmp();
  const w = await TileFolderWriter.open(dir);
  const tiles = [0, 1, 2].map((i) => synthPatch(2, i, { size: 48 }).image);
  for (const [i, img] of tiles.entries()) await w.add(img, { slide: 'S1', level: 0, x: i * 48, y: 0, label: i % 2, tissueFraction: 0.5 });
  await w.finish();
  const out = join(tmp(), 't.hfpack');
  const r = await packDataset(dir, out);
  t.is(r.source, 'tiles');
  t.is(r.count, 3);
  const ds = await PackedDataset.open(out);
  for (let i = 0; i < 3; i++) {
    const rec = ds.record(i);
    t.like(rec, { slide: 'S1', level: 0, x: i * 48, y: 0, tissueFraction: 0.5 });
    t.is(rec.label, i % 2);
    t.deepEqual(ds.batch(i, 1).data, tiles[i]!.data);
  }
  ds.close();
});

test('pack: an interrupted run resumes to the same file', async (t) => {
  const dir = await kaggle(150, 0, 3);
  const full = join(tmp(), 'full.hfpack');
  await packDataset(dir, full, { concurrency: 2 });
  const out = join(tmp(), 'r.hfpack');
  const stop = new AbortController();
  await t.throwsAsync(packDataset(dir, out, { concurrency: 2, signal: stop.signal, onProgress: () => stop.abort(new Error('stop')) }), { message: 'stop' });
  const r = await packDataset(dir, out, { concurrency: 2 });
  t.true(r.resumed > 0 && r.resumed < 150, `resumed ${r.resumed}`);
  t.is(r.written + r.resumed, 150);
  t.deepEqual(readFileSync(out), readFileSync(full));
  await t.throwsAsync(packDataset(dir, out), { message: /already exists/ });
});

test('pack CLI: --json summary; bad input exits 1 with one line', (t) => {
  const dir = tmp();
  spawnSync(process.execPath, [CLI, 'synth', 'patches', '--n', '6', '--out', dir, '--json']);
  const out = join(tmp(), 'cli.hfpack');
  const r = spawnSync(process.execPath, [CLI, 'pack', dir, '--out', out, '--json'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { count: number; skipped: unknown[] };
  t.is(s.count, 6);
  t.deepEqual(s.skipped, []);
  for (const args of [[dir], [dir, '--out', out], [dir, '--out', join(tmp(), 'x'), '--split', 'dev'], [join(dir, 'none'), '--out', join(tmp(), 'y')], [dir, '--out', join(tmp(), 'z'), '--concurrency', '0']]) {
    const bad = spawnSync(process.execPath, [CLI, 'pack', ...args], { encoding: 'utf8' });
    t.is(bad.status, 1, args.join(' '));
    t.regex(bad.stderr, /^histoflow: \S/);
    t.is(bad.stderr.trim().split('\n').length, 1);
  }
  rmSync(dir, { recursive: true, force: true });
});
