/**
 * `histoflow predict` (src/inference/submission.ts): the Kaggle submission
 * of a saved model on a tiny synthetic Kaggle folder, checked against
 * createPredictor on images decoded independently; TTA; packed input; holes
 * (missing / corrupt images) reported and never written; bad flags.
 */
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';

import { predictCommand } from '../../src/cli/predict.js';
import { packDataset } from '../../src/dataset/pack.js';
import { decodeWithSharp, histoflow, lastJson, readCsv, referenceScores, workspace, type Workspace } from '../support/inference_support.js';

let ws: Workspace;

test.before(async () => {
  ws = await workspace();
});

test.after.always(async () => {
  if (ws) await rm(ws.root, { recursive: true, force: true });
});

async function sampleIds(data: string): Promise<string[]> {
  return (await readCsv(join(data, 'sample_submission.csv'))).map((r) => r.id!);
}

for (const tta of [false, true]) {
  test(`predict${tta ? ' --tta' : ''} writes every sample_submission id in order with createPredictor's ${tta ? 'TTA ' : ''}probabilities`, async (t) => {
    const out = join(ws.root, `submission${tta ? '-tta' : ''}.csv`);
    const r = await histoflow('predict', '--model', ws.run, '--data', ws.data, '--out', out, '--backend', 'tfjs-cpu', '--batch', '7', ...(tta ? ['--tta'] : []), '--json');
    t.is(r.code, 0, r.stderr);
    const summary = lastJson(r.stdout);
    for (const key of ['out', 'images', 'tta', 'seconds', 'images_per_s', 'backend', 'skipped']) t.true(key in summary, key);
    t.is(summary.out, out);
    t.is(summary.images, 20);
    t.is(summary.tta, tta);
    t.is(summary.backend, 'tfjs-cpu');
    t.deepEqual(summary.skipped, []);
    t.true((summary.images_per_s as number) > 0);

    const text = await readFile(out, 'utf8');
    t.true(text.startsWith('id,label\n'));
    const rows = await readCsv(out);
    const ids = await sampleIds(ws.data);
    t.deepEqual(rows.map((row) => row.id), ids);
    const got = rows.map((row) => Number(row.label));
    for (const p of got) t.true(p >= 0 && p <= 1, `probability ${p}`);
    const expected = await referenceScores(ws.run, await decodeWithSharp(ids.map((id) => join(ws.data, 'test', `${id}.tif`))), tta);
    for (let i = 0; i < ids.length; i++) t.true(Math.abs(got[i]! - expected[i]!) < 1e-6, `${ids[i]}: ${got[i]} vs ${expected[i]}`);
    t.true(new Set(got).size > 1, 'the scores differ between images');
  });
}

test('predict on a packed file gives the Kaggle folder\'s rows (record ids, same probabilities)', async (t) => {
  const packed = join(ws.root, 'test.hfpack');
  await packDataset(ws.data, packed, { split: 'test', overwrite: true });
  const a = join(ws.root, 'from-packed.csv'), b = join(ws.root, 'from-folder.csv');
  for (const [data, out] of [[packed, a], [ws.data, b]] as const) {
    const r = await histoflow('predict', '--model', join(ws.run, 'best'), '--data', data, '--out', out, '--backend', 'tfjs-cpu', '--json');
    t.is(r.code, 0, r.stderr);
  }
  const fromPacked = await readCsv(a), fromFolder = await readCsv(b);
  t.deepEqual(fromPacked.map((r) => r.id), fromFolder.map((r) => r.id));
  fromPacked.forEach((r, i) => t.true(Math.abs(Number(r.label) - Number(fromFolder[i]!.label)) < 1e-6));
});

