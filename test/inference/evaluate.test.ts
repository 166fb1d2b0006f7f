/**
 * `histoflow evaluate` (src/inference/evaluate.ts): its AUC equals a direct
 * pairwise count on the scores it wrote (ties included), its scores are
 * createPredictor's on independently decoded images, the confusion matrix
 * and accuracy agree with a direct count, the ROC PNG decodes; the run's
 * validation split; errors.
 */
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import h5wasm from 'h5wasm/node';
import sharp from 'sharp';

import { evaluateCommand } from '../../src/cli/evaluate.js';
import { baselineCnn } from '../../src/models/baseline_cnn.js';
import { saveModel } from '../../src/models/io.js';
import { PackedWriter } from '../../src/dataset/packed_writer.js';
import { pcamFiles } from '../../src/dataset/pcam.js';
import { decodeWithSharp, histoflow, lastJson, pairwiseAuc, readCsv, referenceScores, SIZE, workspace, type Workspace } from '../support/inference_support.js';

let ws: Workspace;

test.before(async () => {
  ws = await workspace(24, 11);
});

test.after.always(async () => {
  if (ws) await rm(ws.root, { recursive: true, force: true });
});

interface Report {
  n: number;
  positives: number;
  negatives: number;
  auc: number;
  auc_ci: { lower: number; upper: number; samples: number };
  accuracy: number;
  threshold: number;
  confusion: { tp: number; fp: number; tn: number; fn: number };
  split: string;
  files: { evaluation: string; roc_png: string; roc_csv: string; scores: string };
  skipped: Array<{ id: string; reason: string }>;
}

/** The checks every evaluation must pass against its own scores.csv. */
async function checkReport(t: import('ava').ExecutionContext, r: Report): Promise<{ ids: string[]; labels: number[]; scores: number[] }> {
  const rows = await readCsv(r.files.scores);
  const ids = rows.map((row) => row.id!), labels = rows.map((row) => Number(row.label)), scores = rows.map((row) => Number(row.score));
  t.is(rows.length, r.n);
  t.is(labels.filter((l) => l === 1).length, r.positives);
  t.true(Math.abs(r.auc - pairwiseAuc(labels, scores)) < 1e-12, `AUC ${r.auc} vs pairwise ${pairwiseAuc(labels, scores)}`);
  const c = r.confusion;
  t.is(c.tp + c.fp + c.tn + c.fn, r.n);
  t.is(c.tp, labels.filter((l, i) => l === 1 && scores[i]! >= 0.5).length);
  t.is(c.fp, labels.filter((l, i) => l === 0 && scores[i]! >= 0.5).length);
  t.is(r.accuracy, (c.tp + c.tn) / r.n);
  t.true(r.auc_ci.lower <= r.auc && r.auc <= r.auc_ci.upper, `${r.auc} in [${r.auc_ci.lower}, ${r.auc_ci.upper}]`);
  t.deepEqual(JSON.parse(await readFile(r.files.evaluation, 'utf8')), r);
  const png = await sharp(r.files.roc_png).metadata();
  t.is(png.format, 'png');
  t.true((png.width ?? 0) > 100 && (png.height ?? 0) > 100);
  const roc = await readCsv(r.files.roc_csv);
  t.deepEqual([roc[0]!.fpr, roc[0]!.tpr, roc.at(-1)!.fpr, roc.at(-1)!.tpr], ['0', '0', '1', '1']);
  return { ids, labels, scores };
}

test('evaluate on test/ with test_labels.csv: AUC = pairwise count on its scores, which are createPredictor\'s; confusion sums to n; ROC PNG decodes', async (t) => {
  const out = join(ws.root, 'eval-test');
  const r = await histoflow('evaluate', '--model', ws.run, '--data', ws.data, '--out', out, '--backend', 'tfjs-cpu', '--json');
  t.is(r.code, 0, r.stderr);
  const report = lastJson(r.stdout) as unknown as Report;
  t.is(report.split, 'test');
  t.is(report.n, 24);
  const { ids, labels, scores } = await checkReport(t, report);
  const truth = new Map((await readCsv(join(ws.data, 'test_labels.csv'))).map((row) => [row.id!, Number(row.label)]));
  t.deepEqual(labels, ids.map((id) => truth.get(id)));
  const expected = await referenceScores(ws.run, await decodeWithSharp(ids.map((id) => join(ws.data, 'test', `${id}.tif`))), false);
  scores.forEach((s, i) => t.true(Math.abs(s - expected[i]!) < 1e-6, `${ids[i]}: ${s} vs ${expected[i]}`));
});

test('--tta-crops scores a model trained on crops over the centre and corner windows (createPredictor\'s tta crops); the report says so', async (t) => {
  const run = join(ws.root, 'runs', 'cropped');
  const side = SIZE - 8;
  const model = baselineCnn({ inputSize: side, filters: [4, 4, 4], seed: 8 });
  await saveModel(model, join(run, 'best'), { card: { inputSize: side, imageSize: SIZE, architecture: 'baseline', preprocess: { crop: { size: side, mode: 'center' } } } });
  model.dispose();
  const r = await histoflow('evaluate', '--model', run, '--data', ws.data, '--out', join(ws.root, 'eval-crops'), '--backend', 'tfjs-cpu', '--tta-crops', '--json');
  t.is(r.code, 0, r.stderr);
  const report = lastJson(r.stdout) as unknown as Report & { tta: unknown };
  t.is(report.tta, 'crops');
  const { ids, scores } = await checkReport(t, report);
  const batch = await decodeWithSharp(ids.map((id) => join(ws.data, 'test', `${id}.tif`)));
  const expected = await referenceScores(run, batch, 'crops');
  scores.forEach((s, i) => t.true(Math.abs(s - expected[i]!) < 1e-6, `${ids[i]}: ${s} vs ${expected[i]}`));
  const centre = await referenceScores(run, batch, true);
  t.true(scores.some((s, i) => Math.abs(s - centre[i]!) > 1e-5), 'the corner windows change the scores of --tta');
});

test('evaluate counts tied scores as one half: a packed file of repeated images with both labels', async (t) => {
  // 6 distinct images, each stored 4 times with labels 0,1,1,0 / 1,1,1,0 / …: every image's copies tie.
  const src = await decodeWithSharp((await readCsv(join(ws.data, 'test_labels.csv'))).slice(0, 6).map((row) => join(ws.data, 'test', `${row.id}.tif`)));
  const file = join(ws.root, 'ties.hfpack');
  const w = await PackedWriter.create(file, { height: SIZE, width: SIZE, labels: 'int32', overwrite: true });
  const rb = SIZE * SIZE * 3;
  const pattern = [[0, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0], [1, 1, 0, 1], [0, 0, 1, 0]];
  for (let k = 0; k < 6; k++) {
    for (const label of pattern[k]!) await w.append({ data: src.data.subarray(k * rb, (k + 1) * rb), n: 1, height: SIZE, width: SIZE }, { labels: [label] });
  }
  await w.finish();
  const out = join(ws.root, 'eval-ties');
  const r = await histoflow('evaluate', '--model', ws.run, '--data', file, '--out', out, '--json');
  t.is(r.code, 0, r.stderr);
  const report = lastJson(r.stdout) as unknown as Report;
  t.is(report.n, 24);
  const { ids, scores } = await checkReport(t, report);
  t.deepEqual(ids, Array.from({ length: 24 }, (_, i) => String(i)), 'records without ids are named by index');
  t.is(new Set(scores).size, 6, 'copies of one image tie exactly');
  t.true(report.auc !== 0.5 && report.auc > 0 && report.auc < 1);
});