test('a corrupt or missing test image is reported by id and no submission is written; --fill-unreadable writes P for it', async (t) => {
  const w = await workspace(6, 9);
  try {
    const ids = await sampleIds(w.data);
    await writeFile(join(w.data, 'test', `${ids[1]}.tif`), 'not a tiff');
    await rm(join(w.data, 'test', `${ids[4]}.tif`));
    const out = join(w.root, 'submission.csv');
    await writeFile(out, 'previous\n');
    const r = await histoflow('predict', '--model', w.run, '--data', w.data, '--out', out, '--json');
    t.is(r.code, 1);
    t.regex(r.stderr, /2 of 6 images could not be read, so no submission was written/);
    t.regex(r.stderr, /--fill-unreadable/);
    const failure = lastJson(r.stdout) as { skipped: Array<{ id: string; reason: string }> };
    t.deepEqual(failure.skipped.map((s) => s.id).sort(), [ids[1], ids[4]].sort());
    t.regex(failure.skipped.find((s) => s.id === ids[4])!.reason, /no image test\/.*\.tif/);
    t.is(await readFile(out, 'utf8'), 'previous\n', 'the existing file is untouched');
    t.deepEqual((await readdir(w.root)).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left');

    const filled = await histoflow('predict', '--model', w.run, '--data', w.data, '--out', out, '--fill-unreadable', '0.5', '--json');
    t.is(filled.code, 0, filled.stderr);
    const s = lastJson(filled.stdout) as { filled: number; scored: number; skipped: Array<{ id: string }> };
    t.is(s.filled, 2);
    t.is(s.scored, 4);
    const rows = await readCsv(out);
    t.deepEqual(rows.map((row) => row.id), ids);
    t.is(rows[1]!.label, '0.5');
    t.is(rows[4]!.label, '0.5');
  } finally {
    await rm(w.root, { recursive: true, force: true });
  }
});

test('a missing model, missing or empty data and bad flags are clear errors naming the flag', async (t) => {
  const out = join(ws.root, 'x.csv');
  const base = ['--data', ws.data, '--out', out];
  await t.throwsAsync(predictCommand(['--model', join(ws.root, 'nope'), ...base]), { message: /^--model: Model not found: .*nope \(no such file/ });
  await mkdir(join(ws.root, 'empty-model'), { recursive: true });
  await t.throwsAsync(predictCommand(['--model', join(ws.root, 'empty-model'), ...base]), { message: /^--model: .*no model\.json in it/ });
  await t.throwsAsync(predictCommand(['--data', ws.data, '--out', out]), { instanceOf: TypeError, message: /--model/ });
  await t.throwsAsync(predictCommand(['--model', ws.run, '--out', out]), { instanceOf: TypeError, message: /--data/ });
  await t.throwsAsync(predictCommand(['--model', ws.run, '--data', ws.data]), { instanceOf: TypeError, message: /--out/ });
  await t.throwsAsync(predictCommand(['--model', ws.run, '--data', join(ws.root, 'nothing'), '--out', out]), { message: /data .*nothing does not exist/ });
  await mkdir(join(ws.root, 'empty-data'), { recursive: true });
  await t.throwsAsync(predictCommand(['--model', ws.run, '--data', join(ws.root, 'empty-data'), '--out', out]), { message: /empty or not a dataset/ });
  await mkdir(join(ws.root, 'no-test', 'test'), { recursive: true });
  await t.throwsAsync(predictCommand(['--model', ws.run, '--data', join(ws.root, 'no-test'), '--out', out]), { message: /no test images/ });
  await t.throwsAsync(predictCommand(['--model', ws.run, ...base, '--batch', '0']), { instanceOf: RangeError, message: /--batch/ });
  await t.throwsAsync(predictCommand(['--model', ws.run, ...base, '--batch', 'x']), { instanceOf: RangeError, message: /--batch/ });
  await t.throwsAsync(predictCommand(['--model', ws.run, ...base, '--backend', 'gpu']), { instanceOf: RangeError, message: /--backend/ });
  await t.throwsAsync(predictCommand(['--model', ws.run, ...base, '--split', 'dev']), { instanceOf: RangeError, message: /--split/ });
  await t.throwsAsync(predictCommand(['--model', ws.run, ...base, '--fill-unreadable', '2']), { instanceOf: RangeError, message: /--fill-unreadable/ });
  await t.throwsAsync(predictCommand(['--model', ws.run, ...base, '--fill-unreadable', 'half']), { instanceOf: RangeError, message: /--fill-unreadable/ });
  await t.throwsAsync(predictCommand(['--model', ws.run, '--data', ws.data, '--out', ws.root]), { instanceOf: RangeError, message: /^Cannot write --out .*: it is a folder, not a file$/ });
  await t.throwsAsync(predictCommand(['--model', ws.run, ...base, '--bogus']), { message: /bogus/ });
  const wrongSize = await workspace(2, 3);
  try {
    // a 48² model on a packed file of 48² images is fine; on 96² images it is a RangeError naming data
    const big = join(wrongSize.root, 'big');
    const { synthPatches } = await import('../../src/synth/dataset.js');
    await synthPatches(big, { n: 2, test: 2, seed: 1, size: 96, workers: 0 });
    await t.throwsAsync(predictCommand(['--model', ws.run, '--data', big, '--out', out]), { instanceOf: RangeError, message: /for data .*96x96 images/ });
  } finally {
    await rm(wrongSize.root, { recursive: true, force: true });
  }
  t.deepEqual((await readdir(ws.root)).filter((f) => f === 'x.csv' || f.endsWith('.tmp')), [], 'no output after errors');
});