test('--split val (the default for a run folder without --data) scores the run\'s validation ids on the data it recorded', async (t) => {
  const train = (await readCsv(join(ws.data, 'train_labels.csv'))).map((row) => row.id!);
  const validation = [train[6]!, train[1]!, train[3]!, train[4]!, 'no-such-id'];
  const run = join(ws.root, 'runs', 'with-split'); // its own run: the other tests use ws.run without a split.json
  await cp(join(ws.run, 'best'), join(run, 'best'), { recursive: true });
  await writeFile(join(run, 'split.json'), JSON.stringify({ validation, data: ws.data }));
  {
    const r = await histoflow('evaluate', '--model', run, '--json');
    t.is(r.code, 0, r.stderr);
    const report = lastJson(r.stdout) as unknown as Report;
    t.is(report.split, 'val');
    t.is(report.files.evaluation, join(run, 'evaluation', 'evaluation.json'));
    t.deepEqual(report.skipped.map((s) => s.id), ['no-such-id']);
    const { ids } = await checkReport(t, report);
    t.deepEqual(ids, validation.slice(0, 4));
  }
});

test('evaluate on PatchCamelyon HDF5 (x + y files) scores every index with the y labels', async (t) => {
  const rows = (await readCsv(join(ws.data, 'test_labels.csv'))).slice(0, 12);
  const images = await decodeWithSharp(rows.map((row) => join(ws.data, 'test', `${row.id}.tif`)));
  const dir = join(ws.root, 'pcam');
  await mkdir(dir, { recursive: true });
  await h5wasm.ready;
  const f = pcamFiles(dir, 'test');
  let h = new h5wasm.File(f.x, 'w');
  h.create_dataset({ name: 'x', data: images.data, shape: [12, SIZE, SIZE, 3], dtype: '<B' });
  h.close();
  h = new h5wasm.File(f.y, 'w');
  h.create_dataset({ name: 'y', data: Uint8Array.from(rows, (row) => Number(row.label)), shape: [12, 1, 1, 1], dtype: '<B' });
  h.close();
  const r = await histoflow('evaluate', '--model', ws.run, '--data', dir, '--split', 'test', '--out', join(ws.root, 'eval-pcam'), '--json');
  t.is(r.code, 0, r.stderr);
  const report = lastJson(r.stdout) as unknown as Report;
  const { ids, labels } = await checkReport(t, report);
  t.deepEqual(ids, rows.map((_, i) => String(i)));
  t.deepEqual(labels, rows.map((row) => Number(row.label)));
});

test('evaluate errors: no labels, one class, split val without a run, bad flags', async (t) => {
  const base = ['--model', ws.run, '--data', ws.data, '--out', join(ws.root, 'eval-err')];
  const file = join(ws.root, 'unlabelled.hfpack');
  const src = await decodeWithSharp((await readCsv(join(ws.data, 'test_labels.csv'))).slice(0, 3).map((row) => join(ws.data, 'test', `${row.id}.tif`)));
  const w = await PackedWriter.create(file, { height: SIZE, width: SIZE, labels: 'none', overwrite: true });
  await w.append(src);
  await w.finish();
  await t.throwsAsync(evaluateCommand(['--model', ws.run, '--data', file]), { message: /has no labels to evaluate against/ });
  const one = join(ws.root, 'one-class.hfpack');
  const w1 = await PackedWriter.create(one, { height: SIZE, width: SIZE, overwrite: true });
  await w1.append(src, { labels: [1, 1, 1] });
  await w1.finish();
  await t.throwsAsync(evaluateCommand(['--model', ws.run, '--data', one]), { message: /all of class 1; AUC needs both classes/ });
  await t.throwsAsync(evaluateCommand([...base, '--split', 'val']), { instanceOf: RangeError, message: /training run folder .* for model with split val/ });
  await t.throwsAsync(evaluateCommand(['--model', ws.run]), { instanceOf: TypeError, message: /dataset path for data/ });
  await t.throwsAsync(evaluateCommand(['--model', join(ws.root, 'nope'), '--data', ws.data]), { message: /^--model: Model not found/ });
  await t.throwsAsync(evaluateCommand([...base, '--bootstrap', '0']), { instanceOf: RangeError, message: /--bootstrap/ });
  await t.throwsAsync(evaluateCommand([...base, '--split', 'dev']), { instanceOf: RangeError, message: /--split/ });
  await t.throwsAsync(evaluateCommand([...base, '--seed=-1']), { instanceOf: RangeError, message: /--seed/ });
  await t.throwsAsync(evaluateCommand(['--data', ws.data]), { instanceOf: TypeError, message: /--model/ });
});
